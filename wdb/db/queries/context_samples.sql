-- title: Text-media-text samples
-- description: For every item of the chosen :kind (image, audio, video or embed) in the text flow: the text before it, the item, and the text after it (the context window stored at ingest, 256 words each side by default), page by page in document order.
SELECT c.media_id, p.url AS page_url, m.seq, c.kind, c.url, c.alt, c.text_before, c.text_after
FROM media_context c
JOIN media m ON m.id = c.media_id
JOIN pages p ON p.id = c.page_id
WHERE c.kind = :kind
ORDER BY c.page_id, m.seq
