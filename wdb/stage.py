"""One shape for every stage: settings dataclass -> run(conn, settings) -> Result, with a `runs` row.

    @dataclass
    class FetchSettings:            # its defaults are the CLI's defaults
        concurrency: int = 16

    def fetch(conn, s: FetchSettings, progress=None) -> Result:
        with stage_run(conn, "fetch", s) as run:
            ...                     # failures become rows; run.counts["ok"] += 1
        return run.result()

`stage_run` writes the `runs` row first (command, parameters, host, pid), and at the end its counters,
seconds and status: done, failed (with the error's one line) or interrupted (SIGINT/SIGTERM).
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from .db import now, transaction
from .errors import DiskFull, Interrupted


def _params(settings: Any) -> dict:
    if dataclasses.is_dataclass(settings):
        return dataclasses.asdict(settings)
    return dict(settings or {})


def start_run(conn: sqlite3.Connection, command: str, params: Any) -> int:
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO runs (command, params, status, started_at, host, pid) VALUES (?, ?, 'running', ?, ?, ?)",
            (command, json.dumps(_params(params), sort_keys=True, default=str), now(), socket.gethostname(),
             os.getpid()))
    return cur.lastrowid


def end_run(conn: sqlite3.Connection, run_id: int, counters: dict, status: str, seconds: float,
            error: str | None = None) -> None:
    """Close the run row; never raises (it runs in `finally`, where it must not hide the first error)."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        with transaction(conn):
            conn.execute("UPDATE runs SET counters = ?, status = ?, finished_at = ?, seconds = ?, error = ? "
                         "WHERE id = ?", (json.dumps(counters, sort_keys=True, default=str), status, now(),
                                          round(seconds, 3), error, run_id))
    except sqlite3.Error:
        pass  # the disk may be full: the row stays 'running' and the next run's owner check sees it


def is_disk_full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    return isinstance(e, sqlite3.OperationalError) and ("database or disk is full" in str(e)
                                                         or "disk I/O error" in str(e))


@dataclass
class Result:
    """What a stage did: counters, time, status; `.ok` and `.summary()` for the CLI."""

    command: str
    run_id: int
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "running"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if not isinstance(v, (dict, list)))
        return f"{self.command}: {parts or 'nothing to do'} in {self.seconds:.1f}s"


class RunContext:
    def __init__(self, conn: sqlite3.Connection, command: str, run_id: int):
        self.conn, self.command, self.id = conn, command, run_id
        self.counts: dict[str, Any] = {}
        self.t0 = time.monotonic()
        self.status = "running"
        self.error: str | None = None

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def result(self) -> Result:
        return Result(self.command, self.id, dict(self.counts), time.monotonic() - self.t0, self.status, self.error)


@contextmanager
def stage_run(conn: sqlite3.Connection, command: str, settings: Any) -> Iterator[RunContext]:
    """A `runs` row around a stage's work. A WdbError, disk full or an interrupt closes the row with
    its reason and propagates (as DiskFull / Interrupted for the CLI); anything else is a bug and is
    re-raised as it is, the row saying `failed`."""
    run = RunContext(conn, command, start_run(conn, command, settings))
    try:
        yield run
        run.status = "done"
    except (KeyboardInterrupt, Interrupted) as e:
        run.status, run.error = "interrupted", str(e) or "interrupted"
        raise Interrupted(f"{command} interrupted; committed work is kept, run it again to resume") from e
    except BaseException as e:
        run.status = "failed"
        run.error = f"{type(e).__name__}: {e}".splitlines()[0][:500]
        if is_disk_full(e):
            raise DiskFull(f"{command}: disk full ({e}); committed work is kept, free space and run it "
                           "again to resume") from e
        raise
    finally:
        end_run(conn, run.id, run.counts, run.status, time.monotonic() - run.t0, run.error)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread, as SIGINT does (so runs end `interrupted`).

    SIGINT is set to Python's default handler too: a process started with SIGINT ignored (a
    background job of a shell, some CI runners) would otherwise never stop on it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, old_int)


class NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool, total: int | None, desc: str, unit: str = "it"):
    """A tqdm bar on stderr when enabled and stderr is a terminal, else a no-op bar."""
    if not enabled or not sys.stderr.isatty():
        return NullBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=unit == "B", file=sys.stderr, desc=desc, leave=False)


__all__ = ["Result", "RunContext", "end_run", "interruptible", "is_disk_full", "progress_bar",
           "stage_run", "start_run"]
