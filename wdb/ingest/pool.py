"""Worker processes that parse chunks, supervised: a crash or a hang costs one record, not the run.

Each worker is a long-lived child with a pipe; it reports the offset of the record it is parsing
in shared memory.  When a worker dies (segfault, out of memory) or stops reporting for
`record_timeout` seconds, the supervisor kills it, reports the record at that offset as failed,
starts a new worker, and re-queues the chunk from its last committed resume point, skipping the
record that failed.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Callable

from .chunk import Chunk, Progress, iter_chunk
from .extract_record import Settings


def _worker_main(conn, offset, stamp, settings: Settings) -> None:
    import gc
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    # parsing allocates many short-lived, acyclic objects: collect the young generation less often
    gc.set_threshold(50_000, 50, 100)
    while True:
        try:
            chunk = conn.recv()
        except EOFError:
            return
        if chunk is None:
            return
        try:
            for prog in iter_chunk(chunk, settings, (offset, stamp)):
                conn.send(("progress", chunk.key, prog))
        except Exception as e:  # noqa: BLE001 -- reported to the supervisor, which records it
            conn.send(("error", chunk.key, f"{type(e).__name__}: {e}"))


@dataclass
class _Worker:
    proc: mp.Process
    conn: object
    offset: object
    stamp: object
    chunk: Chunk | None = None


class Supervisor:
    def __init__(self, workers: int, settings: Settings, record_timeout: float = 300.0):
        self.n = max(1, workers)
        self.settings = settings
        self.timeout = record_timeout
        self.ctx = mp.get_context("spawn")
        self.workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        offset = self.ctx.RawValue("q", -1)
        stamp = self.ctx.RawValue("d", time.monotonic())
        proc = self.ctx.Process(target=_worker_main, args=(child, offset, stamp, self.settings), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent, offset, stamp)

    def run(self, chunks: list[Chunk], on_progress: Callable[[Chunk, Progress], None],
            on_failure: Callable[[Chunk, int | None, str, str], bool]) -> None:
        """Process chunks. on_failure(chunk, offset, kind, message) -> retry the chunk?"""
        if not chunks:
            return
        queue = deque(chunks)
        self.workers = [self._spawn() for _ in range(min(self.n, max(1, len(chunks))))]
        try:
            while queue or any(w.chunk for w in self.workers):
                for w in self.workers:
                    if w.chunk is None and queue:
                        w.chunk = queue.popleft()
                        w.offset.value = -1
                        w.stamp.value = time.monotonic()
                        w.conn.send(w.chunk)
                busy = [w for w in self.workers if w.chunk is not None]
                ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0)
                for i, w in enumerate(self.workers):
                    if w.chunk is None:
                        continue
                    dead = w.proc.sentinel in ready and not w.conn.poll()
                    if w.conn in ready or w.conn.poll():
                        try:
                            while w.conn.poll():
                                kind, _key, payload = w.conn.recv()
                                w.stamp.value = time.monotonic()
                                if kind == "progress":
                                    w.chunk.pos, w.chunk.skip = payload.resume
                                    on_progress(w.chunk, payload)
                                    if payload.final:
                                        w.chunk = None
                                        break
                                else:
                                    w.chunk.attempts += 1
                                    if on_failure(w.chunk, None, "chunk_error", payload):
                                        queue.append(w.chunk)
                                    w.chunk = None
                                    break
                        except (EOFError, OSError):
                            dead = True
                    hung = w.chunk is not None and time.monotonic() - w.stamp.value > self.timeout
                    if w.chunk is not None and (dead or hung or not w.proc.is_alive()):
                        self._replace(i, w, hung, queue, on_failure)
        finally:
            self.close()

    def _replace(self, i, w: _Worker, hung: bool, queue, on_failure) -> None:
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5)
        code = w.proc.exitcode
        off = w.offset.value
        chunk = w.chunk
        if hung:
            msg = f"worker hung for over {self.timeout:.0f}s on the record at offset {off}; killed"
            kind = "worker_hang"
        else:
            msg = f"worker died (exit code {code}) on the record at offset {off}"
            kind = "worker_crash"
        chunk.attempts += 1
        retry = on_failure(chunk, off if off >= 0 else None, kind, msg)
        if off >= 0:
            chunk.skip_offsets.add(off)
        if retry:
            queue.appendleft(chunk)
        w.conn.close()
        self.workers[i] = self._spawn()

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in self.workers:
            w.proc.join(2)
            if w.proc.is_alive():
                w.proc.kill()
        self.workers = []
