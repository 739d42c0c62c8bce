-- title: Deduplicated media URLs
-- description: One row per URL of the chosen :kind (image, audio, video or embed), with how many items and pages point at it and whether an ingested archive holds its bytes.
-- params: kind image|audio|video|embed
-- Reads media_url_stats (items and pages per URL, kept up to date by `wdb index`) in the order of
-- its index on (kind, items DESC, url); "archived" is looked up per row, so it follows new archives.
SELECT s.url, s.items, s.pages,
       EXISTS (SELECT 1 FROM archived_media a
               WHERE a.url_key = (SELECT m.url_key FROM media m WHERE m.id = s.media_id)) AS archived
FROM media_url_stats s INDEXED BY media_url_stats_order
WHERE s.kind = :kind
ORDER BY s.items DESC, s.url
