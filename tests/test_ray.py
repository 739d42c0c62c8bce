"""`wdb ingest --executor ray` on a local Ray (num_cpus=2, one session for the module): the same
rows as a local ingest, through a killed worker and a killed driver; task errors and timeouts
recorded as the archive's problems."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, WARC
from test_merge import assert_same
from wdb.db import open_db
from wdb.ingest import ingest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_AUTH_MODE"] = "disabled"
    if not WARC.exists():
        pytest.skip("corpus missing")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    conn = open_db(tmp_path_factory.mktemp("local") / "local.db")
    res = ingest(conn, [str(WARC)], workers=0, progress=False, quiet=True)
    return conn, res


def n_chunks(conn):
    return conn.execute("SELECT count(*) FROM archive_chunks").fetchone()[0]


def _counters(conn, run_id):
    return json.loads(conn.execute("SELECT counters FROM runs WHERE id = ?", (run_id,)).fetchone()[0])


def test_ray_ingest_equals_local_ingest(cluster, local, tmp_path):
    conn = open_db(tmp_path / "ray.db")
    res = ingest(conn, [str(WARC)], executor="ray", shard_dir=str(tmp_path / "shards"), progress=False, quiet=True)
    assert res.ok == local[1].ok and res.archives == local[1].archives
    assert res.counts == local[1].counts
    assert_same(local[0], conn)
    n = conn.execute("SELECT count(*) FROM archive_chunks").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM merged_shards").fetchone()[0] == n
    assert not list((tmp_path / "shards").iterdir())  # merged shards are removed
    again = ingest(conn, [str(WARC)], executor="ray", progress=False, quiet=True)  # nothing left to do
    assert len(again.skipped) == n and again.counts["pages"] == 0


def test_killed_worker_is_retried_and_the_result_equals_a_clean_run(cluster, local, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setenv("WDB_RAY_FAULT", f"exit:example.arc.gz@{marker}")
    conn = open_db(tmp_path / "ray.db")
    res = ingest(conn, [str(WARC)], executor="ray", shard_dir=str(tmp_path / "shards"), progress=False, quiet=True)
    assert marker.read_text().startswith("exit")  # the first attempt did die, after a commit
    assert res.archives == local[1].archives
    assert_same(local[0], conn)
    assert not conn.execute("SELECT count(*) FROM problems WHERE kind = 'worker_crash'").fetchone()[0]


@pytest.mark.parametrize("point", ["rows", "merged"])
def test_driver_killed_mid_merge_then_rerun_equals_a_clean_run(cluster, local, tmp_path, point):
    """rows: killed inside the fifth merge's transaction; merged: right after its commit, before
    the shard file is removed."""
    db, shards = tmp_path / "ray.db", tmp_path / "shards"
    env = dict(os.environ, PYTHONPATH=str(ROOT), WDB_MERGE_KILL=f"{point}:5", RAY_AUTH_MODE="disabled")
    r = subprocess.run([sys.executable, "-m", "wdb.cli", "ingest", str(db), str(WARC), "--executor", "ray",
                        "--address", cluster, "--shard-dir", str(shards), "--silent"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert r.returncode == -9, r.stderr[-2000:]
    conn = open_db(db)
    done = 4 if point == "rows" else 5  # the fifth rolled back, or committed
    assert conn.execute("SELECT count(*) FROM merged_shards").fetchone()[0] == done
    fifth = conn.execute("SELECT path FROM merged_shards ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    assert (point == "merged") == os.path.exists(fifth)
    from wdb.cluster.status import render, status

    st = status(conn)
    (gone,) = st["running"]
    assert not gone["alive"] and gone["progress"]["chunks"] == n_chunks(local[0])
    assert gone["progress"]["archives"]["total"] == local[0].execute("SELECT count(*) FROM archives").fetchone()[0]
    assert st["shards"]["merged"] == done and st["archives"] == {"running": local[0].execute("SELECT count(*) FROM archives").fetchone()[0]}
    assert "gone (its archives are resumed by the next ingest)" in render(st)
    res = ingest(conn, [str(WARC)], executor="ray", shard_dir=str(shards), progress=False, quiet=True)
    assert res.archives == local[1].archives
    if point == "rows":
        assert _counters(conn, res.run_id)["shards_recovered"] >= 1  # the one being merged was not read again
    else:
        assert not os.path.exists(fifth)  # merged before: removed, not merged again
    assert_same(local[0], conn)
    n = conn.execute("SELECT count(*) FROM archive_chunks").fetchone()[0]
    assert conn.execute("SELECT count(DISTINCT shard) FROM merged_shards").fetchone()[0] == n


def test_task_error_and_timeout_are_the_archives_problems(cluster, tmp_path, monkeypatch):
    raised, hung = tmp_path / "raised", tmp_path / "hung"
    monkeypatch.setenv("WDB_RAY_FAULT", f"raise:aut-tests/example.arc.gz@{raised},hang:jwarc-tests/cc.warc.gz@{hung}")
    files = [WARC / "aut-tests" / "example.arc.gz", WARC / "jwarc-tests" / "cc.warc.gz",
             WARC / "ipwb-samples" / "sample-1.warc.gz"]
    if not all(f.exists() for f in files):
        pytest.skip("corpus files missing")
    conn = open_db(tmp_path / "ray.db")
    res = ingest(conn, [str(f) for f in files], executor="ray", shard_dir=str(tmp_path / "s"), progress=False,
                 quiet=True, task_timeout=3)
    assert not res.ok and res.archives == {"failed": 2, "done": 1}
    assert raised.read_text().count("raise") == 1  # an application error is not retried
    assert hung.read_text().startswith("hang")
    problems = {loc: msg for loc, msg in conn.execute(
        "SELECT a.location, p.kind || ': ' || p.message FROM problems p JOIN archives a ON a.id = p.archive_id")}
    status = dict(conn.execute("SELECT location, status FROM archives").fetchall())
    assert status == {str(files[0]): "failed", str(files[1]): "failed", str(files[2]): "done"}
    assert problems[str(files[0])].startswith("chunk_error: task failed: RuntimeError: injected fault")
    assert problems[str(files[1])].startswith("worker_hang: task ran past the 3s task timeout; cancelled")
    assert str(files[2]) not in problems
