"""The database's own WARC of generated images: one `resource` record per PNG, one gzip member
each (wdb.warc.write's OwnWarc, which wdb fetch's WARCs use too), so generated images are addressed
like archived ones (file, offset, length, sha256) and read back with read_verified."""
from __future__ import annotations

import hashlib

from ..warc.write import OwnWarc, gz, warc_date, warc_record


class GeneratedWarc(OwnWarc):
    """Appends to generated-NNNNN.warc.gz in `<db>.wdb/sd/`; a new file past 1 GiB. Records whose
    rows were never committed (a killed run) stay in the file unreferenced; nothing points at them."""

    prefix = "generated"

    def write(self, uri: str, body: bytes, mime: str = "image/png",
              extra: dict[str, str] | None = None) -> tuple[str, int, int, str]:
        """Write one resource record; (path, offset, length, sha256 of the payload)."""
        digest = hashlib.sha256(body).hexdigest()
        head = {"WARC-Payload-Digest": f"sha256:{digest}", **(extra or {})}
        member = gz(warc_record("resource", uri, body, mime, warc_date(), head))
        offset = self.append(member)
        return str(self.path), offset, len(member), digest
