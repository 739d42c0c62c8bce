"""Extraction of the 129 real corpus pages against a checked-in summary, so that a faster parser or
a rewrite cannot silently drop items. After a deliberate change of the rules, regenerate with
WDB_UPDATE_SUMMARY=1 and review the diff of tests/data/extraction_summary.json.

Regenerated twice for deliberate rule changes: media elements separate the words around them; and
(issue 12) paragraph breaks, page regions, placeholder src and lazy data-* candidates, JSON and
template values that are not URLs."""
import json
import os
from collections import Counter

import pytest

from conftest import CORPUS, ROOT
from wdb.ingest.extract_record import Batch, Settings, process_record
from wdb.warc.reader import Record

PAGES = CORPUS / "pages" / "readability" / "test-pages"
SUMMARY = ROOT / "tests" / "data" / "extraction_summary.json"


def summarise(name: str, html: bytes) -> dict:
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html
    rec = Record(0, len(block), 0, "warc", {"warc-type": "response",
                 "warc-target-uri": f"https://{name}.example.org/article.html"}, block, len(block), len(block))
    b = Batch()
    process_record(rec, b, Settings())
    kinds = [m[2] for m in b.media]
    return {
        "text_chars": len(b.pages[0][13]),
        "images": kinds.count("image"),
        "images_with_alt": sum(1 for m in b.media if m[2] == "image" and m[6]),
        "figcaptions": sum(1 for m in b.media if m[8]),
        "audio": kinds.count("audio"),
        "video": kinds.count("video"),
        "embeds": kinds.count("embed"),
        "url_attributes": len(b.media_urls),
        "alt_matches": {k: sum(1 for a in b.alt_matches if a[5] == k) for k in ("exact", "normalised", "partial")},
        "paragraph_breaks": b.pages[0][13].count("\n\n"),
        "regions": {r: n for r, n in sorted(Counter(m[14] or "-" for m in b.media).items())},
        "placeholders": {str(k): n for k, n in sorted(Counter(m[15] for m in b.media).items()) if k},
        "text_regions": text_regions(b.pages[0]),
    }


def text_regions(row: tuple) -> dict:
    """Characters of the text by region."""
    text, runs = row[13], json.loads(row[16] or "[]")
    ends = [s for s, _ in runs[1:]] + [len(text)]
    out: Counter = Counter()
    for (s, r), e in zip(runs, ends):
        out[r] += e - s
    return dict(sorted(out.items()))


def current() -> dict:
    return {p.parent.name: summarise(p.parent.name, p.read_bytes()) for p in sorted(PAGES.glob("*/source.html"))}


def test_extraction_matches_checked_in_summary():
    if not PAGES.exists():
        pytest.skip("corpus pages missing")
    got = current()
    if os.environ.get("WDB_UPDATE_SUMMARY"):
        SUMMARY.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SUMMARY.read_text())
    assert len(got) == 129
    diffs = {k: (expected.get(k), v) for k, v in got.items() if expected.get(k) != v}
    assert not diffs, f"{len(diffs)} pages changed, e.g. {next(iter(diffs.items()))}"
    totals = {k: sum(v[k] for v in got.values()) for k in ("images", "images_with_alt", "figcaptions")}
    # sanity bounds from the corpus README (counted there with an independent parser)
    assert 2300 <= totals["images"] <= 2700 and 1000 <= totals["images_with_alt"] <= 1200
    assert totals["figcaptions"] >= 120  # 122 <figure>s with a caption hold media elements
