-- title: CLIP score, top k % of the pool
-- description: DataComp's CLIP-score baseline (Gadre et al. 2023, L/14 30 %): of every image whose alt text :model scored (the whole pool), the ceil(N * :percent / 100) pairs with the highest scores, ties broken by media id. :model as in laion2b_en (default ViT-L-14/openai, DataComp's L/14). Opt-outs are dropped after the ranking, so the cut-off does not move when a pair is opted out. Needs `wdb score --texts alt`.
-- params: percent real, model text
-- defaults: percent=30, model=ViT-L-14/openai
WITH pool AS (
    SELECT c.media_id, c.score, c.model_id,
           row_number() OVER (ORDER BY c.score DESC, c.media_id) AS rank,
           count(*) OVER () AS pool_size
    FROM clip_scores c JOIN media m ON m.id = c.media_id
    WHERE c.text_source = 'alt' AND m.kind = 'image' AND m.alt IS NOT NULL AND trim(m.alt) != ''
      AND c.model_id = (SELECT max(id) FROM clip_models WHERE name || '/' || pretrained = :model
                        OR (pretrained = '' AND name = :model) OR CAST(id AS TEXT) = :model)
)
SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source, m.url, p.url AS page_url,
       t.score, t.model_id, t.rank, t.pool_size
FROM pool t
JOIN media m ON m.id = t.media_id
JOIN pages p ON p.id = m.page_id
WHERE 1
  AND t.rank - 1 < t.pool_size * CAST(:percent AS REAL) / 100   -- rule: top: among the top :percent % of the pool by score
  AND NOT EXISTS (SELECT 1 FROM media d WHERE d.page_id = m.page_id AND d.url_key = m.url_key AND d.alt IS m.alt AND d.id < m.id)   -- rule: once: an image shown again on its page with the same alt counts once (its first item, as OBELICS keeps the first occurrence of a repeated src)
ORDER BY m.id
