"""A worker that segfaults or hangs costs one record, not the file or the run."""
import pytest

from conftest import corpus
from wdb.db import open_db
from wdb.ingest import ingest


@pytest.mark.parametrize("fault,kind", [("segfault", "worker_crash"), ("hang", "worker_hang")])
def test_worker_crash_or_hang_is_recorded_and_replaced(tmp_path, monkeypatch, fault, kind):
    books = str(corpus("node-warc-tests/books.toscrape.warc"))
    cc = str(corpus("cc-whirlwind/whirlwind.warc.gz"))
    # the record of one book cover crashes (or hangs) the worker that parses it
    bad_url = "media/cache/2c/da/2cdad67c44b002e7ead0cc35693c0e8b.jpg"
    monkeypatch.setenv("WDB_FAULT", f"{fault}:{bad_url}")
    conn = open_db(tmp_path / "w.db")
    res = ingest(conn, [books, cc], workers=2, progress=False, quiet=True, record_timeout=3)
    probs = conn.execute("SELECT kind, \"offset\", message FROM problems").fetchall()
    assert len(probs) == 1 and probs[0][0] == kind
    # the problem names the record that failed, and it is the one with the bad URL
    from wdb.warc.reader import read_record_at

    assert read_record_at(books, probs[0][1]).headers["warc-target-uri"].endswith(bad_url)
    assert conn.execute("SELECT count(*) FROM archived_media").fetchone()[0] == 19
    assert conn.execute("SELECT count(*) FROM pages").fetchone()[0] == 2
    st = dict(conn.execute("SELECT name, status FROM archives").fetchall())
    assert st == {"books.toscrape.warc": "partial", "whirlwind.warc.gz": "done"}
    assert not res.ok
    # a second run does not retry the record, and adds nothing
    monkeypatch.delenv("WDB_FAULT")
    ingest(conn, [books, cc], workers=1, progress=False, quiet=True)
    assert conn.execute("SELECT count(*) FROM archived_media").fetchone()[0] == 19
