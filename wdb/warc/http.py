"""Split an archived HTTP response into status, headers and a decoded, size-capped payload."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .inflate import zlib

MAX_HTTP_HEADER = 1 << 16
_CHUNK_START = re.compile(rb"[0-9a-fA-F]{1,8}[ \t]*(?:;[^\r\n]*)?\r?\n")


@dataclass
class Payload:
    status: int | None
    headers: dict[str, str]
    body: bytes
    problems: list[str] = field(default_factory=list)
    capped: bool = False


def parse_http_response(block: bytes, cap: int, complete: bool = True, html_cap: int | None = None) -> Payload:
    """Parse an HTTP/1.x response block; de-chunk and decode Content-Encoding with a cap.

    `complete` is False when the block is known to be short or capped (chunk framing then may end
    early without that being an error of its own).
    """
    problems: list[str] = []
    end = block.find(b"\r\n\r\n", 0, MAX_HTTP_HEADER)
    sep = 4
    if end < 0:
        end = block.find(b"\n\n", 0, MAX_HTTP_HEADER)
        sep = 2
    if end < 0 or not block.startswith(b"HTTP/"):
        return Payload(None, {}, block, ["no HTTP header in response record"])
    head = block[:end].split(b"\n")
    status = None
    parts = head[0].split(None, 2)
    if len(parts) >= 2 and parts[1][:3].isdigit():
        status = int(parts[1][:3])
    headers: dict[str, str] = {}
    for line in head[1:]:
        k, s, v = line.partition(b":")
        if s:
            key = k.strip().decode("latin-1").lower()
            val = v.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
    body = block[end + sep:]
    if html_cap is not None and "html" in headers.get("content-type", "").lower():
        cap = html_cap
    te = headers.get("transfer-encoding", "").lower()
    if "chunked" in te and _CHUNK_START.match(body):
        dechunked, ok = dechunk(body)
        if ok or not complete:
            body = dechunked
        else:
            problems.append("invalid chunked encoding; raw body kept")
    # many archivers store the decoded body but keep the Transfer-/Content-Encoding headers
    ce = headers.get("content-encoding", "").lower().strip()
    capped = False
    if ce in ("gzip", "x-gzip") and body[:2] != b"\x1f\x8b":
        ce = ""  # already decoded by the archiver
    if ce and ce not in ("identity", "none"):
        try:
            body, capped = decode_content(body, ce, cap)
        except Exception as e:  # noqa: BLE001 -- any codec failure is reported, never raised
            problems.append(f"cannot decode Content-Encoding {ce}: {type(e).__name__}: {e}")
    if len(body) > cap:
        body, capped = body[:cap], True
    if capped:
        problems.append(f"payload capped at {cap} bytes")
    return Payload(status, headers, body, problems, capped)


def dechunk(body: bytes) -> tuple[bytes | None, bool]:
    """Undo Transfer-Encoding: chunked. Returns (bytes, valid)."""
    out = []
    i = 0
    n = len(body)
    while i < n:
        j = body.find(b"\n", i)
        if j < 0:
            return b"".join(out), False
        size_s = body[i:j].split(b";", 1)[0].strip()
        try:
            size = int(size_s, 16)
        except ValueError:
            return b"".join(out), False
        if size == 0:
            return b"".join(out), True
        start = j + 1
        out.append(body[start:start + size])
        if start + size > n:
            return b"".join(out), False
        i = start + size
        if body[i:i + 2] == b"\r\n":
            i += 2
        elif body[i:i + 1] == b"\n":
            i += 1
    return b"".join(out), False


def decode_content(body: bytes, encoding: str, cap: int) -> tuple[bytes, bool]:
    """Decode gzip/deflate/br bodies, never producing more than cap bytes (bomb-safe)."""
    out = body
    for enc in [e.strip() for e in encoding.split(",")][::-1]:
        if enc in ("gzip", "x-gzip"):
            d = zlib.decompressobj(47)  # gzip or zlib header
        elif enc == "deflate":
            d = zlib.decompressobj(15)
            if out[:1] and (out[0] & 0x0F) != 8:
                d = zlib.decompressobj(-15)  # raw deflate, as some servers send
        elif enc == "br":
            import brotli

            b = brotli.Decompressor()
            res = b.process(out, output_buffer_limit=cap + 1) if _brotli_has_limit() else b.process(out)
            return (res[:cap], True) if len(res) > cap else (res, False)
        elif enc in ("identity", ""):
            continue
        else:
            raise ValueError(f"unknown encoding {enc!r}")
        res = d.decompress(out, cap + 1)
        if len(res) > cap:
            return res[:cap], True
        out = res
    return out, False


_HAS_LIMIT: bool | None = None


def _brotli_has_limit() -> bool:
    global _HAS_LIMIT
    if _HAS_LIMIT is None:
        import brotli

        try:
            brotli.Decompressor().process(b"", output_buffer_limit=1)
            _HAS_LIMIT = True
        except TypeError:
            _HAS_LIMIT = False
    return _HAS_LIMIT
