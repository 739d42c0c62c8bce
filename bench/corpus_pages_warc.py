"""Wrap the 129 real pages of ../shared/corpus/pages/ into a WARC (one site per page folder).

    python bench/corpus_pages_warc.py OUT.warc.gz
"""
from __future__ import annotations

import gzip
import sys
import uuid
from pathlib import Path

PAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "pages" / "readability" / "test-pages"


def write(out: Path, pages: Path = PAGES) -> int:
    n = 0
    with open(out, "wb") as f:
        for src in sorted(pages.glob("*/source.html")):
            name = src.parent.name
            url = f"https://{name}.example.org/article.html"
            body = src.read_bytes()
            block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
            head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{uuid.UUID(int=n)}>\r\n"
                    f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Target-URI: {url}\r\n"
                    f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n")
            f.write(gzip.compress(head.encode() + block + b"\r\n\r\n", 6))
            n += 1
    return n


if __name__ == "__main__":
    print(write(Path(sys.argv[1])), "pages")
