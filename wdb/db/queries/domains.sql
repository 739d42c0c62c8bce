-- title: Per-domain counts
-- description: Pages, images and alt-text coverage per domain, largest first.
-- Reads domain_stats, the per-domain sums that `wdb index` keeps up to date.
SELECT nullif(d.domain, '') AS domain, d.pages, d.images, d.images_with_alt,
       round(1.0 * d.images_with_alt / max(d.images, 1), 3) AS alt_coverage
FROM domain_stats d
ORDER BY d.pages DESC, d.images DESC, d.domain
