"""`wdb fetch`: image bytes for every image URL, from the ingested archives first, then the web."""
from __future__ import annotations

import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from ..db import now, side_dir
from ..warc.payload import read_payload
from .download import fetch as download
from .probe import MAX_PIXELS, ImageProblem, probe
from .warcwrite import FetchWarc

BATCH = 64
FAILED = ("http_error", "timeout", "dns", "connection", "too_large", "bomb", "undecodable", "robots")


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


def _from_archive(conn, key: str, url: str, s: FetchSettings):
    rec = conn.execute(
        "SELECT a.location, x.\"offset\", x.length, x.inner, x.http_status FROM archived_media x "
        "JOIN archives a ON a.id = x.archive_id WHERE x.url_key = ? AND x.mime LIKE 'image/%' "
        "AND (x.http_status IS NULL OR x.http_status < 300) ORDER BY x.id LIMIT 1", (key,)).fetchone()
    if rec is None:
        return None
    loc, off, length, inner, code = rec
    try:
        body, capped = read_payload(loc, off, length, inner, s.max_bytes)
        if capped:
            return _row(key, url, "too_large", "archive", code, 0, "archived payload over the byte cap", loc, off, length, inner)
        info = probe(body, s.max_pixels)
    except ImageProblem as e:
        return _row(key, url, e.status, "archive", code, 0, str(e), loc, off, length, inner)
    except (OSError, ValueError) as e:
        return None if "does not serve" in str(e) else _row(key, url, "undecodable", "archive", code, 0, str(e))
    return _row(key, url, "ok", "archive", code, 0, None, loc, off, length, inner, info, len(body))


def _from_web(key: str, url: str, s: FetchSettings, warc: FetchWarc):
    d = download(url, s.timeout, s.max_bytes, s.max_redirects, s.retries)
    if d.status != "ok":
        return _row(key, url, d.status, "web", d.http_status, d.attempts, d.error), None
    try:
        info = probe(d.body, s.max_pixels)
    except ImageProblem as e:
        return _row(key, url, e.status, "web", d.http_status, d.attempts, str(e)), None
    return _row(key, url, "ok", "web", d.http_status, d.attempts, None, info=info, size=len(d.body)), d


def fetch_images(conn: sqlite3.Connection, db_path, s: FetchSettings | None = None, log=sys.stderr,
                 progress: bool = True) -> dict:
    """Fetch pending image URLs; returns counts per status."""
    s = s or FetchSettings()
    todo = pending(conn, s)
    counts: dict[str, int] = {}
    rows: list[tuple] = []
    warc = FetchWarc(side_dir(conn, "fetch"))
    t0 = time.monotonic()
    bar = None
    if progress and log is sys.stderr and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="img", file=sys.stderr, desc="fetch", leave=False)

    def flush() -> None:
        if not rows:
            return
        warc.flush()  # the bytes are durable before the database points at them
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT OR REPLACE INTO images ({COLUMNS}) VALUES ({','.join('?' * 19)})", rows)
        conn.execute("COMMIT")
        rows.clear()

    def done(row: tuple) -> None:
        counts[row[2]] = counts.get(row[2], 0) + 1
        rows.append(row)
        if bar is not None:
            bar.update(1)
        if len(rows) >= BATCH:
            flush()

    web = []
    for key, url in todo:  # archive first: this beats link rot
        row = _from_archive(conn, key, url, s)
        if row is None:
            web.append((key, url))
        else:
            done(row)
    flush()
    try:
        with ThreadPoolExecutor(max_workers=max(1, s.concurrency)) as pool:
            futures = [pool.submit(_from_web, key, url, s, warc) for key, url in web]
            for fut in as_completed(futures):
                row, d = fut.result()
                if d is not None:  # written from this thread only: one writer for the WARC
                    path, off, length = warc.write(d.final_url or d.url, d.request, f"HTTP/1.1 {d.http_status} OK",
                                                   d.headers, d.body)
                    row = row[:7] + (path, off, length) + row[10:]
                done(row)
        flush()
    finally:
        warc.close()
        if bar is not None:
            bar.close()
    counts["seconds"] = round(time.monotonic() - t0, 2)
    return counts
