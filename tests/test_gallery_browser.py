"""The recipe gallery of `wdb serve` in headless Chromium, over the recipe test database (real
COCO photos and books.toscrape covers): thumbnails load from the archived bytes, captions with
hostile HTML are shown as text (no script runs, no element is injected), paging and the score range
show exactly the recipe's pairs, a thumbnail leads to the media page, and every recipe's canned
query page answers 200 without error."""
import urllib.request
from urllib.parse import urlencode

import pytest

from conftest import ROOT, start_serve, wait_until
from test_browser_pages import ERROR_JS, driver  # noqa: F401 -- the module fixture
from test_recipes import HOSTILE, build, keys, pairs
from wdb import recipes
from wdb.db import open_db


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db, model = build(tmp_path_factory.mktemp("gallery"))
    proc, port = start_serve(db)
    yield f"http://127.0.0.1:{port}", db, model
    proc.terminate()
    proc.wait(10)


def open_page(driver, url):  # noqa: F811
    driver.get(url)
    status, title, h1, errors = driver.execute_script(ERROR_JS)
    if status in (None, 0):
        try:
            status = urllib.request.urlopen(url, timeout=30).status
        except urllib.error.HTTPError as e:
            status = e.code
    return status, h1, errors


def shown(driver):
    from selenium.webdriver.common.by import By

    out = []
    for fig in driver.find_elements(By.CSS_SELECTOR, "figure.wdb-pair"):
        score = fig.find_element(By.CSS_SELECTOR, ".wdb-score").text
        out.append((int(fig.get_attribute("data-media-id")), fig.find_element(By.CSS_SELECTOR, ".wdb-source").text,
                    fig.find_element(By.CSS_SELECTOR, ".wdb-text").text, None if score == "–" else float(score)))
    return out


def test_gallery_pages_thumbnails_and_hostile_captions(site, driver):  # noqa: F811
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    base, db, model = site
    conn = open_db(db)
    want = pairs(conn, "mmc4_dedup")
    conn.close()
    status, h1, errors = open_page(driver, f"{base}/-/wdb/gallery/mmc4_dedup?size=200")
    assert status == 200 and not errors and "Gallery" in h1
    got = shown(driver)
    assert {(m, s) for m, s, _, _ in got} == keys(want)
    texts = {m: t for m, _, t, _ in got}
    assert HOSTILE in texts.values()  # shown as its characters
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text
    assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"], .wdb-pair script').length") == 0
    def loaded() -> int:  # thumbnails: the archived bytes, decoded by the browser (scrolled into view)
        driver.execute_script("window.scrollBy(0, 600)")
        return driver.execute_script("return Array.from(document.querySelectorAll('.wdb-pair img'))"
                                     ".filter(i => i.complete && i.naturalWidth > 0).length")
    assert wait_until(lambda: loaded() == len(got)) and loaded() == len(got)
    (ROOT / "test-artefacts").mkdir(exist_ok=True)
    driver.save_screenshot(str(ROOT / "test-artefacts" / "gallery.png"))
    # a thumbnail leads to its media page
    first = driver.find_element(By.CSS_SELECTOR, "figure.wdb-pair a")
    mid = got[0][0]
    first.click()
    assert driver.current_url.endswith(f"/-/wdb/media/{mid}")


def test_gallery_paging_and_score_range_show_exactly_the_recipe(site, driver):  # noqa: F811
    from selenium.webdriver.common.by import By

    base, db, model = site
    conn = open_db(db)
    everything = pairs(conn, "laion2b_en", model=model, min_score="-1")
    conn.close()
    scores = sorted(r["score"] for r in everything)
    lo, hi = scores[len(scores) // 4], scores[3 * len(scores) // 4]
    want = {(r["media_id"], r["text_source"]) for r in everything if lo <= r["score"] <= hi}
    q = urlencode({"model": model, "min_score": "-1", "score_min": repr(lo), "score_max": repr(hi), "size": "7"})
    status, _, errors = open_page(driver, f"{base}/-/wdb/gallery/laion2b_en?{q}")
    assert status == 200 and not errors
    seen, pages = [], 0
    while True:
        got = shown(driver)
        assert len(got) <= 7 and all(lo - 1e-4 <= s <= hi + 1e-4 for *_, s in got)
        seen += [(m, src) for m, src, _, _ in got]
        pages += 1
        nxt = driver.find_elements(By.ID, "wdb-next")
        if not nxt or pages > 50:
            break
        nxt[0].click()
    assert len(seen) == len(set(seen)) and set(seen) == want and pages == -(-len(want) // 7)
    # a bad parameter is a one-line message on the page, not a 500
    status, _, errors = open_page(driver, f"{base}/-/wdb/gallery/clip_top?percent=thirty")
    assert status == 400 and errors == ["percent must be a number, got 'thirty'"]
    assert open_page(driver, f"{base}/-/wdb/gallery/no_such")[0] == 404


def test_every_recipe_gallery_and_canned_query_answers(site, driver):  # noqa: F811
    base, db, model = site
    name = db.stem
    bad = []
    for r in recipes.builtin():
        for url in (f"{base}/-/wdb/gallery/{r.name}", f"{base}/{name}/{r.name}",
                    f"{base}/{name}/{r.name}?" + urlencode({p: model for p in r.params if p == "model"})):
            status, h1, errors = open_page(driver, url)
            if status != 200 or errors or h1.startswith("Error"):
                bad.append((url, status, h1, errors))
    assert not bad, bad


def test_gallery_escapes_hostile_parameters_in_process(site):
    import asyncio

    from wdb.serve import make_datasette

    _, db, _ = site
    ds = make_datasette(db)
    evil = '"><script>alert(3)</script>'
    for path, status in ((f"/-/wdb/gallery/clip_top?percent={evil}", 400),  # a real parameter, not a number
                         (f"/-/wdb/gallery/laion2b_en?model={evil}", 200),   # a text parameter: no such model
                         (f"/-/wdb/gallery/mmc4_dedup?score_min=1&page={evil}", 400),
                         ("/-/wdb/gallery/%3Cscript%3E", 404),              # no such recipe
                         ("/-/wdb/gallery/mmc4_dedup?size=99999999999&page=0", 400)):
        r = asyncio.run(ds.client.get(path.replace(" ", "%20")))
        assert r.status_code == status, path
        assert "<script>alert(3)" not in r.text and "alert(3)</script>" not in r.text, path
        if "percent=" in path or "model=" in path:  # the value is echoed, escaped
            assert "&lt;script&gt;alert(3)&lt;/script&gt;" in r.text, path
