"""Indexes built after ingest: lookup indexes on URLs, and the full-text indexes.

Ingest writes neither. Full-text indexing of a page's text costs about as much as all the other
inserts together, and the URL indexes take keys in random order, so that once they outgrow the page
cache each insert rewrites a page of its own (migrations/005_deferred_indexes.sql). `wdb index`
(also run by `wdb serve`, and by `wdb ingest --fts` at the end of its run) brings both up to date:

- the URL indexes are created with CREATE INDEX, one sort over the table;
- the FTS5 indexes get the rows with an id above the last one they hold (read from the index's
  own docsize table), a step at a time, each step committed: incremental and resumable;
- the figures the canned queries read (migrations/008_query_figures.sql): `page_stats` (words and
  image counts of each page), `alt_words` (words of each image's alt text), `domain_stats` (sums
  of page_stats per domain) and `media_url_stats` (items and pages per distinct media URL) get the
  pages above the last one `page_stats` holds and their media items, the four tables in one
  transaction per step, so they always agree and an interrupted update resumes;
- then ANALYZE, so that the query planner knows how the rows are distributed, when the pages or
  media have grown by more than a tenth since the last one (a full ANALYZE reads every index:
  seconds on a million pages).

Pages and their media items are only ever appended (a page and its items in one transaction, ids
in commit order), so the figures of a page never change once computed and the per-URL and
per-domain sums only grow.
"""
from __future__ import annotations

import sqlite3
import time

from . import transaction

# lookup indexes that `wdb ingest` drops before writing and `wdb index` creates
DEFERRED = (
    ("pages_url", "CREATE INDEX IF NOT EXISTS pages_url ON pages(url)"),
    ("media_url_key", "CREATE INDEX IF NOT EXISTS media_url_key ON media(url_key)"),
)
# (index, content table, indexed columns)
FULL_TEXT = (
    ("pages_fts", "pages", ("title", "text")),
    ("media_fts", "media", ("alt", "title", "figcaption")),
)


def existing(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def drop_deferred(conn: sqlite3.Connection) -> list[str]:
    """Drop the URL lookup indexes (before a write-heavy ingest); return the names dropped."""
    names = [n for n, _ in DEFERRED if n in existing(conn)]
    if names:
        with conn:
            for n in names:
                conn.execute(f"DROP INDEX IF EXISTS {n}")
    return names


def pending(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows of each content table not yet in its full-text index."""
    out = {}
    for fts, table, _ in FULL_TEXT:
        last = conn.execute(f"SELECT coalesce(max(id), 0) FROM {fts}_docsize").fetchone()[0]
        out[table] = conn.execute(f"SELECT count(*) FROM {table} WHERE id > ?", (last,)).fetchone()[0]
    return out


def figures_behind(conn: sqlite3.Connection) -> int:
    """Pages not yet in the precomputed figures (page ids are dense: max id minus the last done)."""
    last = conn.execute("SELECT coalesce(max(page_id), 0) FROM page_stats").fetchone()[0]
    top = conn.execute("SELECT coalesce(max(id), 0) FROM pages").fetchone()[0]
    return max(0, top - last)


# one step: the pages with ?1 < id <= ?2 and their media items
_PAGE_STATS = """
INSERT INTO page_stats (page_id, words, media, images, images_in_flow, images_with_alt)
SELECT p.id, length(p.text) - length(replace(p.text, ' ', '')) + 1,
       coalesce(m.media, 0), coalesce(m.images, 0), coalesce(m.flow, 0), coalesce(m.alt, 0)
FROM pages p LEFT JOIN (
    SELECT page_id, count(*) AS media, sum(kind = 'image') AS images,
           sum(kind = 'image' AND pos IS NOT NULL) AS flow, sum(kind = 'image' AND alt IS NOT NULL) AS alt
    FROM media WHERE page_id > ?1 AND page_id <= ?2 GROUP BY page_id) m ON m.page_id = p.id
WHERE p.id > ?1 AND p.id <= ?2
"""
_ALT_WORDS = """
INSERT INTO alt_words (media_id, words)
SELECT id, length(trim(alt)) - length(replace(trim(alt), ' ', '')) + 1
FROM media WHERE page_id > ?1 AND page_id <= ?2 AND kind = 'image' AND alt IS NOT NULL
"""
_DOMAIN_STATS = """
INSERT INTO domain_stats (domain, pages, images, images_with_alt)
SELECT coalesce(p.domain, ''), count(*), sum(s.images), sum(s.images_with_alt)
FROM page_stats s JOIN pages p ON p.id = s.page_id
WHERE s.page_id > ?1 AND s.page_id <= ?2
GROUP BY 1
ON CONFLICT (domain) DO UPDATE SET pages = pages + excluded.pages, images = images + excluded.images,
    images_with_alt = images_with_alt + excluded.images_with_alt
"""
_URL_STATS = """
INSERT INTO media_url_stats (kind, url, items, pages, media_id)
SELECT kind, url, count(*), count(DISTINCT page_id), min(id)
FROM media WHERE page_id > ?1 AND page_id <= ?2
GROUP BY kind, url
ON CONFLICT (kind, url) DO UPDATE SET items = items + excluded.items, pages = pages + excluded.pages
"""


def update_figures(conn: sqlite3.Connection, step: int = 100_000, grow: int | None = 1_000_000) -> int:
    """Add the pages ingested since the last update to page_stats, alt_words, domain_stats and
    media_url_stats, one transaction per step; return the number of pages added.

    A step is `step` pages, or as many pages as the figures already hold (up to `grow`) when that
    is more; grow=None keeps every step at `step` pages.
    """
    added = 0
    while True:
        with transaction(conn):  # the step reads its watermark under the write lock
            last = conn.execute("SELECT coalesce(max(page_id), 0) FROM page_stats").fetchone()[0]
            # steps grow with what is done: each upsert into media_url_stats touches pages all over
            # its B-trees, so fewer, larger steps rewrite them fewer times (first build: 2x faster)
            size = step if grow is None else max(step, min(last, grow))
            hi = conn.execute("SELECT max(id) FROM (SELECT id FROM pages WHERE id > ? ORDER BY id LIMIT ?)",
                              (last, size)).fetchone()[0]
            if hi is None:
                return added
            added += conn.execute(_PAGE_STATS, (last, hi)).rowcount
            conn.execute(_ALT_WORDS, (last, hi))
            conn.execute(_DOMAIN_STATS, (last, hi))
            conn.execute(_URL_STATS, (last, hi))


def update_indexes(conn: sqlite3.Connection, step: int = 20_000, figure_step: int = 100_000,
                   timings: dict | None = None) -> dict:
    """Create missing URL indexes, index the rows added since the last update, bring the query
    figures up to date and ANALYZE when anything changed.

    Returns {"pages": n, "media": m, "created": [index names]}; `timings`, when given, receives
    the seconds each part took.
    """
    timings = {} if timings is None else timings
    t0 = time.monotonic()
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size=-131072")  # 128 MiB: index builds and upserts into growing tables
    try:
        added = _update(conn, step, figure_step, timings)
    finally:
        conn.execute(f"PRAGMA cache_size={int(cache)}")
    timings["total"] = time.monotonic() - t0
    return added


def _update(conn: sqlite3.Connection, step: int, figure_step: int, timings: dict) -> dict:
    t = time.monotonic()
    have = existing(conn)
    created = []
    for name, sql in DEFERRED:
        if name not in have:
            with conn:
                conn.execute(sql)
            created.append(name)
    timings["url_indexes"] = time.monotonic() - t
    t = time.monotonic()
    added: dict = {"created": created}
    for fts, table, cols in FULL_TEXT:
        added[table] = 0
        names = ", ".join(cols)
        while True:
            with transaction(conn):
                last = conn.execute(f"SELECT coalesce(max(id), 0) FROM {fts}_docsize").fetchone()[0]
                hi = conn.execute(f"SELECT max(id) FROM (SELECT id FROM {table} WHERE id > ? ORDER BY id LIMIT ?)",
                                  (last, step)).fetchone()[0]
                if hi is None:
                    break
                cur = conn.execute(f"INSERT INTO {fts} (rowid, {names}) SELECT id, {names} FROM {table} "
                                   "WHERE id > ? AND id <= ?", (last, hi))
                added[table] += cur.rowcount
    timings["full_text"] = time.monotonic() - t
    t = time.monotonic()
    figures = update_figures(conn, figure_step)
    timings["figures"] = time.monotonic() - t
    t = time.monotonic()
    if created or (figures or added["pages"] or added["media"]) and _stats_stale(conn):
        with transaction(conn):
            conn.execute("ANALYZE")
    timings["analyze"] = time.monotonic() - t
    return added


def _stats_stale(conn: sqlite3.Connection, growth: float = 0.1) -> bool:
    """True when the planner's statistics are missing or the pages or media have grown by more than
    `growth` since the last ANALYZE (whose row counts sqlite_stat1 keeps)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        return True
    for table, index in (("pages", "pages_archive"), ("media", "media_kind_page"), ("page_stats", "page_stats_flow")):
        row = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = ? AND idx = ?", (table, index)).fetchone()
        if row is None:
            return True
        then = int(row[0].split()[0])
        now = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0]
        if now > then * (1 + growth):
            return True
    return False
