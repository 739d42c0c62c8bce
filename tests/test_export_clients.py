"""The real consumers read what wdb exports: open_clip's own training code trains a tiny model on a
webdataset export of real COCO photos; Hugging Face `datasets` loads the interleaved export and each
page rebuilt from its `texts` and `images` is the page text with its items in order."""
import json
import math
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import ROOT, TINY
from export_data import built_with_all_alts
from wdb.cli import cli
from wdb.db import open_db


TRAIN = """import sys
import open_clip
from open_clip_train.main import main
open_clip.add_model_config(sys.argv[1])
main(sys.argv[2:])
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return built_with_all_alts(tmp_path_factory, "clients")


def test_open_clip_trains_on_the_webdataset_export(db, tmp_path):
    pytest.importorskip("open_clip_train")
    path, _ = db
    out = tmp_path / "shards"
    res = CliRunner().invoke(cli, ["export", str(path), "datacomp_basic", str(out), "--shard-size", "6", "--silent"])
    assert res.exit_code == 0, res.output
    sizes = json.loads((out / "sizes.json").read_text())
    n = sum(sizes.values())
    assert n >= 20 and len(sizes) >= 2
    (tmp_path / "wdb-tiny.json").write_text(json.dumps(TINY))
    (tmp_path / "train.py").write_text(TRAIN)
    last = sorted(sizes)[-1][:-4]
    args = [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "wdb-tiny.json"),
            "--train-data", f"{out}/{{00000000..{last}}}.tar", "--dataset-type", "webdataset", "--model", "wdb-tiny",
            "--batch-size", "4", "--epochs", "1", "--workers", "1", "--lr", "1e-3", "--warmup", "1",
            "--precision", "fp32", "--logs", str(tmp_path / "logs"), "--name", "run", "--log-every-n-steps", "1",
            "--seed", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (tmp_path / "logs" / "run" / "out.log").read_text()
    steps = [line for line in log.splitlines() if "Train Epoch: 0 [" in line]
    # open_clip counted the samples from sizes.json: one epoch of ceil(n / 4) batches of 4
    total = math.ceil(n / 4) * 4
    assert steps and f"/{total} (100%)]" in steps[-1], log[-2000:]
    losses = [float(line.split("Loss: ")[1].split()[0]) for line in steps]
    assert all(math.isfinite(x) and x > 0 for x in losses)
    assert (tmp_path / "logs" / "run" / "checkpoints" / "epoch_1.pt").exists()


@pytest.mark.parametrize("images", ["url", "embed"])
def test_datasets_loads_the_interleaved_export_and_pages_rebuild(db, tmp_path, images):
    datasets = pytest.importorskip("datasets")
    path, all_sql = db
    out = tmp_path / "docs"
    res = CliRunner().invoke(cli, ["export", str(path), str(all_sql), str(out), "--format", "interleaved",
                                   "--images", images, "--max-images", "4", "--shard-size", "8", "--silent"])
    assert res.exit_code == 0, res.output
    ds = datasets.load_dataset("parquet", data_files=sorted(str(p) for p in out.glob("*.parquet")), split="train",
                               cache_dir=str(tmp_path / "hf"))
    if images == "embed":  # decoded by datasets as Image features; their bytes checked below
        decoded = [img for row in ds for img in row["images"] if img is not None]
        assert decoded and all(img.size[0] > 0 and img.mode for img in decoded)
        ds = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
    conn = open_db(path)
    pages = {url: text for url, text in conn.execute("SELECT url, text FROM pages")}
    items = {}
    for url, murl, pos, seq, alt in conn.execute(
            "SELECT p.url, m.url, m.pos, m.seq, m.alt FROM media m JOIN pages p ON p.id = m.page_id "
            "WHERE m.alt IS NOT NULL AND m.alt != '' ORDER BY p.id, m.pos, m.seq"):
        items.setdefault(url, []).append((murl, pos, alt))
    assert len(ds) == len(pages)
    n_images = 0
    for row in ds:
        gm = json.loads(row["general_metadata"])
        meta = json.loads(row["metadata"])
        assert len(row["texts"]) == len(row["images"]) == len(meta)
        assert all((t is None) != (i is None) for t, i in zip(row["texts"], row["images"]))
        assert "".join(t for t in row["texts"] if t is not None) == pages[gm["url"]]
        at, got = 0, []
        for t, img, m in zip(row["texts"], row["images"], meta):
            if t is not None:
                at += len(t)
            else:
                src = img if images == "url" else m["src"]
                assert src == m["src"] and m["pos"] == at
                got.append((src, at, m["alt_text"]))
                if images == "embed":
                    import hashlib

                    assert hashlib.sha256(img["bytes"]).hexdigest() == m["sha256"]
                    assert img["path"] == m["src"]
        # the page's items in document order, at most 4, without the image nobody archived when embedded
        want = [x for x in items[gm["url"]] if images == "url" or "never-archived" not in x[0]][:4]
        assert got == want
        n_images += len(got)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["written"] == n_images
