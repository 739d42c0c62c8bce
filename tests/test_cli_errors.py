"""What a user sees when something is wrong: one line on stderr, a distinct exit code, a runs row
that says why; never a traceback for the user's own mistakes or the machine's limits."""
import os
import resource
import sqlite3
import subprocess
import sys

from click.testing import CliRunner

from conftest import ROOT, corpus
from wdb.cli import cli


def wdb(*args, **kw):
    return subprocess.run([sys.executable, "-m", "wdb.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)), **kw)


def test_an_empty_input_file_says_so(tmp_path):
    empty = tmp_path / "empty.warc"
    empty.write_bytes(b"")
    res = wdb("ingest", tmp_path / "t.db", empty, "--workers", "0")
    assert res.returncode == 1
    assert "empty.warc" in res.stderr and "no records" in res.stderr and "Traceback" not in res.stderr


def test_a_missing_input_is_a_usage_error(tmp_path):
    res = wdb("ingest", tmp_path / "t.db", tmp_path / "nope.warc.gz")
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr


def test_an_sql_error_in_a_query_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("-- title: broken\nSELECT nosuchcolumn FROM pages")
    wdb("migrate", tmp_path / "t.db")
    res = wdb("query", tmp_path / "t.db", bad)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "nosuchcolumn" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_unknown_query_name_lists_the_known_ones(tmp_path):
    CliRunner().invoke(cli, ["migrate", str(tmp_path / "t.db")])
    res = CliRunner().invoke(cli, ["query", str(tmp_path / "t.db"), "no_such_query"])
    assert res.exit_code == 2 and "alt_pairs" in res.output


def _limit_file_size(nbytes):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return pre


def test_disk_full_is_one_line_exit_3_and_a_runs_row(tmp_path):
    """RLIMIT_FSIZE makes the database's files unable to grow: the disk is full for this process."""
    db = tmp_path / "full.db"
    assert wdb("migrate", db).returncode == 0
    src = corpus("aut-tests/example.warc.gz")
    res = subprocess.run([sys.executable, "-m", "wdb.cli", "ingest", str(db), str(src), "--workers", "0", "--silent"],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         preexec_fn=_limit_file_size(db.stat().st_size + (1 << 20)))
    assert res.returncode == 3, res.stderr
    assert "disk full" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    conn = sqlite3.connect(db)
    status, error = conn.execute("SELECT status, error FROM runs ORDER BY id DESC").fetchone()
    # the row is closed when the disk allows it (WAL frames already written); else it stays running
    assert status in ("failed", "running")
    if status == "failed":
        assert "full" in error or "I/O" in error
    # with room again, the run resumes to a complete ingest
    again = wdb("ingest", db, src, "--workers", "0", "--silent")
    assert again.returncode == 0, again.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM pages").fetchone()[0] == 140
