-- title: LAION-2B-en
-- description: LAION-5B's English subset (Schuhmann et al. 2022): alt text whose CLIP cosine with the image is >= :min_score (0.28) by OpenAI ViT-B/32, in English. LAION identified the language with gcld3; wdb uses fastText lid.176 (`wdb signals`), so borderline texts can differ. :model is a clip_models row as NAME/PRETRAINED (ViT-B-32/openai), NAME alone for a local-dir: model, or its id; of several rows with those names the newest (highest id). Needs `wdb signals` and `wdb score --model ViT-B-32 --pretrained openai --texts alt`.
-- params: min_score real, model text
-- defaults: min_score=0.28, model=ViT-B-32/openai
SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source, m.url, p.url AS page_url,
       c.score, c.model_id, lg.label AS lang, lg.value AS lang_score
FROM media m
JOIN pages p ON p.id = m.page_id
LEFT JOIN clip_scores c ON c.media_id = m.id AND c.text_source = 'alt'
     AND c.model_id = (SELECT max(id) FROM clip_models WHERE name || '/' || pretrained = :model
                       OR (pretrained = '' AND name = :model) OR CAST(id AS TEXT) = :model)
LEFT JOIN text_signals lg ON lg.media_id = m.id AND lg.source = 'alt' AND lg.signal = 'lang'
     AND lg.version = (SELECT version FROM text_signals WHERE signal = 'lang' ORDER BY run_id DESC, version DESC LIMIT 1)
WHERE m.kind = 'image' AND m.alt IS NOT NULL AND trim(m.alt) != ''
  AND c.score >= CAST(:min_score AS REAL)    -- rule: clip: CLIP score of the alt text >= :min_score
  AND lg.label = 'en'                        -- rule: english: alt text in English (fastText lid.176)
  AND NOT EXISTS (SELECT 1 FROM media d WHERE d.page_id = m.page_id AND d.url_key = m.url_key AND d.alt IS m.alt AND d.id < m.id)   -- rule: once: an image shown again on its page with the same alt counts once (its first item, as OBELICS keeps the first occurrence of a repeated src)
ORDER BY m.id
