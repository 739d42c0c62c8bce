-- title: Deduplicated media URLs
-- description: One row per URL of the chosen :kind (image, audio, video or embed), with how many items and pages point at it and whether an ingested archive holds its bytes.
SELECT m.url, count(*) AS items, count(DISTINCT m.page_id) AS pages,
       EXISTS (SELECT 1 FROM archived_media a WHERE a.url_key = m.url_key) AS archived
FROM media m
WHERE m.kind = :kind
GROUP BY m.url
ORDER BY items DESC, m.url
