"""`wdb show`: every item of an archive re-read through its page's pointer, from a local file and by
HTTP Range from 127.0.0.1, the bytes checked against what was stored."""
import hashlib
import http.server
import os
import subprocess
import sys
import threading

import pytest

from conftest import ROOT, corpus
from wdb.cluster.show import show
from wdb.db import open_db
from wdb.ingest import ingest


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Files of one folder, with single byte ranges (206), as Common Crawl's server answers."""
    root = None

    def do_GET(self):  # noqa: N802
        path = os.path.join(self.root, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a), min(int(b), size - 1) if b else size - 1
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _all_items(conn):
    return [r[0] for r in conn.execute("SELECT id FROM media ORDER BY id")]


def test_show_every_item_of_an_archive_matches_what_was_stored(tmp_path):
    warc = corpus("aut-tests/example.warc.gz")
    conn = open_db(tmp_path / "a.db")
    ingest(conn, [str(warc)], workers=0, progress=False, quiet=True)
    items = _all_items(conn)
    assert len(items) > 100
    archived = 0
    for mid in items:
        d = show(conn, mid)
        assert d["ok"], (mid, d["checks"])
        assert d["checks"]["record_id"] == d["checks"]["target_uri"] == d["checks"]["text_sha256"] == "match"
        stored = conn.execute("SELECT sha256 FROM media_bytes WHERE media_id = ? AND source = 'archive'",
                              (mid,)).fetchone()
        if stored:
            archived += 1
            assert d["checks"]["archived_sha256"] == "match" and d["archived"]["sha256"] == stored[0]
        assert d["headers"]["warc-target-uri"].strip("<>") == d["page"]["url"]
    assert archived > 100
    # the checks bite: a stored text that is not what the record holds, a foreign sha256
    mid = items[0]
    conn.execute("UPDATE pages SET text = text || ' changed' WHERE id = (SELECT page_id FROM media WHERE id = ?)", (mid,))
    assert show(conn, mid)["checks"]["text_sha256"] == "MISMATCH"
    am = conn.execute("SELECT media_id FROM media_bytes WHERE source = 'archive' LIMIT 1").fetchone()[0]
    conn.execute("UPDATE archived_media SET sha256 = ? WHERE id = (SELECT x.id FROM archived_media x JOIN media m "
                 "ON m.url_key = x.url_key WHERE m.id = ? ORDER BY x.id LIMIT 1)", (hashlib.sha256(b"x").hexdigest(), am))
    assert show(conn, am)["checks"]["archived_sha256"].startswith("MISMATCH")
    r = subprocess.run([sys.executable, "-m", "wdb.cli", "show", str(tmp_path / "a.db"), str(am)], capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1 and "archived_sha256 MISMATCH" in r.stdout
    assert "warc-record-id:" in r.stdout and "context:" in r.stdout


def test_show_reads_the_record_by_http_range(tmp_path, server):
    warc = corpus("pywb-sample-archive/iana.warc.gz")
    RangeHandler.root = str(warc.parent)
    url = f"http://127.0.0.1:{server.server_address[1]}/{warc.name}"
    conn = open_db(tmp_path / "u.db")
    ingest(conn, [url], workers=0, progress=False, quiet=True)
    items = _all_items(conn)
    assert items
    for mid in items:
        d = show(conn, mid)
        assert d["pointer"]["location"] == url
        assert d["ok"], (mid, d["checks"])
        assert d["checks"]["archived_sha256"] == "match"
    r = subprocess.run([sys.executable, "-m", "wdb.cli", "show", str(tmp_path / "u.db"), "999999"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1 and r.stderr.strip() == "Error: no media item 999999"
