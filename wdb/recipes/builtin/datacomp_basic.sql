-- title: DataComp basic filter
-- description: DataComp's `basic` baseline (apply_filter.py, Gadre et al. 2023): alt text in English by fastText lid.176 (top-1 label), more than 2 words and more than 5 characters, shorter image side >= 200 px, aspect (long/short side) <= 3.0. Needs `wdb fetch` (sizes) and `wdb signals`; no CLIP weights. Signals: the most recently computed version of each. `score`: the alt text's CLIP score by the newest model that scored it, for display.
SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source, m.url, p.url AS page_url,
       (SELECT c.score FROM clip_scores c WHERE c.media_id = m.id AND c.text_source = 'alt' ORDER BY c.model_id DESC LIMIT 1) AS score,
       lg.label AS lang, w.value AS words, ms.value AS min_side, ar.value AS aspect, i.width, i.height
FROM media m
JOIN pages p ON p.id = m.page_id
LEFT JOIN images i ON i.url_key = m.url_key
LEFT JOIN text_signals lg ON lg.media_id = m.id AND lg.source = 'alt' AND lg.signal = 'lang'
     AND lg.version = (SELECT version FROM text_signals WHERE signal = 'lang' ORDER BY run_id DESC, version DESC LIMIT 1)
LEFT JOIN text_signals w ON w.media_id = m.id AND w.source = 'alt' AND w.signal = 'words'
     AND w.version = (SELECT version FROM text_signals WHERE signal = 'words' ORDER BY run_id DESC, version DESC LIMIT 1)
LEFT JOIN image_signals ms ON ms.url_key = m.url_key AND ms.signal = 'min_side'
     AND ms.version = (SELECT version FROM image_signals WHERE signal = 'min_side' ORDER BY run_id DESC, version DESC LIMIT 1)
LEFT JOIN image_signals ar ON ar.url_key = m.url_key AND ar.signal = 'aspect'
     AND ar.version = (SELECT version FROM image_signals WHERE signal = 'aspect' ORDER BY run_id DESC, version DESC LIMIT 1)
WHERE m.kind = 'image' AND m.alt IS NOT NULL AND trim(m.alt) != ''
  AND lg.label = 'en'                -- rule: english: alt text in English (fastText lid.176 top-1)
  AND w.value > 2                    -- rule: words: more than 2 words
  AND length(m.alt) > 5              -- rule: chars: more than 5 characters
  AND ms.value >= 200                -- rule: min_side: shorter side >= 200 px
  AND ar.value <= 3.0                -- rule: aspect: long side / short side <= 3.0
  AND NOT EXISTS (SELECT 1 FROM media d WHERE d.page_id = m.page_id AND d.url_key = m.url_key AND d.alt IS m.alt AND d.id < m.id)   -- rule: once: an image shown again on its page with the same alt counts once (its first item, as OBELICS keeps the first occurrence of a repeated src)
ORDER BY m.id
