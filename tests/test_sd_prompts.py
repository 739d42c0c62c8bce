"""Prompt sets (the thesis's 100 groups x 5 levels, sensible and nonsensical, reproducible; import of
CSV / JSON lines with one-line errors) and the maths of wdb sd eval (Fréchet distance, diversity,
image complexity) against independent computations. No model is loaded here."""
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import CORPUS
from wdb.cli import cli
from wdb.db import open_db
from wdb.sd.evaluate import diversity, frechet, image_complexity
from wdb.sd.prompts import LEVELS, complexity, generate, read_file, PromptSetError
from wdb.sd.words import CATEGORIES, IMPOSSIBLE_DETAILS


def test_generated_sets_have_the_thesis_shape_and_are_reproducible():
    prompts = generate(100, seed=0)
    assert len(prompts) == 2 * 100 * LEVELS
    assert generate(100, seed=0) == prompts and generate(100, seed=1) != prompts
    by = {(p.kind, p.grp, p.level): p for p in prompts}
    assert set(by) == {(k, g, lv) for k in ("sensible", "nonsensical") for g in range(1, 101) for lv in range(1, 6)}
    subjects = {s: c for c, d in CATEGORIES.items() for s in d["subjects"]}
    assert len({by["sensible", g, 1].prompt for g in range(1, 101)}) == 100  # one subject per group
    for kind in ("sensible", "nonsensical"):
        for g in range(1, 101):
            group = [by[kind, g, lv] for lv in range(1, 6)]
            subject = group[0].prompt
            assert group[0].elements == (subject,)
            for lower, higher in zip(group, group[1:]):  # each level adds one part, the words grow
                assert len(higher.elements) == len(lower.elements) + 1
                assert complexity(higher.prompt)[0] > complexity(lower.prompt)[0]
                assert all(e.lower() in higher.prompt.lower() for e in higher.elements)
            own = CATEGORIES[subjects[subject]]
            attr, place, action, detail = group[4].elements[1:]
            if kind == "sensible":
                assert attr in own["attributes"] and place in own["places"] and action in own["actions"]
            else:  # impossible combinations of the same kinds of parts, each from another category
                assert attr not in own["attributes"] and place not in own["places"] and action not in own["actions"]
                assert detail in IMPOSSIBLE_DETAILS


def test_prompts_command_stores_both_sets_once(tmp_path):
    db = tmp_path / "p.db"
    for _ in range(2):
        res = CliRunner().invoke(cli, ["sd", "prompts", str(db)])
        assert res.exit_code == 0, res.output
    conn = open_db(db)
    assert conn.execute("SELECT kind, count(*), count(DISTINCT grp), min(level), max(level) FROM sd_prompts "
                        "GROUP BY kind ORDER BY kind").fetchall() == [("nonsensical", 500, 100, 1, 5),
                                                                     ("sensible", 500, 100, 1, 5)]
    words, content = conn.execute("SELECT words, content_words FROM sd_prompts WHERE kind = 'sensible' AND level = 5 "
                                  "AND grp = 1").fetchone()
    prompt = conn.execute("SELECT prompt FROM sd_prompts WHERE kind = 'sensible' AND level = 5 AND grp = 1").fetchone()[0]
    assert (words, content) == complexity(prompt) and words == len(prompt.split())
    assert [r[0] for r in conn.execute("SELECT status FROM runs WHERE command = 'sd prompts'")] == ["done", "done"]


def test_import_csv_and_json_lines(tmp_path):
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text('group,level,prompt,kind,elements\n1,1,cat,sensible,\n1,2,"a cat, on a sofa",sensible,\n'
                        '1,3,a cat on a sofa reading,sensible,"cat;sofa;reading"\n')
    got = read_file(csv_file)
    assert [(p.grp, p.level, p.elements) for p in got] == [(1, 1, ("cat",)), (1, 2, ("a cat", "on a sofa")),
                                                          (1, 3, ("cat", "sofa", "reading"))]
    jl = tmp_path / "mine.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in [
        {"group": 2, "level": 1, "prompt": "a moon made of cheese", "kind": "nonsensical", "elements": ["moon", "cheese"]},
        {"group": 2, "level": 2, "prompt": "a green moon", "kind": "nonsensical"}]) + "\n")
    assert [p.elements for p in read_file(jl)] == [("moon", "cheese"), ("green", "moon")]
    db = tmp_path / "p.db"
    res = CliRunner().invoke(cli, ["sd", "prompts", str(db), "--name", "mine", "--import", str(jl)])
    assert res.exit_code == 0, res.output
    conn = open_db(db)
    assert conn.execute("SELECT name, source FROM sd_prompt_sets").fetchall() == [("mine", str(jl.resolve()))]


@pytest.mark.parametrize("text, message", [
    ("group,level,prompt,kind\nx,1,cat,sensible\n", r"mine.csv:2: group and level must be integers"),
    ("group,level,prompt,kind\n1,1,,sensible\n", r"mine.csv:2: prompt and kind are required"),
    ("group,level,prompt,kind\n1,1,cat,s\n1,1,dog,s\n", r"mine.csv:3: a second prompt for kind s, group 1, level 1"),
    ("group,level,prompt,kind\n", r"mine.csv: no prompts"),
])
def test_bad_import_files_are_one_line_errors_and_a_failed_run(tmp_path, text, message):
    f = tmp_path / "mine.csv"
    f.write_text(text)
    with pytest.raises(PromptSetError, match=message):
        read_file(f)
    db = tmp_path / "p.db"
    res = CliRunner().invoke(cli, ["sd", "prompts", str(db), "--name", "x", "--import", str(f)])
    assert res.exit_code == 1 and res.output.count("\n") == 1 and "Error:" in res.output
    conn = open_db(db)
    status, error = conn.execute("SELECT status, error FROM runs WHERE command = 'sd prompts'").fetchone()
    assert status == "failed" and "PromptSetError" in error
    assert conn.execute("SELECT count(*) FROM sd_prompt_sets").fetchone()[0] == 0


def test_frechet_and_diversity_equal_independent_computations():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 8)), rng.normal(0.5, 2.0, size=(150, 8))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet(a, b) == pytest.approx(ref, rel=1e-6)
    assert frechet(a, a) == pytest.approx(0, abs=1e-6)
    e = rng.normal(size=(5, 16))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    pairs = [1 - e[i] @ e[j] for i in range(5) for j in range(5) if i != j]
    assert diversity(e) == pytest.approx(sum(pairs) / len(pairs))
    assert diversity(np.stack([e[0]] * 3)) == pytest.approx(0, abs=1e-9)


def test_image_complexity_of_a_flat_image_and_a_real_photo():
    from PIL import Image

    flat = Image.new("RGB", (64, 48), (120, 30, 200))
    c = image_complexity(b"x" * 3072, flat)
    assert c == {"bytes_per_pixel": 1.0, "edge_density": 0.0, "entropy": 0.0}
    photo = sorted((CORPUS / "coco-mini" / "val2017").glob("*.jpg"))
    if not photo:
        pytest.skip("coco-mini missing")
    im = Image.open(photo[0]).convert("RGB")
    b = io.BytesIO()
    im.save(b, "PNG")
    c = image_complexity(b.getvalue(), im)
    grey = np.asarray(im.convert("L"))
    p = np.bincount(grey.ravel(), minlength=256) / grey.size
    assert c["entropy"] == pytest.approx(-(p[p > 0] * np.log2(p[p > 0])).sum())
    assert c["bytes_per_pixel"] == len(b.getvalue()) / (im.width * im.height)
    assert 0.05 < c["edge_density"] < 0.9
