"""`wdb optout`: opted-out URLs and domains disappear from every recipe, exactly the pairs they match
(checked against a Python matcher over the same rows); bad lines are one line each, not fatal; a
second run adds nothing; the exports that held newly opted-out pairs are listed."""
import json
import shutil
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from test_recipes import HOST, build, keys, pairs
from wdb import recipes
from wdb.cli import cli
from wdb.db import open_db
from wdb.html.urls import url_key


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("optout"))


def _host(url):
    h = (urlsplit(url).hostname or "").lower()
    return h[4:] if h.startswith("www.") else h


def matched(conn, urls: set[str], domains: set[str]) -> set[int]:
    """Media ids an opt-out list matches, computed in Python from the raw URLs."""
    keys_ = {url_key(u) for u in urls}
    out = set()
    for mid, murl, purl in conn.execute("SELECT m.id, m.url, p.url FROM media m JOIN pages p ON p.id = m.page_id"):
        hosts = {_host(murl), _host(purl)}
        if url_key(murl) in keys_ or url_key(purl) in keys_ or any(
                h == d or h.endswith("." + d) for h in hosts for d in domains):
            out.add(mid)
    return out


def test_optout_removes_exactly_the_matching_pairs_from_every_recipe(built, tmp_path):
    db0, model = built
    db = tmp_path / "o.db"
    shutil.copy(db0, db)
    conn = open_db(db)
    photo, cover = conn.execute(
        f"SELECT (SELECT url FROM media WHERE url LIKE '{HOST}/c/%' ORDER BY id LIMIT 1 OFFSET 3), "
        "(SELECT url FROM media WHERE url LIKE '%books.toscrape.com%' ORDER BY id LIMIT 1)").fetchone()
    params = {r.name: ({"model": model} if "model" in r.params else {}) for r in recipes.builtin()}
    params["laion2b_en"]["min_score"] = params["described"]["min_score"] = "-1"
    before = {n: keys(pairs(conn, n, **p)) for n, p in params.items()}
    # an export holding some pairs, as wdb export records them
    with conn:
        conn.execute("INSERT INTO exports (id, recipe, recipe_sha256, params, format, out, status, created) "
                     "VALUES (7, 'datacomp_basic', 'x', '{}', 'webdataset', '/tmp/shards', 'done', '2026-01-01')")
        conn.executemany("INSERT INTO export_items (export_id, uid, media_id, text_source, shard) VALUES (7, ?, ?, ?, 's0')",
                         [(f"{m:032x}", m, s) for m, s in sorted(before["datacomp_basic"])])
    # the photo URL given in another spelling (https, www., upper-case host): the same canonical URL
    variant = photo.replace("http://photos.example.org", "https://WWW.Photos.Example.org")
    f = tmp_path / "optout.txt"
    f.write_bytes(f"\ufeff# artists' opt-outs\r\n\n{variant}\r\nbooks.toscrape.com\nnot a url\nftp://x.org/a.jpg\nhttp://\n"
                  f"localhost\n{'x' * 9000}\n".encode())
    out = CliRunner().invoke(cli, ["optout", str(db), str(f)])
    assert out.exit_code == 0, out.output
    bad = [ln for ln in out.output.splitlines() if ln.startswith("wdb: optout:")]
    assert len(bad) == 5 and all(f"{f}:" in ln for ln in bad)
    assert ":5: holds white space" in bad[0] and "not an http(s) URL" in bad[1] and "without a host" in bad[2]
    assert "export 7 (datacomp_basic, webdataset, /tmp/shards)" in out.output and "re-issue" in out.output
    gone = matched(conn, {photo}, {"books.toscrape.com"})
    assert len(gone) > 20 and photo != cover
    assert {m for (m,) in conn.execute("SELECT media_id FROM optout_media")} == gone
    for n, p in params.items():
        after = keys(pairs(conn, n, **p))
        assert after == {k for k in before[n] if k[0] not in gone}, n
        if n != "clip_top":  # clip_top's cut-off may fall above the covers
            assert after != before[n], n
    assert conn.execute("SELECT count(*) FROM optout_rejects").fetchone()[0] == 5
    # idempotent: the same file again adds nothing, lists no export
    again = CliRunner().invoke(cli, ["optout", str(db), str(f), "--json"])
    res = json.loads(again.output)
    assert res["counts"]["added"] == 0 and res["counts"]["newly_media"] == 0 and res["exports"] == []
    assert conn.execute("SELECT count(*) FROM optout").fetchone()[0] == 2
    # a page URL opts out every item of that page
    g = tmp_path / "page.txt"
    g.write_text(f"{HOST}/street\n")
    res = json.loads(CliRunner().invoke(cli, ["optout", str(db), str(g), "--json"]).output)
    page = matched(conn, {photo, f"{HOST}/street"}, {"books.toscrape.com"})
    assert res["counts"]["newly_media"] == len(page - gone) > 20 and res["exports"][0]["id"] == 7
    for n, p in params.items():
        assert keys(pairs(conn, n, **p)) == {k for k in before[n] if k[0] not in page}, n
    conn.close()


def test_optout_of_a_subdomain_and_the_canned_query_agree(built, tmp_path):
    """A domain matches its subdomains; the Datasette canned query of a recipe (the same wrapped
    SQL, defaults in the SQL) returns what select() returns."""
    import sqlite3

    db0, model = built
    db = tmp_path / "s.db"
    shutil.copy(db0, db)
    f = tmp_path / "d.txt"
    f.write_text("example.org\n")
    assert CliRunner().invoke(cli, ["optout", str(db), str(f)]).exit_code == 0
    conn = open_db(db)
    left = keys(pairs(conn, "mmc4_dedup"))
    assert left and not [m for m, _ in left if "example.org" in conn.execute(
        "SELECT url FROM media WHERE id = ?", (m,)).fetchone()[0]]
    r = recipes.find("mmc4_dedup")
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    got = {(m, s) for m, s in (row[:3:2] for row in ro.execute(recipes.canned_sql(r), {"distance": ""}))}
    assert got == left
    ro.close()
    conn.close()
