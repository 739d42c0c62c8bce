-- title: Image/alt-text pairs (LAION style)
-- description: One row per image with an alt text of at least :min_words words: image URL, alt text, page URL.
-- params: min_words integer
-- Reads alt_words (the word count of each image's alt text, kept up to date by `wdb index`) in
-- media id order: a narrow table, so even a threshold no alt text reaches is a short scan.
SELECT m.id AS media_id, m.url AS image_url, m.alt AS alt_text, p.url AS page_url, p.domain
FROM alt_words w
JOIN media m ON m.id = w.media_id
JOIN pages p ON p.id = m.page_id
WHERE w.words >= CAST(:min_words AS INTEGER)
ORDER BY w.media_id
