"""The span extractor on real data: examples from the ingested archives and pages, windows around the
image marker, a few training steps with the real all-MiniLM-L6-v2 weights, prediction, and metrics
that a model answering "none" everywhere cannot pass."""
import json
import os
import sys

import pytest

torch = pytest.importorskip("torch")

from conftest import ROOT, WARC  # noqa: E402
from wdb.db import open_db, transaction  # noqa: E402
from wdb.errors import SpanRunError  # noqa: E402
from wdb.ingest import ingest  # noqa: E402
from wdb.spans.data import MARKER, iter_examples, load_training_examples, make_example, split_by_domain  # noqa: E402
from wdb.spans.metrics import choose_threshold, decide, scores  # noqa: E402
from wdb.spans.model import encode, length_batches, load, soft_iou_loss, span_loss  # noqa: E402
from wdb.spans.predict import merge, predict  # noqa: E402
from wdb.spans.train import TrainParams, train  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from corpus_pages_warc import write as write_pages_warc  # noqa: E402

# a few steps: 1 epoch over ~100 real training windows of 48 tokens
QUICK = dict(epochs=1, lr=2e-4, batch_size=16, max_length=48, negatives=0.5, max_examples=100, seed=1)
TYPES = {"exact", "none"}


@pytest.fixture(scope="module")
def span_db(tmp_path_factory):
    """The real archives plus the 129 real pages, ingested."""
    d = tmp_path_factory.mktemp("spans")
    pages = d / "pages.warc.gz"
    write_pages_warc(pages)
    conn = open_db(d / "spans.db")
    ingest(conn, [str(WARC), str(pages)], workers=2, progress=False, quiet=True)
    return d / "spans.db"


@pytest.fixture(scope="module")
def trained(span_db):
    conn = open_db(span_db)
    return train(conn, TrainParams(**QUICK), log=sys.stderr)


def test_examples_carry_the_alt_match_as_label(span_db):
    conn = open_db(span_db)
    exs = load_training_examples(conn, seed=0, negatives=1.0)
    pos = [e for e in exs if e.label]
    assert len(pos) == conn.execute("SELECT count(*) FROM alt_matches x JOIN media m ON m.id = x.media_id "
                                    "WHERE m.kind = 'image' AND m.pos IS NOT NULL AND m.alt IS NOT NULL").fetchone()[0]
    assert len(pos) > 700 and len({e.domain for e in pos}) > 60
    assert 0 < sum(1 for e in exs if e.kind == "none") <= len(pos) + len({e.domain for e in pos})
    for e in pos[:200]:
        s, t = conn.execute("SELECT x.start, x.\"end\" FROM alt_matches x WHERE x.media_id = ?", (e.media_id,)).fetchone()
        text = conn.execute("SELECT p.text FROM pages p JOIN media m ON m.page_id = p.id WHERE m.id = ?",
                            (e.media_id,)).fetchone()[0]
        assert e.context[e.label[0]:e.label[1]] == text[s:t]
        assert e.to_page(*e.label) == (s, t)
        assert e.context[e.before_len:e.before_len + len(MARKER) + 2] == f" {MARKER} "


def test_figcaptions_found_in_the_context_are_a_second_kind_of_label(span_db):
    conn = open_db(span_db)
    alt = load_training_examples(conn, seed=0, negatives=1.0)
    both = load_training_examples(conn, seed=0, negatives=1.0, labels=("alt", "figcaption"))
    figs = [e for e in both if e.kind == "figcaption"]
    assert figs and not any(e.kind == "figcaption" for e in alt)
    assert sum(1 for e in both if e.kind in ("exact", "normalised", "partial")) == sum(1 for e in alt if e.label)
    for e in figs:
        caption = conn.execute("SELECT figcaption FROM media WHERE id = ?", (e.media_id,)).fetchone()[0]
        assert e.context[e.label[0]:e.label[1]] == caption
    with pytest.raises(ValueError):
        load_training_examples(conn, seed=0, labels=("figcaption",))


def test_negatives_are_drawn_site_by_site(span_db):
    """Each site gives at most `negatives` times its own positives (rounded either way by the seed),
    so no site's look becomes the sign of "none": drawn from the whole pool, the corpus's site with
    the most unmatched images gave over half of them."""
    from collections import Counter

    conn = open_db(span_db)
    pool = Counter(e.domain for e in iter_examples(conn, "AND m.alt IS NOT NULL") if e.kind == "none")
    for seed, ratio in ((0, 0.5), (1, 1.0)):
        exs = load_training_examples(conn, seed=seed, negatives=ratio)
        pos = Counter(e.domain for e in exs if e.label)
        neg = Counter(e.domain for e in exs if e.kind == "none")
        assert neg and all(neg[d] <= min(pool[d], int(ratio * pos[d]) + 1) for d in neg)
        assert not set(neg) - set(pos)  # a site without positives gives none
        assert max(neg.values()) <= ratio * max(pos.values()) + 1
        assert max(pool.values()) > 0.4 * sum(pool.values())  # the skew the per-site draw undoes
        assert sum(neg.values()) > 0.5 * ratio * sum(pos.values())
    assert load_training_examples(conn, seed=2, negatives=0.5) == load_training_examples(conn, seed=2, negatives=0.5)


def test_split_is_by_site(span_db):
    conn = open_db(span_db)
    exs = load_training_examples(conn, seed=3, negatives=1.0)
    split = split_by_domain(exs, seed=3)
    by_domain: dict = {}
    for e in exs:
        by_domain.setdefault(e.domain, set()).add(split[e.media_id])
    assert all(len(s) == 1 for s in by_domain.values())
    for name in ("train", "validation", "test"):
        assert sum(1 for e in exs if e.label and split[e.media_id] == name) >= 0.1 * sum(1 for e in exs if e.label)


def test_losses():
    n = 12
    start, end = torch.tensor([3, 0]), torch.tensor([5, 0])
    sharp_s = torch.full((2, n), -50.0)
    sharp_e = torch.full((2, n), -50.0)
    sharp_s[0, 3] = sharp_e[0, 5] = 50.0
    sharp_s[1, 0] = sharp_e[1, 0] = 50.0
    assert soft_iou_loss(sharp_s, sharp_e, start, end).item() < 1e-6
    wrong_s, wrong_e = torch.roll(sharp_s, 4, 1), torch.roll(sharp_e, 4, 1)
    assert soft_iou_loss(wrong_s, wrong_e, start, end).item() > 0.99
    flat = torch.zeros((2, n), requires_grad=True)
    total, ce, iou = span_loss(flat, flat, start, end, 0.5)
    assert abs(ce.item() - torch.log(torch.tensor(float(n))).item()) < 1e-5
    assert abs(total.item() - (ce.item() + 0.5 * iou.item())) < 1e-6
    total.backward()
    assert torch.isfinite(flat.grad).all() and flat.grad.abs().sum() > 0
    # class weighting: a window of weight 0 does not count
    mixed_s = torch.stack([sharp_s[0], wrong_s[1]])
    mixed_e = torch.stack([sharp_e[0], wrong_e[1]])
    only_first, _, _ = span_loss(mixed_s[:1], mixed_e[:1], start[:1], end[:1], 1.0)
    weighted, _, _ = span_loss(mixed_s, mixed_e, start, end, 1.0, torch.tensor([1.0, 0.0]))
    unweighted, _, _ = span_loss(mixed_s, mixed_e, start, end, 1.0)
    assert abs(weighted.item() - only_first.item()) < 1e-5 and unweighted.item() > weighted.item() + 1


def test_one_window_around_the_marker_maps_spans_back_to_page_offsets():
    tok, _ = load(None)
    words = [f"w{i}" for i in range(300)]
    text = " ".join(words)
    pos = len(" ".join(words[:150])) + 1
    near = text.index("w153 w154 w155")
    ex = make_example(1, "x.org", text, 0, pos, len(text), (near, near + len("w153 w154 w155"), "exact"), None, True)
    (w,) = encode(tok, [ex], max_length=64, train=False)
    assert len(w.input_ids) == 64
    marker = w.input_ids.index(tok.convert_tokens_to_ids(MARKER))
    assert 20 < marker < 44  # in the middle
    assert w.has_label and (w.start, w.end) != (0, 0)
    # an oracle answer maps back to the page text
    (row,) = merge([ex], [w], [(w.start, w.end, 0.9, 0.9, 0.01)])
    assert row[1:4] == (near, near + len("w153 w154 w155"), "w153 w154 w155")
    # a span beyond the centred window: training moves the window to hold it and the marker
    mid = text.index("w165 w166")  # ~3 tokens a word: beyond the centred window, within reach of the marker
    ex2 = make_example(2, "x.org", text, 0, pos, len(text), (mid, mid + len("w165 w166"), "exact"), None, True)
    (centred,) = encode(tok, [ex2], max_length=64, train=False)
    assert not centred.has_label and (centred.start, centred.end) == (0, 0)
    (moved,) = encode(tok, [ex2], max_length=64, train=True)
    assert moved.has_label and tok.convert_tokens_to_ids(MARKER) in moved.input_ids
    assert tok.decode(moved.input_ids[moved.start:moved.end + 1]).replace(" ", "") == "w165w166"
    # a span too far from the marker to share a window: left out of training
    far = text.index("w290 w291")
    ex3 = make_example(3, "x.org", text, 0, pos, len(text), (far, far + len("w290 w291"), "exact"), None, True)
    assert encode(tok, [ex3], max_length=64, train=True) == []
    none = make_example(4, "x.org", text, 0, pos, len(text), None, None, True)
    (nw,) = encode(tok, [none], max_length=64, train=True)
    assert (nw.start, nw.end) == (0, 0) and nw.has_label


def test_length_sorted_batches():
    import random

    from wdb.spans.model import Window

    ws = [Window(k, [0] * (5 + (k * 7) % 50), [None] * (5 + (k * 7) % 50), 0, 0, True) for k in range(200)]
    plain = length_batches(ws, 8)
    assert sorted(k for b in plain for k in b) == list(range(200))
    lens = [len(ws[k].input_ids) for b in plain for k in b]
    assert lens == sorted(lens)
    a, b = length_batches(ws, 8, random.Random(1)), length_batches(ws, 8, random.Random(1))
    assert a == b and sorted(k for x in a for k in x) == list(range(200))
    assert a != length_batches(ws, 8, random.Random(2))
    # little padding: within a batch the lengths are close (one pool of 16 batches sorted)
    spread = sum(max(len(ws[k].input_ids) for k in x) - min(len(ws[k].input_ids) for k in x) for x in a) / len(a)
    assert spread < 10


def test_metrics_cannot_be_gamed_by_answering_none(span_db):
    conn = open_db(span_db)
    exs = [e for e in load_training_examples(conn, seed=0, negatives=1.0)][:300]
    truth = [e.to_page(*e.label) if e.label else None for e in exs]
    assert 50 < sum(t is None for t in truth) < 250
    always_none = scores([(None, t) for t in truth])
    assert always_none["span_iou"] == 0.0 and always_none["span_em"] == 0.0
    assert always_none["none_recall"] == 1.0 and always_none["none_share"] == 1.0
    assert always_none["f1"] <= 0.5
    oracle = scores(list(zip(truth, truth, strict=True)))
    assert (oracle["span_em"], oracle["span_iou"], oracle["f1"], oracle["none_precision"]) == (1.0, 1.0, 1.0, 1.0)
    never_none = scores([((0, 1), t) for t in truth])
    assert never_none["none_recall"] == 0.0 and never_none["none_precision"] is None and never_none["f1"] <= 0.5
    # the threshold chosen separates the answers where none_prob does
    raw = [((0, 5), 0.9 if t is None else 0.1, 0.5) for t in truth]
    t = choose_threshold(raw, [None if x is None else (0, 5) for x in truth])
    assert 0.1 < t <= 0.9
    assert all((decide(r[0], r[1], r[2], t) is None) == (x is None) for r, x in zip(raw, truth, strict=True))


def test_none_threshold_answers_none_at_the_validation_base_rate():
    """The threshold makes the validation examples answer "none" as often as it is true there,
    whatever the scale of none_prob (one site's values cannot pull it to 0 % or 100 %)."""
    import random

    rng = random.Random(0)
    for scale, share in ((1.0, 0.3), (0.05, 0.3), (0.5, 0.1)):
        truth = [None if rng.random() < share else (0, 5) for _ in range(400)]
        raw = [((0, 5), scale * (rng.random() * 0.6 + (0.4 if y is None else 0.0)), 0.5) for y in truth]
        t = choose_threshold(raw, truth)
        answered = sum(decide(r[0], r[1], r[2], t) is None for r in raw)
        assert abs(answered - sum(y is None for y in truth)) <= 1, (scale, share)
    # ties: 10 "none" true, 30 examples share the top value: the threshold above the tie (none answered
    # only where no span can be) is nearer the base rate than answering 30
    raw = [((0, 5), 0.7, 0.5)] * 30 + [((0, 5), 0.2, 0.5)] * 70
    truth = [None] * 10 + [(0, 5)] * 90
    assert sum(decide(r[0], r[1], r[2], choose_threshold(raw, truth)) is None for r in raw) == 0
    # an example without a usable span is "none" anyway and counts toward the base rate
    raw = [(None, 0.0, 0.0)] * 5 + [((0, 5), 0.1 * k, 0.5) for k in range(10)]
    truth = [None] * 7 + [(0, 5)] * 8
    t = choose_threshold(raw, truth)
    assert sum(decide(r[0], r[1], r[2], t) is None for r in raw) == 7
    assert choose_threshold([], []) == 0.5


def test_a_few_training_steps_store_metrics_per_split_and_threshold(span_db, trained):
    conn = open_db(span_db)
    status, threshold, best, params = conn.execute(
        "SELECT status, none_threshold, best_epoch, params FROM span_runs WHERE id = ?", (trained,)).fetchone()
    assert status == "done" and 0.0 <= threshold <= 1.01 and best == 1
    p = json.loads(params)
    assert (p["lr"], p["max_length"], p["labels"], p["negatives"]) == (2e-4, 48, "alt", 0.5)
    epochs = {(e, s): loss for e, s, loss in conn.execute(
        "SELECT epoch, split, loss FROM span_epochs WHERE run_id = ?", (trained,))}
    assert epochs[(1, "train")] < epochs[(0, "train")]  # a few steps lower the loss
    spans = conn.execute("SELECT count(*) FROM span_epoch_spans WHERE run_id = ? AND span_n > 0 "
                         "AND span_iou IS NOT NULL", (trained,)).fetchone()[0]
    assert spans == 4  # epochs 0 and 1, train and validation
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT split, n, span_n, span_iou, none_precision, none_recall, f1, none_share FROM span_metrics "
        "WHERE run_id = ? AND method = 'model' AND grp = 'all'", (trained,))}
    assert set(rows) == {"train", "validation", "test"}
    for split, (n, span_n, iou, _, _, f1, share) in rows.items():
        assert n > span_n > 0 and 0 <= iou <= 1 and 0 <= f1 <= 1 and 0 <= share <= 1, split
    counts = json.loads(conn.execute("SELECT split_counts FROM span_runs WHERE id = ?", (trained,)).fetchone()[0])
    assert counts["train_windows_per_second"] > 0 and counts["train_windows"] > 30


def test_eval_reports_every_method_by_type_and_a_forced_none_model_scores_zero(span_db, trained):
    from click.testing import CliRunner

    from wdb.cli import cli

    conn = open_db(span_db)
    res = CliRunner().invoke(cli, ["spans", "eval", str(span_db), "--run", str(trained), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["results"]) == {"model", "nearest_sentence", "figcaption", "random"}
    for method, groups in out["results"].items():
        assert {"all"} | TYPES <= set(groups), method
        for g in ("all", "exact"):
            assert groups[g]["span_n"] > 0 and groups[g]["span_iou"] is not None, (method, g)
        assert groups["none"]["span_n"] == 0 and groups["none"]["none_recall"] is not None
    assert out["results"]["figcaption"]["figcaption_truth"]["span_iou"] == 1.0
    stored = conn.execute("SELECT count(DISTINCT method), count(DISTINCT grp) FROM span_metrics WHERE run_id = ? "
                          "AND split = 'test'", (trained,)).fetchone()
    assert stored[0] == 4 and stored[1] >= 4
    table = CliRunner().invoke(cli, ["spans", "eval", str(span_db), "--run", str(trained)])
    assert table.exit_code == 0 and "nearest_sentence" in table.output and "span_iou" in table.output

    # the same weights forced to answer "none" everywhere (threshold 0): the metric fails it
    with transaction(conn):
        cur = conn.execute("INSERT INTO span_runs (base, params, seed, checkpoint, split_counts, status, started_at, "
                           "none_threshold) SELECT base, params, seed, checkpoint, split_counts, status, started_at, "
                           "0.0 FROM span_runs WHERE id = ?", (trained,))
        forced = cur.lastrowid
        conn.execute("INSERT INTO span_examples SELECT ?, media_id, split, label FROM span_examples WHERE run_id = ?",
                     (forced, trained))
    res = CliRunner().invoke(cli, ["spans", "eval", str(span_db), "--run", str(forced), "--json"])
    assert res.exit_code == 0, res.output
    model = json.loads(res.stdout)["results"]["model"]
    assert model["all"]["span_iou"] == 0.0 and model["all"]["span_em"] == 0.0
    assert model["all"]["none_share"] == 1.0 and model["all"]["f1"] <= 0.5
    assert model["none"]["none_recall"] == 1.0  # answering none is right where none is true...
    assert max(v["all"]["span_iou"] for v in out["results"].values()) > 0.0  # ...and others do score spans


def test_prediction_is_incremental_scoped_and_never_overwrites_another_run(span_db, trained):
    conn = open_db(span_db)
    with transaction(conn):
        conn.execute("DELETE FROM spans WHERE run_id = ?", (trained,))
    assert predict(conn, trained, limit=40, log=sys.stderr) == 40
    assert predict(conn, trained, limit=40, log=sys.stderr) == 40  # the next 40, not the same
    rows = conn.execute("SELECT media_id, start, \"end\", text, confidence, none_prob FROM spans WHERE run_id = ?",
                        (trained,)).fetchall()
    assert len(rows) == 80 and len({r[0] for r in rows}) == 80
    for mid, s, e, t, c, none in rows:
        assert 0 <= none <= 1 and 0 <= c <= 1
        if s is not None:
            page = conn.execute("SELECT p.text FROM media m JOIN pages p ON p.id = m.page_id WHERE m.id = ?",
                                (mid,)).fetchone()[0]
            assert page[s:e] == t
    # only images where a span can matter: a failed fetch is skipped, --where narrows
    victim = conn.execute("SELECT m.id, m.url_key FROM media m WHERE m.kind = 'image' AND m.pos IS NOT NULL "
                          "AND m.placeholder = 0 AND m.ctx_end - m.ctx_start > 200 AND NOT EXISTS (SELECT 1 FROM "
                          "spans s WHERE s.media_id = m.id) ORDER BY m.id LIMIT 1").fetchone()
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO images (url_key, url, status) VALUES (?, ?, 'timeout')",
                     (victim[1], victim[1]))
    n = predict(conn, trained, where=f"m.id BETWEEN {victim[0]} AND {victim[0] + 30}", log=sys.stderr)
    got = {r[0] for r in conn.execute("SELECT media_id FROM spans WHERE run_id = ? AND media_id BETWEEN ? AND ?",
                                      (trained, victim[0], victim[0] + 30))}
    assert 0 < n == len(got) and victim[0] not in got
    assert predict(conn, trained, media_ids=[victim[0]], log=sys.stderr) == 1  # named images: always
    with pytest.raises(SpanRunError):
        predict(conn, trained, where="no_such_column = 1", log=sys.stderr)
    # a second run (same weights) adds its own rows; current_spans shows the newest, run 1's stay
    with transaction(conn):
        second = conn.execute("INSERT INTO span_runs (base, params, seed, checkpoint, status, started_at, "
                              "none_threshold) SELECT base, params, seed, checkpoint, status, started_at, 1.01 "
                              "FROM span_runs WHERE id = ?", (trained,)).lastrowid
    before = conn.execute("SELECT * FROM spans WHERE run_id = ? ORDER BY media_id", (trained,)).fetchall()
    ids = [r[0] for r in rows[:20]]
    assert predict(conn, second, media_ids=ids, log=sys.stderr) == 20
    assert conn.execute("SELECT * FROM spans WHERE run_id = ? ORDER BY media_id", (trained,)).fetchall() == before
    current = dict(conn.execute(f"SELECT media_id, run_id FROM current_spans WHERE media_id IN ({','.join(map(str, ids))})"))
    assert set(current.values()) == {second}
    # threshold 1.01: never "none"
    assert conn.execute("SELECT count(*) FROM spans WHERE run_id = ? AND start IS NULL", (second,)).fetchone()[0] == 0


def test_media_page_shows_the_predicted_span(span_db, trained):
    import asyncio

    from wdb.serve import make_datasette

    conn = open_db(span_db)
    predict(conn, trained, limit=200, log=sys.stderr)  # incremental: whatever ran before, the same spans
    row = conn.execute("SELECT media_id, text FROM spans WHERE start IS NOT NULL LIMIT 1").fetchone()
    assert row is not None
    html = asyncio.run(make_datasette(span_db).client.get(f"/-/wdb/media/{row[0]}")).text
    assert '<mark class="span"' in html and "Predicted descriptions" in html


def test_the_training_loop_runs_without_a_database():
    """fit() alone, on a tiny random BERT: metrics before and after each epoch, loss goes down on
    the one example it is shown again and again, early stopping keeps the best epoch."""
    from transformers import BertConfig, BertForQuestionAnswering

    from wdb.spans.train import fit

    tok, _ = load(None)
    torch.manual_seed(0)
    model = BertForQuestionAnswering(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=37))
    text = "A red bus waits at the stop on a rainy day. " * 3
    pos = len(text) // 2
    target = text.index("red bus", pos)
    ex = make_example(1, "x.org", text, 0, pos, len(text), (target, target + len("red bus"), "exact"), None, True)
    windows = encode(tok, [ex], 64, train=True)
    p = TrainParams(epochs=8, patience=8, lr=5e-3, batch_size=4, seed=0)
    seen = []
    res = fit(model, windows, windows, tok.pad_token_id, torch.device("cpu"), p,
              lambda epoch, m: seen.append((epoch, m["train"]["loss"], m["validation"]["span_iou"])))
    assert res.seen == 8 * len(windows) and res.epochs == 8
    assert [e for e, _, _ in seen] == list(range(9))
    assert seen[-1][1] < seen[0][1]
    best = max(range(1, 9), key=lambda k: (seen[k][2], -k))
    assert res.best_epoch == best and res.best_span_iou == seen[best][2]
    # patience: stops after `patience` epochs without a better validation span IoU
    torch.manual_seed(0)
    model2 = BertForQuestionAnswering(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                                 num_attention_heads=2, intermediate_size=37))
    res2 = fit(model2, windows, windows, tok.pad_token_id, torch.device("cpu"),
               TrainParams(epochs=8, patience=1, lr=0.0, batch_size=4, seed=0))
    assert res2.epochs == 2 and res2.best_epoch == 1  # lr 0: nothing improves after epoch 1


def test_bad_labels_option_is_a_usage_error(span_db):
    from click.testing import CliRunner

    from wdb.cli import cli

    res = CliRunner().invoke(cli, ["spans", "train", str(span_db), "--labels", "figcaption"])
    assert res.exit_code == 2 and "alt,figcaption" in res.output


def test_checkpoint_is_in_the_databases_side_folder(span_db, trained):
    conn = open_db(span_db)
    ckpt = conn.execute("SELECT checkpoint FROM span_runs WHERE id = ?", (trained,)).fetchone()[0]
    assert ckpt.startswith(str(span_db) + ".wdb") and os.path.isdir(ckpt)
    assert {r[0] for r in conn.execute("SELECT DISTINCT split FROM span_examples WHERE run_id = ?", (trained,))} == {
        "train", "validation", "test"}
    assert list(iter_examples(conn, "AND 0")) == []


def test_a_backbone_that_cannot_load_closes_its_run(span_db, tmp_path):
    """The run's row is written before the model loads: a failure there (or in encoding, or saving)
    must mark it failed, never leave it 'running'."""
    import io

    conn = open_db(span_db)
    before = conn.execute("SELECT coalesce(max(id), 0) FROM span_runs").fetchone()[0]
    with pytest.raises(Exception):
        train(conn, TrainParams(**{**QUICK, "base": str(tmp_path / "no-such-model")}), log=io.StringIO())
    rows = conn.execute("SELECT status, finished_at IS NOT NULL FROM span_runs WHERE id > ?", (before,)).fetchall()
    assert rows == [("failed", 1)]
    conn.close()
