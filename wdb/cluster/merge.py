"""Merge shard databases into the main one, each exactly once.

A shard is a complete wdb database (same migrations) written by one task: one archive, or one chunk
of one (wdb/cluster/task.py), or any `wdb ingest` run elsewhere. `merge_shard` ATTACHes it and
copies its rows with INSERT ... SELECT, every id that points at another table remapped (own ids
shifted above the main database's largest, archives matched by identity), and records the shard in
`merged_shards` in the same transaction: a driver killed anywhere leaves either all of a shard or
none of it, and a shard already recorded is skipped.

Every table of the schema is in exactly one of REMAP (copied), DERIVED (rebuilt here by
`wdb index`) or LATER (written by later stages, never by ingest: a shard holding rows there is
refused); tests/test_merge.py fails when a migration adds a table to none of them, or a column
with an id reference that REMAP does not remap.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..db import now, transaction
from ..errors import WdbError
from ..ingest.store import LOSSY, lease_alive

# table -> {column: how its value is remapped}; every other column is copied as it is.
#   "own":      the table's own id, shifted above the main database's largest
#   "pages", "media": an id of that table, shifted as that table's own ids are
#   "archives": through the map of shard archives to main archives (matched by identity)
#   "run":      the run that merges (the shard's own runs rows are summarised in merged_shards)
#   "copy":     named like an id but no reference (the WARC-Record-ID): copied as it is
REMAP: dict[str, dict[str, str]] = {
    "archives": {"id": "archives", "run_id": "run"},
    "archive_chunks": {"archive_id": "archives"},
    "pages": {"id": "own", "archive_id": "archives", "record_id": "copy"},
    "media": {"id": "own", "page_id": "pages"},
    "media_urls": {"media_id": "media"},
    "alt_matches": {"media_id": "media"},
    "archived_media": {"id": "own", "archive_id": "archives", "record_id": "copy"},
    "problems": {"id": "own", "run_id": "run", "archive_id": "archives"},
    "merged_shards": {"run_id": "run"},  # a merged database merged again (a merge tree) keeps its history
}
# rebuilt from the merged rows by `wdb index`, or not carried: table -> why
DERIVED: dict[str, str] = {
    "_migrations": "the schema: a shard must have the main database's migrations",
    "runs": "the shard's runs rows are summarised in merged_shards (uid, host, CPU seconds)",
    "page_stats": "figure: `wdb index`", "alt_words": "figure: `wdb index`",
    "domain_stats": "figure: `wdb index`", "media_url_stats": "figure: `wdb index`",
    "pages_fts": "full-text index: `wdb index`", "media_fts": "full-text index: `wdb index`",
}
# written by the stages after ingest (fetch, score, spans, curate, export): never in a shard
LATER: frozenset[str] = frozenset({
    "images", "clip_models", "image_embeddings", "clip_scores", "clip_image_status",
    "span_runs", "span_epochs", "span_evals", "span_examples", "spans",
    "page_signals", "text_signals", "image_signals", "dup_groups", "dedup_state",
    "exports", "export_items",
    # migrations of other branches of this round (011 opt-outs, 013 Stable Diffusion, 015 span metrics)
    "optout", "optout_rejects", "sd_prompt_sets", "sd_prompts", "sd_runs", "sd_losses", "sd_images", "sd_scores",
    "sd_embeddings", "sd_set_scores", "sd_ratings", "span_epoch_spans", "span_metrics",
})
# copy order: a table after the ones it points at
ORDER = ("pages", "media", "media_urls", "alt_matches", "archived_media", "problems", "merged_shards")


class ShardError(WdbError):
    """A file that cannot be merged: not a wdb database, another schema, rows of later stages."""


@dataclass
class MergeResult:
    shard: str  # uid
    path: str
    merged: bool  # False: recorded before (merged already)
    archives: list[int] = field(default_factory=list)  # main ids of the archives it carried rows for
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (archive location, why)
    rows: dict = field(default_factory=dict)  # table -> rows copied
    counters: dict = field(default_factory=dict)  # the shard's own runs counters summed (records, skipped_urls)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def base_tables(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    """The schema's tables, without SQLite's own and the FTS5 shadow tables."""
    rows = conn.execute(f"SELECT name, sql FROM {schema}.sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%'").fetchall()
    fts = {n for n, sql in rows if sql and "VIRTUAL TABLE" in sql.upper()}
    return sorted(n for n, _ in rows if not any(n.startswith(f + "_") for f in fts))


def _columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def shard_uid(conn: sqlite3.Connection, schema: str = "shard") -> str:
    """A shard's identity: the sha256 of its runs rows (command, parameters, host, pid, start).
    A task's parameters hold a random token, so two attempts at one chunk are two shards."""
    rows = conn.execute(f"SELECT id, command, params, started_at, host, pid FROM {schema}.runs ORDER BY id").fetchall()
    if not rows:
        raise ShardError("shard has no runs row: not written by wdb ingest")
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()


def _check_schema(main: sqlite3.Connection, path: Path) -> None:
    """The shard's migrations must be the main database's; an older shard is migrated first."""
    try:
        sconn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=60)
        try:
            theirs = {r[0] for r in sconn.execute("SELECT name FROM _migrations")}
        finally:
            sconn.close()
    except sqlite3.Error as e:
        raise ShardError(f"{path}: not a wdb database ({e})") from e
    ours = {r[0] for r in main.execute("SELECT name FROM _migrations")}
    if theirs - ours:
        raise ShardError(f"{path}: made by a newer wdb (migrations {', '.join(sorted(theirs - ours))}); "
                         "run `wdb migrate` on this database with that version first")
    if ours - theirs:
        from ..db import open_db

        open_db(path).close()  # every command migrates the databases it opens


def _kill_point(name: str) -> None:
    """Crash injection for the tests: WDB_MERGE_KILL=<point>:<n> SIGKILLs this process at the n-th
    passage through <point> (inside the merge transaction: 'rows', after the rows are copied)."""
    spec = os.environ.get("WDB_MERGE_KILL")
    if not spec:
        return
    point, _, n = spec.partition(":")
    if point != name:
        return
    _kill_point.count = getattr(_kill_point, "count", 0) + 1
    if _kill_point.count >= int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _status(conn: sqlite3.Connection, aid: int) -> str:
    """An archive's status from its chunks, as Writer.finish_archive decides it; chunks still
    pending (other shards to come, or a resume) keep it 'pending'."""
    states = [r[0] for r in conn.execute("SELECT status FROM archive_chunks WHERE archive_id = ?", (aid,))]
    records = conn.execute("SELECT records FROM archives WHERE id = ?", (aid,)).fetchone()[0]
    lossy = conn.execute(f"SELECT count(*) FROM problems WHERE archive_id = ? AND kind IN "
                         f"({','.join('?' * len(LOSSY))})", (aid, *LOSSY)).fetchone()[0]
    if "pending" in states:
        return "pending"
    if states and all(s == "done" for s in states):
        return "failed" if records == 0 else "partial" if lossy else "done"
    return "partial" if "done" in states else "failed"


def _read_from(conn: sqlite3.Connection) -> dict[int, list[tuple[int, int, int]]]:
    """Per shard archive id, the chunks the shard read and where it began each: (start, pos, skip).
    A task records them in its runs parameters (`read`); a plain ingest read its chunks from their
    start."""
    out: dict[int, list] = {}
    for (params,) in conn.execute("SELECT params FROM shard.runs"):
        try:
            p = json.loads(params)
        except ValueError:
            continue
        for aid, start, pos, skip in p.get("read", []) if isinstance(p, dict) else []:
            out.setdefault(int(aid), []).append((int(start), int(pos), int(skip)))
    for aid, start in conn.execute("SELECT archive_id, start FROM shard.archive_chunks WHERE archive_id NOT IN "
                                   f"({','.join(str(a) for a in out) or 'NULL'})"):
        out.setdefault(aid, []).append((start, start, 0))
    return out


def _map_archives(conn, run_id: int, owner: str, res: MergeResult) -> dict[int, tuple[int, bool]]:
    """Match each shard archive with the main one of the same identity (inserting it when new) and
    bring the chunk rows over; returns shard id -> (main id, owned by the merging run)."""
    amap: dict[int, tuple[int, bool]] = {}
    read = _read_from(conn)
    acols = [c for c in _columns(conn, "archives") if c != "id"]
    for row in conn.execute("SELECT id, identity, location, records FROM shard.archives ORDER BY id").fetchall():
        sid, ident, loc, _ = row
        m = conn.execute("SELECT id, status, owner, heartbeat, records FROM archives WHERE identity = ?",
                         (ident,)).fetchone()
        if m is None:
            new = (conn.execute("SELECT coalesce(max(id), 0) FROM archives").fetchone()[0] or 0) + 1
            sel = ", ".join({"run_id": "?2", "owner": "NULL", "heartbeat": "NULL"}.get(c, f'"{c}"') for c in acols)
            conn.execute(f"INSERT INTO archives (id, {', '.join(repr_col(c) for c in acols)}) "
                         f"SELECT ?1, {sel} FROM shard.archives WHERE id = ?3", (new, run_id, sid))
            _chunks_from(conn, new, sid)
            amap[sid] = (new, False)
            continue
        aid, status, m_owner, hb, m_records = m
        mine = m_owner == owner
        if status in ("done", "partial"):
            res.skipped.append((loc, f"already ingested here ({status})"))
            continue
        if status in ("running", "pending") and not mine and lease_alive(conn, m_owner, hb):
            res.skipped.append((loc, f"being ingested by {m_owner}"))
            continue
        main_chunks = {r[0]: r[1:] for r in conn.execute(
            "SELECT start, pos, skip, status FROM archive_chunks WHERE archive_id = ?", (aid,))}
        mine_read = read.get(sid, [])
        if mine_read and all(s in main_chunks and main_chunks[s][2] != "done" and main_chunks[s][:2] == (p, k)
                             for s, p, k in mine_read):
            for s, _, _ in mine_read:
                conn.execute("UPDATE archive_chunks SET (\"end\", pos, skip, status) = (SELECT \"end\", pos, skip, "
                             "status FROM shard.archive_chunks WHERE archive_id = ? AND start = ?) "
                             "WHERE archive_id = ? AND start = ?", (sid, s, aid, s))
        elif m_records == 0 and all(st != "done" and p == s and k == 0 for s, (p, k, st) in main_chunks.items()):
            conn.execute("DELETE FROM archive_chunks WHERE archive_id = ?", (aid,))
            _chunks_from(conn, aid, sid)
        else:
            res.skipped.append((loc, "its chunks here do not begin where the shard's do (read here since)"))
            continue
        conn.execute(
            "UPDATE archives SET (records, pages, media_records, problems, bytes_read, error) = (SELECT "
            "a.records + s.records, a.pages + s.pages, a.media_records + s.media_records, a.problems + s.problems, "
            "max(a.bytes_read, s.bytes_read), coalesce(a.error, s.error) FROM archives a, shard.archives s "
            "WHERE a.id = ?1 AND s.id = ?2) WHERE id = ?1", (aid, sid))
        amap[sid] = (aid, mine)
    return amap


def _chunks_from(conn, aid: int, sid: int) -> None:
    conn.execute("INSERT INTO archive_chunks (archive_id, start, \"end\", pos, skip, status) SELECT ?, start, "
                 "\"end\", pos, skip, status FROM shard.archive_chunks WHERE archive_id = ?", (aid, sid))


def repr_col(c: str) -> str:
    return f'"{c}"'


def merge_shard(conn: sqlite3.Connection, path: str | Path, run_id: int, owner: str) -> MergeResult:
    """Merge one shard file in one transaction (see the module's docstring).

    owner: the lease name of the merging run (store.owner_name); archives it holds are left
    'running' for it to finish, any other archive gets its status from its chunks.
    """
    t0 = time.monotonic()
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"no such shard: {path}")
    _check_schema(conn, path)
    conn.execute("ATTACH DATABASE ? AS shard", (str(path),))
    try:
        uid = shard_uid(conn)
        res = MergeResult(uid, str(path), True)
        for t in sorted(LATER & set(base_tables(conn, "shard"))):
            if conn.execute(f"SELECT 1 FROM shard.{t} LIMIT 1").fetchone():
                raise ShardError(f"{path}: holds rows of a later stage ({t}); only ingest shards can be merged")
        with transaction(conn):
            if conn.execute("SELECT 1 FROM merged_shards WHERE shard = ?", (uid,)).fetchone():
                res.merged = False
                return res
            amap = _map_archives(conn, run_id, owner, res)
            if not amap and res.skipped:  # nothing of it belongs here now: not recorded (it may later)
                return res
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS merge_amap (sid INTEGER PRIMARY KEY, mid INTEGER NOT NULL)")
            conn.execute("DELETE FROM temp.merge_amap")
            conn.executemany("INSERT INTO temp.merge_amap VALUES (?, ?)", [(s, m) for s, (m, _) in amap.items()])
            every = len(amap) == conn.execute("SELECT count(*) FROM shard.archives").fetchone()[0]
            shifts = {}
            for t in ("pages", "media", "archived_media", "problems"):
                top = conn.execute(f"SELECT coalesce(max(id), 0) FROM main.{t}").fetchone()[0]
                low = conn.execute(f"SELECT coalesce(min(id), 1) FROM shard.{t}").fetchone()[0]
                shifts[t] = top - low + 1
            for t in ORDER:
                res.rows[t] = _copy(conn, t, run_id, shifts, every) if amap or t == "merged_shards" else 0
            _kill_point("rows")
            for sid, (aid, mine) in amap.items():
                if not mine:
                    conn.execute("UPDATE archives SET status = ?, owner = NULL, heartbeat = NULL, finished_at = "
                                 "coalesce(finished_at, ?) WHERE id = ?", (_status(conn, aid), now(), aid))
            res.archives = [m for m, _ in amap.values()]
            res.rows["archives"] = len(amap)
            cpu, host = _shard_costs(conn, res.counters)
            res.seconds = time.monotonic() - t0
            conn.execute("INSERT INTO merged_shards (shard, path, run_id, archives, skipped, rows, cpu_seconds, host, "
                         "merged_at, seconds) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (uid, str(path), run_id, len(amap), len(res.skipped), res.total, cpu, host, now(),
                          round(res.seconds, 4)))
        return res
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("DETACH DATABASE shard")


def _shard_costs(conn, sums: dict) -> tuple[float | None, str | None]:
    cpu, host = None, None
    for counters, h in conn.execute("SELECT counters, host FROM shard.runs"):
        host = host or h
        try:
            c = json.loads(counters or "{}")
        except ValueError:
            continue
        for k in ("records", "skipped_urls"):
            if isinstance(c, dict) and isinstance(c.get(k), int):
                sums[k] = sums.get(k, 0) + c[k]
        if isinstance(c, dict) and isinstance(c.get("cpu_seconds"), (int, float)):
            cpu = (cpu or 0.0) + c["cpu_seconds"]
    return cpu, host


def _copy(conn: sqlite3.Connection, table: str, run_id: int, shifts: dict, every: bool) -> int:
    cols = _columns(conn, table)
    remap = REMAP[table]
    exprs = []
    for c in cols:
        how = remap.get(c)
        q = f'x."{c}"'
        if how is None or how == "copy":
            exprs.append(q)
        elif how == "own":
            exprs.append(f"{q} + {int(shifts[table])}")
        elif how in shifts:
            exprs.append(f"{q} + {int(shifts[how])}")
        elif how == "archives":
            exprs.append(f"(SELECT mid FROM temp.merge_amap WHERE sid = {q})")
        elif how == "run":
            exprs.append(str(int(run_id)))
        else:  # pragma: no cover -- REMAP is checked by the tests
            raise AssertionError(f"unknown remap {how!r} for {table}.{c}")
    where = ""
    if not every:  # some archives of the shard are not merged: only the rows of those that are
        if "archive_id" in cols:
            where = " WHERE x.archive_id IN (SELECT sid FROM temp.merge_amap)"
            if table == "problems":
                where += " OR x.archive_id IS NULL"
        elif "page_id" in cols:
            where = (" WHERE x.page_id IN (SELECT id FROM shard.pages WHERE archive_id IN "
                     "(SELECT sid FROM temp.merge_amap))")
        elif "media_id" in cols:
            where = (" WHERE x.media_id IN (SELECT m.id FROM shard.media m JOIN shard.pages p ON p.id = m.page_id "
                     "WHERE p.archive_id IN (SELECT sid FROM temp.merge_amap))")
    names = ", ".join(f'"{c}"' for c in cols)
    verb = "INSERT OR IGNORE" if table == "merged_shards" else "INSERT"
    cur = conn.execute(f"{verb} INTO main.{table} ({names}) SELECT {', '.join(exprs)} FROM shard.{table} x{where}")
    return cur.rowcount
