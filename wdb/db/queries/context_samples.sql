-- title: Text-media-text samples
-- description: For every item of the chosen :kind (image, audio, video or embed) in the text flow: the text before it, the item, and the text after it (the context window stored at ingest, 256 words each side by default), page by page in document order.
-- params: kind image|audio|video|embed
-- The windows are cut as the view media_context cuts them; the index on (kind, page_id, seq)
-- yields the items of one kind already in page and document order.
SELECT m.id AS media_id, p.url AS page_url, m.seq, m.kind, m.url, m.alt,
       substr(p.text, m.ctx_start + 1, m.pos - m.ctx_start) AS text_before,
       substr(p.text, m.pos + 1, m.ctx_end - m.pos) AS text_after
FROM media m INDEXED BY media_kind_page
JOIN pages p ON p.id = m.page_id
WHERE m.kind = :kind AND m.pos IS NOT NULL
ORDER BY m.page_id, m.seq
