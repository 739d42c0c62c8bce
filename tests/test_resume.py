"""Interrupted ingests resume to exactly the rows of a clean run."""
import os
import sqlite3
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, content_rows, corpus
from wdb.db import open_db
from wdb.ingest import chunk as chunk_mod
from wdb.ingest import ingest
from wdb.ingest import store

sys.path.insert(0, str(ROOT / "bench"))
from corpus_pages_warc import write as write_pages_warc  # noqa: E402


@pytest.fixture(scope="module")
def inputs():
    return [str(corpus("aut-tests/example.warc.gz")), str(corpus("aut-tests/example.arc.gz")),
            str(corpus("ipwb-samples/sample-1.warc.gz")), str(corpus("node-warc-tests/books.toscrape.warc")),
            str(corpus("warc2zim-tests/kiwix-with-redirects.warc.gz")), str(corpus("pywb-sample-archive/iana.warc.gz"))]


def clean_rows(tmp_path, inputs, chunk_bytes):
    conn = open_db(tmp_path / "clean.db")
    ingest(conn, inputs, workers=0, progress=False, quiet=True, chunk_bytes=chunk_bytes)
    return content_rows(conn)


def test_sigkill_at_commit_points_then_resume(tmp_path, inputs):
    """Real subprocesses killed with SIGKILL right after the N-th committed batch (WDB_KILL_AFTER_COMMITS),
    several times, each kill landing in a resumed run: the final rows equal a clean run's."""
    pages = tmp_path / "pages.warc.gz"  # the 129 real pages too, so that a run has many batches
    write_pages_warc(pages)
    inputs = inputs + [str(pages)]
    expected = clean_rows(tmp_path, inputs, 1 << 30)  # unsplit, in-process: the reference
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "wdb.cli", "ingest", str(db), *inputs, "--workers", "2", "--silent",
           "--chunk-mb", "1"]
    total = len(expected["pages"])
    seen = []
    for n in (1, 2, 1, 2, 1):  # 7 of the ~15 commits a whole run makes
        p = subprocess.run(cmd, env={**os.environ, "WDB_KILL_AFTER_COMMITS": str(n)}, capture_output=True,
                           timeout=300)
        assert p.returncode == -signal.SIGKILL, p.stderr
        c = sqlite3.connect(db)
        seen.append(c.execute("SELECT count(*) FROM pages").fetchone()[0])
        c.close()
    assert all(0 < k < total for k in seen), seen  # every kill landed mid-run
    assert seen == sorted(seen) and seen[-1] > seen[0], seen  # each resumed run went on from the last
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    conn = open_db(db)
    assert content_rows(conn) == expected
    assert conn.execute("SELECT count(*) FROM archives WHERE status = 'done'").fetchone()[0] == len(inputs)
    # the killed runs stay 'running'; their archives were taken over by the next run
    assert conn.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] == 5


class Crash(BaseException):
    pass


@pytest.mark.parametrize("first,second", [(1, None), (2, 1), (3, 2), (5, 1), (4, 3)])
def test_crash_after_each_commit_point_and_during_the_resume(tmp_path, inputs, monkeypatch, first, second):
    """A crash right after the k-th committed batch (then again during the resume) loses nothing."""
    monkeypatch.setattr(chunk_mod, "BATCH_RECORDS", 25)
    files = inputs[:2]
    expected = clean_rows(tmp_path, files, 1 << 30)
    real_write = store.Writer.write
    budget = {"n": 0}

    def write(self, chunk, prog):
        real_write(self, chunk, prog)
        budget["n"] -= 1
        if budget["n"] == 0:
            raise Crash()

    monkeypatch.setattr(store.Writer, "write", write)
    conn = open_db(tmp_path / "crash.db")
    for k in (first, second):
        if k is None:
            continue
        budget["n"] = k
        with pytest.raises(Crash):
            ingest(conn, files, workers=0, progress=False, quiet=True, chunk_bytes=1 << 20)
    budget["n"] = -1
    ingest(conn, files, workers=0, progress=False, quiet=True, chunk_bytes=1 << 20)
    assert content_rows(conn) == expected
