"""Interrupted ingests resume to exactly the rows of a clean run."""
import os
import random
import sqlite3
import signal
import subprocess
import sys
import time

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


def test_sigkill_at_random_points_then_resume(tmp_path, inputs):
    """Real subprocesses killed with SIGKILL, several times, also during a resumed run."""
    chunk_mb = 1
    pages = tmp_path / "pages.warc.gz"  # the 129 real pages too, so that a run lasts long enough
    write_pages_warc(pages)
    inputs = inputs + [str(pages)]
    expected = clean_rows(tmp_path, inputs, 1 << 30)  # unsplit, in-process: the reference
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "wdb.cli", "ingest", str(db), *inputs, "--workers", "2", "--silent",
           "--chunk-mb", str(chunk_mb)]
    # kill points spread over the length of an uninterrupted run on this machine
    t0 = time.monotonic()
    subprocess.run(cmd[:4] + [str(tmp_path / "timing.db")] + cmd[5:], check=True, timeout=300)
    full = time.monotonic() - t0
    rng = random.Random(7)
    kills, seen = 0, []
    total = len(expected["pages"])
    for _ in range(5):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.45, 0.85) * full)
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
        time.sleep(0.3)  # orphaned workers exit when their pipe closes
        if db.exists():
            c = sqlite3.connect(db)
            seen.append(c.execute("SELECT count(*) FROM pages").fetchone()[0])
            c.close()
    assert kills >= 2
    assert any(0 < n < total for n in seen), seen  # at least one kill landed mid-run
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    conn = open_db(db)
    assert content_rows(conn) == expected
    assert conn.execute("SELECT count(*) FROM archives WHERE status = 'done'").fetchone()[0] == len(inputs)
    # a killed run stays 'running' (one killed before it started writes no row)
    assert 1 <= conn.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] <= kills


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
