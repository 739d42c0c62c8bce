-- title: Perceptual-hash deduplicated (MMC4 style)
-- description: MMC4's image deduplication (Zhu et al. 2023): of images whose 64-bit perceptual hashes lie within Hamming distance :distance (5) of each other, transitively, one is kept (view dup_keep: the one with the most pixels); paired with its non-empty alt text. Only images whose bytes were read (`wdb fetch`, a phash) can be judged, so the others are dropped. Needs `wdb fetch` and `wdb dedup --by phash --phash-distance 5`; of several phash versions at that distance, the most recently computed.
-- params: distance integer
-- defaults: distance=5
SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source, m.url, p.url AS page_url,
       (SELECT c.score FROM clip_scores c WHERE c.media_id = m.id AND c.text_source = 'alt' ORDER BY c.model_id DESC LIMIT 1) AS score,
       i.phash, i.width, i.height
FROM media m
JOIN pages p ON p.id = m.page_id
LEFT JOIN images i ON i.url_key = m.url_key
WHERE m.kind = 'image' AND m.alt IS NOT NULL AND trim(m.alt) != ''
  AND i.status = 'ok' AND i.phash IS NOT NULL       -- rule: hashed: image bytes read, with a perceptual hash
  AND m.id IN (SELECT k.media_id FROM dup_keep k WHERE k.method = 'phash' AND k.version = (SELECT version FROM dedup_state WHERE method = 'phash' AND version LIKE '%:d' || CAST(:distance AS INTEGER) ORDER BY run_id DESC, version DESC LIMIT 1))   -- rule: dedup: the kept image of its phash group (or in none)
  AND NOT EXISTS (SELECT 1 FROM media d WHERE d.page_id = m.page_id AND d.url_key = m.url_key AND d.alt IS m.alt AND d.id < m.id)   -- rule: once: an image shown again on its page with the same alt counts once (its first item, as OBELICS keeps the first occurrence of a repeated src)
ORDER BY m.id
