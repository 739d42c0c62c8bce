-- title: Best description per image
-- description: Every image with a description: its current span prediction (that of the newest span-extractor run that predicted it, the view current_spans) when its confidence is at least :min_confidence, else the alt text. The source column says which.
-- params: min_confidence real
SELECT m.id AS media_id, m.url AS image_url,
       CASE WHEN s.start IS NOT NULL AND s.confidence >= CAST(:min_confidence AS REAL) THEN s.text ELSE m.alt END
           AS description,
       CASE WHEN s.start IS NOT NULL AND s.confidence >= CAST(:min_confidence AS REAL) THEN 'span' ELSE 'alt' END
           AS source,
       s.confidence, m.alt, p.url AS page_url
FROM media m
JOIN pages p ON p.id = m.page_id
LEFT JOIN current_spans s ON s.media_id = m.id
WHERE +m.kind = 'image'
  AND (m.alt IS NOT NULL OR (s.start IS NOT NULL AND s.confidence >= CAST(:min_confidence AS REAL)))
ORDER BY m.id
