"""wdb sd generate killed (SIGKILL, injected after its first committed chunk) and run again gives the
same PNG bytes as an uninterrupted run; a stored CLIP score (and each element's) equals open_clip's
own computation on the stored image to 1e-5."""
import hashlib
import io
import json
import os
import subprocess
import sys

from conftest import ROOT
from test_sd_loop import GEN, coco_db, invoke, models  # noqa: F401 - models is a fixture
from wdb.db import open_db


def test_kill_generate_mid_run_and_rerun_gives_the_same_images(models, tmp_path):
    sd_model, _ = models
    ref, _ = coco_db(tmp_path / "ref", 1)
    db, _ = coco_db(tmp_path / "killed", 1)
    for d in (ref, db):
        invoke("sd", "prompts", d, "--name", "mini", "--groups", "3")
    invoke("sd", "generate", ref, "--model", "base", "--base", sd_model, *GEN)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WDB_SD_KILL_AFTER_CHUNKS": "1"}
    p = subprocess.run([sys.executable, "-m", "wdb.cli", "sd", "generate", str(db), "--model", "base", "--base",
                        str(sd_model), *GEN], env=env, capture_output=True, timeout=300)
    assert p.returncode == -9, p.stderr.decode()[-2000:]
    conn = open_db(db)
    assert conn.execute("SELECT count(*) FROM sd_images").fetchone()[0] == 4  # one chunk: 2 prompts x 2 seeds
    assert conn.execute("SELECT status FROM runs WHERE command = 'sd generate'").fetchone()[0] == "running"
    res = invoke("sd", "generate", db, "--model", "base", "--base", sd_model, *GEN)
    assert "images 8" in res.output and "skipped_chunks 1" in res.output

    def images(path):
        c = open_db(path)
        return dict(c.execute("SELECT p.kind || p.grp || '.' || p.level || '/' || i.seed, i.sha256 FROM sd_images i "
                              "JOIN sd_prompts p ON p.id = i.prompt_id"))

    got, want = images(db), images(ref)
    assert len(want) == 12 and got == want
    # the bytes behind the pointers are those hashes
    from wdb.warc.payload import read_verified

    for loc, off, length, inner, sha in conn.execute("SELECT location, \"offset\", length, inner, sha256 FROM sd_images"):
        assert loc.startswith(str(db) + ".wdb/sd/generated-")
        assert hashlib.sha256(read_verified(loc, off, length, inner, sha)).hexdigest() == sha


def test_stored_clip_score_equals_open_clip_on_the_stored_image(models, tmp_path):
    import open_clip
    import torch
    from PIL import Image

    from wdb.warc.payload import read_verified

    sd_model, clip = models
    db, _ = coco_db(tmp_path, 1)
    invoke("sd", "prompts", db, "--name", "mini", "--groups", "1")
    invoke("sd", "generate", db, "--model", "base", "--base", sd_model, "--images", "2", "--steps", "2",
           "--limit", "3", "--prompts", "mini")
    invoke("sd", "eval", db, "--model", clip, "--pretrained", "", "--batch-size", "4")
    conn = open_db(db)
    model, _, preprocess = open_clip.create_model_and_transforms(clip)
    tokenizer = open_clip.get_tokenizer(clip)
    model.eval()
    rows = conn.execute("SELECT i.location, i.\"offset\", i.length, i.inner, i.sha256, p.prompt, p.elements, c.value, "
                        "i.id FROM sd_images i JOIN sd_prompts p ON p.id = i.prompt_id JOIN sd_scores c "
                        "ON c.image_id = i.id AND c.metric = 'clip_score'").fetchall()
    assert len(rows) == 6
    with torch.no_grad():
        for loc, off, length, inner, sha, prompt, elements, stored, image_id in rows:
            img = Image.open(io.BytesIO(read_verified(loc, off, length, inner, sha))).convert("RGB")
            ie = torch.nn.functional.normalize(model.encode_image(preprocess(img)[None]), dim=-1)
            te = torch.nn.functional.normalize(model.encode_text(tokenizer([prompt, *json.loads(elements)])), dim=-1)
            cos = (ie @ te.T)[0].tolist()
            assert abs(100 * max(cos[0], 0) - stored) < 1e-5
            els = dict(conn.execute("SELECT element, value FROM sd_scores WHERE image_id = ? AND metric = 'element'",
                                    (image_id,)))
            for e, c in zip(json.loads(elements), cos[1:], strict=True):
                assert abs(100 * max(c, 0) - els[e]) < 1e-5
            # the rank of the true prompt among the five of its group
            group = [t for (t,) in conn.execute(
                "SELECT q.prompt FROM sd_prompts q JOIN sd_prompts p ON p.set_id = q.set_id AND p.kind = q.kind "
                "AND p.grp = q.grp JOIN sd_images i ON i.prompt_id = p.id WHERE i.id = ?", (image_id,))]
            gc = (ie @ torch.nn.functional.normalize(model.encode_text(tokenizer(group)), dim=-1).T)[0].tolist()
            rank = conn.execute("SELECT value FROM sd_scores WHERE image_id = ? AND metric = 'group_rank'",
                                (image_id,)).fetchone()[0]
            assert len(group) == 5 and rank == 1 + sum(c > cos[0] for t, c in zip(group, gc) if t != prompt)
