-- title: Per-domain counts
-- description: Pages, images and alt-text coverage per domain, largest first.
SELECT p.domain,
       count(DISTINCT p.id) AS pages,
       count(m.id) AS images,
       count(m.alt) AS images_with_alt,
       round(1.0 * count(m.alt) / max(count(m.id), 1), 3) AS alt_coverage
FROM pages p LEFT JOIN media m ON m.page_id = p.id AND m.kind = 'image'
GROUP BY p.domain
ORDER BY pages DESC, images DESC
