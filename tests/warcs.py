"""Tiny WARC writers for edge-case archives built inside the tests (from real pages)."""
import gzip
import uuid


def record(url: str | None, block: bytes, rtype: str = "response", content_length: int | None = None,
           content_type: str = "application/http; msgtype=response", extra: dict | None = None) -> bytes:
    head = [b"WARC/1.0", f"WARC-Type: {rtype}".encode(), f"WARC-Record-ID: <urn:uuid:{uuid.uuid4()}>".encode(),
            b"WARC-Date: 2024-05-18T01:58:10Z"]
    if url:
        head.append(f"WARC-Target-URI: {url}".encode())
    head.append(f"Content-Type: {content_type}".encode())
    for k, v in (extra or {}).items():
        head.append(f"{k}: {v}".encode())
    n = len(block) if content_length is None else content_length
    head.append(f"Content-Length: {n}".encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + block + b"\r\n\r\n"


def http(body: bytes, content_type: str = "text/html", headers: dict | None = None, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}".encode(), f"Content-Type: {content_type}".encode()]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def gz_members(records: list[bytes]) -> bytes:
    return b"".join(gzip.compress(r) for r in records)


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
