-- title: Image/alt-text pairs (LAION style)
-- description: One row per image with an alt text of at least :min_words words: image URL, alt text, page URL.
-- params: min_words integer
-- Scans media in id order (`+m.kind`: not through the kind index, whose order is not the id's) and
-- stops at the first page of rows.
SELECT m.id AS media_id, m.url AS image_url, m.alt AS alt_text, p.url AS page_url, p.domain
FROM media m JOIN pages p ON p.id = m.page_id
WHERE +m.kind = 'image' AND m.alt IS NOT NULL
  AND (length(trim(m.alt)) - length(replace(trim(m.alt), ' ', '')) + 1) >= CAST(:min_words AS INTEGER)
ORDER BY m.id
