"""Per-page costs of the extraction and of the writer, on the 129 real pages, measured in one run.

    python bench/extract_bench.py
    python bench/extract_bench.py --regions   # only the page-region tables (a few seconds)

Prints, per page (CPU time): the lexbor scan against the native scan; alt matching with the
per-window matcher (find_alt) against the page-token matcher (find_alt_page), over the real alts
and synthetic ones (a phrase of the window, upper-cased, reversed, with a foreign word), with the
number of cases and of differences; and the writer on a growing database, with and without the
full-text indexes and the URL lookup indexes that `wdb index` builds after ingest.

--regions prints the media items by page region on the corpus (the 129 pages and every HTML response
of the real archives), and how the images that readability keeps in each page's article body
(its expected.html, made against http://fakehost/test/page.html) are labelled.
"""
from __future__ import annotations

import io
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT.parent / "shared" / "corpus" / "pages" / "readability" / "test-pages"
sys.path.insert(0, str(ROOT))


def per_page(fn, n: int, reps: int = 5) -> float:
    """CPU milliseconds of fn() per one of its n units."""
    t = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t) / reps / n * 1000


def scans(htmls: list[str]) -> None:
    from wdb.html.extract import scan_lexbor, scan_native

    lex = per_page(lambda: [scan_lexbor(h, 2_000_000) for h in htmls], len(htmls))
    nat = per_page(lambda: [scan_native(h, 2_000_000) for h in htmls], len(htmls))
    print(f"scan, lexbor path (parse, selectors, markers, text, assembly): {lex:.2f} ms a page")
    print(f"scan, native:                                                  {nat:.2f} ms a page ({lex / nat:.1f}x)")


def alt_cases(htmls: list[str]) -> list[tuple]:
    from wdb.context import windows
    from wdb.html.extract import extract

    cases = []
    for h in htmls:
        page = extract(h, "https://example.org/a/page.html")
        items = [it for it in page.items if it.pos is not None]
        spans = windows(page.text, [it.pos for it in items], 256) if items else []
        rnd = random.Random(len(page.text))
        words = page.text.split()
        for it, (lo, hi) in zip(items, spans):
            alts = [it.alt] if it.alt else []
            if len(words) > 10:
                i = rnd.randrange(len(words) - 6)
                phrase = words[i:i + rnd.randrange(1, 6)]
                alts += [" ".join(phrase), " ".join(phrase).upper(), " ".join(phrase[::-1]),
                         " ".join(phrase + ["zzqx"])]
            cases += [(page.text, a, lo, it.pos, hi) for a in alts]
    return cases


def alt_matching(htmls: list[str]) -> None:
    from wdb.context import PageTokens, find_alt, find_alt_page

    cases = alt_cases(htmls)

    def new():
        tokens: dict[int, PageTokens] = {}  # one per page text, as ingest makes it
        out = []
        for text, *rest in cases:
            tk = tokens.get(id(text))
            if tk is None:
                tk = tokens[id(text)] = PageTokens(text)
            out.append(find_alt_page(tk, *rest))
        return out

    old_res, new_res = [find_alt(*c) for c in cases], new()
    diffs = sum(1 for a, b in zip(old_res, new_res) if a != b)
    old_t = per_page(lambda: [find_alt(*c) for c in cases], len(cases), 3) * 1000
    new_t = per_page(new, len(cases), 3) * 1000
    print(f"alt matching: {len(cases)} alt/window cases, {diffs} differences; per window {old_t:.0f} µs a "
          f"case, over page tokens {new_t:.0f} µs a case ({old_t / new_t:.1f}x)")


def writer(bodies: list[bytes]) -> None:
    from wdb.db import open_db
    from wdb.db.indexes import DEFERRED, FULL_TEXT
    from wdb.ingest.chunk import Chunk, Progress
    from wdb.ingest.extract_record import Batch, Settings, process_record
    from wdb.ingest.store import Writer
    from wdb.warc.reader import ArchiveReader
    from wdb.warc.write import warc_record

    buf = io.BytesIO()
    for i, body in enumerate(bodies):
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
        buf.write(warc_record("response", f"https://site.example.org/p/{i}.html", head.encode() + body,
                              "application/http; msgtype=response", "2024-05-18T01:58:10Z"))
    batch = Batch()
    for rec in ArchiveReader(io.BytesIO(buf.getvalue())):
        process_record(rec, batch, Settings())
    n = len(batch.pages)
    print(f"writer, ms a page for batches of the {n} pages, on a database growing to about 330 MB:")
    for label, with_fts, with_urls in (("as ingest writes (no FTS, no URL indexes)", False, False),
                                       ("with the URL lookup indexes", False, True),
                                       ("with the full-text indexes, in each batch", True, False)):
        with tempfile.TemporaryDirectory() as d:
            conn = open_db(Path(d) / "w.db")
            if with_urls:
                for _, sql in DEFERRED:
                    conn.execute(sql)
            conn.execute("INSERT INTO runs (command, params, started_at) VALUES ('bench', '{}', 'now')")
            conn.execute("INSERT INTO archives (id, location, identity, name, size, status) "
                         "VALUES (1, 'x', 'x', 'x', 1, 'running')")
            conn.execute("INSERT INTO archive_chunks (archive_id, start, pos, skip, status) VALUES (1, 0, 0, 0, 'pending')")
            w = Writer(conn, 1, quiet=True)
            chunk = Chunk(1, "x", False, 0, None, 0, 0)
            figures = []
            for _ in range(4):
                t = time.process_time()
                for _ in range(20):
                    w.write(chunk, Progress(batch, (0, 0), 0, False))
                    if with_fts:
                        with conn:
                            for fts, table, cols in FULL_TEXT:
                                names = ", ".join(cols)
                                conn.execute(f"INSERT INTO {fts} (rowid, {names}) SELECT id, {names} FROM {table} "
                                             f"WHERE id > (SELECT coalesce(max(id), 0) FROM {fts}_docsize)")
                figures.append((time.process_time() - t) / 20 / n * 1000)
            conn.close()
        print(f"  {label:45s} " + "  ".join(f"{f:.2f}" for f in figures) + "  (each of 4 quarters)")


REGIONS = ("main", "header", "nav", "footer", "aside", "form", "menu", "unknown")


def regions(sources: list[Path]) -> None:
    from collections import Counter

    from selectolax.lexbor import LexborHTMLParser

    from wdb.html.charset import decode_html
    from wdb.html.extract import extract
    from wdb.html.urls import resolve

    sys.path.insert(0, str(ROOT / "tests"))
    from test_lazy_urls import _corpus_htmls

    base = "http://fakehost/test/page.html"
    table: dict[str, Counter] = {}
    chars: dict[str, Counter] = {}
    for name, html in _corpus_htmls():
        group = "129 readability pages" if "@" not in name else "440 archive responses"
        page = extract(html, base)
        for it in page.items:
            if it.region:
                table.setdefault(group, Counter())[(it.kind, it.region)] += 1
        ends = [s for s, _ in page.regions[1:]] + [len(page.text)]
        for (s, r), e in zip(page.regions, ends):
            chars.setdefault(group, Counter())[r] += e - s
    print("\nmedia items by region (og:image, not on the rendered page, left out)")
    print(f"{'corpus':24s} {'kind':6s} " + " ".join(f"{r:>7s}" for r in REGIONS) + "   share main")
    for group, c in table.items():
        for kind in ("image", "embed", "audio", "video"):
            row = [c[(kind, r)] for r in REGIONS]
            if sum(row):
                print(f"{group:24s} {kind:6s} " + " ".join(f"{n:7d}" for n in row) + f"   {row[0] / sum(row):.3f}")
    print("\ncharacters of pages.text by region")
    for group, c in chars.items():
        total = sum(c.values())
        print(f"{group:31s} " + " ".join(f"{c[r]:7d}" for r in REGIONS) + f"   {c['main'] / total:.3f}")
    got: Counter = Counter()
    for p in sources:
        kept = set()
        for n in LexborHTMLParser(p.with_name("expected.html").read_text()).css("img"):
            for v in [n.attributes.get("src") or ""] + (n.attributes.get("srcset") or "").split(","):
                v = v.strip().split(" ")[0]
                if v:
                    kept.add(resolve(base, v) or v)
        for it in extract(decode_html(p.read_bytes(), "text/html")[0], base).items:
            if it.tag == "img" and any(u in kept for _, _, u, _ in it.urls if u):
                got[it.region] += 1
    total = sum(got.values())
    print(f"\nimages inside readability's article bodies: {total}, labelled "
          + ", ".join(f"{r} {n}" for r, n in got.most_common()) + f"; share main {got['main'] / total:.3f}")


def main() -> None:
    from wdb.html.charset import decode_html

    sources = sorted(PAGES.glob("*/source.html"))
    if not sources:
        sys.exit(f"no pages under {PAGES}")
    if "--regions" in sys.argv:
        regions(sources)
        return
    bodies = [p.read_bytes() for p in sources]
    htmls = [decode_html(b, "text/html")[0] for b in bodies]
    scans(htmls)
    alt_matching(htmls)
    writer(bodies)


if __name__ == "__main__":
    main()
