"""`wdb ingest --executor ray`: Ray core tasks write shards, this driver merges them.

The driver is the only writer of the main database. It registers the archives under its lease
exactly as a local ingest does (store.register), and for every pending chunk either merges the
shard already on disk for it (a driver killed before merging it) or submits a task (task.py) that
writes one. Each shard is merged as it lands (merge.py: one transaction, recorded in
merged_shards). A shard file is named after the database, the archive's identity and the point its
chunk began at, so a restarted driver finds exactly the shards that match its pending chunks.

Failures: a worker that dies is retried by Ray (`max_retries`; the retry reads the chunk under the
supervised pool); an error raised by the task (its application) is not retried: it is recorded as
the archive's problem (kind chunk_error) and the chunk fails; a task running past `task_timeout`
is cancelled and recorded (worker_hang). The run's result and exit code are a local ingest's.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

from ..db import db_path, side_dir, transaction
from ..db.indexes import update_indexes
from ..ingest import IngestResult, finish_archives, start_ingest
from .merge import ShardError, _kill_point, merge_shard

MAX_RETRIES = 3  # attempts after a worker death (Ray's max_retries)
TASK_TIMEOUT = 3600.0
PROGRESS_EVERY = 2.0  # seconds between progress lines / runs.counters updates


def shard_name(db: str, identity: str, start: int, pos: int, skip: int) -> str:
    """The shard file of one chunk of one archive read from (pos, skip) for one database: the same
    for every driver of that database (a restarted one finds it), another for any other database
    sharing the shard folder (one archive's lease is per database)."""
    h = hashlib.sha256
    return f"{h(db.encode()).hexdigest()[:8]}-{h(identity.encode()).hexdigest()[:20]}-{start}-{pos}-{skip}.db"


def _ray(address: str | None, quiet: bool):
    import logging

    import ray

    started = False
    if not ray.is_initialized():
        if address or os.environ.get("RAY_ADDRESS"):  # join a cluster (ray start --head / --address)
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=not quiet)
        else:  # a Ray of this machine's cores, for this run (no token: nothing else can reach it)
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=not quiet)
        started = True
    return ray, started


def ingest_ray(conn, run, sources, settings, chunk_bytes: int, progress: bool, quiet: bool, record_timeout: float,
               fts: bool, t0: float, address: str | None = None, shard_dir: str | None = None,
               task_timeout: float | None = None, max_retries: int = MAX_RETRIES) -> IngestResult:
    w, result, todo, chunks = start_ingest(conn, run, sources, chunk_bytes, quiet)
    sdir = Path(shard_dir).resolve() if shard_dir else side_dir(conn, "shards")
    if not shard_dir and (address or os.environ.get("RAY_ADDRESS")) and chunks:
        w.say(None, None, None, "shards", f"no --shard-dir: shards go to {sdir}, which every node must be able "
              "to write (a shared filesystem)")
    sdir.mkdir(parents=True, exist_ok=True)
    timeout = TASK_TIMEOUT if task_timeout is None else task_timeout
    fault = os.environ.get("WDB_RAY_FAULT")
    st = dict(done=0, failed=0, running=0, merged=0, pages0=w.counts["pages"], t=time.monotonic(), last=0.0,
              driver=0.0, total=len(chunks), recovered=0, task_seconds=0.0, task_cpu=0.0)

    def merged(path: Path) -> bool:
        """Merge one shard; False when it does not fit (stale: refused, the chunk is read again)."""
        tm = time.monotonic()
        top = conn.execute("SELECT coalesce(max(id), 0) FROM problems").fetchone()[0]
        try:
            res = merge_shard(conn, path, run.id, w.owner)
            _kill_point("merged")  # tests: a driver killed between the commit and the file's removal
        except ShardError as e:
            w.say(None, None, None, "shard", f"{path}: {e}; read again")
            return False
        if res.skipped and not res.archives:
            w.say(None, None, None, "shard", f"{path}: {res.skipped[0][1]}; read again")
            return False
        for t in ("pages", "media", "archived_media", "alt_matches", "problems"):
            w.counts[t] += res.rows.get(t, 0)
        w.counts["records"] += res.counters.get("records", 0)
        w.counts["skipped_urls"] += res.counters.get("skipped_urls", 0)
        if not quiet:
            for aid, off, url, kind, msg in conn.execute(
                    "SELECT archive_id, \"offset\", url, kind, message FROM problems WHERE id > ?", (top,)):
                w.say(aid, off, url, kind, msg)
        path.unlink(missing_ok=True)
        st["merged"] += 1
        st["driver"] += time.monotonic() - tm
        return True

    left = {}  # archive -> chunks not yet merged or failed
    for c, _ in chunks:
        left[c.archive_id] = left.get(c.archive_id, 0) + 1
    bad: set[int] = set()
    flying: dict = {}  # ref -> (chunk, submitted at)

    def failed(aid: int, start: int, kind: str, msg: str) -> None:
        w.problem(aid, None, kind, msg)
        w.fail_chunk(aid, start)
        st["failed"] += 1
        bad.add(aid)
        left[aid] -= 1

    def archives_line() -> dict:
        over = [a for a, n in left.items() if n == 0]
        return dict(total=len(left), done=sum(a not in bad for a in over), failed=sum(a in bad for a in over),
                    running=len({c.archive_id for c, _ in flying.values()}))

    def report(force: bool = False) -> None:
        tnow = time.monotonic()
        if not force and tnow - st["last"] < PROGRESS_EVERY:
            return
        st["last"] = tnow
        pages = w.counts["pages"] - st["pages0"]
        rate = pages / (tnow - st["t"]) if tnow > st["t"] else 0.0
        arch = archives_line()
        line = dict(executor="ray", archives=arch, chunks=st["total"], done=st["done"], running=st["running"],
                    failed=st["failed"], pages=w.counts["pages"], pages_per_s=round(rate, 1),
                    driver_seconds=round(st["driver"], 3), at=time.time())
        with transaction(conn):  # what `wdb status` reads while the run goes on; the leases renewed
            conn.execute("UPDATE runs SET counters = ? WHERE id = ?", (json.dumps(dict(w.counts, progress=line)), run.id))
            conn.execute("UPDATE archives SET heartbeat = ? WHERE owner = ? AND status = 'running'",
                         (time.time(), w.owner))
        if progress and not quiet and sys.stderr.isatty():
            sys.stderr.write(f"\rwdb: ray: archives {arch['done']}/{arch['total']} done, {arch['running']} running, "
                             f"{arch['failed']} failed; chunks {st['done']}/{st['total']}; {w.counts['pages']} pages "
                             f"({rate:.0f} pages/s)   ")
            sys.stderr.flush()

    _tidy(conn, sdir)
    todo_jobs = []
    db = str(db_path(conn).resolve())
    archive_rows: dict[int, tuple] = {}  # per archive: its row and its chunks, read once (not once per chunk)
    for c, _size in chunks:
        if c.archive_id not in archive_rows:
            archive_rows[c.archive_id] = (
                conn.execute("SELECT identity, size, compression, head, name FROM archives WHERE id = ?",
                             (c.archive_id,)).fetchone(),
                [tuple(r) for r in conn.execute("SELECT start, \"end\", pos, skip, status FROM archive_chunks "
                                                "WHERE archive_id = ? ORDER BY start", (c.archive_id,))])
        (ident, size, comp, head, name), rows = archive_rows[c.archive_id]
        path = sdir / shard_name(db, ident, c.start, c.pos, c.skip)
        if path.exists() and merged(path):  # landed before a driver died: merge it, read nothing again
            archive_rows.pop(c.archive_id)  # the merge changed this archive's chunk rows: read them again
            st["done"] += 1
            left[c.archive_id] -= 1
            st["recovered"] += 1
            continue
        todo_jobs.append((c, dict(location=c.location, is_url=c.is_url, name=name, identity=ident, size=size,
                                  compression=comp, head=head, chunks=rows, start=c.start,
                                  gz=c.gz, skip_offsets=sorted(c.skip_offsets), settings=settings,
                                  record_timeout=record_timeout, fault=fault, shard=str(path))))
    ray = None
    started = False
    try:
        if todo_jobs:
            ray, started = _ray(address, quiet)
            from .task import run_task

            remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(run_task)
            slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
            queue = list(reversed(todo_jobs))
            flight = flying

            def submit() -> None:
                c, spec = queue.pop()
                flight[remote.remote(spec)] = (c, time.monotonic())

            while queue or flight:
                while queue and len(flight) < slots:
                    submit()
                st["running"] = len(flight)
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
                for ref in ready:
                    c, _ = flight.pop(ref)
                    if queue:  # keep the cluster busy while this shard merges
                        submit()
                    _landed(ray, ref, c, merged, failed, st, left)
                tnow = time.monotonic()
                for ref, (c, since) in list(flight.items()):
                    if tnow - since > timeout:
                        ray.cancel(ref, force=True)
                        flight.pop(ref)
                        failed(c.archive_id, c.start, "worker_hang",
                               f"task ran past the {timeout:.0f}s task timeout; cancelled")
                st["running"] = len(flight)
                report()
    finally:
        if started:
            ray.shutdown()
        if progress and not quiet and sys.stderr.isatty():
            sys.stderr.write("\n")
    st["running"] = 0
    finish_archives(conn, w, result, todo)
    report(force=True)
    if fts:
        result.indexed = update_indexes(conn)
    result.seconds = time.monotonic() - t0
    run.counts = dict(w.counts, archives=result.archives, already_ingested=len(result.skipped),
                      busy=len(result.busy), duplicates=len(result.duplicates), executor="ray",
                      shards_merged=st["merged"], shards_recovered=st["recovered"],
                      task_seconds=round(st["task_seconds"], 3), task_cpu_seconds=round(st["task_cpu"], 3),
                      driver_seconds=round(st["driver"], 3))
    if result.archives.get("partial") or result.archives.get("failed"):
        run.error = "some archives ended partial or failed: see the problems table"
    return result


def _tidy(conn, sdir: Path) -> None:
    """Delete shards of sdir merged before (a driver killed between its merge's commit and the
    file's removal): only a file whose uid is the one recorded."""
    import sqlite3

    from .merge import shard_uid

    present = {str(p) for p in sdir.glob("*.db")}
    if not present:
        return
    for uid, path in conn.execute("SELECT shard, path FROM merged_shards WHERE path IS NOT NULL").fetchall():
        if path not in present:
            continue
        try:
            s = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
            try:
                same = shard_uid(s, "main") == uid
            finally:
                s.close()
        except (sqlite3.Error, ShardError):
            continue
        if same:
            Path(path).unlink()


def _landed(ray, ref, chunk, merged, failed, st, left) -> None:
    """A task finished: merge its shard, or record why it has none."""
    from ray import exceptions as rx

    try:
        out = ray.get(ref)
    except rx.TaskCancelledError as e:
        failed(chunk.archive_id, chunk.start, "worker_hang", f"task cancelled: {_line(e)}")
        return
    except rx.RayTaskError as e:  # the task raised: its own error, not retried
        failed(chunk.archive_id, chunk.start, "chunk_error", f"task failed: {_line(e)}")
        return
    except rx.RayError as e:  # the worker or its node died, retries spent
        failed(chunk.archive_id, chunk.start, "worker_crash",
               f"task lost after its retries ({type(e).__name__}): {_line(e)}")
        return
    st["task_seconds"] += out.get("seconds", 0.0)
    st["task_cpu"] += out.get("cpu_seconds", 0.0)
    if merged(Path(out["shard"])):
        st["done"] += 1
        left[chunk.archive_id] -= 1
    else:
        failed(chunk.archive_id, chunk.start, "chunk_error", f"shard {out['shard']} could not be merged")


def _line(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}".splitlines()[0][:300]
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]
