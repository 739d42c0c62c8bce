-- title: Pages for interleaved documents
-- description: Pages with at least :min_images images in the text flow and at least :min_words words of text (Flamingo/OBELICS-style candidates), with their first :max_images image URLs in page order.
WITH counted AS (
    SELECT p.id, p.url, p.domain, p.title,
           length(p.text) - length(replace(p.text, ' ', '')) + 1 AS words,
           (SELECT count(*) FROM media m WHERE m.page_id = p.id AND m.kind = 'image' AND m.pos IS NOT NULL) AS images
    FROM pages p
)
SELECT c.id AS page_id, c.url AS page_url, c.domain, c.title, c.words, c.images,
       (SELECT json_group_array(url) FROM (
            SELECT m.url FROM media m WHERE m.page_id = c.id AND m.kind = 'image' AND m.pos IS NOT NULL
            ORDER BY m.seq LIMIT CAST(:max_images AS INTEGER))) AS first_images
FROM counted c
WHERE c.images >= CAST(:min_images AS INTEGER) AND c.words >= CAST(:min_words AS INTEGER)
ORDER BY c.images DESC, c.id
