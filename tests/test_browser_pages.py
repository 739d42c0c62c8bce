"""Headless Chromium visits every table, view and canned query page of `wdb serve` over a database
with rows from every stage (archive, fetch, CLIP, spans): each answers HTTP 200 without Datasette
error text; the media page shows the downloaded picture, its fetch status and its CLIP scores."""
import json
import shutil
import urllib.request
from urllib.parse import urlencode

import pytest

from conftest import ROOT, start_serve, wait_until
from test_serve import PARAMS, build_staged_db
from wdb.db import query as queries


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db, ids = build_staged_db(tmp_path_factory.mktemp("browser"))
    proc, port = start_serve(db)
    yield f"http://127.0.0.1:{port}", ids
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def driver():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("chromium and chromedriver are missing: `make test` installs them (make browser)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1280,1000",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # live URLs fail at once, offline
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium")
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


ERROR_JS = """
var h1 = document.querySelector('h1'), nav = performance.getEntriesByType('navigation')[0];
return [nav ? nav.responseStatus : null, document.title, h1 ? h1.textContent.trim() : '',
        Array.from(document.querySelectorAll('.message-error, .error')).map(e => e.textContent.trim())];
"""


def visit(driver, url: str, shot: str | None = None) -> list:
    driver.get(url)
    status, title, h1, errors = driver.execute_script(ERROR_JS)
    if status in (None, 0):  # an older Chromium without responseStatus: ask the server
        status = urllib.request.urlopen(url, timeout=30).status
    if shot:
        out = ROOT / "test-artefacts"
        out.mkdir(exist_ok=True)
        driver.save_screenshot(str(out / f"browser-{shot}.png"))
    return [url, status, title, h1, errors]


def test_every_table_view_and_canned_query_page_answers_200(site, driver):
    base, ids = site
    info = json.load(urllib.request.urlopen(f"{base}/staged.json", timeout=30))
    tables = [t["name"] for t in info["tables"]]
    views = [v["name"] for v in info["views"]]
    assert {"clip_scores", "spans", "span_examples", "images", "media_urls"} <= set(tables)
    assert {"media_bytes", "current_spans", "media_items"} <= set(views)
    canned = queries.all_queries()
    pages = [(f"{base}/staged/{t}", "table" if t == "clip_scores" else None) for t in tables]
    pages += [(f"{base}/staged/{v}", "view" if v == "media_bytes" else None) for v in views]
    pages += [(f"{base}/staged/{q.name}?{urlencode({p: PARAMS[p] for p in q.params})}",
               "query" if q.name == "alt_pairs" else None) for q in canned]
    pages += [(f"{base}/", None), (f"{base}/staged", "database"),
              (f"{base}/staged/clip_scores/{ids['web']},alt,1", "row"),
              (f"{base}/staged/images?status=ok&source=web", "images")]
    seen = [visit(driver, url, shot) for url, shot in pages]
    bad = [s for s in seen if s[1] != 200 or s[2].startswith("Error") or s[3].startswith("Error") or s[4]]
    assert not bad, bad
    assert len(seen) == len(tables) + len(views) + len(canned) + 4


def test_media_page_shows_downloaded_picture_fetch_status_and_clip_scores(site, driver):
    from selenium.webdriver.common.by import By

    base, ids = site
    visit(driver, f"{base}/-/wdb/media/{ids['web']}")
    wait_until(lambda: driver.execute_script("return document.getElementById('wdb-item').complete"))
    width = driver.execute_script("return document.getElementById('wdb-item').naturalWidth")
    headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
    cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.wdb-fields td")]
    out = ROOT / "test-artefacts"
    out.mkdir(exist_ok=True)
    driver.save_screenshot(str(out / "browser-media-fetched.png"))
    assert width > 0  # the `wdb fetch` copy, served from wdb's own WARC (the live URL does not resolve here)
    assert "Fetch status" in headings and "CLIP scores" in headings
    assert "0.3125" in cells and "laion2b_s34b_b79k" in cells and "web" in cells
    status, title, h1, errors = visit(driver, f"{base}/-/wdb/media/{ids['velvet']}", "media")[1:]
    assert status == 200 and not errors
    marks = [m.text for m in driver.find_elements(By.CSS_SELECTOR, "mark.alt-match, mark.span")]
    assert "Tipping the Velvet" in marks
