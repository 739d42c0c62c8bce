"""One task: read one chunk of one archive into a complete shard database.

The shard is written by the same code as a local ingest (store.Writer, the same migrations), under
`<name>.tmp`, and renamed to its final name only once closed: a shard file that exists is whole.
A `.tmp` left by an earlier attempt means that attempt's process died (Ray retries the task on a
new worker): this attempt then reads the chunk under the supervised worker pool of a local ingest
(wdb/ingest/pool.py), so a record that kills the process costs that record, as it does locally.

Runs on any node; imports nothing of Ray.
"""
from __future__ import annotations

import dataclasses
import os
import resource
import socket
import time
import uuid
from pathlib import Path

from ..db import open_db, transaction
from ..ingest import _run_inline, record_failure
from ..ingest.chunk import Chunk, Progress
from ..ingest.pool import Supervisor
from ..ingest.store import Writer, owner_name

SHARD_ARCHIVE_ID = 1  # a shard holds one archive


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _fault(spec: str | None, location: str, where: str) -> None:
    """Fault injection for the tests (WDB_RAY_FAULT in the driver's environment), for archives whose
    location holds <part>; each attempt appends a line to <marker>:

    - exit:<part>@<marker>: after its first commit, the first attempt exits its process (a killed
      worker; Ray retries the task);
    - raise:<part>@<marker>: the task raises (an application error: not retried);
    - hang:<part>@<marker>: the task sleeps (at most 120 s) until the driver's timeout cancels it.
    """
    if not spec:
        return
    for one in spec.split(","):
        what, _, rest = one.partition(":")
        sub, _, marker = rest.partition("@")
        if not sub or sub not in location or not marker:
            continue
        if what == "exit" and where == "commit" and not os.path.exists(marker):
            Path(marker).write_text(f"exit {os.getpid()}\n")
            os._exit(1)
        if what in ("raise", "hang") and where == "start":
            with open(marker, "a") as f:
                f.write(f"{what} {os.getpid()}\n")
            if what == "raise":
                raise RuntimeError(f"injected fault for {location}")
            for _ in range(1200):
                time.sleep(0.1)


def run_task(spec: dict) -> dict:
    """Read spec's chunk into the shard spec['shard']; returns what it did.

    spec: location, is_url, name, identity, size, compression, head (the archive row as the driver
    registered it), chunks (every chunk row of the archive: start, end, pos, skip, status), start
    (the chunk to read), gz, skip_offsets, settings, record_timeout, fault.
    """
    t0, cpu0 = time.monotonic(), _cpu()
    _fault(spec.get("fault"), spec["location"], "start")
    final = Path(spec["shard"])
    tmp = final.with_name(final.name + ".tmp")
    isolated = tmp.exists()
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        p.unlink(missing_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.touch()
    aid = SHARD_ARCHIVE_ID
    me = next(c for c in spec["chunks"] if c[0] == spec["start"])
    params = dict(token=uuid.uuid4().hex, location=spec["location"], read=[[aid, me[0], me[2], me[3]]],
                  isolated=isolated, settings=dataclasses.asdict(spec["settings"]))
    conn = open_db(tmp)
    conn.execute("PRAGMA synchronous=OFF")  # a shard is renamed only once closed: a crash discards it
    try:
        from ..stage import stage_run

        with stage_run(conn, "ingest-shard", params) as run:
            with transaction(conn):
                conn.execute("INSERT INTO archives (id, identity, location, name, size, compression, status, run_id, "
                             "started_at, head, owner, heartbeat) VALUES (?,?,?,?,?,?,'running',?,datetime('now'),?,?,?)",
                             (aid, spec["identity"], spec["location"], spec["name"], spec["size"], spec["compression"],
                              run.id, spec["head"], owner_name(run.id), time.time()))
                conn.executemany("INSERT INTO archive_chunks (archive_id, start, \"end\", pos, skip, status) "
                                 "VALUES (?,?,?,?,?,?)", [(aid, *c) for c in spec["chunks"]])
            w = Writer(conn, run.id, quiet=True)
            run.counts = w.counts
            w.names[aid] = spec["location"]
            chunk = Chunk(aid, spec["location"], spec["is_url"], me[0], me[1], me[2], me[3], spec["gz"],
                          set(spec["skip_offsets"]))
            fault = spec.get("fault")

            def on_progress(c: Chunk, prog: Progress) -> None:
                w.write(c, prog)
                _fault(fault, spec["location"], "commit")

            on_failure = record_failure(w)

            if isolated:
                Supervisor(1, spec["settings"], spec["record_timeout"]).run([chunk], on_progress, on_failure)
            else:
                _run_inline([chunk], spec["settings"], on_progress, on_failure)
            run.counts = dict(w.counts, cpu_seconds=round(_cpu() - cpu0, 4), isolated=isolated)
    finally:
        conn.close()
    os.replace(tmp, final)
    return dict(shard=str(final), pages=w.counts["pages"], records=w.counts["records"],
                cpu_seconds=_cpu() - cpu0, seconds=time.monotonic() - t0, host=socket.gethostname(),
                pid=os.getpid(), isolated=isolated)
