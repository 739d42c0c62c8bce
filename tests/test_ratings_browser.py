"""The ratings page of `wdb serve --ratings`: headless Chromium rates a base/fine-tuned pair and the
rows are stored; a POST without the token, a cross-site POST (Origin, Sec-Fetch-Site, no CSRF
cookie, a forged CSRF token), a server without --ratings and any write to another table are refused.
The "generated" images are real COCO photos written into the database's own WARC as generate does."""
import asyncio
import http.client
import io
import os
import re
import sqlite3
from urllib.parse import urlencode

import pytest

from conftest import CORPUS, ROOT, start_serve, wait_until
from test_browser_pages import driver  # noqa: F401 - a fixture
from wdb.db import open_db, side_dir, transaction
from wdb.sd.prompts import generate, store_set
from wdb.sd.report import ASPECTS
from wdb.sd.warc import GeneratedWarc
from wdb.serve.ratings import ratings_connection

TOKEN = "test-token-4f1c"


def build_rated_db(folder):
    """Two prompts, one seed, base and run 1: (db, [(base image id, tuned image id)])."""
    from PIL import Image

    photos = sorted((CORPUS / "coco-mini" / "val2017").glob("*.jpg"))[:4]
    if len(photos) < 4:
        pytest.skip("coco-mini missing")
    db = folder / "rate.db"
    conn = open_db(db)
    set_id, _ = store_set(conn, "mini", "generator", {"groups": 1}, generate(1, 0), None)
    prompts = [p for (p,) in conn.execute("SELECT id FROM sd_prompts WHERE set_id = ? ORDER BY id LIMIT 2", (set_id,))]
    warc = GeneratedWarc(side_dir(conn, "sd"))
    rows = []
    for k, (pid, rid) in enumerate([(p, r) for p in prompts for r in (0, 1)]):
        b = io.BytesIO()
        Image.open(photos[k]).convert("RGB").resize((64, 64)).save(b, "PNG")
        loc, off, length, sha = warc.write(f"urn:wdb:sd:{rid}:{pid}:0", b.getvalue())
        rows.append(("/models/tiny", rid, pid, 0, "{}", loc, off, length, "image/png", len(b.getvalue()), sha, 64, 64))
    warc.close()
    with transaction(conn):
        conn.executemany("INSERT INTO sd_images (base, sd_run_id, prompt_id, seed, config, location, \"offset\", length, "
                         "mime, bytes, sha256, width, height) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    pairs = conn.execute("SELECT b.id, t.id FROM sd_images b JOIN sd_images t ON t.prompt_id = b.prompt_id "
                         "AND t.sd_run_id = 1 WHERE b.sd_run_id = 0 ORDER BY b.id").fetchall()
    conn.close()
    return db, pairs


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    db, pairs = build_rated_db(tmp_path_factory.mktemp("ratings"))
    old = os.environ.get("WDB_RATINGS_TOKEN")
    os.environ["WDB_RATINGS_TOKEN"] = TOKEN
    try:
        writable, port = start_serve(db, args=["--ratings"])
        readonly, port_ro = start_serve(db)
    finally:
        if old is None:
            os.environ.pop("WDB_RATINGS_TOKEN")
        else:
            os.environ["WDB_RATINGS_TOKEN"] = old
    yield db, pairs, port, port_ro
    for p in (writable, readonly):
        p.terminate()
        p.wait(10)


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
    r = c.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    c.close()
    return out


def form_session(port):
    """(cookie header, csrftoken, page html) of a fresh visit to the ratings page with the token."""
    status, headers, html = request(port, "GET", f"/-/wdb/ratings?{urlencode({'token': TOKEN})}")
    assert status == 200, html[:300]
    cookie = headers["set-cookie"].split(";", 1)[0]
    csrf = re.search(r'name="csrftoken" value="([^"]+)"', html).group(1)
    return cookie, csrf, html


def post(port, fields: dict, cookie: str | None, extra: dict | None = None):
    headers = {"Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {}),
               **(extra or {})}
    return request(port, "POST", "/-/wdb/ratings", urlencode(fields), headers)


def table_counts(db) -> dict:
    conn = sqlite3.connect(db)
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%'")]
    out = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    conn.close()
    return out


def ratings(db) -> list:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT image_id, rater, aspect, value FROM sd_ratings ORDER BY id").fetchall()
    conn.close()
    return rows


def test_post_without_the_token_is_refused(servers):
    db, pairs, port, _ = servers
    cookie, csrf, _ = form_session(port)
    before = table_counts(db)
    fields = {"csrftoken": csrf, "rater": "mallory", f"r.{pairs[0][0]}.quality": "5"}
    assert post(port, fields, cookie)[0] == 403
    assert post(port, {**fields, "token": "wrong"}, cookie)[0] == 403
    assert post(port, {**fields, "token": TOKEN[:-1]}, cookie)[0] == 403
    assert table_counts(db) == before


def test_cross_site_posts_are_refused(servers):
    db, pairs, port, _ = servers
    cookie, csrf, _ = form_session(port)
    before = table_counts(db)
    fields = {"csrftoken": csrf, "token": TOKEN, "rater": "mallory", f"r.{pairs[0][0]}.quality": "5"}
    assert post(port, fields, cookie, {"Origin": "http://evil.example"})[0] == 403
    assert post(port, fields, cookie, {"Origin": "null"})[0] == 403
    assert post(port, fields, cookie, {"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert post(port, fields, None)[0] == 403  # no CSRF cookie (asgi-csrf skips cookie-less requests)
    forged = post(port, {**fields, "csrftoken": "forged"}, cookie)
    assert forged[0] == 403 and "did not match cookie" in forged[2]  # asgi-csrf: token and cookie differ
    assert table_counts(db) == before


def test_a_server_without_ratings_refuses_every_write(servers):
    db, pairs, port, port_ro = servers
    cookie, csrf, html = form_session(port_ro)
    assert "Read-only" in html and "disabled" in html
    before = table_counts(db)
    status, _, text = post(port_ro, {"csrftoken": csrf, "token": TOKEN, "rater": "ann",
                                     f"r.{pairs[0][0]}.quality": "3"}, cookie)
    assert status == 403 and "read-only" in text
    assert table_counts(db) == before


def test_only_the_ratings_table_can_be_written(servers):
    db, pairs, port, _ = servers
    before = table_counts(db)
    cookie, csrf, _ = form_session(port)
    base = {"csrftoken": csrf, "token": TOKEN, "rater": "ann"}
    assert post(port, {**base, f"r.{pairs[0][0]}.quality": "5; DROP TABLE runs"}, cookie)[0] == 400
    assert post(port, {**base, f"r.{pairs[0][0]}.table": "3"}, cookie)[0] == 400  # not an aspect
    assert post(port, {**base, "r.999999.quality": "3"}, cookie)[0] == 400  # no such image
    assert post(port, {**base, f"r.{pairs[0][0]}.quality": "6"}, cookie)[0] == 400
    # Datasette's own SQL stays read-only for every table, sd_ratings included
    for sql in ("INSERT INTO sd_ratings (image_id, rater, aspect, value, rated_at) VALUES (1, 'x', 'quality', 1, 'x')",
                "UPDATE sd_images SET sha256 = 'x'", "DELETE FROM runs"):
        status, _, _ = request(port, "GET", "/rate.json?" + urlencode({"sql": sql}))
        assert status in (400, 403)
    assert table_counts(db) == before
    # the writer's own connection: INSERT INTO sd_ratings and nothing else
    conn = ratings_connection(str(db))
    for sql in ("INSERT INTO runs (command, params, status, started_at) VALUES ('x', '{}', 'done', 'x')",
                "UPDATE sd_images SET sha256 = 'x'", "DELETE FROM sd_ratings", "UPDATE sd_ratings SET value = 0",
                "DROP TABLE sd_prompts", "CREATE TABLE evil (x)", "INSERT INTO sd_prompt_sets (name, source, params, "
                "created) VALUES ('x', 'x', '{}', 'x')"):
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            conn.execute(sql)
    conn.close()
    assert table_counts(db) == before
    # a good form with an extra field naming another table writes sd_ratings rows only
    status, headers, _ = post(port, {**base, "table": "runs", f"r.{pairs[0][1]}.detail": "4"}, cookie)
    assert status == 303 and "saved=1" in headers["location"]
    after = table_counts(db)
    assert after.pop("sd_ratings") == before.pop("sd_ratings") + 1 and after == before
    assert ratings(db)[-1] == (pairs[0][1], "ann", "detail", 4)


def test_a_datasette_actor_rates_without_the_token(servers):
    from wdb.serve import make_datasette

    db, pairs, _, _ = servers
    ds = make_datasette(db, ratings_token="another-token")
    actor = ds.sign({"a": {"id": "root"}}, "actor")

    async def go():
        page = await ds.client.get("/-/wdb/ratings", cookies={"ds_actor": actor})
        assert "Rating as root" in page.text
        csrf = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
        cookies = {"ds_actor": actor, "ds_csrftoken": page.cookies["ds_csrftoken"]}
        ok = await ds.client.post("/-/wdb/ratings", data={"csrftoken": csrf, f"r.{pairs[1][0]}.realism": "1"},
                                  cookies=cookies)
        anon = await ds.client.post("/-/wdb/ratings", data={"csrftoken": csrf, f"r.{pairs[1][0]}.realism": "1"},
                                    cookies={"ds_csrftoken": page.cookies["ds_csrftoken"]})
        return ok.status_code, anon.status_code

    assert asyncio.run(go()) == (303, 403)
    assert ratings(db)[-1] == (pairs[1][0], "root", "realism", 1)


def test_browser_rates_a_pair_and_the_rows_are_stored(servers, driver):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    db, pairs, port, _ = servers
    n0 = len(ratings(db))
    driver.get(f"http://127.0.0.1:{port}/-/wdb/ratings?{urlencode({'token': TOKEN, 'run': 1})}")
    base_id, tuned_id = pairs[0]
    wait_until(lambda: driver.execute_script(  # both pictures loaded from the WARC through their pointers
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"))
    assert driver.execute_script("return Array.from(document.images).every(i => i.naturalWidth == 64)")
    want = {}
    for k, a in enumerate(ASPECTS):
        for image_id, v in ((base_id, k), (tuned_id, 5 - k)):
            Select(driver.find_element(By.ID, f"r-{image_id}-{a}")).select_by_value(str(v))
            want[(image_id, a)] = v
    driver.find_element(By.ID, "rater-1").send_keys("alice")
    out = ROOT / "test-artefacts"
    out.mkdir(exist_ok=True)
    driver.save_screenshot(str(out / "ratings-page.png"))
    driver.find_element(By.ID, "submit-1").click()
    wait_until(lambda: driver.find_elements(By.ID, "saved"))
    assert driver.find_element(By.ID, "saved").text == "Saved 10 ratings."
    got = ratings(db)[n0:]
    assert sorted(got) == sorted((i, "alice", a, v) for (i, a), v in want.items())
