"""Inputs (globs, directories, http(s) streams, Common Crawl paths files), schema and CLI shape."""
import gzip
import http.server
import json
import subprocess
import sys
import threading
from functools import partial

import pytest
from click.testing import CliRunner

from conftest import ROOT, WARC, corpus
from wdb.cli import cli
from wdb.db import connect, migrate, open_db, schema_dump
from wdb.errors import MigrationFailed
from wdb.ingest import ingest


@pytest.fixture(scope="module")
def server():
    """A local HTTP server over the real corpus (no Range support: resume reads past)."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(WARC))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_url_stream_equals_local_file(tmp_path, server):
    conn = open_db(tmp_path / "u.db")
    ingest(conn, [f"{server}/aut-tests/example.warc.gz", str(corpus("aut-tests/example.warc.gz"))],
           workers=1, progress=False, quiet=True)
    rows = conn.execute("SELECT a.location, count(p.id) FROM archives a JOIN pages p ON p.archive_id = a.id "
                        "GROUP BY a.id ORDER BY a.id").fetchall()
    assert rows[0][0].startswith("http://127.0.0.1") and rows[0][1] == rows[1][1] == 140
    a = conn.execute("SELECT url, \"offset\", text FROM pages WHERE archive_id = 1 ORDER BY id").fetchall()
    b = conn.execute("SELECT url, \"offset\", text FROM pages WHERE archive_id = 2 ORDER BY id").fetchall()
    assert a == b


def test_paths_file_with_base_url_and_limit(tmp_path, server):
    paths = tmp_path / "warc.paths.gz"
    paths.write_bytes(gzip.compress(b"cc-whirlwind/whirlwind.warc.gz\njwarc-tests/cc.warc.gz\n"
                                    b"node-warc-tests/books.toscrape.warc\n"))
    res = CliRunner().invoke(cli, ["ingest", str(tmp_path / "p.db"), str(paths), "--base-url", server + "/",
                                   "--limit", "2", "--silent", "--workers", "1"])
    assert res.exit_code == 0, res.output
    conn = open_db(tmp_path / "p.db")
    assert [r[0] for r in conn.execute("SELECT location FROM archives ORDER BY id")] == [
        f"{server}/cc-whirlwind/whirlwind.warc.gz", f"{server}/jwarc-tests/cc.warc.gz"]
    assert conn.execute("SELECT count(*) FROM pages").fetchone()[0] == 2


def test_globs_directories_and_identity(tmp_path):
    conn = open_db(tmp_path / "g.db")
    r1 = ingest(conn, [str(WARC / "pywb-sample-archive" / "*.warc.gz")], workers=0, progress=False, quiet=True)
    assert sum(r1.archives.values()) == 4
    # the same bytes under another name are recognised (identity = size + sha256 of the head)
    copy = tmp_path / "renamed.warc.gz"
    copy.write_bytes(corpus("pywb-sample-archive/iana.warc.gz").read_bytes())
    r2 = ingest(conn, [str(tmp_path)], workers=0, progress=False, quiet=True)
    assert r2.skipped == [str(copy)] and r2.counts["pages"] == 0
    assert conn.execute("SELECT count(*) FROM archives WHERE location = ?", (str(copy),)).fetchone()[0] == 1
    # a directory: the 4 files already in, plus example.arc.gz that the glob did not match
    r3 = ingest(conn, [str(WARC / "pywb-sample-archive")], workers=0, progress=False, quiet=True)
    assert len(r3.skipped) == 4 and r3.archives == {"done": 1} and r3.counts["pages"] == 1
    assert conn.execute("SELECT count(*) FROM archives").fetchone()[0] == 5


def test_missing_input_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(cli, ["ingest", str(tmp_path / "x.db"), str(tmp_path / "nope.warc.gz")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_schema_matches_checked_in_dump(tmp_path):
    conn = open_db(tmp_path / "s.db")
    assert schema_dump(conn) == (ROOT / "tests" / "schema.sql").read_text()


def test_failing_migration_leaves_database_unchanged(tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_ok.sql").write_text("CREATE TABLE a (x);")
    (folder / "002_bad.sql").write_text("CREATE TABLE b (x);\nINSERT INTO a VALUES (1);\nCREATE TABLE a (y);")
    conn = connect(tmp_path / "m.db")
    with pytest.raises(MigrationFailed):
        migrate(conn, folder)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "a" in names and "b" not in names
    assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 0
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations")] == ["001_ok.sql"]


def test_migrate_command_and_runs_table(tmp_path):
    res = CliRunner().invoke(cli, ["migrate", str(tmp_path / "c.db")])
    assert res.exit_code == 0 and "001_ingest.sql" in res.output
    res = CliRunner().invoke(cli, ["migrate", str(tmp_path / "c.db")])
    assert "applied 0" in res.output
    conn = open_db(tmp_path / "c.db")
    ingest(conn, [str(corpus("jwarc-tests/cc.warc.gz"))], workers=0, progress=False, quiet=True, limit=1)
    cmd, params, counters, status = conn.execute("SELECT command, params, counters, status FROM runs").fetchone()
    assert cmd == "ingest" and status == "done"
    assert json.loads(params)["context_words"] == 256 and json.loads(counters)["pages"] == 1


def test_cli_does_not_import_ml_libraries():
    heavy = ('torch', 'transformers', 'open_clip', 'diffusers', 'ray', 'numpy', 'pyarrow')  # loaded by the commands that use them
    code = f"import sys, wdb.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in cli.commands:
        assert f"wdb {name}" in readme


def test_workers_zero_parses_in_process(tmp_path, monkeypatch):
    import wdb.ingest as ingest_mod

    def no_pool(*a, **k):
        raise AssertionError("workers=0 must not start worker processes")

    monkeypatch.setattr(ingest_mod, "Supervisor", no_pool)
    conn = open_db(tmp_path / "z.db")
    res = ingest(conn, [str(corpus("jwarc-tests/cc.warc.gz"))], workers=0, progress=False, quiet=True)
    assert res.counts["pages"] == 1 and res.ok


def test_ingest_rows_have_the_declared_columns(tmp_path):
    """The row builders and the writer's INSERTs share one column tuple per table (ingest/columns.py)."""
    from wdb.ingest import columns as C
    from wdb.ingest.extract_record import Batch, Settings, process_record
    from wdb.warc.reader import ArchiveReader

    conn = open_db(tmp_path / "c.db")
    for table, cols in (("pages", C.PAGES), ("media", C.MEDIA), ("media_urls", C.MEDIA_URLS),
                        ("alt_matches", C.ALT_MATCHES), ("archived_media", C.ARCHIVED_MEDIA),
                        ("problems", C.PROBLEMS)):
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        assert set(cols) <= have, (table, set(cols) - have)
    batch = Batch()
    with open(corpus("node-warc-tests/books.toscrape.warc"), "rb") as f:
        for rec in ArchiveReader(f):
            if hasattr(rec, "headers"):
                process_record(rec, batch, Settings())
    assert batch.pages and batch.media and batch.alt_matches and batch.archived_media
    # batch rows lack the ids the writer adds (pages: id, archive_id; media: id, page_id (+ local page))
    assert {len(r) for r in batch.pages} == {len(C.PAGES) - 2}
    assert {len(r) for r in batch.media} == {len(C.MEDIA) - 1}
    assert {len(r) for r in batch.media_urls} == {len(C.MEDIA_URLS) + 1}
    assert {len(r) for r in batch.alt_matches} == {len(C.ALT_MATCHES) + 1}
    assert {len(r) for r in batch.archived_media} == {len(C.ARCHIVED_MEDIA) - 1}
