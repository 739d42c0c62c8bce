"""wdb's own WARC files for downloaded images: request + response records, one gzip member each,
so downloaded bytes are addressed like archived ones (file, offset, length)."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from ..warc.write import HTTP_REQUEST, HTTP_RESPONSE, gz, warc_record

ROTATE_BYTES = 1 << 30


class FetchWarc:
    """Appends to fetch-NNNNN.warc.gz in the database's own side folder (`<db>.wdb/fetch/`, from
    wdb.db.side_dir); a new file past 1 GiB."""

    def __init__(self, folder: str | Path):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.dir.glob("fetch-*.warc.gz"))
        self.n = int(existing[-1].name[6:11]) if existing else 0
        self.f = None
        self._open()

    def _open(self) -> None:
        path = self.dir / f"fetch-{self.n:05d}.warc.gz"
        if path.exists() and path.stat().st_size >= ROTATE_BYTES:
            self.n += 1
            path = self.dir / f"fetch-{self.n:05d}.warc.gz"
        self.path = path
        self.f = open(path, "ab", buffering=0)  # raw: a failed write can be cut back exactly

    def write(self, url: str, request: bytes, status_line: str, headers: list[tuple[str, str]],
              body: bytes) -> tuple[str, int, int]:
        """Write the exchange; return (path, offset, length) of the response record."""
        if self.f.tell() >= ROTATE_BYTES:
            self.f.close()
            self.n += 1
            self._open()
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        keep = [(k, v) for k, v in headers if k.lower() not in ("transfer-encoding", "content-encoding", "content-length")]
        head = status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in keep) + f"Content-Length: {len(body)}\r\n\r\n"
        req = gz(warc_record("request", url, request, HTTP_REQUEST, date))
        member = gz(warc_record("response", url, head.encode("latin-1", "replace") + body, HTTP_RESPONSE, date))
        start = self.f.tell()
        self._append(req + member, start)
        return str(self.path), start + len(req), len(member)

    def _append(self, data: bytes, start: int) -> None:
        """All of data or nothing: an interrupt or a full disk mid-write cuts the file back to start, so
        the archive never holds half a record (a request without its response, a torn gzip member)."""
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                done += self.f.write(view[done:]) or 0
        except BaseException:
            os.ftruncate(self.f.fileno(), start)
            self.f.seek(start)
            raise

    def flush(self) -> None:
        """Make what was written durable before the database points at it."""
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        if self.f:
            self.f.close()
            self.f = None
