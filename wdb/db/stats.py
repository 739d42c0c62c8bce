"""Counts of what the database holds."""
from __future__ import annotations

import sqlite3

from .indexes import figures_behind

QUERIES = {
    "archives": "SELECT count(*) FROM archives",
    "archives_done": "SELECT count(*) FROM archives WHERE status = 'done'",
    "archives_partial": "SELECT count(*) FROM archives WHERE status = 'partial'",
    "archives_failed": "SELECT count(*) FROM archives WHERE status = 'failed'",
    "records": "SELECT coalesce(sum(records), 0) FROM archives",
    "pages": "SELECT count(*) FROM pages",
    "images": "SELECT count(*) FROM media WHERE kind = 'image'",
    "images_with_alt": "SELECT count(*) FROM media WHERE kind = 'image' AND alt IS NOT NULL",
    "audio": "SELECT count(*) FROM media WHERE kind = 'audio'",
    "video": "SELECT count(*) FROM media WHERE kind = 'video'",
    "embeds": "SELECT count(*) FROM media WHERE kind = 'embed'",
    "archived_media_records": "SELECT count(*) FROM archived_media",
    "media_items_with_archived_bytes": "SELECT count(DISTINCT media_id) FROM media_archived",
    "alt_matches": "SELECT count(*) FROM alt_matches",
    "errors": "SELECT count(*) FROM problems",
}
# the same counts from the per-page figures of `wdb index` (no scan of media), used when they are current
FROM_FIGURES = {
    "images": "SELECT coalesce(sum(images), 0) FROM page_stats",
    "images_with_alt": "SELECT coalesce(sum(images_with_alt), 0) FROM page_stats",
}


def stats(conn: sqlite3.Connection) -> dict[str, int]:
    current = figures_behind(conn) == 0
    return {k: conn.execute(FROM_FIGURES[k] if current and k in FROM_FIGURES else q).fetchone()[0]
            for k, q in QUERIES.items()}
