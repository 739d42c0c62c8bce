"""Two commands on one database, one file given twice, files that grow: every row exactly once."""
import shutil
import subprocess
import sys
import threading

import pytest

from conftest import content_rows, corpus
from warcs import members
from wdb.db import connect, migrate, open_db
from wdb.ingest import ingest


def clean(tmp_path, files, name="clean.db"):
    conn = open_db(tmp_path / name)
    ingest(conn, [str(f) for f in files], workers=0, progress=False, quiet=True)
    return content_rows(conn)


def _rows(conn):
    rows = content_rows(conn)
    rows.pop("fts")
    return rows


def test_two_ingests_of_the_same_files_at_once(tmp_path):
    files = [corpus("aut-tests/example.warc.gz"), corpus("node-warc-tests/books.toscrape.warc"),
             corpus("ipwb-samples/sample-1.warc.gz")]
    local = [tmp_path / f.name for f in files]
    for f, to in zip(files, local, strict=True):
        shutil.copy(f, to)
    expected = clean(tmp_path, local)
    expected.pop("fts")
    for trial in range(3):
        db = tmp_path / f"both-{trial}.db"
        migrate(connect(db))
        cmd = [sys.executable, "-m", "wdb.cli", "ingest", str(db), *map(str, local), "--workers", "1", "--silent"]
        procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        errs = [p.communicate(timeout=300)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errs
        conn = connect(db)
        assert _rows(conn) == expected
        assert conn.execute("SELECT count(*) FROM archives").fetchone()[0] == len(local)
        assert conn.execute("SELECT count(*) FROM archives WHERE status = 'done'").fetchone()[0] == len(local)


def test_a_file_and_its_byte_identical_copy_in_one_command(tmp_path):
    src = corpus("aut-tests/example.warc.gz")
    a, b = tmp_path / "a.warc.gz", tmp_path / "copy-of-a.warc.gz"
    shutil.copy(src, a)
    shutil.copy(src, b)
    expected = clean(tmp_path, [a])
    conn = open_db(tmp_path / "t.db")
    res = ingest(conn, [str(a), str(b)], workers=0, progress=False, quiet=True)
    assert res.duplicates == [str(b.resolve())]
    assert content_rows(conn) == expected
    assert conn.execute("SELECT count(*) FROM archives").fetchone()[0] == 1


@pytest.mark.parametrize("name,cut", [("aut-tests/example.warc.gz", 0.37), ("aut-tests/example.warc.gz", 0.8),
                                      ("node-warc-tests/books.toscrape.warc", 0.5),
                                      ("aut-tests/example.arc.gz", 0.6)])
def test_a_truncated_file_completed_later_at_the_same_path(tmp_path, name, cut):
    data = corpus(name).read_bytes()
    f = tmp_path / corpus(name).name
    f.write_bytes(data[: int(len(data) * cut)])
    conn = open_db(tmp_path / "t.db")
    first = ingest(conn, [str(f)], workers=0, progress=False, quiet=True)
    assert first.counts["pages"] > 0
    f.write_bytes(data)  # the rest arrives
    second = ingest(conn, [str(f)], workers=0, progress=False, quiet=True)
    assert second.ok
    (tmp_path / "ref").mkdir()
    ref = tmp_path / "ref" / f.name
    ref.write_bytes(data)
    expected = clean(tmp_path, [ref])
    got = content_rows(conn)
    assert got["pages"] == expected["pages"]
    assert got == expected
    assert conn.execute("SELECT count(*) FROM archives").fetchone()[0] == 1


def test_an_archive_that_grew_since_its_last_ingest(tmp_path):
    """A crawler still writing: complete records appended after a first ingest are read once."""
    data = corpus("aut-tests/example.warc.gz").read_bytes()
    cuts = [o for o, _ in members(data)]
    f = tmp_path / "growing.warc.gz"
    conn = open_db(tmp_path / "t.db")
    for k in (len(cuts) // 5, len(cuts) // 2, len(cuts) - 3):
        f.write_bytes(data[: cuts[k]])
        res = ingest(conn, [str(f)], workers=0, progress=False, quiet=True)
        assert res.ok
    f.write_bytes(data)
    ingest(conn, [str(f)], workers=0, progress=False, quiet=True)
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / f.name).write_bytes(data)
    assert content_rows(conn) == clean(tmp_path, [tmp_path / "ref" / f.name])
    ids = [r[0] for r in conn.execute("SELECT record_id FROM pages")]
    assert len(ids) == len(set(ids))


def test_two_migrations_of_a_fresh_database_at_once(tmp_path):
    """Both succeed, each migration applied once (30 pairs, released together by a barrier)."""
    for i in range(30):
        path = tmp_path / f"m{i}.db"
        barrier, errors = threading.Barrier(2), []

        def go():
            try:
                conn = connect(path)
                barrier.wait(timeout=120)
                migrate(conn)
                conn.close()
            except Exception as e:  # noqa: BLE001 -- collected and asserted below
                errors.append(e)
                barrier.abort()

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        conn = connect(path)
        names = [r[0] for r in conn.execute("SELECT name FROM _migrations")]
        assert len(names) == len(set(names)) and "006_contract.sql" in names
