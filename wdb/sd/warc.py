"""The database's own WARC of generated images: one `resource` record per PNG, one gzip member
each (the writer functions of wdb.warc.write, which wdb fetch's WARCs use too), so generated images
are addressed like archived ones (file, offset, length, sha256) and read back with read_verified."""
from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

from ..warc.write import gz, warc_record

ROTATE_BYTES = 1 << 30


class GeneratedWarc:
    """Appends to generated-NNNNN.warc.gz in `<db>.wdb/sd/`; a new file past 1 GiB. Records whose
    rows were never committed (a killed run) stay in the file unreferenced; nothing points at them."""

    def __init__(self, folder: str | Path):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.dir.glob("generated-*.warc.gz"))
        self.n = int(existing[-1].name[10:15]) if existing else 0
        self.f = None
        self._open()

    def _open(self) -> None:
        path = self.dir / f"generated-{self.n:05d}.warc.gz"
        if path.exists() and path.stat().st_size >= ROTATE_BYTES:
            self.n += 1
            path = self.dir / f"generated-{self.n:05d}.warc.gz"
        self.path = path
        self.f = open(path, "ab")

    def write(self, uri: str, body: bytes, mime: str = "image/png",
              extra: dict[str, str] | None = None) -> tuple[str, int, int, str]:
        """Write one resource record; (path, offset, length, sha256 of the payload)."""
        if self.f.tell() >= ROTATE_BYTES:
            self.f.close()
            self.n += 1
            self._open()
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hashlib.sha256(body).hexdigest()
        head = {"WARC-Payload-Digest": f"sha256:{digest}", **(extra or {})}
        member = gz(warc_record("resource", uri, body, mime, date, head))
        offset = self.f.tell()
        self.f.write(member)
        return str(self.path), offset, len(member), digest

    def flush(self) -> None:
        """Make what was written durable before the database points at it."""
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        if self.f:
            self.f.close()
            self.f = None
