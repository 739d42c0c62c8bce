"""wdb fetch (archive first, then a local HTTP server with real COCO photos, errors, slow responses,
redirects, bombs) and wdb score / report with tiny open_clip models (random weights: plumbing and
maths, not quality)."""
import asyncio
import hashlib
import http.server
import io
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CORPUS, coco_caption_lists, corpus, tiny_clip
from warcs import gz_members, record
from warcs import http as http_response
from wdb.cli import cli
from wdb.db import open_db
from wdb.ingest import ingest

COCO = CORPUS / "coco-mini"


def coco_images() -> list[Path]:
    files = sorted((COCO / "val2017").glob("*.jpg"))
    if not files:
        pytest.skip("coco-mini missing")
    return files[:12]


def coco_captions() -> dict[str, str]:
    return {k: v[0] for k, v in coco_caption_lists().items()}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up early (a capped or refused fetch) is expected here


@pytest.fixture(scope="module")
def server():
    from PIL import Image

    files = {f.name: f.read_bytes() for f in coco_images()}
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")  # 144 Mpx in a small file
    bomb = buf.getvalue()
    frames = [Image.new("RGB", (32, 32), (i * 3, 0, 0)) for i in range(80)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    anim = buf.getvalue()
    hits: dict[str, int] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def send(self, code, body=b"", ctype="image/jpeg", extra=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            p = self.path
            hits[p] = hits.get(p, 0) + 1
            if p.startswith("/img/") and p[5:] in files:
                return self.send(200, files[p[5:]])
            if p.startswith("/redirect/"):
                n = int(p.split("/")[2])
                target = f"/redirect/{n - 1}/{p.split('/')[3]}" if n > 1 else f"/img/{p.split('/')[3]}"
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if p == "/slow.jpg":
                time.sleep(3)
                return self.send(200, next(iter(files.values())))
            if p == "/bomb.png":
                return self.send(200, bomb, "image/png")
            if p == "/anim.gif":
                return self.send(200, anim, "image/gif")
            if p == "/noai.jpg":
                return self.send(200, next(iter(files.values())), extra={"X-Robots-Tag": "noimageai"})
            if p == "/big.jpg":
                return self.send(200, b"\xff" * (2 << 20))
            if p == "/garbage.jpg":
                return self.send(200, b"this is not an image at all")
            if p == "/500.jpg":
                return self.send(500, b"oops", "text/plain")
            return self.send(404, b"not found", "text/plain")

    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits, files
    httpd.shutdown()


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, server):
    """A page linking to the server's images (alt = a real COCO caption), plus books.toscrape."""
    base, hits, files = server
    caps = coco_captions()
    imgs = "".join(f'<figure><img src="{base}/img/{n}" alt="{caps.get(n, n)}"><figcaption>Photo {i}: '
                   f'{caps.get(n, n)}</figcaption></figure>' for i, n in enumerate(files))
    bad = ["/404.jpg", "/500.jpg", "/slow.jpg", "/bomb.png", "/anim.gif", "/noai.jpg", "/big.jpg", "/garbage.jpg",
           "/redirect/2/" + next(iter(files)), "/redirect/9/" + next(iter(files))]
    imgs += "".join(f'<img src="{base}{p}" alt="case {p}">' for p in bad)
    imgs += '<img src="http://wdb-test.invalid/x.jpg" alt="no such host">'
    html = f"<html><body><p>Photos from the street.</p>{imgs}<p>End.</p></body></html>".encode()
    d = tmp_path_factory.mktemp("fetch")
    warc = d / "page.warc.gz"
    warc.write_bytes(gz_members([record("http://photos.example.org/", http_response(html))]))
    db = d / "f.db"
    conn = open_db(db)
    ingest(conn, [str(warc), str(corpus("node-warc-tests/books.toscrape.warc"))], workers=0, progress=False, quiet=True)
    res = CliRunner().invoke(cli, ["fetch", str(db), "--allow-private", "127.0.0.1", "--timeout", "1", "--retries", "1", "--max-bytes", str(1 << 20),
                                   "--max-redirects", "3", "--concurrency", "4"])
    assert res.exit_code == 0, res.output
    return db, base, hits, files


def status_of(conn, url_suffix):
    return conn.execute("SELECT status, http_status, attempts, error, source, frames FROM images WHERE url LIKE ?",
                        (f"%{url_suffix}",)).fetchone()


def test_archive_first_then_web_with_statuses(fetched):
    db, base, hits, files = fetched
    conn = open_db(db)
    # books.toscrape covers come from the ingested archive: no request ever left for them
    arch = conn.execute("SELECT count(*), min(status), max(status) FROM images WHERE source = 'archive'").fetchone()
    assert arch == (20, "ok", "ok")
    assert status_of(conn, "/404.jpg")[:2] == ("http_error", 404)
    assert status_of(conn, "/500.jpg")[:3] == ("http_error", 500, 2)  # retried once
    assert status_of(conn, "/slow.jpg")[0] == "timeout"
    assert status_of(conn, "/bomb.png")[0] == "bomb"
    assert status_of(conn, "/noai.jpg")[0] == "robots"
    assert status_of(conn, "/big.jpg")[0] == "too_large"
    assert status_of(conn, "/garbage.jpg")[0] == "undecodable"
    assert status_of(conn, "x.jpg")[0] == "dns"
    assert status_of(conn, "/redirect/9/" + next(iter(files)))[0] == "http_error"  # over the redirect limit
    ok = status_of(conn, "/redirect/2/" + next(iter(files)))
    assert ok[0] == "ok"
    anim = status_of(conn, "/anim.gif")
    assert anim[0] == "ok" and anim[5] == 80


def test_downloaded_bytes_are_pointers_into_wdbs_own_warc(fetched):
    from wdb.warc.payload import read_payload
    from wdb.warc.reader import ArchiveReader

    db, base, hits, files = fetched
    conn = open_db(db)
    rows = conn.execute("SELECT url, location, \"offset\", length, sha256, width, height, phash FROM images "
                        "WHERE source = 'web' AND status = 'ok' AND url LIKE '%/img/%'").fetchall()
    assert len(rows) == len(files)
    for url, loc, off, length, sha, w, h, phash in rows:
        body, capped = read_payload(loc, off, length)
        name = url.rsplit("/", 1)[1]
        assert body == files[name] and not capped
        assert hashlib.sha256(body).hexdigest() == sha and w > 0 and h > 0 and len(phash) == 16
    types = [r.rec_type for r in ArchiveReader(open(rows[0][1], "rb"))]
    assert types.count("request") == types.count("response") >= len(files)


def test_fetch_is_incremental_and_retry_failed(fetched):
    db, base, hits, files = fetched
    before = dict(hits)
    res = CliRunner().invoke(cli, ["fetch", str(db), "--allow-private", "127.0.0.1", "--silent"])
    assert res.exit_code == 0 and hits == before  # nothing pending: no request
    res = CliRunner().invoke(cli, ["fetch", str(db), "--allow-private", "127.0.0.1", "--retry-failed", "--status", "http_error", "--timeout", "1",
                                   "--retries", "0", "--max-redirects", "3", "--silent"])
    assert res.exit_code == 0
    assert hits["/404.jpg"] == before["/404.jpg"] + 1 and hits.get("/slow.jpg") == before.get("/slow.jpg")


# ---- scoring with tiny open_clip models --------------------------------------------------------



def test_scores_equal_an_independent_open_clip_computation(fetched, tmp_path):
    torch = pytest.importorskip("torch")
    import open_clip
    from PIL import Image

    db, base, hits, files = fetched
    model_a = tiny_clip(tmp_path / "a", 0)
    args = ["score", str(db), "--model", model_a, "--pretrained", "", "--texts", "alt,figcaption",
            "--batch-size", "8", "--workers", "2"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    conn = open_db(db)
    n_ok = conn.execute("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM image_embeddings").fetchone()[0] == n_ok
    rows = conn.execute(
        "SELECT m.url, m.alt, m.figcaption, c.text_source, c.score FROM clip_scores c JOIN media m ON m.id = c.media_id "
        "WHERE m.url LIKE ?", (f"{base}/img/%",)).fetchall()
    assert len(rows) == 2 * len(files)
    model, _, preprocess = open_clip.create_model_and_transforms(model_a)
    tokenizer = open_clip.get_tokenizer(model_a)
    model.eval()
    with torch.no_grad():
        for url, alt, fig, src, stored in rows:
            img = Image.open(io.BytesIO(files[url.rsplit("/", 1)[1]])).convert("RGB")
            ie = torch.nn.functional.normalize(model.encode_image(preprocess(img)[None]), dim=-1)
            te = torch.nn.functional.normalize(model.encode_text(tokenizer([alt if src == "alt" else fig])), dim=-1)
            # default decode='draft': libjpeg at 1/8 scale for this 32 px model (a few 1e-3 on random
            # weights); decode='full' equals open_clip to 1e-5 (tests/test_score_inputs.py)
            assert abs((ie * te).sum().item() - stored) < 2e-2
    blob = conn.execute("SELECT embedding FROM image_embeddings LIMIT 1").fetchone()[0]
    assert len(blob) == 16 * 2  # float16 x embed_dim
    # again: nothing new
    count = conn.execute("SELECT count(*) FROM clip_scores").fetchone()[0]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert conn.execute("SELECT count(*) FROM clip_scores").fetchone()[0] == count
    # a second model adds its own rows and leaves the first one's alone
    model_b = tiny_clip(tmp_path / "b", 1)
    res = CliRunner().invoke(cli, ["score", str(db), "--model", model_b, "--pretrained", "", "--texts", "alt"])
    assert res.exit_code == 0, res.output
    per_model = dict(conn.execute("SELECT model_id, count(*) FROM clip_scores GROUP BY 1").fetchall())
    alt_a = conn.execute("SELECT count(*) FROM clip_scores WHERE model_id = 1 AND text_source = 'alt'").fetchone()[0]
    assert per_model == {1: count, 2: alt_a}
    # report: numbers and plots
    out = tmp_path / "report"
    res = CliRunner().invoke(cli, ["report", str(db), "--out", str(out), "--top-percent", "30"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    alt = rep["models"][model_a]["sources"]["alt"]
    assert alt["n"] == conn.execute("SELECT count(*) FROM clip_scores WHERE model_id = 1 AND text_source = 'alt'").fetchone()[0]
    assert 0 <= alt["kept_at_laion_cutoff"] <= 1 and abs(alt["kept_top_k"] - 0.3) < 0.1
    assert all(Path(p).stat().st_size > 1000 for p in rep["plots"])


def test_unavailable_pretrained_tag_is_a_clear_error(fetched):
    pytest.importorskip("open_clip")
    db = fetched[0]
    res = CliRunner().invoke(cli, ["score", str(db), "--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k",
                                   "--limit", "1"])
    assert res.exit_code == 1 and "cannot load ViT-B-32" in res.output


def test_media_page_and_datasette_still_render(fetched):
    from wdb.serve import make_datasette

    db = fetched[0]
    ds = make_datasette(db)
    r = asyncio.run(ds.client.get(f"/{db.stem}/images"))
    assert r.status_code == 200


def test_score_maths_without_a_database(tmp_path):
    """image_embeddings + text_cosines on a tiny random CLIP equal open_clip's own computation."""
    torch = pytest.importorskip("torch")
    import open_clip
    from PIL import Image

    from wdb.score import image_embeddings, load_clip, text_cosines

    name = tiny_clip(tmp_path / "m", 3)
    model, preprocess, tokenizer = load_clip(name, "", torch.device("cpu"))
    imgs = [Image.open(f).convert("RGB") for f in coco_images()[:3]]
    pixels = torch.stack([preprocess(im) for im in imgs])
    texts = ["a photo", "two dogs on a beach", "a street at night", "a photo"]
    rows = [0, 1, 2, 2]
    with torch.no_grad():
        got = text_cosines(model, tokenizer, image_embeddings(model, pixels, torch.device("cpu")), rows, texts,
                           torch.device("cpu"), step=3)
        ie = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
        te = torch.nn.functional.normalize(model.encode_text(open_clip.get_tokenizer(name)(texts)), dim=-1)
    want = [(ie[r] * te[k]).sum().item() for k, r in enumerate(rows)]
    assert got == pytest.approx(want, abs=1e-6)


def test_every_attempt_leaves_a_status_and_weights_are_part_of_a_model(fetched, tmp_path):
    """A pointer whose bytes changed, or whose file is gone, is a status row (not pending forever);
    a local-dir model is recorded without the default tag; new weights at the same path are a new
    model."""
    import sqlite3

    pytest.importorskip("torch")
    src = sqlite3.connect(fetched[0])
    db = tmp_path / "copy.db"
    dst = sqlite3.connect(db)
    src.backup(dst)
    dst.close()
    conn = open_db(db)
    conn.execute("DELETE FROM clip_scores")
    conn.execute("DELETE FROM image_embeddings")
    conn.execute("DELETE FROM clip_image_status")
    conn.execute("DELETE FROM clip_models")
    ok = [r[0] for r in conn.execute("SELECT url_key FROM images WHERE status = 'ok' ORDER BY url_key")]
    assert len(ok) >= 4
    conn.execute("UPDATE images SET sha256 = ? WHERE url_key = ?", ("0" * 64, ok[0]))  # replaced bytes
    conn.execute("UPDATE images SET location = ? WHERE url_key = ?", (str(tmp_path / "gone.warc.gz"), ok[1]))
    model = tiny_clip(tmp_path / "m", 0)
    args = ["score", str(db), "--model", model, "--texts", "alt", "--batch-size", "4"]  # default --pretrained
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert conn.execute("SELECT name, pretrained, length(weights) FROM clip_models").fetchall() == [(model, "", 64)]
    status = dict(conn.execute("SELECT url_key, status FROM clip_image_status"))
    assert status[ok[0]] == "sha256_mismatch" and status[ok[1]] == "unreadable"
    assert {status[k] for k in ok[2:]} == {"ok"} and len(status) == len(ok)
    n = conn.execute("SELECT count(*) FROM clip_scores").fetchone()[0]
    assert n > 0 and not conn.execute("SELECT 1 FROM clip_scores c JOIN media m ON m.id = c.media_id "
                                      "WHERE m.url_key IN (?, ?)", ok[:2]).fetchone()
    # failures are not pending: a second run attempts nothing
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert conn.execute("SELECT count(*) FROM clip_scores").fetchone()[0] == n
    # new weights at the same path: a second model with its own rows
    tiny_clip(tmp_path / "m", 1)
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert conn.execute("SELECT count(*) FROM clip_models").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM clip_scores").fetchone()[0] == 2 * n
    # --retry-failed tries the failures again (still failing: still rows, no scores)
    conn.execute("UPDATE clip_image_status SET error = 'old' WHERE status != 'ok' AND model_id = 2")
    assert CliRunner().invoke(cli, args + ["--retry-failed"]).exit_code == 0
    assert conn.execute("SELECT count(*) FROM clip_image_status WHERE model_id = 2 AND status != 'ok' "
                        "AND error != 'old'").fetchone()[0] == 2


def test_archived_only_makes_no_request_and_leaves_the_rest_pending(tmp_path, server):
    base, hits, files = server
    name = next(iter(files))
    html = f'<html><body><p>One photo.</p><img src="{base}/img/{name}" alt="a photo"></body></html>'.encode()
    warc = tmp_path / "p.warc.gz"
    warc.write_bytes(gz_members([record("http://photos.example.org/only", http_response(html))]))
    db = tmp_path / "a.db"
    conn = open_db(db)
    ingest(conn, [str(warc), str(corpus("node-warc-tests/books.toscrape.warc"))], workers=0, progress=False, quiet=True)
    before = sum(hits.values())
    res = CliRunner().invoke(cli, ["fetch", str(db), "--archived-only", "--allow-private", "127.0.0.1"])
    assert res.exit_code == 0, res.output
    assert "not_archived 1" in res.output and sum(hits.values()) == before  # no request left
    assert conn.execute("SELECT count(*), min(source), max(status) FROM images").fetchone() == (20, "archive", "ok")
    res = CliRunner().invoke(cli, ["fetch", str(db), "--allow-private", "127.0.0.1", "--timeout", "2"])
    assert res.exit_code == 0, res.output
    assert status_of(conn, f"/img/{name}")[0] == "ok" and sum(hits.values()) == before + 1
    conn.close()
