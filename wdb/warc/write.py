"""Write WARC records (one gzip member each), as wdb's own fetch WARCs and the benchmarks need."""
from __future__ import annotations

import gzip
import uuid


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
