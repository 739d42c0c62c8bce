"""The `wdb signals` / `wdb dedup` commands on the planted-duplicates database."""
from click.testing import CliRunner

from test_curate_dedup import planted  # noqa: F401 -- the module fixture
from wdb.cli import cli as group


def test_signals_and_dedup_commands(planted):  # noqa: F811
    db, _, _ = planted
    r = CliRunner().invoke(group, ["signals", str(db), "--only", "lang,stats,image", "--texts", "alt", "--silent"])
    assert r.exit_code == 0, r.output
    assert "lang_texts" in r.output and "images 14" in r.output
    r = CliRunner().invoke(group, ["dedup", str(db), "--by", "sha256,phash", "--silent"])
    assert r.exit_code == 0, r.output
    assert "sha256_groups 1" in r.output and "phash_groups 2" in r.output
    r = CliRunner().invoke(group, ["dedup", str(db), "--by", "md5"])
    assert r.exit_code == 2 and "unknown dedup method" in r.output
    r = CliRunner().invoke(group, ["signals", str(db), "--only", "colour"])
    assert r.exit_code == 2 and "unknown signal family" in r.output
    r = CliRunner().invoke(group, ["signals", str(db), "--only", "aesthetic", "--silent"])
    assert r.exit_code == 0 and "no heads folder" in r.output


def test_media_page_shows_signals_and_duplicate_groups(planted):  # noqa: F811
    """After signals and dedup: the media page of a duplicated photo lists its groups with the other
    members as thumbnails, and its signals; the curation tables have their facets."""
    import asyncio

    from wdb.db import open_db
    from wdb.serve import make_datasette

    db, _, _ = planted
    for args in (["signals", str(db), "--only", "lang,stats,image", "--silent"],
                 ["dedup", str(db), "--by", "sha256,phash", "--silent"]):
        assert CliRunner().invoke(group, args).exit_code == 0
    conn = open_db(db)
    mid = conn.execute("SELECT id FROM media WHERE url LIKE '%/copy/a.jpg'").fetchone()[0]
    others = {r[0] for r in conn.execute("SELECT min(id) FROM media WHERE url LIKE '%/a%.jpg' AND id != ? "
                                         "GROUP BY url_key", (mid,))}
    ds = make_datasette(db)
    html = asyncio.run(ds.client.get(f"/-/wdb/media/{mid}")).text
    assert "Duplicate groups" in html and "Signals" in html
    shown = {int(x) for x in __import__("re").findall(r'href="/-/wdb/media/(\d+)"><img', html)}
    assert shown and shown <= others and len(shown) >= 5  # the sha256 copies and the phash near-copies
    for table, facet in (("text_signals", "label"), ("dup_groups", "method")):
        r = asyncio.run(ds.client.get(f"/{db.stem}/{table}.json?_facet={facet}"))
        assert r.status_code == 200 and r.json()["facet_results"]


def test_signals_and_dedup_twice_at_once(planted, tmp_path):  # noqa: F811
    """Two `wdb signals` and then two `wdb dedup` processes on one database at the same time: both
    succeed and the rows equal those of one run."""
    import os
    import shutil
    import sqlite3
    import subprocess
    import sys

    from conftest import ROOT

    src, _, _ = planted
    db = tmp_path / "twice.db"
    conn = sqlite3.connect(db)
    sqlite3.connect(src).backup(conn)
    for t in ("text_signals", "page_signals", "image_signals", "dup_groups", "dedup_state"):
        conn.execute(f"DELETE FROM {t}")  # an earlier test of this module may have run the stages
    conn.commit()
    conn.close()
    ref = tmp_path / "once.db"
    shutil.copy(db, ref)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    steps = (["signals", "--only", "lang,stats,image", "--silent"], ["dedup", "--by", "url,sha256,phash", "--silent"])
    for step in steps:
        cmd = [sys.executable, "-m", "wdb.cli", step[0], str(db), *step[1:]]
        procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        assert [p.wait(timeout=300) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
        assert CliRunner().invoke(group, [step[0], str(ref), *step[1:]]).exit_code == 0

    def rows(path):
        c = sqlite3.connect(path)
        return {t: sorted(c.execute(q).fetchall()) for t, q in (
            ("text", "SELECT media_id, source, signal, version, value, label FROM text_signals"),
            ("image", "SELECT url_key, signal, version, value, label FROM image_signals"),
            ("dup", "SELECT kind, key, method, version, group_id, keep FROM dup_groups"))}

    got, want = rows(db), rows(ref)
    assert want["text"] and want["dup"] and got == want
