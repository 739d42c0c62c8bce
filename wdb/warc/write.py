"""Write WARC records (one gzip member each), as wdb's own WARCs (fetched and generated images) and the
benchmarks need."""
from __future__ import annotations

import gzip
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path


def warc_record(rtype: str, url: str | None, block: bytes, content_type: str, date: str = "2024-01-01T00:00:00Z",
                extra: dict[str, str] | None = None, content_length: int | None = None) -> bytes:
    """One uncompressed WARC/1.0 record. content_length overrides the true length (for tests)."""
    head = ["WARC/1.0", f"WARC-Type: {rtype}", f"WARC-Record-ID: <urn:uuid:{uuid.uuid4()}>", f"WARC-Date: {date}"]
    if url:
        head.append(f"WARC-Target-URI: {url}")
    head.append(f"Content-Type: {content_type}")
    head.extend(f"{k}: {v}" for k, v in (extra or {}).items())
    head.append(f"Content-Length: {len(block) if content_length is None else content_length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + block + b"\r\n\r\n"


def gz(record: bytes, level: int = 6) -> bytes:
    """The record as its own gzip member, as Common Crawl writes them."""
    return gzip.compress(record, level)


HTTP_RESPONSE = "application/http; msgtype=response"
HTTP_REQUEST = "application/http; msgtype=request"


ROTATE_BYTES = 1 << 30


def warc_date() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class OwnWarc:
    """Appends records to PREFIX-NNNNN.warc.gz in one of the database's side folders (wdb.db.side_dir);
    a new file past ROTATE_BYTES. Each append is whole or cut back, so the file never holds half a
    record; records whose rows were never committed (a killed run) stay unreferenced."""

    prefix = "own"

    def __init__(self, folder: str | Path):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        width = len(self.prefix) + 1
        existing = sorted(self.dir.glob(f"{self.prefix}-*.warc.gz"))
        self.n = int(existing[-1].name[width:width + 5]) if existing else 0
        self.f = None
        self._open()

    def _open(self) -> None:
        path = self.dir / f"{self.prefix}-{self.n:05d}.warc.gz"
        if path.exists() and path.stat().st_size >= ROTATE_BYTES:
            self.n += 1
            path = self.dir / f"{self.prefix}-{self.n:05d}.warc.gz"
        self.path = path
        self.f = open(path, "ab", buffering=0)  # raw: a failed write can be cut back exactly

    def append(self, data: bytes) -> int:
        """Write data (whole gzip members) at the end; its offset. An interrupt or a full disk mid-write
        cuts the file back to where it was (a request without its response, a torn member, never)."""
        if self.f.tell() >= ROTATE_BYTES:
            self.f.close()
            self.n += 1
            self._open()
        start = self.f.tell()
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                done += self.f.write(view[done:]) or 0
        except BaseException:
            os.ftruncate(self.f.fileno(), start)
            self.f.seek(start)
            raise
        return start

    def flush(self) -> None:
        """Make what was written durable before the database points at it."""
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        if self.f:
            self.f.close()
            self.f = None
