"""Real archives from ../shared/corpus/warc: values checked against independent sources."""
import json
import sqlite3

from lxml import html as lxml_html

from conftest import WARC, content_rows, corpus, table_counts
from wdb.warc.reader import ArchiveReader, read_record_at


def test_every_archive_ingests(corpus_db, db):
    _, result = corpus_db
    rows = db.execute("SELECT name, status, records FROM archives ORDER BY name").fetchall()
    files = sorted(p for p in WARC.rglob("*") if p.name.endswith((".warc", ".warc.gz", ".arc", ".arc.gz")))
    assert len(rows) == len(files)
    status = {name: st for name, st, _ in rows}
    # the only real file that ends early is the clipped Common Crawl record
    assert status["clipped.warc.gz"] == "partial"
    assert all(st == "done" for name, st in status.items() if name != "clipped.warc.gz")
    assert all(n > 0 for _, _, n in rows)
    assert result.counts["pages"] == db.execute("SELECT count(*) FROM pages").fetchone()[0]


def test_books_toscrape_images_linked_to_archived_jpegs(db):
    rows = db.execute(
        "SELECT m.url, m.alt, ma.mime, ma.width, ma.height, ma.sha256 FROM media m "
        "JOIN pages p ON p.id = m.page_id JOIN archives a ON a.id = p.archive_id "
        "LEFT JOIN media_archived ma ON ma.media_id = m.id "
        "WHERE a.name = 'books.toscrape.warc' AND m.kind = 'image'").fetchall()
    assert len(rows) == 20
    assert all(alt for _, alt, *_ in rows)
    assert {mime for _, _, mime, *_ in rows} == {"image/jpeg"}
    assert all(w and h for *_, w, h, _ in rows)
    assert len({r[5] for r in rows}) == 20
    titles = {alt for _, alt, *_ in rows}
    assert "A Light in the Attic" in titles


def test_archived_pointer_rereads_the_same_bytes(db):
    import hashlib

    from wdb.warc.http import parse_http_response

    row = db.execute(
        "SELECT a.location, x.\"offset\", x.inner, x.sha256 FROM archived_media x "
        "JOIN archives a ON a.id = x.archive_id WHERE a.name = 'books.toscrape.warc' LIMIT 1").fetchone()
    rec = read_record_at(row[0], row[1], row[2])
    body = parse_http_response(rec.block, 1 << 26).body
    assert hashlib.sha256(body).hexdigest() == row[3]


def test_warc_and_arc_of_the_same_crawl_agree(db):
    def items(name):
        return sorted(db.execute(
            "SELECT p.url, m.seq, m.kind, m.url, m.alt, m.pos FROM media m JOIN pages p ON p.id = m.page_id "
            "JOIN archives a ON a.id = p.archive_id WHERE a.location LIKE ?", (f"%aut-tests/{name}",)).fetchall())

    def pages(name):
        return sorted(db.execute(
            "SELECT p.url, p.title, p.text FROM pages p JOIN archives a ON a.id = p.archive_id "
            "WHERE a.location LIKE ?", (f"%aut-tests/{name}",)).fetchall())

    assert len(pages("example.warc.gz")) == 140
    assert pages("example.warc.gz") == pages("example.arc.gz")
    warc_items = items("example.warc.gz")
    assert warc_items == items("example.arc.gz")
    # links to media files, found independently with lxml over the same archive
    import re
    from urllib.parse import urljoin

    from wdb.html.extract import EXT_KIND
    from wdb.warc.http import parse_http_response

    expected = set()
    for r in ArchiveReader(open(corpus("aut-tests/example.warc.gz"), "rb")):
        if r.rec_type != "response":
            continue
        pl = parse_http_response(r.block, 1 << 24)
        if "html" not in pl.headers.get("content-type", "") or not pl.body.strip():
            continue
        for a in lxml_html.fromstring(pl.body).iter("a"):
            m = re.search(r"\.([a-z0-9]{2,5})(?:[?#]|$)", (a.get("href") or "").lower())
            if m and m.group(1) in EXT_KIND:
                expected.add(urljoin(r.headers["warc-target-uri"], a.get("href").strip()))
    linked = {u for u, in db.execute(
        "SELECT m.url FROM media m JOIN pages p ON p.id = m.page_id JOIN archives a ON a.id = p.archive_id "
        "WHERE a.name = 'example.warc.gz' AND m.tag = 'a'")}
    assert linked == expected and len(expected) == 156
    assert sum(1 for i in warc_items if i[2] == "audio") == 137  # .mp3/.shn links on deadlists.com


def test_common_crawl_record_against_wet_and_an_independent_parser(db):
    path = corpus("cc-whirlwind/whirlwind.warc.gz")
    text, url = db.execute(
        "SELECT p.text, p.url FROM pages p JOIN archives a ON a.id = p.archive_id WHERE a.name = 'whirlwind.warc.gz'").fetchone()
    assert url == "https://an.wikipedia.org/wiki/Escopete"
    # Common Crawl's own WET text of this record: its lines reappear in our visible text
    wet = [r for r in ArchiveReader(open(WARC / "cc-whirlwind/whirlwind.warc.wet.gz", "rb")) if r.rec_type == "conversion"]
    lines = [ln.strip() for ln in wet[0].block.decode().splitlines() if len(ln.strip()) > 20]
    flat = " ".join(text.split())
    found = sum(1 for ln in lines if " ".join(ln.split()) in flat)
    assert found / len(lines) > 0.9
    # the WAT beside it describes the same capture (its request record)
    wat = [r for r in ArchiveReader(open(WARC / "cc-whirlwind/whirlwind.warc.wat.gz", "rb")) if r.block[:1] == b"{"]
    meta = json.loads(wat[0].block)
    assert meta["Envelope"]["WARC-Header-Metadata"]["WARC-Target-URI"] == url
    # image links: lxml (libxml2, an independent parser) finds the same <img src> URLs
    rec = [r for r in ArchiveReader(open(path, "rb")) if r.rec_type == "response"][0]
    from wdb.warc.http import parse_http_response

    doc = lxml_html.fromstring(parse_http_response(rec.block, 1 << 24).body)
    doc.make_links_absolute(url)
    expected = [(img.get("src"), (img.get("alt") or "").strip() or None) for img in doc.iter("img")]
    ours = db.execute(
        "SELECT m.url, m.alt FROM media m JOIN pages p ON p.id = m.page_id JOIN archives a ON a.id = p.archive_id "
        "WHERE a.name = 'whirlwind.warc.gz' AND m.tag = 'img' ORDER BY m.seq").fetchall()
    assert [(u, a) for u, a in ours] == expected
    assert len(ours) == 13 and sum(1 for _, a in ours if a) == 7


def test_stats_json(corpus_db):
    from click.testing import CliRunner

    from wdb.cli import cli

    res = CliRunner().invoke(cli, ["stats", str(corpus_db[0]), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    conn = sqlite3.connect(corpus_db[0])
    assert s["pages"] == conn.execute("SELECT count(*) FROM pages").fetchone()[0] > 400
    assert s["images_with_alt"] == conn.execute("SELECT count(*) FROM media WHERE kind='image' AND alt IS NOT NULL").fetchone()[0]
    assert s["archived_media_records"] >= 150
    assert s["alt_matches"] > 100 and s["audio"] > 100 and s["video"] > 0 and s["embeds"] > 0
    for key in ("images", "embeds", "errors"):
        assert key in s


def test_reingest_adds_nothing(corpus_db, tmp_path):
    from wdb.db import open_db
    from wdb.ingest import ingest

    conn = open_db(corpus_db[0])
    before = table_counts(conn)
    rows = content_rows(conn)
    res = ingest(conn, [str(WARC)], workers=1, progress=False, quiet=True)
    assert len(res.skipped) == before["archives"]
    assert table_counts(conn) == before
    assert content_rows(conn) == rows


def test_alt_matches_point_at_the_alt_text(db):
    rows = db.execute(
        "SELECT m.alt, x.kind, substr(p.text, x.start + 1, x.\"end\" - x.start), x.side, x.start, m.pos "
        "FROM alt_matches x JOIN media m ON m.id = x.media_id JOIN pages p ON p.id = m.page_id").fetchall()
    assert len(rows) > 100
    kinds = {r[1] for r in rows}
    assert {"exact", "normalised"} <= kinds
    for alt, kind, span, side, start, pos in rows:
        assert (start < pos) if side == "before" else (start >= pos)
        if kind == "exact":
            assert span == alt
        elif kind == "normalised":
            norm = lambda s: " ".join("".join(ch.lower() if ch.isalnum() else " " for ch in s).split())
            assert norm(span) == norm(alt)


def test_context_view_returns_windows(db):
    rows = db.execute("SELECT text_before, text_after FROM media_context WHERE kind = 'image' LIMIT 500").fetchall()
    assert rows
    assert max(len(b.split()) for b, _ in rows) == 256
    assert all(len(b.split()) <= 257 and len(a.split()) <= 257 for b, a in rows)


def test_full_text_search(db):
    n = db.execute("SELECT count(*) FROM media_fts WHERE media_fts MATCH 'attic'").fetchone()[0]
    assert n >= 1
    n = db.execute("SELECT count(*) FROM pages_fts WHERE pages_fts MATCH 'Escopete'").fetchone()[0]
    assert n == 1


def test_query_command_streams_rows(corpus_db):
    import csv
    import io

    from click.testing import CliRunner

    from wdb.cli import cli

    path = str(corpus_db[0])
    res = CliRunner().invoke(cli, ["query", path, "alt_pairs", "-p", "min_words", "4", "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert rows and all(len(r["alt_text"].split()) >= 4 for r in rows)
    res = CliRunner().invoke(cli, ["query", path, "media_url_counts", "-p", "kind", "audio", "--json"])
    urls = json.loads(res.output)
    assert len({u["url"] for u in urls}) == len(urls) > 100
    res = CliRunner().invoke(cli, ["query", path, "domains", "--nl"])
    doms = [json.loads(line) for line in res.output.splitlines()]
    books = [d for d in doms if d["domain"] == "books.toscrape.com"][0]
    assert (books["pages"], books["images"], books["images_with_alt"]) == (1, 20, 20)
    res = CliRunner().invoke(cli, ["query", path, "alt_pairs"])
    assert res.exit_code == 2 and "-p min_words" in res.output
    res = CliRunner().invoke(cli, ["query", path, "nope"])
    assert res.exit_code == 2 and "known: alt_in_context" in res.output


def test_every_query_file_has_headers_and_runs(db):
    from wdb.db import query as queries

    values = {"min_words": "3", "min_score": "0.6", "kind": "image", "min_images": "3", "max_images": "5",
              "min_confidence": "0.5"}
    for q in queries.all_queries():
        assert q.title != q.name and q.description, q.name
        cols, rows = queries.run(db, q, {p: values[p] for p in q.params})
        assert list(rows), q.name


def test_query_files_run_on_the_real_corpus(db):
    from conftest import ROOT

    sql = (ROOT / "wdb" / "db" / "queries" / "alt_pairs.sql").read_text()
    assert sql.startswith("-- title:")
    rows = db.execute(sql, {"min_words": 3}).fetchall()
    assert rows and all(len(alt.split()) >= 3 for _, _, alt, _, _ in rows)
    assert any(alt == "A Light in the Attic" for _, _, alt, _, _ in rows)
    fewer = db.execute(sql, {"min_words": 5}).fetchall()
    assert 0 < len(fewer) < len(rows)
