"""wdb merge: shards made by separate ingests merge into exactly the rows of one ingest, once, and a
merge killed inside its transaction leaves nothing half done. No Ray here (tests/test_ray.py)."""
import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import ROOT, WARC
from wdb.cluster.merge import DERIVED, LATER, REMAP, base_tables, merge_shard
from wdb.db import open_db
from wdb.ingest import ingest
from wdb.ingest.store import owner_name

# columns whose values legitimately differ between two ingests of the same archives
VOLATILE = {"archives": {"run_id", "started_at", "finished_at", "owner", "heartbeat"},
            "problems": {"run_id"}}
SKIP_TABLES = {"runs", "_migrations", "merged_shards"}  # who ran what, when: differs by design


def _cols(conn, t):
    return [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]


def natural_rows(conn: sqlite3.Connection) -> dict:
    """Every table's contents with each id replaced by its natural key (archive identity, page
    offset/inner, media seq), so two databases with the same rows compare equal whatever their ids."""
    arch = "(SELECT identity FROM archives WHERE id = x.archive_id)"
    page = "(SELECT json_array(a.identity, p.\"offset\", p.inner) FROM pages p JOIN archives a ON a.id = p.archive_id " \
           "WHERE p.id = {})"
    media = ("(SELECT json_array(a.identity, p.\"offset\", p.inner, m.seq) FROM media m JOIN pages p ON p.id = m.page_id "
             "JOIN archives a ON a.id = p.archive_id WHERE m.id = x.media_id)")
    key = {"archive_id": arch, "page_id": page.format("x.page_id"), "media_id": media}
    out = {}
    for t in base_tables(conn):
        if t in SKIP_TABLES:
            continue
        exprs = []
        for c in _cols(conn, t):
            if c in VOLATILE.get(t, ()) or (c == "id" and t in REMAP):
                continue
            exprs.append(key.get(c, f'x."{c}"'))
        rows = conn.execute(f"SELECT {', '.join(exprs)} FROM {t} x").fetchall()
        out[t] = sorted(rows, key=repr)
    return out


def assert_same(a: sqlite3.Connection, b: sqlite3.Connection) -> None:
    ra, rb = natural_rows(a), natural_rows(b)
    assert set(ra) == set(rb)
    for t in ra:
        assert ra[t] == rb[t], f"table {t} differs: {len(ra[t])} rows against {len(rb[t])}"


def unclassified(conn) -> list[str]:
    """Tables the merge does not know, and id-reference columns it copies without a remap."""
    bad = []
    known = set(REMAP) | set(DERIVED) | set(LATER)
    for t in base_tables(conn):
        if t not in known:
            bad.append(t)
            continue
        if sum(t in s for s in (REMAP, DERIVED, LATER)) != 1:
            bad.append(f"{t} (in more than one list)")
        if t not in REMAP:
            continue
        refs = {r[3] for r in conn.execute(f"PRAGMA foreign_key_list({t})")}
        pk_id = {r[1] for r in conn.execute(f"PRAGMA table_info({t})") if r[1] == "id" and r[5]}
        ids = {c for c in _cols(conn, t) if c.endswith("_id")}
        for c in sorted(refs | pk_id | ids):
            if c not in REMAP[t]:
                bad.append(f"{t}.{c}")
    return bad


def test_every_table_and_id_reference_is_known_to_the_merge(tmp_path):
    conn = open_db(tmp_path / "a.db")
    assert unclassified(conn) == []
    # the check bites: a new table pointing at media, and a new reference in a merged table
    conn.execute("CREATE TABLE later_thing (media_id INTEGER REFERENCES media(id), v TEXT)")
    conn.execute("ALTER TABLE media_urls ADD COLUMN page_id INTEGER REFERENCES pages(id)")
    assert unclassified(conn) == ["later_thing", "media_urls.page_id"]


def _archives():
    files = sorted(p for p in WARC.rglob("*") if p.is_file() and p.name.lower().endswith((".warc", ".warc.gz", ".arc", ".arc.gz")))
    if len(files) < 6:
        pytest.skip("corpus archives missing")
    return files


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One local ingest of every corpus archive, and the same archives as three shards ingested
    apart (the second shard repeats an archive of the first)."""
    d = tmp_path_factory.mktemp("merge")
    files = _archives()
    whole = open_db(d / "whole.db")
    ingest(whole, [str(f) for f in files], workers=0, progress=False, quiet=True)
    thirds = [files[0::3], files[1::3] + [files[0]], files[2::3]]
    shards = []
    for i, part in enumerate(thirds):
        p = d / f"shard-{i}.db"
        c = open_db(p)
        ingest(c, [str(f) for f in part], workers=0, progress=False, quiet=True)
        c.close()
        shards.append(p)
    return d, whole, shards


def _merge(main, shard):
    from wdb.stage import end_run, start_run

    rid = start_run(main, "merge", {"shards": [str(shard)]})
    try:
        return merge_shard(main, shard, rid, owner_name(rid))
    finally:
        end_run(main, rid, {}, "done", 0.0)


def _merge_cli(db, shards, env=None):
    return subprocess.run([sys.executable, "-m", "wdb.cli", "merge", str(db), *map(str, shards)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))


def test_shards_merge_into_the_rows_of_one_ingest_exactly_once(made, tmp_path):
    d, whole, shards = made
    main = open_db(tmp_path / "main.db")
    runs = {}
    for s in shards:
        r = _merge(main, s)
        assert r.merged and r.total > 0
        runs[s] = r
    assert runs[shards[1]].skipped and "already ingested" in runs[shards[1]].skipped[0][1]
    assert_same(whole, main)
    before = natural_rows(main)
    for s in shards:  # again: recorded, nothing copied
        assert not _merge(main, s).merged
    assert natural_rows(main) == before
    assert main.execute("SELECT count(*) FROM merged_shards").fetchone()[0] == 3
    from wdb.cluster.status import render, status

    st = status(main)
    assert st["shards"]["merged"] == 3 and st["shards"]["rows"] == sum(r.total for r in runs.values())
    assert st["archives"] == dict(whole.execute("SELECT status, count(*) FROM archives GROUP BY status").fetchall())
    assert st["running"] == [] and "no run is going" in render(st)
    # a merged database merges again (a merge tree): same rows, its shards' history carried
    top = open_db(tmp_path / "top.db")
    _merge(top, tmp_path / "main.db")
    assert_same(whole, top)
    assert top.execute("SELECT count(*) FROM merged_shards").fetchone()[0] == 4


def test_merge_killed_inside_its_transaction_then_rerun_equals_one_ingest(made, tmp_path):
    d, whole, shards = made
    db = tmp_path / "killed.db"
    r = _merge_cli(db, shards, {"WDB_MERGE_KILL": "rows:2"})
    assert r.returncode == -9, r.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM merged_shards").fetchone()[0] == 1  # the second rolled back
    first = sqlite3.connect(shards[0])
    assert conn.execute("SELECT count(*) FROM pages").fetchone()[0] == first.execute("SELECT count(*) FROM pages").fetchone()[0]
    r = _merge_cli(db, shards)
    assert r.returncode == 0, r.stderr
    assert "merged before" in r.stderr
    assert_same(whole, open_db(db))


def test_refuses_what_is_not_an_ingest_shard(made, tmp_path):
    d, whole, shards = made
    from wdb.cluster.merge import ShardError

    main = open_db(tmp_path / "m.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ShardError, match="not a wdb database"):
        _merge(main, junk)
    later = tmp_path / "later.db"
    c = open_db(later)
    c.execute("INSERT INTO runs (command, params, started_at) VALUES ('x', '{}', 'now')")
    c.execute("INSERT INTO clip_models (name) VALUES ('ViT-B-32')")
    c.close()
    with pytest.raises(ShardError, match="later stage"):
        _merge(main, later)
    r = _merge_cli(tmp_path / "m.db", [junk])
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a wdb database" in r.stderr
    assert main.execute("SELECT count(*) FROM pages").fetchone()[0] == 0
