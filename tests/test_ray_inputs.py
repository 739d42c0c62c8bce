"""Crawl ids as inputs: CC-MAIN-YYYY-WW expands to its warc.paths.gz (a local mirror folder, or a
server on 127.0.0.1 standing in for data.commoncrawl.org), with segment and slice selection."""
import functools
import gzip
import http.server
import os
import subprocess
import sys
import threading

import pytest

from conftest import ROOT, corpus
from wdb.errors import NoInputs
from wdb.inputs import crawl_paths, expand

CRAWL = "CC-MAIN-2024-22"


@pytest.fixture
def mirror(tmp_path):
    """crawl-data/CC-MAIN-2024-22/ with two segments of two WARCs each (links to corpus files)."""
    files = [corpus(p) for p in ("aut-tests/example.warc.gz", "pywb-sample-archive/iana.warc.gz",
                                 "jwarc-tests/cc.warc.gz", "ipwb-samples/sample-1.warc.gz")]
    lines = []
    for i, f in enumerate(files):
        seg = f"171597105721{i // 2}.39"
        rel = f"crawl-data/{CRAWL}/segments/{seg}/warc/{CRAWL}-20240517-{i:05d}.warc.gz"
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).symlink_to(f)
        lines.append(rel)
    with gzip.open(tmp_path / "crawl-data" / CRAWL / "warc.paths.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return tmp_path, lines


def test_crawl_id_with_segment_and_slice_from_a_local_mirror(mirror):
    root, lines = mirror
    assert crawl_paths(CRAWL, str(root)) == lines
    assert crawl_paths(f"{CRAWL}:2", str(root)) == lines[:2]
    assert crawl_paths(f"{CRAWL}:1-3", str(root)) == lines[1:3]
    assert crawl_paths(f"{CRAWL}/segments/1715971057211.39", str(root)) == lines[2:]
    assert crawl_paths(f"{CRAWL}/segments/1715971057211.39:1", str(root)) == lines[2:3]
    srcs = expand([f"{CRAWL}:3"], base_url=str(root))
    assert [s.location for s in srcs] == [str((root / ln).resolve()) for ln in lines[:3]]
    with pytest.raises(NoInputs, match="no WARC paths selected"):
        crawl_paths(f"{CRAWL}/segments/nope", str(root))
    with pytest.raises(NoInputs, match="CC-MAIN-2019-01/warc.paths.gz"):
        crawl_paths("CC-MAIN-2019-01", str(root))


def test_crawl_id_over_http_is_ingested(mirror, tmp_path):
    root, lines = mirror
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/"
        assert [s.location for s in expand([f"{CRAWL}:1-3"], base_url=base)] == [base + ln for ln in lines[1:3]]
        db = tmp_path / "c.db"
        r = subprocess.run([sys.executable, "-m", "wdb.cli", "ingest", str(db), f"{CRAWL}:2", "--base-url", base,
                            "--workers", "0", "--silent"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert r.returncode == 0, r.stderr
        import sqlite3

        got = sorted(x[0] for x in sqlite3.connect(db).execute("SELECT location FROM archives WHERE status = 'done'"))
        assert got == sorted(base + ln for ln in lines[:2])
        r = subprocess.run([sys.executable, "-m", "wdb.cli", "ingest", str(db), "CC-MAIN-2030-01", "--base-url", base],
                           capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert r.returncode == 2 and "CC-MAIN-2030-01" in r.stderr and "404" in r.stderr
    finally:
        srv.shutdown()
        srv.server_close()
