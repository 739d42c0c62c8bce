"""A corpus of damaged archives, built from the real files: every problem is reported, nothing
else is lost, and a bad file never stops the run."""
import gzip

import pytest

from conftest import CORPUS, corpus
from warcs import gz_members, http, members, record
from wdb.db import open_db
from wdb.ingest import ingest
from wdb.ingest.extract_record import Settings


def run(tmp_path, *files, settings=None, name="t.db"):
    conn = open_db(tmp_path / name)
    res = ingest(conn, [str(f) for f in files], workers=0, progress=False, quiet=True, settings=settings)
    return conn, res


def q(conn, sql, *args):
    return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def example():
    return corpus("aut-tests/example.warc.gz").read_bytes()


@pytest.fixture(scope="module")
def clean_pages(tmp_path_factory, example):
    d = tmp_path_factory.mktemp("clean")
    (d / "example.warc.gz").write_bytes(example)
    conn, _ = run(d, d / "example.warc.gz")
    return {r[0] for r in q(conn, "SELECT url || '@' || \"offset\" FROM pages")}


def test_truncated_file_keeps_everything_before_the_cut(tmp_path, example, clean_pages):
    f = tmp_path / "truncated.warc.gz"
    f.write_bytes(example[: len(example) * 6 // 10])
    conn, res = run(tmp_path, f)
    got = {r[0] for r in q(conn, "SELECT url || '@' || \"offset\" FROM pages")}
    assert got < clean_pages and len(got) > 60
    assert q(conn, "SELECT status FROM archives") == [("partial",)]
    kinds = {k for k, in q(conn, "SELECT kind FROM problems")}
    assert "archive" in kinds  # the truncated last member
    assert not res.ok


def test_flipped_bytes_resynchronise_at_the_next_member(tmp_path, example, clean_pages):
    data = bytearray(example)
    mem = members(example)
    hit = mem[len(mem) // 2]
    for k in range(10):  # 10 flipped bytes inside one member's deflate stream
        data[hit[0] + 40 + k * 7] ^= 0xFF
    f = tmp_path / "flipped.warc.gz"
    f.write_bytes(bytes(data))
    conn, _ = run(tmp_path, f)
    got = {r[0] for r in q(conn, "SELECT url || '@' || \"offset\" FROM pages")}
    assert len(clean_pages - got) <= 1 and got <= clean_pages
    probs = q(conn, "SELECT \"offset\", kind, message FROM problems")
    assert any(off == hit[0] and "corrupt gzip member" in msg for off, _, msg in probs)
    assert q(conn, "SELECT status FROM archives") == [("partial",)]


def test_wrong_content_length_in_plain_and_gzip_files(tmp_path):
    page = http(b"<html><body><p>Hello world</p><img src='/a.jpg' alt='x'></body></html>")
    good = record("http://ex.com/good", page)
    too_long = record("http://ex.com/long", page, content_length=len(page) + 500)
    too_short = record("http://ex.com/short", page, content_length=len(page) - 30)
    after = record("http://ex.com/after", page)
    plain = tmp_path / "cl.warc"
    plain.write_bytes(good + too_short + after)
    conn, _ = run(tmp_path, plain, name="p.db")
    urls = [u for u, in q(conn, "SELECT url FROM pages ORDER BY id")]
    assert urls[0] == "http://ex.com/good" and "http://ex.com/after" in urls
    assert q(conn, "SELECT count(*) FROM problems WHERE kind = 'archive'")[0][0] >= 1
    gz = tmp_path / "cl.warc.gz"
    gz.write_bytes(gz_members([good, too_long, too_short, after]))
    conn, _ = run(tmp_path, gz, name="g.db")
    urls = [u for u, in q(conn, "SELECT url FROM pages ORDER BY id")]
    assert urls == ["http://ex.com/good", "http://ex.com/long", "http://ex.com/short", "http://ex.com/after"]
    flags = dict(q(conn, "SELECT url, flags FROM pages"))
    assert flags["http://ex.com/long"] == "short"
    kinds = [k for k, in q(conn, "SELECT kind FROM problems ORDER BY id")]
    assert "short_record" in kinds and "archive" in kinds


def test_empty_and_not_an_archive_fail_alone(tmp_path):
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    text = tmp_path / "notes.warc"
    text.write_bytes((CORPUS / "README.md").read_bytes())
    books = corpus("node-warc-tests/books.toscrape.warc")
    conn, res = run(tmp_path, empty, text, books)
    st = dict(q(conn, "SELECT name, status FROM archives"))
    assert st == {"empty.warc.gz": "failed", "notes.warc": "failed", "books.toscrape.warc": "done"}
    assert q(conn, "SELECT error FROM archives WHERE name = 'empty.warc.gz'")[0][0].startswith("no records")
    assert q(conn, "SELECT count(*) FROM pages")[0][0] == 1
    assert not res.ok


def test_whole_file_gzip_reads_like_the_plain_file(tmp_path):
    books = corpus("node-warc-tests/books.toscrape.warc")
    whole = tmp_path / "books-whole.warc.gz"
    whole.write_bytes(gzip.compress(books.read_bytes()))
    conn, _ = run(tmp_path, whole, books)
    per = {}
    for name in ("books-whole.warc.gz", "books.toscrape.warc"):
        per[name] = q(conn, "SELECT m.url, m.alt, ma.sha256 FROM media m JOIN pages p ON p.id = m.page_id "
                            "JOIN archives a ON a.id = p.archive_id LEFT JOIN archived_media ma "
                            "ON ma.url_key = m.url_key AND ma.archive_id = a.id WHERE a.name = ? ORDER BY m.seq", name)
    assert per["books-whole.warc.gz"] == per["books.toscrape.warc"]
    assert len(per["books.toscrape.warc"]) == 20 and all(r[2] for r in per["books.toscrape.warc"])
    # records inside one big member are addressed by (member offset, inner offset)
    inner = q(conn, "SELECT count(*) FROM archived_media x JOIN archives a ON a.id = x.archive_id "
                    "WHERE a.name = 'books-whole.warc.gz' AND x.inner > 0")[0][0]
    assert inner == 20


def test_record_without_target_uri_and_odd_records(tmp_path):
    page = http(b"<html><body>text</body></html>")
    f = tmp_path / "odd.warc.gz"
    f.write_bytes(gz_members([record(None, page), record("http://ex.com/ok", page),
                              record("dns:ex.com", b"1.2.3.4", rtype="response")]))
    conn, _ = run(tmp_path, f)
    assert q(conn, "SELECT url FROM pages") == [("http://ex.com/ok",)]
    assert q(conn, "SELECT kind FROM problems") == [("no_target_uri",)]


def test_huge_page_is_capped_and_flagged(tmp_path):
    real = (CORPUS / "pages/readability/test-pages/wikipedia/source.html").read_bytes()
    body = real + b"<p>" + b"padding words " * 500_000 + b"</p><img src='/late.jpg' alt='late'>"
    f = tmp_path / "huge.warc.gz"
    f.write_bytes(gz_members([record("http://ex.com/huge", http(body)), record("http://ex.com/next", http(real))]))
    conn, _ = run(tmp_path, f, settings=Settings(max_page_bytes=2 << 20))
    rows = dict(q(conn, "SELECT url, flags FROM pages"))
    assert rows == {"http://ex.com/huge": "capped", "http://ex.com/next": None}
    probs = q(conn, "SELECT url, message FROM problems")
    assert len(probs) == 1 and probs[0][0] == "http://ex.com/huge" and "capped at 2097152 bytes" in probs[0][1]
    n_real = q(conn, "SELECT count(*) FROM media m JOIN pages p ON p.id = m.page_id WHERE p.url = 'http://ex.com/next'")[0][0]
    n_huge = q(conn, "SELECT count(*) FROM media m JOIN pages p ON p.id = m.page_id WHERE p.url = 'http://ex.com/huge'")[0][0]
    assert n_huge == n_real > 10  # everything before the cap is kept


def test_deep_nesting_and_huge_text_nodes_lose_nothing(tmp_path):
    deep = b"<html><body>" + b"<div>" * 5000 + b"deep text <img src='/deep.jpg' alt='deep image'>" + \
        b"</div>" * 5000 + b"<p>after the deep part</p><img src='/tail.jpg'></body></html>"
    big = b"<html><body><p>" + b"word " * 2_500_000 + b"</p><img src='/after-big.jpg'><p>tail</p></body></html>"
    f = tmp_path / "deep.warc.gz"
    f.write_bytes(gz_members([record("http://ex.com/deep", http(deep)), record("http://ex.com/big", http(big))]))
    conn, _ = run(tmp_path, f, settings=Settings(max_page_bytes=20 << 20, max_text_chars=20_000_000))
    media = q(conn, "SELECT p.url, m.url, substr(p.text, m.pos + 1, 30) FROM media m JOIN pages p ON p.id = m.page_id ORDER BY m.id")
    assert media == [("http://ex.com/deep", "http://ex.com/deep.jpg", "after the deep part"),
                     ("http://ex.com/deep", "http://ex.com/tail.jpg", ""),
                     ("http://ex.com/big", "http://ex.com/after-big.jpg", "tail")]


@pytest.mark.parametrize("body,ctype,expect_charset", [
    ("<html><head><meta charset='windows-1251'></head><body><p>Привет мир</p></body></html>".encode("cp1251"),
     "text/html", "cp1251"),
    ("<html><body><p>Привет мир</p></body></html>".encode("utf-16"), "text/html", "utf-16-le"),
    ("<html><body><p>こんにちは世界</p></body></html>".encode("shift_jis"), "text/html; charset=Shift_JIS", "shift_jis"),
    ("<html><body><p>Grüße aus Köln</p></body></html>".encode("cp1252"), "text/html; charset=bogus-charset", "detected"),
])
def test_odd_charsets(tmp_path, body, ctype, expect_charset):
    f = tmp_path / "cs.warc.gz"
    f.write_bytes(gz_members([record("http://ex.com/cs", http(body, ctype))]))
    conn, _ = run(tmp_path, f)
    text, charset, source = q(conn, "SELECT text, charset, charset_source FROM pages")[0]
    assert expect_charset in (charset, source)
    assert any(w in text for w in ("Привет мир", "こんにちは世界", "Grüße aus Köln"))


def test_chunked_and_gzip_bomb_bodies(tmp_path):
    html = b"<html><body><p>chunked page</p><img src='/c.jpg' alt='chunked'></body></html>"
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(html[i:i + 20]), html[i:i + 20]) for i in range(0, len(html), 20)) + b"0\r\n\r\n"
    broken = b"5\r\nabc"  # declares 5 bytes, has 3, then ends
    bomb = gzip.compress(b"<html><body><p>" + b"A" * (200 << 20) + b"</p></body></html>", 9)
    f = tmp_path / "enc.warc.gz"
    f.write_bytes(gz_members([
        record("http://ex.com/chunked", http(chunked, headers={"Transfer-Encoding": "chunked"})),
        record("http://ex.com/broken", http(broken + b"\r\n\r\nzz", headers={"Transfer-Encoding": "chunked"})),
        record("http://ex.com/bomb", http(bomb, headers={"Content-Encoding": "gzip"})),
    ]))
    assert len(bomb) < 300_000
    conn, _ = run(tmp_path, f, settings=Settings(max_page_bytes=1 << 20))
    pages = {u: (t, fl) for u, t, fl in q(conn, "SELECT url, text, flags FROM pages")}
    assert pages["http://ex.com/chunked"][0] == "chunked page"
    assert pages["http://ex.com/bomb"][1] == "capped"
    assert len(pages["http://ex.com/bomb"][0]) <= 1 << 20
    kinds = {(u, k) for u, k in q(conn, "SELECT url, kind FROM problems")}
    assert ("http://ex.com/broken", "http") in kinds
    assert ("http://ex.com/bomb", "http") in kinds


def test_a_bad_file_never_stops_the_run(tmp_path):
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(b"\x1f\x8b\x08" + b"\x00" * 100)
    good = corpus("cc-whirlwind/whirlwind.warc.gz")
    conn, res = run(tmp_path, bad, good)
    assert dict(q(conn, "SELECT name, status FROM archives")) == {"bad.warc.gz": "failed", "whirlwind.warc.gz": "done"}
    assert q(conn, "SELECT count(*) FROM pages")[0][0] == 1
