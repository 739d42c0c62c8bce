"""The text-to-image loop on real COCO pairs with tiny random models (plumbing and maths, never
quality): prompts -> train (LoRA and full UNet) -> generate (base and both runs) -> eval -> ratings
-> report, rows in every sd table, and a second run of the whole loop adds nothing.
(test_sd_kill.py: a killed generate, and CLIP scores against open_clip.)"""
import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CORPUS, coco_caption_lists, coco_photos
from test_fetch_score import tiny_clip
from warcs import gz_members
from warcs import http as http_response
from wdb.cli import cli
from wdb.db import open_db
from wdb.ingest import ingest
from wdb.warc.write import warc_record

COCO = CORPUS / "coco-mini"
HOST = "http://coco.example.org"
SD_TABLES = ("sd_prompt_sets", "sd_prompts", "sd_runs", "sd_losses", "sd_images", "sd_scores", "sd_embeddings",
             "sd_set_scores", "sd_ratings")
GEN = ["--images", "2", "--steps", "2", "--chunk", "2", "--limit", "6", "--prompts", "mini"]


def coco_pairs(n: int = 8):
    caps = coco_caption_lists()
    return [(f, caps[f.name][0]) for f in coco_photos(n)]


def coco_db(folder, n: int = 8):
    """A database ingested from a WARC holding a page of COCO photos (alt = a real caption) and the
    photos themselves; plus a recipe .sql file selecting its (image, alt) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = coco_pairs(n)
    imgs = "".join(f'<p>Photo {i}.</p><img src="{HOST}/{f.name}" alt="{cap}">' for i, (f, cap) in enumerate(pairs))
    page = f"<html lang='en'><body><h1>COCO</h1>{imgs}</body></html>".encode()
    recs = [warc_record("response", f"{HOST}/", http_response(page), "application/http; msgtype=response",
                        "2024-05-18T01:58:10Z")]
    recs += [warc_record("response", f"{HOST}/{f.name}", http_response(f.read_bytes(), "image/jpeg"),
                         "application/http; msgtype=response", "2024-05-18T01:58:11Z") for f, _ in pairs]
    (folder / "coco.warc.gz").write_bytes(gz_members(recs))
    db = folder / "sd.db"
    conn = open_db(db)
    ingest(conn, [str(folder / "coco.warc.gz")], workers=0, progress=False, quiet=True)
    conn.close()
    recipe = folder / "coco_pairs.sql"
    recipe.write_text("-- title: COCO pairs\n-- description: every image with its alt text (a COCO caption)\n"
                      "SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source FROM media m\n"
                      "WHERE m.kind = 'image' AND m.alt IS NOT NULL ORDER BY m.id\n")
    return db, recipe


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    pytest.importorskip("diffusers")
    from wdb.sd.tiny import build_tiny_pipeline

    d = tmp_path_factory.mktemp("sd-models")
    return build_tiny_pipeline(d / "tiny-sd"), tiny_clip(d / "clip", 0)


def invoke(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res


def counts(conn) -> dict:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in SD_TABLES}


def test_whole_loop_on_real_coco_pairs(models, tmp_path):
    from wdb.serve.ratings import write_ratings

    sd_model, clip = models
    db, recipe = coco_db(tmp_path)
    train = ["--recipe", recipe, "--base", sd_model, "--resolution", "32", "--batch-size", "4", "--workers", "0",
             "--log-every", "2"]

    def loop():
        invoke("sd", "prompts", db, "--name", "mini", "--groups", "3")
        lora = invoke("sd", "train", db, *train, "--steps", "2").stdout.split()[0]
        full = invoke("sd", "train", db, *train, "--steps", "2", "--mode", "full", "--lr", "1e-3").stdout.split()[0]
        for model in ("base", lora, full):
            invoke("sd", "generate", db, "--model", model, "--base", sd_model, *GEN)
        invoke("sd", "eval", db, "--model", clip, "--pretrained", "", "--batch-size", "5", "--reference", recipe)
        return int(lora), int(full)

    lora, full = loop()
    conn = open_db(db)
    c = counts(conn)
    assert c["sd_prompt_sets"] == 1 and c["sd_prompts"] == 3 * 5 * 2
    assert conn.execute("SELECT id, mode, pairs, steps_done, status FROM sd_runs ORDER BY id").fetchall() == [
        (lora, "lora", 8, 2, "done"), (full, "full", 8, 2, "done")]
    # every parameter, the recipe and the hash of its pairs: (media_id, text, image sha256) in order
    params, recipe_col, pairs_sha = conn.execute("SELECT params, recipe, pairs_sha256 FROM sd_runs WHERE id = ?",
                                                 (lora,)).fetchone()
    assert json.loads(params)["steps"] == 2 and json.loads(params)["resolution"] == 32 and recipe_col == str(recipe)
    h = hashlib.sha256()
    for mid, alt, sha in conn.execute("SELECT m.id, m.alt, b.sha256 FROM media m JOIN media_bytes b ON b.media_id = m.id "
                                      "WHERE m.kind = 'image' ORDER BY m.id"):
        h.update(json.dumps([mid, alt, sha]).encode() + b"\n")
    assert pairs_sha == h.hexdigest()
    losses = conn.execute("SELECT sd_run_id, step, loss FROM sd_losses ORDER BY 1, 2").fetchall()
    assert [(r, s) for r, s, _ in losses] == [(lora, 1), (lora, 2), (full, 1), (full, 2)]
    assert all(0 < v < 10 for _, _, v in losses)
    ckpt = conn.execute("SELECT checkpoint FROM sd_runs WHERE id = ?", (lora,)).fetchone()[0]
    assert ckpt.startswith(str(db) + ".wdb/sd/") and os.path.isfile(os.path.join(ckpt, "pytorch_lora_weights.safetensors"))
    # 6 prompts x 2 seeds for each of three models, the same seeds for each prompt
    assert conn.execute("SELECT sd_run_id, count(*), count(DISTINCT prompt_id), group_concat(DISTINCT seed) "
                        "FROM sd_images GROUP BY 1 ORDER BY 1").fetchall() == [
        (0, 12, 6, "0,1"), (lora, 12, 6, "0,1"), (full, 12, 6, "0,1")]
    # the fine-tuned UNets change the images; the same prompt and seed in the base model do not repeat
    base_png = dict(conn.execute("SELECT prompt_id || ':' || seed, sha256 FROM sd_images WHERE sd_run_id = 0"))
    full_png = dict(conn.execute("SELECT prompt_id || ':' || seed, sha256 FROM sd_images WHERE sd_run_id = ?", (full,)))
    assert base_png.keys() == full_png.keys() and all(base_png[k] != full_png[k] for k in base_png)
    metrics = dict(conn.execute("SELECT metric, count(*) FROM sd_scores GROUP BY 1"))
    n_el = conn.execute("SELECT sum(json_array_length(p.elements)) FROM sd_images i JOIN sd_prompts p "
                        "ON p.id = i.prompt_id").fetchone()[0]
    assert metrics == {"clip_score": 36, "compliance": 36, "group_rank": 36, "element": n_el, "bytes_per_pixel": 36,
                       "edge_density": 36, "entropy": 36}
    assert c["sd_embeddings"] == 36
    # compliance is the mean of the element scores; the rank is 1..5 within the group
    for image_id, comp in conn.execute("SELECT image_id, value FROM sd_scores WHERE metric = 'compliance'"):
        els = [v for (v,) in conn.execute("SELECT value FROM sd_scores WHERE image_id = ? AND metric = 'element'",
                                          (image_id,))]
        assert comp == pytest.approx(sum(els) / len(els))
    assert {r for (r,) in conn.execute("SELECT value FROM sd_scores WHERE metric = 'group_rank'")} <= {1, 2, 3, 4, 5}
    sets = dict(conn.execute("SELECT metric, count(*) FROM sd_set_scores GROUP BY 1"))
    assert sets == {"diversity": 18, "frechet": 3}  # 6 prompts x 3 models; one prompt set x 3 models
    # ratings rows, then the report (JSON, plots, grids)
    pair = conn.execute("SELECT b.id, t.id FROM sd_images b JOIN sd_images t ON t.prompt_id = b.prompt_id AND "
                        "t.seed = b.seed WHERE b.sd_run_id = 0 AND t.sd_run_id = ? ORDER BY b.id LIMIT 1",
                        (lora,)).fetchone()
    assert write_ratings(str(db), "ann", [(pair[0], "conformity", 2), (pair[1], "conformity", 4)]) == 2
    out = tmp_path / "report"
    invoke("sd", "report", db, "--prompts", "mini", "--out", out)
    rep = json.loads((out / "report.json").read_text())
    assert {r["model"] for r in rep["rows"]} == {"base tiny-sd", f"run {lora}", f"run {full}"}
    rated = [r for r in rep["rows"] if r["ratings"]]
    assert sorted((r["model"], r["ratings"]["conformity"]["mean"]) for r in rated) == [
        ("base tiny-sd", 2.0), (f"run {lora}", 4.0)]
    row = next(r for r in rep["rows"] if r["model"] == f"run {full}" and r["level"] == 1)
    mean = conn.execute("SELECT avg(c.value) FROM sd_scores c JOIN sd_images i ON i.id = c.image_id JOIN sd_prompts p "
                        "ON p.id = i.prompt_id WHERE c.metric = 'clip_score' AND i.sd_run_id = ? AND p.level = 1 "
                        "AND p.kind = ?", (full, row["kind"])).fetchone()[0]
    assert row["clip_score"] == pytest.approx(mean)
    assert {p.name for p in out.glob("*.png")} == {"metrics_by_level.png", "ratings.png", "loss.png"}
    groups = conn.execute("SELECT count(DISTINCT p.kind || p.grp) FROM sd_images i JOIN sd_prompts p "
                          "ON p.id = i.prompt_id").fetchone()[0]
    assert groups == 2 and len(list((out / "grids").glob("*.png"))) == groups
    c = counts(conn)
    assert all(c.values()), c
    # every stage wrote its runs row
    cmds = [r for (r,) in conn.execute("SELECT command FROM runs WHERE command LIKE 'sd %' AND status = 'done'")]
    assert {"sd prompts", "sd train", "sd generate", "sd eval", "sd report"} <= set(cmds)
    # a second run of the whole loop adds nothing (identical training runs are skipped)
    assert loop() == (lora, full)
    assert counts(conn) == c


def test_bad_inputs_are_one_line_errors_and_rows(models, tmp_path):
    sd_model, _ = models
    db, recipe = coco_db(tmp_path, 2)
    empty = tmp_path / "none.sql"
    empty.write_text("-- title: nothing\n-- description: no pairs\nSELECT id AS media_id, alt AS text, 'alt' AS "
                     "text_source FROM media WHERE 0\n")
    cases = [(["sd", "train", db, "--recipe", recipe, "--base", tmp_path / "missing", "--workers", "0"], "cannot load"),
             (["sd", "train", db, "--recipe", empty, "--base", sd_model], "selects no pair with image bytes"),
             (["sd", "train", db, "--recipe", "no_such_recipe", "--base", sd_model], "no recipe named"),
             (["sd", "generate", db, "--model", "99", "--prompts", "mini"], "no prompt set named 'mini'")]
    invoke("sd", "prompts", db, "--name", "other", "--groups", "1")
    cases.append((["sd", "generate", db, "--model", "99", "--prompts", "other"], "no sd run 99"))
    for args, message in cases:
        res = CliRunner().invoke(cli, [str(a) for a in args])
        assert res.exit_code == 1 and message in res.output and res.output.count("\n") == 1, (args, res.output)
    conn = open_db(db)
    assert conn.execute("SELECT status FROM sd_runs").fetchall() == [("failed",)]  # the model that did not load
    assert [s for (s,) in conn.execute("SELECT status FROM runs WHERE command LIKE 'sd %' ORDER BY id")] == [
        "done", "failed", "failed", "failed", "failed", "failed"]


def flip_middle_bytes(path, spans):
    """Damage each (offset, length) span of a file in its middle (the gzip member no longer inflates)."""
    data = bytearray(path.read_bytes())
    for off, length in spans:
        for k in range(off + length // 3, off + 2 * length // 3):
            data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_images_are_rows_not_stopped_runs(models, tmp_path):
    sd_model, clip = models
    db, recipe = coco_db(tmp_path, 2)
    invoke("sd", "prompts", db, "--name", "mini", "--groups", "1")
    invoke("sd", "generate", db, "--model", "base", "--base", sd_model, "--images", "1", "--steps", "1",
           "--limit", "2", "--prompts", "mini")
    conn = open_db(db)
    loc, off, length = conn.execute("SELECT location, \"offset\", length FROM sd_images ORDER BY id LIMIT 1").fetchone()
    flip_middle_bytes(Path(loc), [(off, length)])
    invoke("sd", "eval", db, "--model", clip, "--pretrained", "")
    rows = conn.execute("SELECT i.id, c.metric, c.element FROM sd_scores c JOIN sd_images i ON i.id = c.image_id "
                        "WHERE c.metric IN ('clip_score', 'unreadable') ORDER BY i.id").fetchall()
    assert [(m, bool(e)) for _, m, e in rows] == [("unreadable", True), ("clip_score", False)]
    invoke("sd", "eval", db, "--model", clip, "--pretrained", "")  # not retried, nothing added
    assert conn.execute("SELECT count(*) FROM sd_scores WHERE metric IN ('clip_score', 'unreadable')").fetchone()[0] == 2
    # training pairs whose archived bytes are damaged: counted; none readable is a failed run
    spans = conn.execute("SELECT x.\"offset\", x.length FROM archived_media x").fetchall()
    flip_middle_bytes(tmp_path / "coco.warc.gz", spans)
    res = CliRunner().invoke(cli, ["sd", "train", str(db), "--recipe", str(recipe), "--base", str(sd_model),
                                   "--resolution", "32", "--steps", "1", "--workers", "0"])
    assert res.exit_code == 1 and "no image of the recipe's pairs could be read" in res.output
    assert conn.execute("SELECT status, steps_done FROM sd_runs").fetchall() == [("failed", 0)]
