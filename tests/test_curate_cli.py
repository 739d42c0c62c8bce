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
