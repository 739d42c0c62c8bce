-- title: Best description, CLIP-checked, deduplicated, no boilerplate
-- description: wdb's own recipe: each image's best description — its current span prediction (view current_spans) when its confidence is >= :min_confidence, else its alt text — then, when :model has scored this database, a CLIP score of that text >= :min_score (a pair whose text that model did not score is dropped; when the model has scored nothing, the CLIP rule keeps every pair, so the recipe works before any weights are used); the kept image of its phash group (`wdb dedup --by phash`, the most recently computed version; without a phash dedup run every pair is dropped); and not in a boilerplate region (media.region in the comma list :drop_regions).
-- params: min_confidence real, min_score real, model text, drop_regions text
-- defaults: min_confidence=0.5, min_score=0.28, model=ViT-B-32/openai, drop_regions=header,nav,footer,menu
WITH best AS (
    SELECT m.id AS media_id, m.url, m.url_key, m.page_id, m.region,
           CASE WHEN s.text IS NOT NULL AND trim(s.text) != '' AND s.confidence >= CAST(:min_confidence AS REAL)
                THEN s.text ELSE m.alt END AS text,
           CASE WHEN s.text IS NOT NULL AND trim(s.text) != '' AND s.confidence >= CAST(:min_confidence AS REAL)
                THEN 'span' ELSE 'alt' END AS text_source,
           s.confidence
    FROM media m LEFT JOIN current_spans s ON s.media_id = m.id
    WHERE m.kind = 'image'
),
cm AS (SELECT (SELECT max(id) FROM clip_models WHERE name || '/' || pretrained = :model
               OR (pretrained = '' AND name = :model) OR CAST(id AS TEXT) = :model) AS id)
SELECT b.media_id, b.text, b.text_source, b.url, p.url AS page_url, c.score, cm.id AS model_id,
       b.confidence AS span_confidence, b.region
FROM best b
JOIN pages p ON p.id = b.page_id
CROSS JOIN cm
LEFT JOIN clip_scores c ON c.media_id = b.media_id AND c.text_source = b.text_source AND c.model_id = cm.id
WHERE b.text IS NOT NULL AND trim(b.text) != ''
  AND (c.score >= CAST(:min_score AS REAL) OR NOT EXISTS (SELECT 1 FROM clip_scores x WHERE x.model_id = cm.id))   -- rule: clip: CLIP score of the text >= :min_score (when the model scored this database)
  AND b.media_id IN (SELECT k.media_id FROM dup_keep k WHERE k.method = 'phash' AND k.version = (SELECT version FROM dedup_state WHERE method = 'phash' ORDER BY run_id DESC, version DESC LIMIT 1))   -- rule: dedup: the kept image of its phash group (or in none)
  AND instr(',' || :drop_regions || ',', ',' || coalesce(b.region, 'main') || ',') = 0   -- rule: region: not in a boilerplate region (:drop_regions)
  AND NOT EXISTS (SELECT 1 FROM media d JOIN media e ON e.id = b.media_id WHERE d.page_id = b.page_id AND d.url_key = b.url_key AND d.alt IS e.alt AND d.id < b.media_id)   -- rule: once: an image shown again on its page with the same alt counts once (its first item, as OBELICS keeps the first occurrence of a repeated src)
ORDER BY b.media_id
