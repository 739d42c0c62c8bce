"""Two databases in one folder, fetched and span-trained at the same time: their side files never
mix, and every pointer of each reads back bytes whose sha256 matches its row."""
import http.server
import os
import subprocess
import sys
import threading

import pytest

from conftest import CORPUS, ROOT, corpus
from warcs import gz_members, record
from warcs import http as http_response
from wdb.db import open_db
from wdb.ingest import ingest
from wdb.warc.payload import read_verified


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def servers():
    """Two servers answering the SAME paths with DIFFERENT real photos (a and b)."""
    photos = sorted((CORPUS / "coco-mini" / "val2017").glob("*.jpg"))[:24]
    if len(photos) < 24:
        pytest.skip("coco-mini missing")
    out = []
    for part in (photos[:12], photos[12:]):
        files = [p.read_bytes() for p in part]

        class Handler(http.server.BaseHTTPRequestHandler):
            data = files

            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                i = int(self.path.rsplit("/", 1)[1].split(".")[0])
                body = self.data[i]
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        out.append(httpd)
    yield [f"http://127.0.0.1:{h.server_address[1]}" for h in out]
    for h in out:
        h.shutdown()


def make_db(folder, name, base):
    imgs = "".join(f'<p>Photo number {i} of the street.</p><img src="{base}/img/{i}.jpg" alt="Photo number {i}">'
                   for i in range(12))
    html = f"<html><body>{imgs}</body></html>".encode()
    warc = folder / f"{name}.warc.gz"
    warc.write_bytes(gz_members([record(f"http://photos.example.org/{name}", http_response(html))]))
    db = folder / f"{name}.db"
    conn = open_db(db)
    ingest(conn, [str(warc), str(corpus("node-warc-tests/books.toscrape.warc"))], workers=0, progress=False,
           quiet=True)
    conn.close()
    return db


def test_two_databases_in_one_folder_fetch_and_train_at_once(tmp_path, servers):
    pytest.importorskip("torch")
    a, b = make_db(tmp_path, "a", servers[0]), make_db(tmp_path, "b", servers[1])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    fetch = [[sys.executable, "-m", "wdb.cli", "fetch", str(db), "--allow-private", "127.0.0.1", "--silent",
              "--concurrency", "4"] for db in (a, b)]
    procs = [subprocess.Popen(c, env=env, stderr=subprocess.PIPE, text=True) for c in fetch]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    train = [[sys.executable, "-m", "wdb.cli", "spans", "train", str(db), "--epochs", "1", "--max-length", "48",
              "--stride", "12", "--context-words", "16", "--max-examples", "40", "--device", "cpu"] for db in (a, b)]
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in train]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert out.strip() == "1"  # each database's first span run
    sums = {}
    for db in (a, b):
        conn = open_db(db)
        rows = conn.execute("SELECT url, location, \"offset\", length, inner, sha256, source FROM images "
                            "WHERE status = 'ok'").fetchall()
        assert sum(r[6] == "web" for r in rows) == 12
        for url, loc, off, length, inner, sha, source in rows:
            read_verified(loc, off, length, inner, sha)  # raises PointerMismatch on foreign bytes
            if source == "web":
                assert loc.startswith(str(db) + ".wdb/fetch/"), loc
                sums[(db.name, url.rsplit("/", 1)[1])] = sha
        ckpt = conn.execute("SELECT checkpoint FROM span_runs WHERE id = 1").fetchone()[0]
        assert ckpt == str(db) + ".wdb/spans/run-1"
        assert (tmp_path / f"{db.name}.wdb" / "spans" / "run-1" / "config.json").exists()
    # same paths, different photos: never the other database's bytes
    assert all(sums[("a.db", f"{i}.jpg")] != sums[("b.db", f"{i}.jpg")] for i in range(12))
