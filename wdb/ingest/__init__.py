"""`wdb ingest`: archives in, pages/media/matches out, resumable and idempotent."""
from __future__ import annotations

import gc
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field

from ..db import now
from ..db.indexes import drop_deferred, update_indexes
from ..inputs import DEFAULT_BASE_URL, Source, expand, identity
from .chunk import Chunk, Progress, iter_chunk
from .extract_record import Settings
from .pool import Supervisor
from .store import Writer, end_run, start_run

CHUNK_BYTES = 8 << 20
MAX_ATTEMPTS = 3


@dataclass
class IngestResult:
    run_id: int
    counts: dict
    seconds: float
    archives: dict = field(default_factory=dict)  # status -> count
    skipped: list[str] = field(default_factory=list)
    indexed: dict | None = None  # rows added to the full-text indexes (fts=True)

    @property
    def ok(self) -> bool:
        return not (self.archives.get("partial") or self.archives.get("failed"))

    def summary(self) -> str:
        c = self.counts
        rate = c["pages"] / self.seconds if self.seconds else 0.0
        arch = ", ".join(f"{n} {s}" for s, n in sorted(self.archives.items())) or "none"
        return (f"ingested {c['pages']} pages, {c['media']} media items, {c['archived_media']} archived media "
                f"records, {c['alt_matches']} alt matches from {c['records']} records in {self.seconds:.1f}s "
                f"({rate:.0f} pages/s); archives: {arch}; already ingested: {len(self.skipped)}; "
                f"problems: {c['problems']}; skipped URLs: {c['skipped_urls']}"
                + (f"; full-text indexed: {self.indexed['pages']} pages, {self.indexed['media']} media items"
                   if self.indexed is not None else ""))


def _register(conn: sqlite3.Connection, src: Source, run_id: int, chunk_bytes: int, w: Writer):
    """Return (archive_id, state) where state is new | resume | skip."""
    try:
        ident, size, comp = identity(src)
    except OSError as e:
        ident, size, comp = f"unreadable:{src.location}", None, None
        err = f"cannot read: {e}"
    else:
        err = None
    row = conn.execute("SELECT id, status, location FROM archives WHERE identity = ?", (ident,)).fetchone()
    if row and row[1] in ("done", "partial"):
        if row[2] != src.location:
            conn.execute("UPDATE archives SET location = ?, name = ? WHERE id = ?", (src.location, src.name, row[0]))
        return row[0], "skip"
    conn.execute("BEGIN IMMEDIATE")
    if row:
        aid = row[0]
        conn.execute("UPDATE archives SET location = ?, status = 'running', run_id = ?, error = NULL WHERE id = ?",
                     (src.location, run_id, aid))
        if row[1] == "failed":
            conn.execute("UPDATE archive_chunks SET status = 'pending' WHERE archive_id = ? AND status = 'failed'", (aid,))
        state = "resume"
    else:
        cur = conn.execute(
            "INSERT INTO archives (identity, location, name, size, compression, status, run_id, started_at) "
            "VALUES (?,?,?,?,?,?,?,?)", (ident, src.location, src.name, size, comp, "running", run_id, now()))
        aid = cur.lastrowid
        if comp == "gzip" and size and size > chunk_bytes:
            bounds = list(range(0, size, chunk_bytes))
            chunks = [(aid, s, s + chunk_bytes if s + chunk_bytes < size else None, s) for s in bounds]
        else:
            chunks = [(aid, 0, None, 0)]
        conn.executemany("INSERT INTO archive_chunks (archive_id, start, \"end\", pos) VALUES (?,?,?,?)", chunks)
        state = "new"
    conn.execute("COMMIT")
    if err:
        w.names[aid] = src.location
        w.problem(aid, None, "unreadable", err)
        conn.execute("UPDATE archive_chunks SET status = 'failed' WHERE archive_id = ?", (aid,))
        return aid, "failed"
    return aid, state


def ingest(conn: sqlite3.Connection, inputs: list[str], *, workers: int | None = None,
           base_url: str = DEFAULT_BASE_URL, limit: int | None = None, settings: Settings | None = None,
           chunk_bytes: int = CHUNK_BYTES, progress: bool = True, quiet: bool = False,
           record_timeout: float = 300.0, fts: bool = False) -> IngestResult:
    """Read archives into the database; archives already ingested are skipped.

    fts: build the URL and full-text indexes at the end of the run (wdb/indexes.py); ingest itself
    drops the URL indexes before it writes.
    """
    settings = settings or Settings()
    workers = (os.cpu_count() or 1) if workers is None else workers
    sources = expand(inputs, base_url=base_url, limit=limit)
    params = dict(inputs=inputs, workers=workers, base_url=base_url, limit=limit, chunk_bytes=chunk_bytes,
                  context_words=settings.context_words, max_page_bytes=settings.max_page_bytes,
                  max_text_chars=settings.max_text_chars, max_record_bytes=settings.max_record_bytes, fts=fts)
    t0 = time.monotonic()
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: index inserts into a growing database
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 50, 100)  # batches are many short-lived acyclic objects
    run_id = start_run(conn, "ingest", params)
    w = Writer(conn, run_id, quiet=quiet)
    result = IngestResult(run_id, w.counts, 0.0)
    todo_archives = []
    for src in sources:
        aid, state = _register(conn, src, run_id, chunk_bytes, w)
        w.names[aid] = src.location
        if state == "skip":
            result.skipped.append(src.location)
            continue
        todo_archives.append(aid)
    chunks = _pending_chunks(conn, todo_archives)
    if chunks:
        drop_deferred(conn)  # random-order URL indexes: rebuilt by `wdb index` (wdb/indexes.py)
    total = sum(((c.end or size or 0) - c.pos) for c, size in chunks) or None
    bar = None
    if progress and not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, desc="ingest", leave=False)
    seen: dict[tuple, int] = {c.key: c.pos for c, _ in chunks}

    def on_progress(chunk: Chunk, prog: Progress) -> None:
        w.write(chunk, prog)
        if bar is not None:
            bar.update(max(0, prog.bytes_read - seen.get(chunk.key, 0)))
            seen[chunk.key] = prog.bytes_read

    def on_failure(chunk: Chunk, offset, kind: str, message: str) -> bool:
        w.problem(chunk.archive_id, offset, kind, message)
        if offset is None and chunk.attempts >= MAX_ATTEMPTS:
            conn.execute("UPDATE archive_chunks SET status = 'failed' WHERE archive_id = ? AND start = ?",
                         (chunk.archive_id, chunk.start))
            return False
        return True

    status = "failed"
    try:
        plain = [c for c, _ in chunks]
        if workers <= 0:
            _run_inline(plain, settings, on_progress, on_failure)
        else:
            Supervisor(workers, settings, record_timeout).run(plain, on_progress, on_failure)
        status = "done"
    finally:
        if bar is not None:
            bar.close()
        if status == "done":  # an interrupted run leaves its archives 'running', to be resumed
            for aid in todo_archives:
                st = w.finish_archive(aid)
                result.archives[st] = result.archives.get(st, 0) + 1
            if fts:
                result.indexed = update_indexes(conn)
        result.seconds = time.monotonic() - t0
        counters = dict(w.counts, archives=result.archives, already_ingested=len(result.skipped))
        end_run(conn, run_id, counters, status, result.seconds)
        gc.set_threshold(*thresholds)
    return result


def _run_inline(chunks, settings, on_progress, on_failure) -> None:
    """workers=0: parse in this process (debugging; no crash isolation)."""
    for chunk in chunks:
        while True:
            try:
                for prog in iter_chunk(chunk, settings):
                    chunk.pos, chunk.skip = prog.resume
                    on_progress(chunk, prog)
                break
            except Exception as e:  # noqa: BLE001
                chunk.attempts += 1
                if not on_failure(chunk, None, "chunk_error", f"{type(e).__name__}: {e}"):
                    break


def _pending_chunks(conn: sqlite3.Connection, archive_ids: list[int]) -> list[tuple[Chunk, int | None]]:
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
