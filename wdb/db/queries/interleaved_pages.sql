-- title: Pages for interleaved documents
-- description: Pages with at least :min_images images in the text flow and at least :min_words words of text (Flamingo/OBELICS-style candidates), with their first :max_images image URLs in page order.
-- params: min_images integer, min_words integer, max_images integer
-- Reads page_stats (words and image counts per page, kept up to date by `wdb index`) through its
-- index on (images_in_flow DESC, page_id, words): the ORDER BY, with the word filter in the index.
SELECT s.page_id, p.url AS page_url, p.domain, p.title, s.words, s.images_in_flow AS images,
       (SELECT json_group_array(url) FROM (
            SELECT m.url FROM media m WHERE m.page_id = s.page_id AND m.kind = 'image' AND m.pos IS NOT NULL
            ORDER BY m.seq LIMIT CAST(:max_images AS INTEGER))) AS first_images
FROM page_stats s INDEXED BY page_stats_flow
JOIN pages p ON p.id = s.page_id
WHERE s.images_in_flow >= CAST(:min_images AS INTEGER) AND s.words >= CAST(:min_words AS INTEGER)
ORDER BY s.images_in_flow DESC, s.page_id
