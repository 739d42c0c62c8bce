"""Indexes built after ingest: lookup indexes on URLs, and the full-text indexes.

Ingest writes neither. Full-text indexing of a page's text costs about as much as all the other
inserts together, and the URL indexes take keys in random order, so that once they outgrow the page
cache each insert rewrites a page of its own (migrations/005_deferred_indexes.sql). `wdb index`
(also run by `wdb serve`, and by `wdb ingest --fts` at the end of its run) brings both up to date:

- the URL indexes are created with CREATE INDEX, one sort over the table;
- the FTS5 indexes get the rows with an id above the last one they hold (read from the index's
  own docsize table), a step at a time, each step committed: incremental and resumable.
"""
from __future__ import annotations

import sqlite3

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


def update_indexes(conn: sqlite3.Connection, step: int = 20_000) -> dict:
    """Create missing URL indexes and index the rows added since the last update.

    Returns {"pages": n, "media": m, "created": [index names]}.
    """
    have = existing(conn)
    created = []
    for name, sql in DEFERRED:
        if name not in have:
            with conn:
                conn.execute(sql)
            created.append(name)
    added: dict = {"created": created}
    for fts, table, cols in FULL_TEXT:
        added[table] = 0
        names = ", ".join(cols)
        while True:
            with conn:
                last = conn.execute(f"SELECT coalesce(max(id), 0) FROM {fts}_docsize").fetchone()[0]
                hi = conn.execute(f"SELECT max(id) FROM (SELECT id FROM {table} WHERE id > ? ORDER BY id LIMIT ?)",
                                  (last, step)).fetchone()[0]
                if hi is None:
                    break
                cur = conn.execute(f"INSERT INTO {fts} (rowid, {names}) SELECT id, {names} FROM {table} "
                                   "WHERE id > ? AND id <= ?", (last, hi))
                added[table] += cur.rowcount
    return added
