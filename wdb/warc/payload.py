"""Read the payload of an archived record back from its WARC pointer, with a size cap."""
from __future__ import annotations

import urllib.request

from ..inputs import HTTP_TIMEOUT, is_url
from .http import parse_http_response
from .reader import read_record

MAX_SERVE_BYTES = 16 << 20


class RangeNotServed(OSError):
    """An HTTP server answered a Range request with the whole file (or an error)."""


def open_range(location: str, offset: int, length: int | None):
    """A binary stream starting at offset of a local file, or an HTTP Range response for a URL."""
    if is_url(location):
        end = f"{offset + length - 1}" if length else ""
        req = urllib.request.Request(location, headers={"Range": f"bytes={offset}-{end}"})
        f = urllib.request.urlopen(req, timeout=HTTP_TIMEOUT)
        if f.status != 206:
            f.close()
            raise RangeNotServed(f"{location} does not serve byte ranges (HTTP {f.status})")
        return f
    f = open(location, "rb")
    f.seek(offset)
    return f


def read_payload(location: str, offset: int, length: int | None, inner: int = 0,
                 cap: int = MAX_SERVE_BYTES) -> tuple[bytes, bool]:
    """(payload, capped) of the record at (location, offset, inner); location: path or URL."""
    with open_range(location, offset, length) as f:
        rec = read_record(f, offset, inner, max_block=cap + (1 << 16))
    if rec.block.startswith(b"HTTP/"):
        pl = parse_http_response(rec.block, cap)
        return pl.body, pl.capped or rec.capped
    return rec.block[:cap], rec.capped or len(rec.block) > cap


def read_verified(location: str, offset: int, length: int | None, inner: int, sha256: str | None,
                  cap: int = MAX_SERVE_BYTES) -> bytes:
    """The payload through its pointer, checked against the sha256 recorded for it.

    Raises PointerMismatch when the bytes differ (a moved, replaced or foreign file), so a stage
    never scores, serves or exports the wrong bytes.
    """
    import hashlib

    from ..errors import PointerMismatch

    body, capped = read_payload(location, offset, length, inner, cap)
    if capped:
        raise PointerMismatch(f"{location}@{offset}: payload over the {cap}-byte cap")
    if sha256 and hashlib.sha256(body).hexdigest() != sha256:
        raise PointerMismatch(f"{location}@{offset}: bytes do not match their sha256 {sha256[:12]}…")
    return body
