"""The single writer: batches and their resume point go into SQLite in one transaction."""
from __future__ import annotations

import json
import sqlite3
import sys

from ..db import now
from .chunk import Chunk, Progress

# problems that mean records were lost: the archive ends 'partial'
LOSSY = ("archive", "worker_crash", "worker_hang", "chunk_error")


class Writer:
    def __init__(self, conn: sqlite3.Connection, run_id: int, quiet: bool = False):
        self.conn = conn
        self.run_id = run_id
        self.quiet = quiet
        self.names: dict[int, str] = {}
        self.counts = dict(pages=0, media=0, archived_media=0, alt_matches=0, problems=0,
                           records=0, skipped_urls=0)

    def say(self, archive_id: int, offset, url, kind: str, message: str) -> None:
        if self.quiet:
            return
        where = self.names.get(archive_id, f"archive {archive_id}")
        at = f"@{offset}" if offset is not None else ""
        sys.stderr.write(f"wdb: {kind}: {where}{at}: {message}{' (' + url + ')' if url else ''}\n")

    def write(self, chunk: Chunk, prog: Progress) -> None:
        b = prog.batch
        c = self.conn
        aid = chunk.archive_id
        c.execute("BEGIN IMMEDIATE")
        try:
            page0 = (c.execute("SELECT max(id) FROM pages").fetchone()[0] or 0) + 1
            media0 = (c.execute("SELECT max(id) FROM media").fetchone()[0] or 0) + 1
            c.executemany(
                "INSERT INTO pages (id, archive_id, record_id, url, domain, \"offset\", length, inner, captured_at, "
                "http_status, content_type, charset, charset_source, title, lang, text, body_bytes, flags, regions) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(page0 + i, aid) + p for i, p in enumerate(b.pages)],
            )
            mid = {}
            rows = []
            for i, m in enumerate(b.media):
                mid[(m[0], m[1])] = media0 + i
                rows.append((media0 + i, page0 + m[0]) + m[1:])
            c.executemany(
                "INSERT INTO media (id, page_id, seq, kind, tag, url, url_key, alt, title, figcaption, width, "
                "height, pos, ctx_start, ctx_end, region, placeholder, render_width, render_height) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            c.executemany("INSERT INTO media_urls VALUES (?,?,?,?,?)",
                          [(mid[(u[0], u[1])],) + u[2:] for u in b.media_urls])
            c.executemany("INSERT INTO alt_matches VALUES (?,?,?,?,?,?)",
                          [(mid[(a[0], a[1])],) + a[2:] for a in b.alt_matches])
            c.executemany(
                "INSERT INTO archived_media (archive_id, record_id, url, url_key, \"offset\", length, inner, "
                "captured_at, http_status, mime, bytes, sha256, width, height, flags) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [(aid,) + a for a in b.archived_media])
            c.executemany("INSERT INTO problems (run_id, archive_id, \"offset\", url, kind, message) VALUES (?,?,?,?,?,?)",
                          [(self.run_id, aid) + p for p in b.problems])
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
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
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

    def problem(self, archive_id: int, offset, kind: str, message: str) -> None:
        self.conn.execute(
            "INSERT INTO problems (run_id, archive_id, \"offset\", url, kind, message) VALUES (?,?,?,?,?,?)",
            (self.run_id, archive_id, offset, None, kind, message))
        if archive_id is not None:
            self.conn.execute("UPDATE archives SET problems = problems + 1, error = coalesce(error, ?) WHERE id = ?",
                              (message, archive_id))
        self.counts["problems"] += 1
        self.say(archive_id, offset, None, kind, message)

    def finish_archive(self, archive_id: int) -> str:
        """done / partial / failed from the chunks' states and lossy problems."""
        c = self.conn
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
        c.execute("UPDATE archives SET status = ?, finished_at = ? WHERE id = ?", (status, now(), archive_id))
        return status


def start_run(conn: sqlite3.Connection, command: str, params: dict) -> int:
    cur = conn.execute("INSERT INTO runs (command, params, started_at) VALUES (?, ?, ?)",
                       (command, json.dumps(params, sort_keys=True), now()))
    return cur.lastrowid


def end_run(conn: sqlite3.Connection, run_id: int, counters: dict, status: str, seconds: float) -> None:
    conn.execute("UPDATE runs SET counters = ?, status = ?, finished_at = ?, seconds = ? WHERE id = ?",
                 (json.dumps(counters, sort_keys=True), status, now(), round(seconds, 3), run_id))
