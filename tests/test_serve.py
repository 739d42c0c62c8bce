"""wdb serve: Datasette pages, canned queries, media pages, archived bytes, safety, a real browser."""
import asyncio
import hashlib
import sqlite3
import json
import os
import shutil
import subprocess

import pytest

from conftest import CORPUS, ROOT, corpus, start_serve, wait_until
from warcs import gz_members, members, record
from warcs import http as http_response
from wdb.db import open_db, transaction
from wdb.db import query as queries
from wdb.serve import make_datasette

PARAMS = {"min_words": "3", "min_score": "0.6", "kind": "image", "min_images": "3", "max_images": "5",
          "min_confidence": "0.5"}


@pytest.fixture(scope="module")
def ds(corpus_db):
    return make_datasette(corpus_db[0])


@pytest.fixture(scope="module")
def name(corpus_db):
    return corpus_db[0].stem


def get(ds, path, **kw):
    return asyncio.run(ds.client.get(path, **kw))


def build_staged_db(d):
    """books.toscrape (real, archived covers) plus a page whose two images are not archived: one
    downloaded by `wdb fetch` (a real COCO photo in wdb's own WARC), one that failed; and rows of every
    later stage (CLIP models, embeddings, scores, image statuses, span runs, examples, epochs, evals,
    predictions) as those stages write them. Returns (db path, {name: media id or value})."""
    from PIL import Image

    photo = sorted((CORPUS / "coco-mini" / "val2017").glob("*.jpg"))
    if not photo:
        pytest.skip("coco-mini missing")
    jpeg = photo[0].read_bytes()
    width, height = Image.open(photo[0]).size
    html = (b'<html><body><p>Photos from the street.</p><figure><img src="http://photos.example.org/a.jpg" '
            b'alt="A man rides a bike"><figcaption>A man rides a bike down the street.</figcaption></figure>'
            b'<p>More photos.</p><img src="http://photos.example.org/gone.jpg" alt="A lost photo"></body></html>')
    page = d / "page.warc.gz"
    page.write_bytes(gz_members([record("http://photos.example.org/", http_response(html))]))
    fetched = d / "wdb-fetch" / "fetch-1.warc.gz"
    fetched.parent.mkdir()
    data = gz_members([record("http://photos.example.org/a.jpg", http_response(jpeg, "image/jpeg"))])
    fetched.write_bytes(data)
    (off, length), = members(data)
    db = d / "staged.db"
    conn = open_db(db)
    from wdb.ingest import ingest

    ingest(conn, [str(page), str(corpus("node-warc-tests/books.toscrape.warc"))], workers=0, progress=False,
           quiet=True, fts=True)
    ids = dict(conn.execute("SELECT alt, id FROM media WHERE alt IN ('A man rides a bike', 'A lost photo', "
                            "'Tipping the Velvet', 'Soumission')").fetchall())
    key = dict(conn.execute("SELECT id, url_key FROM media").fetchall())
    web, gone, velvet, soum = (ids[a] for a in ("A man rides a bike", "A lost photo", "Tipping the Velvet",
                                                 "Soumission"))
    sha = hashlib.sha256(jpeg).hexdigest()
    with transaction(conn):
        conn.execute("INSERT INTO images (url_key, url, status, source, http_status, attempts, location, \"offset\", "
                     "length, inner, mime, bytes, width, height, sha256, fetched_at) VALUES "
                     "(?, 'http://photos.example.org/a.jpg', 'ok', 'web', 200, 1, ?, ?, ?, 0, 'image/jpeg', "
                     "?, ?, ?, ?, "
                     "'2026-12-01T20:00:00Z')", (key[web], str(fetched), off, length, len(jpeg), width, height, sha))
        conn.execute("INSERT INTO images (url_key, url, status, http_status, attempts, error) VALUES "
                     "(?, 'http://photos.example.org/gone.jpg', 'http_error', 404, 2, 'HTTP 404 Not Found')",
                     (key[gone],))
        conn.execute("INSERT INTO images (url_key, url, status, source, location, \"offset\", length, inner, mime, "
                     "bytes, width, height, sha256) SELECT x.url_key, x.url, 'ok', 'archive', a.location, "
                     "x.\"offset\", "
                     "x.length, x.inner, x.mime, x.bytes, x.width, x.height, x.sha256 FROM archived_media x "
                     "JOIN archives a ON a.id = x.archive_id WHERE x.mime LIKE 'image/%'")
        conn.execute("INSERT INTO clip_models (id, name, pretrained, weights, embed_dim) VALUES "
                     "(1, 'ViT-B-32', 'laion2b_s34b_b79k', '', 512), (2, 'local-dir:/models/tiny', '', 'ab12', 16)")
        for mid, src, model, score in [(web, "alt", 1, 0.3125), (web, "figcaption", 1, 0.2871), (web, "alt", 2, 0.0412),
                                       (velvet, "alt", 1, 0.2702), (soum, "alt", 1, 0.1999)]:
            conn.execute("INSERT INTO clip_scores VALUES (?, ?, ?, ?)", (mid, src, model, score))
        conn.execute("INSERT INTO image_embeddings VALUES (?, 1, ?)", (key[web], bytes(1024)))
        conn.execute("INSERT INTO clip_image_status (url_key, model_id, status) VALUES (?, 1, 'ok')", (key[web],))
        conn.execute("INSERT INTO clip_image_status (url_key, model_id, status, error) VALUES "
                     "(?, 1, 'undecodable', 'cannot identify image file')", (key[soum],))
        conn.execute("INSERT INTO span_runs (id, base, params, seed, checkpoint, split_counts, status, started_at, "
                     "finished_at, train_seconds) VALUES (1, 'sentence-transformers/all-MiniLM-L6-v2', "
                     "'{\"epochs\": 4}', "
                     "1, 'spans-1', '{\"train\": 2}', 'done', '2026-12-01T19:00:00Z', '2026-12-01T19:01:00Z', 60.0)")
        for mid, split, label in [(velvet, "train", "span"), (soum, "validation", "none"), (web, "test", "span")]:
            conn.execute("INSERT INTO span_examples VALUES (1, ?, ?, ?)", (mid, split, label))
        for epoch in (0, 1):
            conn.execute("INSERT INTO span_epochs VALUES (1, ?, 'validation', 0.9, 0.5, 0.6, 1)", (epoch,))
        conn.execute("INSERT INTO span_evals VALUES (1, 'model', 'all', 1, 1.0, 1.0)")
        start = conn.execute("SELECT start FROM alt_matches WHERE media_id = ?", (velvet,)).fetchone()
        conn.execute("INSERT INTO spans VALUES (?, 1, ?, ?, 'Tipping the Velvet', 0.9, 0.95, 0.855, 0.01)",
                     (velvet, start[0] if start else None, start[0] + 18 if start else None))
        conn.execute("INSERT INTO spans VALUES (?, 1, NULL, NULL, NULL, NULL, NULL, NULL, 0.93)", (soum,))
    conn.close()
    return db, {"web": web, "gone": gone, "velvet": velvet, "soumission": soum, "sha": sha, "jpeg": jpeg}


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    return build_staged_db(tmp_path_factory.mktemp("staged"))


def books_item(db, alt="Tipping the Velvet"):
    return db.execute("SELECT m.id FROM media m WHERE m.alt = ?", (alt,)).fetchone()[0]


def test_tables_views_and_row_pages_render(ds, name, db):
    for table in ("archives", "archive_chunks", "pages", "media", "media_urls", "archived_media", "alt_matches",
                  "problems", "runs", "media_items", "media_context", "media_archived"):
        r = get(ds, f"/{name}/{table}")
        assert r.status_code == 200, table
    page_id = db.execute("SELECT min(id) FROM pages").fetchone()[0]
    assert get(ds, f"/{name}/pages/{page_id}").status_code == 200
    assert get(ds, "/").status_code == 200 and get(ds, f"/{name}").status_code == 200


def test_descriptions_and_facets_from_metadata(ds, name):
    meta = get(ds, "/-/metadata.json").json()
    tables = meta["databases"][name]["tables"]
    assert tables["media"]["columns"]["pos"].startswith("character offset in pages.text")
    assert "weak labels" in tables["alt_matches"]["description"]
    html = get(ds, f"/{name}/media").text
    assert "one row per image, audio, video or embed item" in html
    data = get(ds, f"/{name}/media_items.json?_facet_size=50").json()
    facets = data["facet_results"]
    assert {"kind", "domain", "lang"} <= set(facets)
    kinds = {v["value"]: v["count"] for v in facets["kind"]["results"]}
    assert kinds["image"] == data["filtered_table_rows_count"] - sum(v for k, v in kinds.items() if k != "image")
    assert any(v["value"] == "books.toscrape.com" and v["count"] == 20 for v in facets["domain"]["results"])
    status = get(ds, f"/{name}/archives.json").json()["facet_results"]["status"]["results"]
    assert {v["value"] for v in status} == {"done", "partial"}


def test_full_text_search(ds, name):
    rows = get(ds, f"/{name}/media.json?_search=velvet&_shape=array").json()
    assert [r["alt"] for r in rows] == ["Tipping the Velvet"]
    rows = get(ds, f"/{name}/pages.json?_search=Escopete&_shape=array&_col=url").json()
    assert [r["url"] for r in rows] == ["https://an.wikipedia.org/wiki/Escopete"]


def test_every_canned_query_runs_with_its_parameters(ds, name):
    meta = get(ds, "/-/metadata.json").json()["databases"][name]["queries"]
    files = queries.all_queries()
    from wdb import recipes  # every built-in recipe is a canned query too (tests/test_gallery_browser.py opens them)

    assert set(meta) == {q.name for q in files} | {r.name for r in recipes.builtin()} and len(files) >= 6
    for q in files:
        args = "&".join(f"{p}={PARAMS[p]}" for p in q.params)
        html = get(ds, f"/{name}/{q.name}")
        assert html.status_code == 200
        for p in q.params:  # each :parameter is a form field
            assert f'name="{p}"' in html.text, (q.name, p)
        rows = get(ds, f"/{name}/{q.name}.json?_shape=array&{args}").json()
        assert rows, q.name
        if q.name == "interleaved_pages":
            assert all(r["images"] >= 3 and len(json.loads(r["first_images"])) <= 5 for r in rows)
        if q.name == "context_samples":
            assert all(r["kind"] == "image" for r in rows) and any(r["text_before"] for r in rows)


def test_canned_query_forms_refuse_values_of_the_wrong_type(ds, name):
    """Datasette hands form values over as text; a typed parameter that is not its type is a 400 with one
    line, never a query that answers for every row (CAST('five' AS INTEGER) is 0)."""
    all_rows = get(ds, f"/{name}/alt_pairs.json?_shape=array&min_words=0").json()
    for path in (f"/{name}/alt_pairs.json?min_words=five", f"/{name}/alt_pairs?min_words=3x",
                 f"/{name}/context_samples.json?kind=picture", f"/{name}/datacomp_basic.json?nope=1&_shape=array"):
        r = get(ds, path)
        if "nope" in path:  # not a parameter of the query: Datasette ignores it, as before
            assert r.status_code == 200
            continue
        assert r.status_code == 400 and len(r.text.strip().splitlines()) == 1, path
        assert "must be" in r.text
    assert get(ds, f"/{name}/alt_pairs").status_code == 200  # the empty form still opens
    assert 0 < len(get(ds, f"/{name}/alt_pairs.json?_shape=array&min_words=12").json()) < len(all_rows)


def test_query_results_show_thumbnails_and_item_links(ds, name):
    html = get(ds, f"/{name}/alt_pairs?min_words=4").text
    assert "/-/wdb/thumb/" in html and "/-/wdb/media/" in html
    html = get(ds, f"/{name}/media?kind=image&_size=5").text
    assert html.count("/-/wdb/thumb/") == 5


def test_media_page_shows_picture_context_match_and_provenance(ds, db):
    mid = books_item(db)
    html = get(ds, f"/-/wdb/media/{mid}").text
    assert f'src="/-/wdb/thumb/{mid}"' in html
    assert '<mark class="alt-match"' in html and ">Tipping the Velvet</mark>" in html
    assert "books.toscrape.warc" in html and "WARC-Record-ID" in html and "image/jpeg" in html
    assert "http://books.toscrape.com/" in html
    assert get(ds, "/-/wdb/media/99999999").status_code == 404


def test_extension_points_add_highlights_and_sections(ds, db, monkeypatch):
    from wdb.serve import media_page

    mid = books_item(db, "Soumission")
    monkeypatch.setattr(media_page, "HIGHLIGHTS", media_page.HIGHLIGHTS + [
        lambda conn, m: [media_page.Highlight(0, 5, "span", "predicted span")] if m == mid else []])
    monkeypatch.setattr(media_page, "SECTIONS", media_page.SECTIONS + [
        lambda conn, m: media_page.Section("CLIP scores", [("ViT-B-32 alt", 0.31)])])
    html = get(ds, f"/-/wdb/media/{mid}").text
    assert "CLIP scores" in html and "0.31" in html
    ctx = db.execute("SELECT ctx_start FROM media WHERE id = ?", (mid,)).fetchone()[0]
    assert ('<mark class="span"' in html) == (ctx == 0)


def test_archived_bytes_and_thumbnails(ds, db):
    mid = books_item(db)
    aid, sha, mime = db.execute(
        "SELECT archived_media_id, sha256, mime FROM media_archived WHERE media_id = ?", (mid,)).fetchone()
    r = get(ds, f"/-/wdb/archived/{aid}")
    assert r.status_code == 200 and r.headers["content-type"] == mime == "image/jpeg"
    assert hashlib.sha256(r.content).hexdigest() == sha
    assert r.headers["content-security-policy"] == "sandbox"
    t = get(ds, f"/-/wdb/thumb/{mid}")
    assert t.status_code == 200 and hashlib.sha256(t.content).hexdigest() == sha
    # not archived: the thumbnail redirects to the item's URL
    other, url = db.execute("SELECT m.id, m.url FROM media m WHERE m.kind = 'image' AND NOT EXISTS "
                            "(SELECT 1 FROM archived_media a WHERE a.url_key = m.url_key) LIMIT 1").fetchone()
    t = get(ds, f"/-/wdb/thumb/{other}")
    assert t.status_code == 302 and t.headers["location"] == url


@pytest.mark.parametrize("sql", [
    "insert into runs (command, params, started_at) values ('x', '{}', 'now')",
    "attach database '/tmp/other.db' as other",
    "pragma writable_schema = 1",
    "vacuum into '/tmp/copy.db'",
    "select 1; delete from pages",
    "select length(randomblob(500000000))",
])
def test_untrusted_sql_cannot_write_or_exhaust_memory(ds, name, db, sql):
    before = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    r = asyncio.run(ds.client.get(f"/{name}.json", params={"sql": sql}))
    assert r.status_code >= 400 or r.json().get("ok") is False
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == before
    assert not os.path.exists("/tmp/copy.db")


def test_no_writable_canned_queries_and_time_limit_kept(ds, name):
    meta = get(ds, "/-/metadata.json").json()["databases"][name]["queries"]
    assert not any(q.get("write") for q in meta.values())
    assert get(ds, "/-/settings.json").json()["sql_time_limit_ms"] == 1000
    from wdb.cli import serve

    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"


def test_real_browser_renders_archived_image_and_highlight(corpus_db, db):
    """Headless Chromium opens a media page served by `wdb serve`; the picture really renders."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("chromium and chromedriver are missing: `make test` installs them (make browser)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    proc, port = start_serve(corpus_db[0], stderr=subprocess.PIPE)
    driver = None
    try:
        opts = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000"):
            opts.add_argument(a)
        opts.binary_location = shutil.which("chromium")
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
        driver.set_page_load_timeout(30)
        mid = books_item(db)
        driver.get(f"http://127.0.0.1:{port}/-/wdb/media/{mid}")
        wait_until(lambda: driver.execute_script("var i = document.getElementById('wdb-item'); return i.complete"))
        width = driver.execute_script("return document.getElementById('wdb-item').naturalWidth")
        marks = [m.text for m in driver.find_elements(By.CSS_SELECTOR, "mark.alt-match")]
        out = ROOT / "test-artefacts"
        out.mkdir(exist_ok=True)
        driver.save_screenshot(str(out / "media-page.png"))
        assert width > 0
        assert marks == ["Tipping the Velvet"]
        assert driver.find_element(By.CSS_SELECTOR, "mark.alt-match").is_displayed()
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)


def test_later_stage_tables_render_with_facets(staged):
    db, ids = staged
    ds = make_datasette(db)
    for table in ("clip_scores", "clip_models", "clip_image_status", "image_embeddings", "images", "spans",
                  "span_examples", "span_runs", "span_epochs", "span_evals", "media_bytes", "current_spans",
                  "media_urls"):
        r = get(ds, f"/staged/{table}")
        assert r.status_code == 200 and "Error 500" not in r.text, table
    r = get(ds, "/staged/clip_scores")
    assert f'href="/-/wdb/media/{ids["web"]}"' in r.text  # media_id is a foreign key: {"value", "label"}
    status = get(ds, "/staged/images.json").json()["facet_results"]["status"]["results"]
    assert {v["value"]: v["count"] for v in status}["http_error"] == 1
    sources = get(ds, "/staged/clip_scores.json").json()["facet_results"]["text_source"]["results"]
    assert {v["value"]: v["count"] for v in sources} == {"alt": 4, "figcaption": 1}


def test_thumbnail_serves_the_fetched_copy_and_the_media_page_shows_fetch_and_clip(staged):
    db, ids = staged
    ds = make_datasette(db)
    t = get(ds, f"/-/wdb/thumb/{ids['web']}")  # not archived, downloaded by wdb fetch: the WARC's bytes
    assert t.status_code == 200 and t.content == ids["jpeg"] and t.headers["content-type"] == "image/jpeg"
    gone = get(ds, f"/-/wdb/thumb/{ids['gone']}")  # neither: the live URL
    assert gone.status_code == 302 and gone.headers["location"] == "http://photos.example.org/gone.jpg"
    html = get(ds, f"/-/wdb/media/{ids['web']}").text
    assert "<h2>Fetch status</h2>" in html and "<td>web</td>" in html and "<td>200</td>" in html
    assert "<h2>CLIP scores</h2>" in html and '<td id="wdb-bytes-source">downloaded by wdb fetch</td>' in html
    assert "<td>ViT-B-32</td><td>laion2b_s34b_b79k</td><td>figcaption</td><td>0.2871</td>" in html
    assert "<td>local-dir:/models/tiny</td><td></td><td>alt</td><td>0.0412</td>" in html
    html = get(ds, f"/-/wdb/media/{ids['gone']}").text
    assert "http_error" in html and "HTTP 404 Not Found" in html and "CLIP scores" not in html
    key = sqlite3.connect(db).execute("SELECT url_key FROM media WHERE id = ?", (ids["web"],)).fetchone()[0]
    cells = get(ds, "/staged/images?status=ok&source=web").text
    assert "/-/wdb/image?url_key=" in cells
    assert get(ds, "/-/wdb/image", params={"url_key": key}).content == ids["jpeg"]
    assert get(ds, "/-/wdb/image", params={"url_key": "nope"}).status_code == 404
