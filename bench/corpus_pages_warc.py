"""Wrap the 129 real pages of ../shared/corpus/pages/ into a WARC (one site per page folder).

    python bench/corpus_pages_warc.py OUT.warc.gz
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from wdb.warc.write import HTTP_RESPONSE, gz, warc_record  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "pages" / "readability" / "test-pages"


def write(out: Path, pages: Path = PAGES) -> int:
    n = 0
    with open(out, "wb") as f:
        for src in sorted(pages.glob("*/source.html")):
            name = src.parent.name
            url = f"https://{name}.example.org/article.html"
            body = src.read_bytes()
            block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
            f.write(gz(warc_record("response", url, block, HTTP_RESPONSE)))
            n += 1
    return n


if __name__ == "__main__":
    print(write(Path(sys.argv[1])), "pages")
