"""Tiny WARC writers for edge-case archives built inside the tests (from real pages)."""
from wdb.warc.write import HTTP_RESPONSE, gz, warc_record


def record(url: str | None, block: bytes, rtype: str = "response", content_length: int | None = None,
           content_type: str = HTTP_RESPONSE, extra: dict | None = None) -> bytes:
    return warc_record(rtype, url, block, content_type, "2024-05-18T01:58:10Z", extra, content_length)


def http(body: bytes, content_type: str = "text/html", headers: dict | None = None, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}".encode(), f"Content-Type: {content_type}".encode()]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def gz_members(records: list[bytes]) -> bytes:
    return b"".join(gz(r) for r in records)


def members(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each gzip member of a per-record .warc.gz."""
    import zlib

    out, i = [], 0
    while i < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[i:])
        n = len(data) - i - len(d.unused_data)
        out.append((i, n))
        i += n
    return out
