"""`wdb fetch`: image bytes for every image URL, from the ingested archives first, then the web."""
from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..db import now, side_dir, transaction
from ..errors import BadParameter
from ..stage import Result, stage_run
from ..warc.payload import read_payload
from .download import MAX_RETRY_AFTER, fetch as download
from .guard import AddressPolicy
from .limits import ByteBudget, HostGate, Stopped
from .probe import DECODE_BUDGET, MAX_DECODE_BYTES, MAX_PIXELS, ImageProblem, probe
from .warcwrite import FetchWarc

BATCH = 64
FAILED = ("http_error", "timeout", "dns", "connection", "too_large", "bomb", "undecodable", "robots", "bad_reply",
          "bad_url", "refused_address", "error")


@dataclass
class FetchSettings:
    concurrency: int = 16
    timeout: float = 10.0
    retries: int = 2
    max_redirects: int = 5
    max_bytes: int = 20 << 20
    max_pixels: int = MAX_PIXELS
    retry_failed: bool = False
    statuses: tuple[str, ...] = FAILED  # with retry_failed: which failures to retry
    limit: int | None = None
    per_host: int = 4  # requests in flight to one host at once
    allow_private: tuple[str, ...] = ()  # networks (CIDR or address) fetched although not public
    deadline: float | None = None  # wall-clock seconds for one URL, redirects included (None: 4 x timeout)
    max_decode_bytes: int = MAX_DECODE_BYTES  # per image
    decode_budget: int = DECODE_BUDGET  # decode memory of all threads together
    max_retry_after: float = MAX_RETRY_AFTER  # longest Retry-After waited for
    archived_only: bool = False  # no web requests: URLs the archives lack stay pending (no row)


COLUMNS = ("url_key, url, status, source, http_status, attempts, error, location, \"offset\", length, inner, "
           "mime, bytes, width, height, frames, sha256, phash, fetched_at")


def _row(key, url, status, source=None, http_status=None, attempts=0, error=None, location=None, offset=None,
         length=None, inner=0, info=None, size=None) -> tuple:
    return (key, url, status, source, http_status, attempts, error, location, offset, length, inner,
            info.mime if info else None, size, info.width if info else None, info.height if info else None,
            info.frames if info else None, info.sha256 if info else None, info.phash if info else None, now())


def pending(conn: sqlite3.Connection, s: FetchSettings) -> list[tuple[str, str]]:
    """(url_key, url) of image URLs without bytes yet (or failed ones, with retry_failed)."""
    sql = ("SELECT m.url_key, min(m.url) FROM media m LEFT JOIN images i ON i.url_key = m.url_key "
           "WHERE m.kind = 'image' AND (i.url_key IS NULL")
    args: list = []
    if s.retry_failed:
        sql += f" OR i.status IN ({','.join('?' * len(s.statuses))})"
        args.extend(s.statuses)
    sql += ") GROUP BY m.url_key ORDER BY min(m.id)"
    rows = conn.execute(sql, args).fetchall()
    return rows[: s.limit] if s.limit is not None else rows


def _from_archive(conn, key: str, url: str, s: FetchSettings, budget: ByteBudget | None = None):
    rec = conn.execute(
        "SELECT a.location, x.\"offset\", x.length, x.inner, x.http_status FROM archived_answers x "
        "JOIN archives a ON a.id = x.archive_id WHERE x.url_key = ? AND x.kind = 'image' ORDER BY x.id LIMIT 1",
        (key,)).fetchone()
    if rec is None:
        return None
    loc, off, length, inner, code = rec
    try:
        body, capped = read_payload(loc, off, length, inner, s.max_bytes)
        if capped:
            return _row(key, url, "too_large", "archive", code, 0, "archived payload over the byte cap", loc, off, length, inner)
        info = probe(body, s.max_pixels, max_decode_bytes=s.max_decode_bytes, budget=budget)
    except ImageProblem as e:
        return _row(key, url, e.status, "archive", code, 0, str(e), loc, off, length, inner)
    except (OSError, ValueError) as e:
        return None if "does not serve" in str(e) else _row(key, url, "undecodable", "archive", code, 0, str(e))
    return _row(key, url, "ok", "archive", code, 0, None, loc, off, length, inner, info, len(body))


@dataclass
class _Shared:
    """What the fetch threads share for one run."""

    stop: threading.Event
    policy: AddressPolicy
    gate: HostGate
    budget: ByteBudget


def _from_web(key: str, url: str, s: FetchSettings, sh: _Shared):
    """(row, download) for one URL; every failure is a row (Stopped propagates: the URL stays pending)."""
    try:
        d = download(url, s.timeout, s.max_bytes, s.max_redirects, s.retries, policy=sh.policy, stop=sh.stop,
                     gate=sh.gate, deadline=s.deadline, max_retry_after=s.max_retry_after)
        if d.status != "ok":
            return _row(key, url, d.status, "web", d.http_status, d.attempts, d.error), None
        try:
            info = probe(d.body, s.max_pixels, max_decode_bytes=s.max_decode_bytes, budget=sh.budget)
        except ImageProblem as e:
            return _row(key, url, e.status, "web", d.http_status, d.attempts, str(e)), None
    except Stopped:
        raise
    except Exception as e:  # noqa: BLE001 -- a bug met on one URL must not end the run; the row says what
        return _row(key, url, "error", "web", None, 1, f"unexpected {type(e).__name__}: {e}"[:300]), None
    return _row(key, url, "ok", "web", d.http_status, d.attempts, None, info=info, size=len(d.body)), d


def _by_host(todo: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Round-robin over hosts, so the per-host limit rarely leaves a thread waiting."""
    queues: OrderedDict[str, list] = OrderedDict()
    for item in todo:
        try:
            host = urlsplit(item[1]).hostname or ""
        except ValueError:
            host = ""
        queues.setdefault(host, []).append(item)
    out: list[tuple[str, str]] = []
    lists = [q[::-1] for q in queues.values()]
    while lists:
        out.extend(q.pop() for q in lists)
        lists = [q for q in lists if q]
    return out


def fetch(conn: sqlite3.Connection, s: FetchSettings | None = None, log=sys.stderr, progress: bool = True) -> Result:
    """The `wdb fetch` stage: pending image URLs fetched, a runs row with the counts per status."""
    s = s or FetchSettings()
    with stage_run(conn, "fetch", s) as run:
        run.counts.update(_fetch_images(conn, s, log, progress))
    return run.result()


def _fetch_images(conn: sqlite3.Connection, s: FetchSettings, log, progress: bool) -> dict:
    """Fetch pending image URLs into the database's side folder; returns counts per status."""
    try:
        policy = AddressPolicy(s.allow_private)
    except ValueError as e:
        raise BadParameter(str(e)) from e
    todo = pending(conn, s)
    counts: dict[str, int] = {}
    rows: list[tuple] = []
    warc = FetchWarc(side_dir(conn, "fetch"))
    t0 = time.monotonic()
    bar = None
    if progress and log is sys.stderr and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="img", file=sys.stderr, desc="fetch", leave=False)

    stop = threading.Event()
    sh = _Shared(stop, policy, HostGate(s.per_host, stop), ByteBudget(s.decode_budget, stop))

    def flush() -> None:
        if not rows:
            return
        warc.flush()  # the bytes are durable before the database points at them
        if conn.in_transaction:  # an interrupt inside an earlier flush
            conn.execute("ROLLBACK")
        with transaction(conn):
            conn.executemany(f"INSERT OR REPLACE INTO images ({COLUMNS}) VALUES ({','.join('?' * 19)})", rows)
        rows.clear()

    def done(row: tuple) -> None:
        counts[row[2]] = counts.get(row[2], 0) + 1
        rows.append(row)
        if bar is not None:
            bar.update(1)
        if len(rows) >= BATCH:
            flush()

    def finished(fut) -> None:
        row, d = fut.result()
        if d is not None:  # written from this thread only: one writer for the WARC
            path, off, length = warc.write(d.final_url or d.url, d.request, f"HTTP/1.1 {d.http_status} OK",
                                           d.headers, d.body)
            row = row[:7] + (path, off, length) + row[10:]
        done(row)

    pool = ThreadPoolExecutor(max_workers=max(1, s.concurrency))
    running: set = set()
    try:
        web = []
        for key, url in todo:  # archive first: this beats link rot
            row = _from_archive(conn, key, url, s, sh.budget)
            if row is None:
                web.append((key, url))
            else:
                done(row)
        flush()
        if s.archived_only:
            if web:
                counts["not_archived"] = len(web)
            web = []
        queue = iter(_by_host(web))
        window = 2 * max(1, s.concurrency)  # futures in flight: memory stays flat however many URLs
        while True:
            for key, url in queue:
                running.add(pool.submit(_from_web, key, url, s, sh))
                if len(running) >= window:
                    break
            if not running:
                break
            for fut in wait(running, return_when=FIRST_COMPLETED).done:
                finished(fut)
                running.discard(fut)  # after: an interrupt in between leaves it to the harvest below
        flush()
    except BaseException:
        # SIGINT/SIGTERM (KeyboardInterrupt) or an error: stop the threads at their next read, drop
        # what has not started, keep what finished, and propagate at once (no draining the pool)
        stop.set()
        for fut in running:
            fut.cancel()
        try:
            for fut in running:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    finished(fut)
            flush()
        except Exception:  # noqa: BLE001 -- the first error is the one to report
            pass
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        warc.close()
        if bar is not None:
            bar.close()
    counts["seconds"] = round(time.monotonic() - t0, 2)
    return counts
