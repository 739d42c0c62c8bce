"""`wdb ingest`: archives in, pages/media/matches out, resumable and idempotent."""
from __future__ import annotations

import gc
import os
import sqlite3
import time
from dataclasses import dataclass, field

from ..db.indexes import drop_deferred, update_indexes
from ..errors import BadParameter
from ..inputs import DEFAULT_BASE_URL, expand
from ..stage import progress_bar, stage_run
from .chunk import Chunk, Progress, iter_chunk
from .extract_record import Settings
from .pool import Supervisor
from .store import Writer, pending_chunks, register

CHUNK_BYTES = 8 << 20
MAX_ATTEMPTS = 3


@dataclass
class IngestResult:
    run_id: int
    counts: dict
    seconds: float
    archives: dict = field(default_factory=dict)  # status -> count
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # claimed by another live run: left to it
    duplicates: list[str] = field(default_factory=list)  # byte-identical to an input before it
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
                + (f"being ingested by another run: {len(self.busy)}; " if self.busy else "")
                + (f"duplicates of other inputs: {len(self.duplicates)}; " if self.duplicates else "")
                + f"problems: {c['problems']}; skipped URLs: {c['skipped_urls']}"
                + (f"; full-text indexed: {self.indexed['pages']} pages, {self.indexed['media']} media items"
                   if self.indexed is not None else ""))


def ingest(conn: sqlite3.Connection, inputs: list[str], *, workers: int | None = None,
           base_url: str = DEFAULT_BASE_URL, limit: int | None = None, settings: Settings | None = None,
           chunk_bytes: int = CHUNK_BYTES, progress: bool = True, quiet: bool = False,
           record_timeout: float = 300.0, fts: bool = False, executor: str = "local",
           address: str | None = None, shard_dir: str | None = None,
           task_timeout: float | None = None) -> IngestResult:
    """Read archives into the database; archives already ingested are skipped.

    fts: build the URL and full-text indexes at the end of the run (wdb/indexes.py); ingest itself
    drops the URL indexes before it writes.
    executor: "local" (this machine's worker pool) or "ray" (Ray tasks write shard databases into
    shard_dir, merged here as they land: wdb/cluster/driver.py; address: the cluster, else
    RAY_ADDRESS, else a local Ray).
    """
    if executor not in ("local", "ray"):
        raise BadParameter(f"unknown executor {executor!r}: local or ray")
    settings = settings or Settings()
    workers = (os.cpu_count() or 1) if workers is None else workers
    sources = expand(inputs, base_url=base_url, limit=limit)
    params = dict(inputs=inputs, workers=workers, base_url=base_url, limit=limit, chunk_bytes=chunk_bytes,
                  context_words=settings.context_words, max_page_bytes=settings.max_page_bytes,
                  max_text_chars=settings.max_text_chars, max_record_bytes=settings.max_record_bytes, fts=fts)
    if executor == "ray":
        params.update(executor="ray", address=address, shard_dir=shard_dir, task_timeout=task_timeout)
    t0 = time.monotonic()
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: index inserts into a growing database
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 50, 100)  # batches are many short-lived acyclic objects
    try:
        with stage_run(conn, "ingest", params) as run:
            if executor == "ray":
                from ..cluster.driver import ingest_ray

                result = ingest_ray(conn, run, sources, settings, chunk_bytes, progress, quiet, record_timeout,
                                    fts, t0, address=address, shard_dir=shard_dir, task_timeout=task_timeout)
            else:
                result = _ingest(conn, run, sources, workers, settings, chunk_bytes, progress, quiet,
                                 record_timeout, fts, t0)
    finally:
        gc.set_threshold(*thresholds)
    return result


def start_ingest(conn, run, sources, chunk_bytes: int, quiet: bool):
    """The first steps of every executor: (writer, result, archive ids to read, their pending chunks),
    the deferred indexes dropped when there is work."""
    w = Writer(conn, run.id, quiet=quiet)
    run.counts = w.counts
    result = IngestResult(run.id, w.counts, 0.0)
    todo_archives = register_sources(conn, w, sources, chunk_bytes, result)
    chunks = pending_chunks(conn, todo_archives)
    if chunks:
        drop_deferred(conn)  # random-order URL indexes: rebuilt by `wdb index` (wdb/db/indexes.py)
    return w, result, todo_archives, chunks


def finish_archives(conn, w: Writer, result: IngestResult, archive_ids) -> None:
    """Close the run's archives (done / partial / failed) and count them in result."""
    for aid in archive_ids:
        st = w.finish_archive(aid)
        result.archives[st] = result.archives.get(st, 0) + 1
        if st == "failed":
            err = conn.execute("SELECT error FROM archives WHERE id = ?", (aid,)).fetchone()[0]
            w.say(aid, None, None, "failed", err or "no record could be read")


def record_failure(w: Writer):
    """The failure callback of every executor: a problem row; a chunk failed after MAX_ATTEMPTS."""
    def on_failure(chunk: Chunk, offset, kind: str, message: str) -> bool:
        w.problem(chunk.archive_id, offset, kind, message)
        if offset is None and chunk.attempts >= MAX_ATTEMPTS:
            w.fail_chunk(chunk.archive_id, chunk.start)
            return False
        return True
    return on_failure


def _ingest(conn, run, sources, workers, settings, chunk_bytes, progress, quiet, record_timeout, fts, t0):
    w, result, todo_archives, chunks = start_ingest(conn, run, sources, chunk_bytes, quiet)
    total = sum(((c.end or size or 0) - c.pos) for c, size in chunks) or None
    bar = progress_bar(progress and not quiet, total, "ingest", "B")
    seen: dict[tuple, int] = {c.key: c.pos for c, _ in chunks}

    def on_progress(chunk: Chunk, prog: Progress) -> None:
        w.write(chunk, prog)
        bar.update(max(0, prog.bytes_read - seen.get(chunk.key, 0)))
        seen[chunk.key] = prog.bytes_read

    on_failure = record_failure(w)

    try:
        plain = [c for c, _ in chunks]
        if workers <= 0:
            _run_inline(plain, settings, on_progress, on_failure)
        else:
            Supervisor(workers, settings, record_timeout).run(plain, on_progress, on_failure)
    finally:
        bar.close()
    # only a run that got here finishes its archives: an interrupted one leaves them 'running' (with
    # its dead owner), to be resumed by the next run
    finish_archives(conn, w, result, todo_archives)
    if fts:
        result.indexed = update_indexes(conn)
    result.seconds = time.monotonic() - t0
    run.counts = dict(w.counts, archives=result.archives, already_ingested=len(result.skipped),
                      busy=len(result.busy), duplicates=len(result.duplicates))
    if result.archives.get("partial") or result.archives.get("failed"):
        run.error = "some archives ended partial or failed: see the problems table"
    return result


def register_sources(conn, w: Writer, sources, chunk_bytes: int, result: IngestResult) -> list[int]:
    """Register every source under this run's lease (store.register); returns the archive ids to
    read, and fills result.skipped / busy / duplicates. Shared by the local pool and the Ray driver."""
    todo_archives: list[int] = []
    claimed: dict[str, str] = {}
    for src in sources:
        reg = register(conn, src, w.run_id, chunk_bytes, claimed)
        if reg.archive_id is not None:
            w.names[reg.archive_id] = src.location
        if reg.state == "skip":
            result.skipped.append(src.location)
        elif reg.state == "busy":
            result.busy.append(src.location)
            w.say(reg.archive_id, None, None, "busy", reg.note + "; left to it")
        elif reg.state == "duplicate":
            result.duplicates.append(src.location)
            w.say(None, None, None, "duplicate", f"{src.location}: {reg.note}; read once")
        else:
            if reg.state == "failed":
                w.problem(reg.archive_id, None, "unreadable", reg.note)
            todo_archives.append(reg.archive_id)
    return todo_archives


def _run_inline(chunks, settings, on_progress, on_failure) -> None:
    """workers=0: parse in this process (debugging; no crash isolation). A reader/extractor error
    is the chunk's (retried from its resume point, then failed); a writer error (disk full) is the
    run's and propagates."""
    for chunk in chunks:
        while not _read_chunk_inline(chunk, settings, on_progress, on_failure):
            pass


def _read_chunk_inline(chunk, settings, on_progress, on_failure) -> bool:
    """One attempt at a chunk; True when it is finished (read to its end, or given up)."""
    it = iter_chunk(chunk, settings)
    try:
        while True:
            try:
                prog = next(it)
            except StopIteration:
                return True
            except Exception as e:  # noqa: BLE001 -- the chunk's problem, recorded
                chunk.attempts += 1
                return not on_failure(chunk, None, "chunk_error", f"{type(e).__name__}: {e}")
            chunk.pos, chunk.skip = prog.resume
            on_progress(chunk, prog)  # outside the try: the writer's errors are the run's
    finally:
        it.close()
