"""Indexes built after ingest: URL lookups and full-text search, by `wdb index` (and serve,
ingest --fts), incrementally."""
from click.testing import CliRunner

from conftest import corpus
from wdb.cli import cli
from wdb.db import open_db
from wdb.db.indexes import existing, pending, update_indexes
from wdb.ingest import ingest


def test_index_is_incremental(tmp_path):
    books = corpus("node-warc-tests/books.toscrape.warc")
    example = corpus("aut-tests/example.warc.gz")
    conn = open_db(tmp_path / "s.db")
    ingest(conn, [str(books)], workers=0, progress=False, quiet=True)
    pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    media = conn.execute("SELECT count(*) FROM media").fetchone()[0]
    assert pages and media
    # ingest alone indexes nothing and leaves the URL indexes out
    assert conn.execute("SELECT count(*) FROM pages_fts_docsize").fetchone()[0] == 0
    assert not {"pages_url", "media_url_key"} & existing(conn)
    assert pending(conn) == {"pages": pages, "media": media}
    got = update_indexes(conn, step=7)  # several steps of 7 rows
    assert got == {"pages": pages, "media": media, "created": ["pages_url", "media_url_key"]}
    assert {"pages_url", "media_url_key"} <= existing(conn)
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT id FROM media WHERE url_key = 'x'").fetchall()
    assert "media_url_key" in str(plan)
    assert pending(conn) == {"pages": 0, "media": 0}
    assert update_indexes(conn) == {"pages": 0, "media": 0, "created": []}  # twice adds nothing
    hit = conn.execute("SELECT p.url FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
                       "WHERE pages_fts MATCH 'Sapiens'").fetchall()
    assert hit and all("books.toscrape" in u for (u,) in hit)
    n = conn.execute("SELECT count(*) FROM media_fts WHERE media_fts MATCH 'attic'").fetchone()[0]
    assert n == conn.execute("SELECT count(*) FROM media WHERE alt LIKE '%attic%'").fetchone()[0] >= 1
    # a later ingest drops the URL indexes while it writes; `wdb index` adds only the new rows
    ingest(conn, [str(example)], workers=0, progress=False, quiet=True)
    assert not {"pages_url", "media_url_key"} & existing(conn)
    more = conn.execute("SELECT count(*) FROM pages").fetchone()[0] - pages
    assert more > 0
    res = CliRunner().invoke(cli, ["index", str(tmp_path / "s.db")])
    assert res.exit_code == 0, res.output
    assert f"full-text indexed {more} pages" in res.output and "created pages_url, media_url_key" in res.output
    indexed = conn.execute("SELECT count(*) FROM pages_fts_docsize").fetchone()[0]
    assert indexed == pages + more
    # an ingest with nothing new to read leaves the indexes alone
    ingest(conn, [str(example)], workers=0, progress=False, quiet=True)
    assert {"pages_url", "media_url_key"} <= existing(conn)


def test_ingest_fts_flag_indexes_at_the_end(tmp_path):
    conn = open_db(tmp_path / "f.db")
    res = ingest(conn, [str(corpus("node-warc-tests/books.toscrape.warc"))], workers=0, progress=False,
                 quiet=True, fts=True)
    pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    assert res.indexed["pages"] == pages > 0
    assert pending(conn) == {"pages": 0, "media": 0}
    assert {"pages_url", "media_url_key"} <= existing(conn)
    assert "full-text indexed" in res.summary()
