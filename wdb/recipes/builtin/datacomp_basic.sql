-- title: DataComp basic filter
-- description: English alt text by fastText (top-1), caption of more than 2 words and more than 5 characters, shorter image side >= 200 px, aspect <= 3.0 (DataComp's apply_filter.py `basic` bounds). Needs `wdb signals`.
SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source
FROM media m
WHERE m.kind = 'image' AND m.alt IS NOT NULL AND length(trim(m.alt)) > 5
  AND EXISTS (SELECT 1 FROM text_signals t WHERE t.media_id = m.id AND t.source = 'alt' AND t.signal = 'words' AND t.value > 2)
  AND EXISTS (SELECT 1 FROM text_signals t WHERE t.media_id = m.id AND t.source = 'alt' AND t.signal = 'lang' AND t.label = 'en')
  AND EXISTS (SELECT 1 FROM image_signals s WHERE s.url_key = m.url_key AND s.signal = 'min_side' AND s.value >= 200)
  AND EXISTS (SELECT 1 FROM image_signals s WHERE s.url_key = m.url_key AND s.signal = 'aspect' AND s.value <= 3.0)
ORDER BY m.id
