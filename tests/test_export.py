"""wdb export / wdb check on real COCO photos in a WARC: every format read back by the real readers
(webdataset, pyarrow, numpy as DataComp's resharder does), counts against the recipe's SQL, failures
listed and never fatal, the checks refusing what they must, and kill -9 then re-run giving the same
files byte for byte."""
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import ROOT
from export_data import ALL_ALTS, WITH_AUDIO, built_with_all_alts
from wdb.cli import cli
from wdb.db import open_db
from wdb.recipes import find


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return built_with_all_alts(tmp_path_factory, "export")


def sql_pairs(conn, recipe_sql: str) -> list[tuple]:
    """The recipe's pairs by plain SQL, with the uid computed here from its definition."""
    rows = conn.execute(f"SELECT r.media_id, r.text, r.text_source, m.url_key, p.url, m.url FROM ({recipe_sql}\n) r "
                        "JOIN media m ON m.id = r.media_id JOIN pages p ON p.id = m.page_id").fetchall()
    out = []
    for mid, text, src, key, page, url in rows:
        uid = hashlib.sha256("\x1f".join(("wdb-pair-v1", key, page, src, text)).encode()).hexdigest()[:32]
        out.append((uid, mid, text, url))
    return out


def run_cli(*args) -> tuple[int, str]:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    return res.exit_code, res.output


def tree(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_webdataset_shards_are_read_by_webdataset_and_pyarrow(db, tmp_path):
    import webdataset as wds

    path, all_sql = db
    out = tmp_path / "wds"
    code, text = run_cli("export", path, all_sql, out, "--format", "webdataset", "--shard-size", "8", "--silent")
    assert code == 0, text
    conn = open_db(path)
    expect = sql_pairs(conn, ALL_ALTS)
    missing = {u for u, mid, _, url in expect if "never-archived" in url}
    assert len(expect) == 30 and len(missing) == 1
    shards = sorted(out.glob("*.tar"))
    assert [s.name for s in shards] == ["00000000.tar", "00000001.tar", "00000002.tar", "00000003.tar"]
    samples = list(wds.WebDataset([str(s) for s in shards], shardshuffle=False))
    got = {json.loads(s["json"])["uid"]: s for s in samples}
    assert len(samples) == len(got) == len(expect) - 1
    assert set(got) == {u for u, *_ in expect} - missing
    sizes = json.loads((out / "sizes.json").read_text())
    assert sum(sizes.values()) == len(samples) and set(sizes) == {s.name for s in shards}
    by_url = {url: got[u] for u, _, _, url in expect if u in got}
    for u, mid, text, url in expect:
        if u in got:
            s = got[u]
            assert "." not in s["__key__"] and s["txt"].decode() == text
            meta = json.loads(s["json"])
            assert meta["url"] == url and meta["caption"] == text and meta["text_source"] == "alt"
    # JPEG and PNG bytes pass through as archived; the GIF is re-encoded as a JPEG
    gif = by_url["http://photos.example.org/odd/photo.gif"]
    assert "jpg" in gif and "gif" not in gif
    png = by_url["http://photos.example.org/odd/photo.png"]
    (sha,) = conn.execute("SELECT sha256 FROM archived_media WHERE url LIKE '%photo.png'").fetchone()
    assert hashlib.sha256(png["png"]).hexdigest() == sha
    for s in samples:
        body = s.get("jpg") or s.get("png")
        meta = json.loads(s["json"])
        from PIL import Image

        assert Image.open(io.BytesIO(body)).size == (meta["width"], meta["height"])
    # every shard's parquet lists its planned pairs, the failure among them with its reason
    rows = [r for p in sorted(out.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert len(rows) == len(expect)
    failed = [r for r in rows if r["status"] != "success"]
    assert [r["uid"] for r in failed] == list(missing) and failed[0]["error_message"].startswith("no_bytes")
    # the database: an exports row, one export_items row per pair written, a runs row, a problems row
    eid, status, pairs, msha = conn.execute("SELECT id, status, pairs, manifest_sha256 FROM exports "
                                            "WHERE out = ?", (str(out.resolve()),)).fetchone()
    assert status == "done" and pairs == len(samples)
    assert hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() == msha
    assert {u for (u,) in conn.execute("SELECT uid FROM export_items WHERE export_id = ?", (eid,))} == set(got)
    assert conn.execute("SELECT count(*) FROM problems WHERE kind = 'export_no_bytes' AND message LIKE ?",
                        (f"export {eid} %",)).fetchone()[0] == 1
    run = json.loads(conn.execute("SELECT counters FROM runs WHERE command = 'export' AND status = 'done' "
                                  "ORDER BY id DESC LIMIT 1").fetchone()[0])
    assert run["written"] == len(samples) and run["failed"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe_sql"] == ALL_ALTS and manifest["counts"]["written"] == len(samples)
    assert manifest["counts"]["by_reason"] == {"no_bytes": 1}
    assert all(hashlib.sha256((out / n).read_bytes()).hexdigest() == h for n, h in manifest["files"].items())
    # a second run of the same export keeps every finished shard as it is
    before = {p.name: p.stat().st_mtime_ns for p in shards}
    code, text = run_cli("export", path, all_sql, out, "--format", "webdataset", "--shard-size", "8", "--silent")
    assert code == 0, text
    assert {p.name: p.stat().st_mtime_ns for p in shards} == before
    assert conn.execute("SELECT count(*) FROM exports WHERE out = ?", (str(out.resolve()),)).fetchone()[0] == 1
    # another export into the same folder is refused
    code, text = run_cli("export", path, all_sql, out, "--format", "webdataset", "--shard-size", "4", "--silent")
    assert code == 1 and "holds another export" in text


def test_datacomp_basic_and_the_uids_subset_file_select_exactly_its_pairs(db, tmp_path):
    """DataComp's resharder keeps a sample when np.searchsorted finds its uid in the sorted u8,u8 array."""
    path, all_sql = db
    conn = open_db(path)
    basic = sql_pairs(conn, find("datacomp_basic").sql)
    alts = {text for _, _, text, _ in basic}
    assert len(basic) >= 20
    assert "IMG_1234.jpg" not in alts and not any(t.startswith("Une rue") for t in alts)
    assert not any("thumb" in url for *_, url in basic)
    assert run_cli("export", path, "datacomp_basic", tmp_path / "uids", "--format", "uids", "--silent")[0] == 0
    assert run_cli("export", path, all_sql, tmp_path / "pool", "--format", "webdataset", "--silent")[0] == 0
    subset = np.load(tmp_path / "uids" / "uids.npy")
    assert subset.dtype == np.dtype("u8,u8") and len(subset) == len(basic)
    assert (np.sort(subset) == subset).all()
    import webdataset as wds

    kept = set()
    for s in wds.WebDataset(sorted(str(p) for p in (tmp_path / "pool").glob("*.tar")), shardshuffle=False):
        uid = json.loads(s["json"])["uid"]
        key = np.array([(int(uid[:16], 16), int(uid[16:32], 16))], np.dtype("u8,u8"))
        i = np.searchsorted(subset, key)[0]
        if i < len(subset) and subset[i] == key[0]:
            kept.add(uid)
    assert kept == {u for u, *_ in basic}


def test_metadata_and_page_formats(db, tmp_path):
    path, all_sql = db
    conn = open_db(path)
    expect = {u: (mid, text, url) for u, mid, text, url in sql_pairs(conn, ALL_ALTS)}
    for fmt in ("parquet", "img2dataset", "tar-in-tar", "txt-media-txt"):
        code, text = run_cli("export", path, all_sql, tmp_path / fmt, "--format", fmt, "--shard-size", "8", "--silent")
        assert code == 0, (fmt, text)
    pool = pq.read_table(sorted((tmp_path / "parquet").glob("*.parquet"))).to_pylist()
    for col in ("uid", "url", "text", "original_width", "original_height", "clip_b32_similarity_score",
                "clip_l14_similarity_score", "sha256"):
        assert col in pool[0]
    assert {r["uid"]: (r["media_id"], r["text"], r["url"]) for r in pool} == expect
    assert all(len(r["uid"]) == 32 and (r["sha256"] is None or len(r["sha256"]) == 64) for r in pool)
    i2d = pq.read_table(sorted((tmp_path / "img2dataset").glob("*.parquet"))).to_pylist()
    assert {r["uid"]: (r["caption"], r["url"]) for r in i2d} == {u: (t, url) for u, (_, t, url) in expect.items()}
    # tar-in-tar: one inner tar per page, its images in document order and the page text
    texts = dict(conn.execute("SELECT id, text FROM pages"))
    seen = 0
    for outer in sorted((tmp_path / "tar-in-tar").glob("*.tar")):
        with tarfile.open(outer) as t:
            for m in t.getmembers():
                inner = tarfile.open(fileobj=io.BytesIO(t.extractfile(m).read()))
                names = inner.getnames()
                assert names[-2:] == ["page.txt", "page.json"]
                assert inner.extractfile("page.txt").read().decode() == texts[int(m.name[:-4])]
                listed = json.loads(inner.extractfile("page.json").read())["items"]
                assert [x["pos"] for x in listed] == sorted(x["pos"] for x in listed)
                seen += len(listed)
    assert seen == len(expect) - 1  # the image nobody archived
    # txt-media-txt: the text around each item is the media_context view's
    ctx = {mid: (b, a) for mid, b, a in conn.execute("SELECT media_id, text_before, text_after FROM media_context")}
    rows = pq.read_table(sorted((tmp_path / "txt-media-txt").glob("*.parquet"))).to_pylist()
    samples = [s for r in rows for s in r["samples"]]
    assert len(samples) == len(expect) and len(rows) == len(texts)
    for s in samples:
        mid = expect[s["uid"]][0]
        assert (s["text_before"], s["text_after"]) == ctx[mid]


def test_txt_media_txt_holds_audio_as_images_and_webdataset_lists_it_as_undecodable(db, tmp_path):
    from conftest import CORPUS

    path, _ = db
    recipe = tmp_path / "audio.sql"
    recipe.write_text(WITH_AUDIO)
    assert run_cli("export", path, recipe, tmp_path / "t", "--format", "txt-media-txt", "--silent")[0] == 0
    rows = pq.read_table(sorted((tmp_path / "t").glob("*.parquet"))).to_pylist()
    samples = [s for r in rows for s in r["samples"]]
    (audio,) = [s for s in samples if s["kind"] == "audio"]
    assert audio["text"] == "A bell rings" and audio["text_source"] == "title"
    assert audio["sha256"] == hashlib.sha256((CORPUS / "media" / "bell.oga").read_bytes()).hexdigest()
    assert audio["text_before"].rstrip().endswith("And a sound from the street.") and "The end." in audio["text_after"]
    assert len(samples) == 31
    assert run_cli("export", path, recipe, tmp_path / "w", "--silent")[0] == 0
    m = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert m["counts"]["by_reason"] == {"no_bytes": 1, "undecodable": 1}
    assert [f["media_id"] for f in m["failures"] if f["kind"] == "undecodable"] == [audio_id(path)]


def audio_id(path) -> int:
    return open_db(path).execute("SELECT id FROM media WHERE kind = 'audio'").fetchone()[0]


def test_resize_keeps_the_ratio(db, tmp_path):
    import webdataset as wds
    from PIL import Image

    path, all_sql = db
    code, text = run_cli("export", path, all_sql, tmp_path / "r", "--resize", "64", "--silent")
    assert code == 0, text
    n = 0
    for s in wds.WebDataset(sorted(str(p) for p in (tmp_path / "r").glob("*.tar")), shardshuffle=False):
        meta = json.loads(s["json"])
        w, h = Image.open(io.BytesIO(s.get("jpg") or s.get("png"))).size
        assert (w, h) == (meta["width"], meta["height"])
        ow, oh = meta["original_width"], meta["original_height"]
        if min(ow, oh) > 64:
            assert min(w, h) == 64 and abs(w / h - ow / oh) < 0.05
        else:
            assert (w, h) == (ow, oh)
        n += 1
    assert n == 29


def test_check_refuses_duplicates_offsets_and_non_subsets(db, tmp_path):
    path, all_sql = db
    code, text = run_cli("check", path, all_sql)
    assert code == 0 and "30 pairs, 29 pointers verified" in text and "no problems" in text, text
    dup = tmp_path / "dup.sql"
    dup.write_text(ALL_ALTS.replace("ORDER BY m.id", "") + " UNION ALL SELECT id, alt, 'alt', seq FROM media "
                   "WHERE url LIKE '%/odd/photo.png'")
    code, text = run_cli("check", path, dup)
    assert code == 1 and "duplicate_uid 1" in text, text
    code, text = run_cli("export", path, dup, tmp_path / "d", "--silent")
    assert code == 1 and "duplicate_uid 1" in text and not list((tmp_path / "d").glob("*"))
    code, text = run_cli("export", path, dup, tmp_path / "d", "--silent", "--first-of-duplicates")
    assert code == 0, text
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["counts"]["duplicates_dropped"] == 1
    # a subset that is not one: every alt is not within datacomp_basic; the other way round it is
    code, text = run_cli("check", path, all_sql, "--superset", "datacomp_basic", "--no-verify")
    n_basic = len(sql_pairs(open_db(path), find("datacomp_basic").sql))
    assert code == 1 and f"not_in_superset {30 - n_basic}" in text, text
    assert run_cli("check", path, "datacomp_basic", "--superset", all_sql, "--no-verify")[0] == 0
    # the superset as the pairs an earlier export wrote
    assert run_cli("export", path, all_sql, tmp_path / "sup", "--format", "uids", "--silent")[0] == 0
    (eid,) = open_db(path).execute("SELECT id FROM exports WHERE out = ?", (str((tmp_path / "sup").resolve()),)).fetchone()
    assert run_cli("check", path, "datacomp_basic", "--superset", f"export:{eid}", "--no-verify")[0] == 0
    code, text = run_cli("check", path, dup, "--superset", "export:99999", "--no-verify")
    assert code == 1 and "no export '99999'" in text, text
    narrow = tmp_path / "narrow.sql"
    narrow.write_text(f"-- title: narrows\n-- narrows: {all_sql}\n" + find("datacomp_basic").sql)
    code, text = run_cli("check", path, narrow, "--no-verify")
    assert code == 0 and "subset of" in text, text
    # a tampered copy: one item's position past its page's text, one pointer's sha256 wrong
    bad = tmp_path / "bad.db"
    src, conn = sqlite3.connect(path), sqlite3.connect(bad)
    src.backup(conn)  # not a file copy: closing another descriptor of a live database drops its locks
    src.close()
    conn.execute("UPDATE media SET pos = 100000 WHERE url LIKE '%/odd/photo.gif'")
    conn.execute("UPDATE archived_media SET sha256 = 'ab' || substr(sha256, 3) WHERE url LIKE '%/odd/photo.png'")
    conn.commit()
    conn.close()
    code, text = run_cli("check", bad, all_sql)
    assert code == 1 and "offset_outside_text 1" in text and "sha256_mismatch 1" in text, text
    conn = sqlite3.connect(bad)
    conn.execute("UPDATE media SET pos = 10 WHERE url LIKE '%/odd/photo.gif'")
    conn.commit()
    conn.close()
    # the mismatching pointer drops its pair, listed; the export goes on
    code, text = run_cli("export", bad, all_sql, tmp_path / "b", "--silent")
    assert code == 0, text
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["counts"]["by_reason"] == {"no_bytes": 1, "sha256_mismatch": 1} and m["counts"]["written"] == 28


def test_uids_are_the_same_in_another_database_of_the_same_archive(db, tmp_path):
    from conftest import corpus
    from wdb.ingest import ingest

    path, all_sql = db
    other = tmp_path / "other.db"
    conn = open_db(other)  # another archive first: every row id differs
    for warc in (corpus("aut-tests/issue-514.warc"), path.parent / "photos.warc.gz"):
        ingest(conn, [str(warc)], workers=0, progress=False, quiet=True)
    conn.close()
    for d, out in ((path, tmp_path / "a"), (other, tmp_path / "b")):
        code, text = run_cli("export", d, all_sql, out, "--format", "parquet", "--silent")
        assert code == 0, text
    a, b = ({r["uid"]: (r["url"], r["text"], r["media_id"]) for r in pq.read_table(sorted(
        (tmp_path / x).glob("*.parquet"))).to_pylist()} for x in ("a", "b"))
    assert len(a) == 30 and set(a) == {u for u, v in b.items() if v[0].startswith("http://photos.example.org/")}
    # (the fixture points the never-archived item at a local port in the first database: url_key, not url, counts)
    assert all(a[u][1] == b[u][1] and a[u][2] != b[u][2] for u in a)


def test_one_export_at_a_time_into_a_folder_and_the_default_folder(db, tmp_path):
    import fcntl

    path, all_sql = db
    out = tmp_path / "busy"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running export holds it
    code, text = run_cli("export", path, all_sql, out, "--silent")
    os.close(fd)
    assert code == 1 and "another wdb export is writing" in text and not list(out.iterdir())
    code, text = run_cli("export", path, "datacomp_basic", "--format", "uids")
    assert code == 0, text
    assert (Path(f"{path}.wdb") / "exports" / "datacomp_basic-uids" / "uids.npy").exists()


def _export_proc(db, recipe, out, fmt, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "wdb.cli", "export", str(db), str(recipe), str(out), "--format", fmt,
                           "--shard-size", "8", "--silent"], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("fmt", ["webdataset", "interleaved"])
def test_kill_9_mid_export_then_rerun_gives_the_same_files(db, tmp_path, fmt):
    path, all_sql = db
    clean, killed = (tmp_path / "clean").resolve(), (tmp_path / "killed").resolve()
    assert _export_proc(path, all_sql, clean, fmt).returncode == 0
    # killed right after the first shard's rename, before the database recorded it
    r = _export_proc(path, all_sql, killed, fmt, {"WDB_EXPORT_KILL_AFTER_SHARDS": "1"})
    assert r.returncode == -9, r.stderr
    assert (killed / "00000000_stats.json").exists() and not (killed / "manifest.json").exists()
    # killed again in the middle of the second shard: its files exist only under temporary names
    r = _export_proc(path, all_sql, killed, fmt, {"WDB_EXPORT_KILL_AFTER_PAIRS": "3"})
    assert r.returncode == -9, r.stderr
    assert not (killed / "00000001_stats.json").exists()
    if fmt == "webdataset":  # the tar is written as the pairs come
        assert (killed / ".00000001.tar.tmp").exists()
    kept = (killed / "00000000_stats.json").stat().st_mtime_ns
    r = _export_proc(path, all_sql, killed, fmt)
    assert r.returncode == 0, r.stderr
    assert tree(killed) == tree(clean) and not list(killed.glob(".*.tmp"))
    assert (killed / "00000000_stats.json").stat().st_mtime_ns == kept
    conn = open_db(path)
    (eid,) = conn.execute("SELECT id FROM exports WHERE out = ? AND status = 'done'", (str(killed),)).fetchone()
    (cid,) = conn.execute("SELECT id FROM exports WHERE out = ?", (str(clean),)).fetchone()
    items = "SELECT uid, media_id, text_source, shard FROM export_items WHERE export_id = ? ORDER BY uid"
    assert conn.execute(items, (eid,)).fetchall() == conn.execute(items, (cid,)).fetchall()
    assert len(conn.execute(items, (eid,)).fetchall()) == json.loads(
        (killed / "manifest.json").read_text())["counts"]["written"]


def test_recipe_parameters_and_their_errors(db, tmp_path):
    path, _ = db
    recipe = tmp_path / "long.sql"
    recipe.write_text("-- title: long alts\n-- params: min_chars integer\n"
                      "SELECT id AS media_id, alt AS text, 'alt' AS text_source FROM media "
                      "WHERE kind = 'image' AND length(alt) >= :min_chars ORDER BY id\n")
    n = open_db(path).execute("SELECT count(*) FROM media WHERE kind = 'image' AND length(alt) >= 50").fetchone()[0]
    assert 0 < n < 30
    code, text = run_cli("export", path, recipe, tmp_path / "p", "--format", "uids", "-p", "min_chars=50", "--silent")
    assert code == 0, text
    assert len(np.load(tmp_path / "p" / "uids.npy")) == n
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["params"] == {"min_chars": 50}
    code, text = run_cli("export", path, recipe, tmp_path / "q", "-p", "min_chars=fifty", "--silent")
    assert code == 2 and "min_chars must be an integer" in text, text
    code, text = run_cli("export", path, recipe, tmp_path / "q", "-p", "min_chars", "--silent")
    assert code == 2 and "NAME=VALUE" in text, text
    code, text = run_cli("export", path, "no_such_recipe", tmp_path / "q", "--silent")
    assert code == 1 and "no recipe named 'no_such_recipe'" in text, text
