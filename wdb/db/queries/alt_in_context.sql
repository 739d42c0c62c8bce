-- title: Images whose alt text reappears in their context
-- description: Training candidates for the span extractor: the alt text, how it matched (exact, normalised, partial with score), and the matched span in the page text. Only matches scoring at least :min_score.
-- params: min_score real
-- alt_matches is keyed by media id, so its own order is the ORDER BY.
SELECT m.id AS media_id, m.url AS image_url, m.alt AS alt_text, x.kind AS match_kind, x.score,
       x.side, substr(p.text, x.start + 1, x."end" - x.start) AS matched_text, p.url AS page_url
FROM alt_matches x
JOIN media m ON m.id = x.media_id
JOIN pages p ON p.id = m.page_id
WHERE x.score >= CAST(:min_score AS REAL)
ORDER BY x.media_id
