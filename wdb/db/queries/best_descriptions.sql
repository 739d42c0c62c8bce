-- title: Best description per image
-- description: Every image with a description: the span predicted by the latest span-extractor run when its confidence is at least :min_confidence, else the alt text. The source column says which.
WITH latest AS (SELECT max(id) AS run_id FROM span_runs WHERE status = 'done')
SELECT m.id AS media_id, m.url AS image_url,
       CASE WHEN s.start IS NOT NULL AND s.confidence >= CAST(:min_confidence AS REAL) THEN s.text ELSE m.alt END
           AS description,
       CASE WHEN s.start IS NOT NULL AND s.confidence >= CAST(:min_confidence AS REAL) THEN 'span' ELSE 'alt' END
           AS source,
       s.confidence, m.alt, p.url AS page_url
FROM media m
JOIN pages p ON p.id = m.page_id
LEFT JOIN spans s ON s.media_id = m.id AND s.run_id = (SELECT run_id FROM latest)
WHERE m.kind = 'image'
  AND (m.alt IS NOT NULL OR (s.start IS NOT NULL AND s.confidence >= CAST(:min_confidence AS REAL)))
ORDER BY m.id
