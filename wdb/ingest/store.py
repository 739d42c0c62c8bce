"""Ingest's SQL, all of it: archives registered under a lease, pending chunks, batches written with
their resume point in one transaction, archives finished.

The lease: an archive row is claimed inside a write transaction (status 'running', `owner`,
`heartbeat`) before anything is read from it, and every batch commit renews it, checking that the
owner is still this run. Another process finds the row claimed and leaves it alone while the owner
lives (same host: its pid exists; another host: a heartbeat younger than LEASE_SECONDS); a dead
owner's archive is taken over and resumed from its last committed point.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import sys
import time
from dataclasses import dataclass

from ..db import now, transaction
from ..errors import WdbError
from ..inputs import HEAD_BYTES, Source, identity
from . import columns as C
from .chunk import Chunk, Progress

# problems that mean records were lost: the archive ends 'partial'
LOSSY = ("archive", "worker_crash", "worker_hang", "chunk_error", "no_target_uri")
LEASE_SECONDS = 900.0  # an owner on another host that has not committed for this long is presumed dead

_PAGES = C.insert_sql("pages", C.PAGES)
_MEDIA = C.insert_sql("media", C.MEDIA)
_MEDIA_URLS = C.insert_sql("media_urls", C.MEDIA_URLS)
_ALT = C.insert_sql("alt_matches", C.ALT_MATCHES)
_ARCHIVED = C.insert_sql("archived_media", C.ARCHIVED_MEDIA)
_PROBLEMS = C.insert_sql("problems", C.PROBLEMS)


class LeaseLost(WdbError):
    """Another process took over an archive this run was reading (this run was presumed dead)."""


def owner_name(run_id: int) -> str:
    return f"run:{run_id}@{socket.gethostname()}:{os.getpid()}"


def lease_alive(conn: sqlite3.Connection, owner: str | None, heartbeat: float | None) -> bool:
    """Whether the run named `owner` may still be reading its archive: its runs row is still
    'running' and its process lives (same host) or has committed lately (another host)."""
    if not owner or "@" not in owner or not owner.startswith("run:"):
        return False
    status = conn.execute("SELECT status FROM runs WHERE id = ?", (owner[4:].split("@", 1)[0],)).fetchone()
    if status is None or status[0] != "running":
        return False
    host, _, pid = owner.rsplit("@", 1)[1].rpartition(":")
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            return True
        return True
    return heartbeat is not None and time.time() - heartbeat < LEASE_SECONDS


@dataclass
class Registration:
    archive_id: int | None
    state: str  # new | resume | grown | skip | busy | duplicate | failed
    note: str = ""


def _chunks_for(aid: int, size: int | None, comp: str | None, chunk_bytes: int, start: int = 0) -> list[tuple]:
    if comp == "gzip" and size and size - start > chunk_bytes:
        bounds = list(range(start, size, chunk_bytes))
        return [(aid, s, s + chunk_bytes if s + chunk_bytes < size else None, s) for s in bounds]
    return [(aid, start, None, start)]


def _grown_from(conn: sqlite3.Connection, src: Source, size: int) -> tuple | None:
    """An archive ingested from this path whose bytes are a prefix of the file now there."""
    rows = conn.execute("SELECT id, size, head, status FROM archives WHERE location = ? AND size < ? "
                        "AND head IS NOT NULL ORDER BY id DESC", (src.location, size)).fetchall()
    for aid, old_size, head, status in rows:
        with open(src.location, "rb") as f:
            prefix = f.read(min(HEAD_BYTES, old_size))
        if hashlib.sha256(prefix).hexdigest() == head:
            return aid, old_size, status
    return None


def _resume_point_of_grown(conn: sqlite3.Connection, aid: int) -> int:
    """Where to read a grown archive again: its last resume point, or the first record stored short
    (cut by the old end of file) in the last chunk, whichever comes first."""
    start, pos = conn.execute("SELECT start, pos FROM archive_chunks WHERE archive_id = ? ORDER BY start DESC "
                              "LIMIT 1", (aid,)).fetchone()
    short = conn.execute(
        "SELECT min(o) FROM (SELECT \"offset\" AS o FROM pages WHERE archive_id = ?1 AND \"offset\" >= ?2 "
        "AND ',' || flags || ',' LIKE '%,short,%' UNION ALL SELECT \"offset\" FROM archived_media "
        "WHERE archive_id = ?1 AND \"offset\" >= ?2 AND ',' || flags || ',' LIKE '%,short,%')",
        (aid, start)).fetchone()[0]
    return min(pos, short) if short is not None else pos


def _delete_from(conn: sqlite3.Connection, aid: int, offset: int) -> None:
    """Remove the rows of records at or after `offset` (they are read again)."""
    page_ids = "SELECT id FROM pages WHERE archive_id = ? AND \"offset\" >= ?"
    media_ids = f"SELECT id FROM media WHERE page_id IN ({page_ids})"
    for sql in (f"DELETE FROM alt_matches WHERE media_id IN ({media_ids})",
                f"DELETE FROM media_urls WHERE media_id IN ({media_ids})",
                f"DELETE FROM media WHERE page_id IN ({page_ids})",
                "DELETE FROM pages WHERE archive_id = ? AND \"offset\" >= ?",
                "DELETE FROM archived_media WHERE archive_id = ? AND \"offset\" >= ?",
                "DELETE FROM problems WHERE archive_id = ? AND \"offset\" >= ?"):
        conn.execute(sql, (aid, offset))
    conn.execute("DELETE FROM archive_chunks WHERE archive_id = ? AND start >= ?", (aid, offset))
    conn.execute("UPDATE archive_chunks SET \"end\" = ?, status = 'done' WHERE archive_id = ? AND start < ? "
                 "AND (\"end\" IS NULL OR \"end\" > ?)", (offset, aid, offset, offset))


def register(conn: sqlite3.Connection, src: Source, run_id: int, chunk_bytes: int,
             claimed: dict[str, str]) -> Registration:
    """Claim one archive for this run, inside one write transaction.

    `claimed` maps identities already claimed by this run to their location, so that a file and a
    byte-identical copy given in one command are read once.
    """
    try:
        ident, size, comp, head = identity(src)
    except OSError as e:
        ident, size, comp, head = f"unreadable:{src.location}", None, None, None
        err = f"cannot read: {e}"
    else:
        err = None
    if ident in claimed:
        return Registration(None, "duplicate", f"same bytes as {claimed[ident]}")
    me = owner_name(run_id)
    with transaction(conn):
        row = conn.execute("SELECT id, status, location, owner, heartbeat FROM archives WHERE identity = ?",
                           (ident,)).fetchone()
        grown = None if row or src.is_url or err or size is None else _grown_from(conn, src, size)
        if row and row[1] in ("done", "partial"):
            if row[2] != src.location:
                conn.execute("UPDATE archives SET location = ?, name = ? WHERE id = ?", (src.location, src.name, row[0]))
            return Registration(row[0], "skip")
        if row and row[1] in ("running", "pending") and row[3] and row[3] != me and lease_alive(conn, row[3], row[4]):
            return Registration(row[0], "busy", f"being ingested by {row[3]}")
        if row:
            aid = row[0]
            conn.execute("UPDATE archives SET location = ?, status = 'running', run_id = ?, error = NULL, owner = ?, "
                         "heartbeat = ? WHERE id = ?", (src.location, run_id, me, time.time(), aid))
            if row[1] == "failed":
                conn.execute("UPDATE archive_chunks SET status = 'pending' WHERE archive_id = ? AND status = 'failed'",
                             (aid,))
            state = "resume"
        elif grown:
            aid, old_size, _ = grown
            busy = conn.execute("SELECT owner, heartbeat, status FROM archives WHERE id = ?", (aid,)).fetchone()
            if busy[2] == "running" and busy[0] != me and lease_alive(conn, busy[0], busy[1]):
                return Registration(aid, "busy", f"being ingested by {busy[0]}")
            at = _resume_point_of_grown(conn, aid)
            _delete_from(conn, aid, at)
            conn.executemany("INSERT INTO archive_chunks (archive_id, start, \"end\", pos) VALUES (?,?,?,?)",
                             _chunks_for(aid, size, comp, chunk_bytes, at))
            conn.execute("UPDATE archives SET identity = :ident, head = :head, size = :size, status = 'running', "
                         "run_id = :run, error = NULL, owner = :me, heartbeat = :now, pages = (SELECT count(*) FROM "
                         "pages WHERE archive_id = :aid), media_records = (SELECT count(*) FROM archived_media "
                         "WHERE archive_id = :aid) WHERE id = :aid",
                         dict(ident=ident, head=head, size=size, run=run_id, me=me, now=time.time(), aid=aid))
            state = "grown"
        else:
            cur = conn.execute(
                "INSERT INTO archives (identity, location, name, size, compression, status, run_id, started_at, head, "
                "owner, heartbeat) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (ident, src.location, src.name, size, comp, "running", run_id, now(), head, me, time.time()))
            aid = cur.lastrowid
            conn.executemany("INSERT INTO archive_chunks (archive_id, start, \"end\", pos) VALUES (?,?,?,?)",
                             _chunks_for(aid, size, comp, chunk_bytes))
            state = "new"
        if err:
            conn.execute("UPDATE archive_chunks SET status = 'failed' WHERE archive_id = ?", (aid,))
    claimed[ident] = src.location
    if err:
        return Registration(aid, "failed", err)
    return Registration(aid, state)


def pending_chunks(conn: sqlite3.Connection, archive_ids: list[int]) -> list[tuple[Chunk, int | None]]:
    out = []
    for aid in archive_ids:
        loc, size, comp = conn.execute("SELECT location, size, compression FROM archives WHERE id = ?",
                                       (aid,)).fetchone()
        gz = None if comp is None else comp == "gzip"
        crashed = {r[0] for r in conn.execute(
            "SELECT \"offset\" FROM problems WHERE archive_id = ? AND kind IN ('worker_crash', 'worker_hang') "
            "AND \"offset\" IS NOT NULL", (aid,))}
        for start, end, pos, skip in conn.execute(
                "SELECT start, \"end\", pos, skip FROM archive_chunks WHERE archive_id = ? AND status = 'pending' "
                "ORDER BY start", (aid,)):
            is_url = loc.startswith(("http://", "https://"))
            if gz is None and pos > 0:
                gz = loc.lower().split("?", 1)[0].endswith(".gz")
            out.append((Chunk(aid, loc, is_url, start, end, pos, skip, gz, set(crashed)), size))
    return out


class Writer:
    """The single writer: a batch, its resume point and the lease's renewal in one transaction."""

    def __init__(self, conn: sqlite3.Connection, run_id: int, quiet: bool = False):
        self.conn = conn
        self.run_id = run_id
        self.owner = owner_name(run_id)
        self.quiet = quiet
        self.names: dict[int, str] = {}
        self.counts = dict(pages=0, media=0, archived_media=0, alt_matches=0, problems=0,
                           records=0, skipped_urls=0)
        # crash injection for the resume tests: SIGKILL this process right after the N-th commit
        self.kill_after = int(os.environ.get("WDB_KILL_AFTER_COMMITS", "0") or 0)
        self.commits = 0

    def say(self, archive_id: int | None, offset, url, kind: str, message: str) -> None:
        if self.quiet:
            return
        where = self.names.get(archive_id, f"archive {archive_id}")
        at = f"@{offset}" if offset is not None else ""
        sys.stderr.write(f"wdb: {kind}: {where}{at}: {message}{' (' + url + ')' if url else ''}\n")

    def write(self, chunk: Chunk, prog: Progress) -> None:
        b = prog.batch
        c = self.conn
        aid = chunk.archive_id
        with transaction(c):
            if c.execute("UPDATE archives SET heartbeat = ? WHERE id = ? AND owner = ?",
                         (time.time(), aid, self.owner)).rowcount == 0:
                raise LeaseLost(f"archive {self.names.get(aid, aid)} was taken over by another run")
            page0 = (c.execute("SELECT max(id) FROM pages").fetchone()[0] or 0) + 1
            media0 = (c.execute("SELECT max(id) FROM media").fetchone()[0] or 0) + 1
            c.executemany(_PAGES, [(page0 + i, aid) + p for i, p in enumerate(b.pages)])
            mid = {}
            rows = []
            for i, m in enumerate(b.media):
                mid[(m[0], m[1])] = media0 + i
                rows.append((media0 + i, page0 + m[0]) + m[1:])
            c.executemany(_MEDIA, rows)
            c.executemany(_MEDIA_URLS, [(mid[(u[0], u[1])],) + u[2:] for u in b.media_urls])
            c.executemany(_ALT, [(mid[(a[0], a[1])],) + a[2:] for a in b.alt_matches])
            c.executemany(_ARCHIVED, [(aid,) + a for a in b.archived_media])
            c.executemany(_PROBLEMS, [(self.run_id, aid) + p for p in b.problems])
            pos, skip = prog.resume
            c.execute("UPDATE archive_chunks SET pos = ?, skip = ?, status = ? WHERE archive_id = ? AND start = ?",
                      (pos, skip, "done" if prog.final else "pending", aid, chunk.start))
            lossy = sum(1 for p in b.problems if p[2] in LOSSY)
            c.execute(
                "UPDATE archives SET records = records + ?, pages = pages + ?, media_records = media_records + ?, "
                "problems = problems + ?, bytes_read = max(bytes_read, ?) , error = CASE WHEN ? THEN "
                "coalesce(error, ?) ELSE error END WHERE id = ?",
                (b.records, len(b.pages), len(b.archived_media), len(b.problems), prog.bytes_read,
                 lossy > 0, "records lost: see problems", aid))
        self.commits += 1
        if self.kill_after and self.commits >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        for p in b.problems:
            self.say(aid, p[0], p[1], p[2], p[3])
        cnt = self.counts
        cnt["pages"] += len(b.pages)
        cnt["media"] += len(b.media)
        cnt["archived_media"] += len(b.archived_media)
        cnt["alt_matches"] += len(b.alt_matches)
        cnt["problems"] += len(b.problems)
        cnt["records"] += b.records
        cnt["skipped_urls"] += b.skipped_urls

    def problem(self, archive_id: int | None, offset, kind: str, message: str) -> None:
        with transaction(self.conn):
            self.conn.execute(_PROBLEMS, (self.run_id, archive_id, offset, None, kind, message))
            if archive_id is not None:
                self.conn.execute("UPDATE archives SET problems = problems + 1, error = coalesce(error, ?) WHERE id = ?",
                                  (message, archive_id))
        self.counts["problems"] += 1
        self.say(archive_id, offset, None, kind, message)

    def fail_chunk(self, archive_id: int, start: int) -> None:
        with transaction(self.conn):
            self.conn.execute("UPDATE archive_chunks SET status = 'failed' WHERE archive_id = ? AND start = ?",
                              (archive_id, start))

    def finish_archive(self, archive_id: int) -> str:
        """done / partial / failed from the chunks' states and lossy problems."""
        c = self.conn
        with transaction(c):
            states = [r[0] for r in c.execute("SELECT status FROM archive_chunks WHERE archive_id = ?", (archive_id,))]
            lossy = c.execute(
                f"SELECT count(*) FROM problems WHERE archive_id = ? AND kind IN ({','.join('?' * len(LOSSY))})",
                (archive_id, *LOSSY)).fetchone()[0]
            records = c.execute("SELECT records FROM archives WHERE id = ?", (archive_id,)).fetchone()[0]
            if states and all(s == "done" for s in states) and records == 0:
                status = "failed"
                c.execute("UPDATE archives SET error = coalesce(error, ?) WHERE id = ?",
                          ("no records: empty, or not a WARC/ARC file", archive_id))
            elif states and all(s == "done" for s in states):
                status = "partial" if lossy else "done"
            elif any(s == "done" for s in states):
                status = "partial"
            else:
                status = "failed"
            c.execute("UPDATE archives SET status = ?, finished_at = ?, heartbeat = NULL WHERE id = ? AND owner = ?",
                      (status, now(), archive_id, self.owner))
        return status
