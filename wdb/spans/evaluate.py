"""`wdb spans eval`: the model and every baseline on the held-out sites, by description type, on
figures that answering "none" cannot game (`metrics.py`)."""
from __future__ import annotations

import random
import re
import sqlite3
import sys

from .data import SHIFT, Example, iter_examples, label_figcaption
from .metrics import char_scores, scores  # noqa: F401 (char_scores: used by callers)
from ..db import transaction
from ..stage import stage_run

BINS = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]
_SENT = re.compile(r"[^\n.!?]+[.!?]*")


def nearest_sentence(ex: Example) -> tuple[int, int] | None:
    """The sentence (or line) of the context closest to the image marker."""
    at, after = ex.before_len, ex.before_len + SHIFT
    best = None
    for m in _SENT.finditer(ex.context):
        s, e = m.start(), m.end()
        if s < after and e > at:  # the marker itself
            continue
        text = m.group()
        s += len(text) - len(text.lstrip())
        e -= len(text) - len(text.rstrip())
        if e <= s:
            continue
        d = at - e if e <= at else s - after
        if best is None or d < best[0]:
            best = (d, s, e)
    return ex.to_page(best[1], best[2]) if best else None


def random_span(ex: Example, rng: random.Random, none_rate: float, lengths: list[int]) -> tuple[int, int] | None:
    if rng.random() < none_rate or not lengths:
        return None
    words = [m for m in re.finditer(r"\S+", ex.context) if not (ex.before_len <= m.start() < ex.before_len + SHIFT)]
    if not words:
        return None
    n = rng.choice(lengths)
    i = rng.randrange(len(words))
    j = min(len(words) - 1, i + n - 1)
    return ex.to_page(words[i].start(), words[j].end())


def evaluate(conn: sqlite3.Connection, run_id: int, seed: int = 0, log=sys.stderr) -> dict:
    """Model and baselines on the run's test split; rows in span_metrics (split test, replaced) and
    span_evals (EM/IoU over all examples, as before), a runs row."""
    with stage_run(conn, "spans eval", dict(run_id=run_id, seed=seed)) as run:
        out = _evaluate(conn, run_id, seed, log)
        run.counts["groups"] = sum(len(v) for v in out["results"].values())
    return out


def _evaluate(conn: sqlite3.Connection, run_id: int, seed: int, log) -> dict:
    from .predict import predict, run_params, run_threshold

    params = run_params(conn, run_id)[1]
    words = params.get("context_words")
    fig_labels = "figcaption" in str(params.get("labels", "alt"))
    split_of = dict(conn.execute("SELECT media_id, split FROM span_examples WHERE run_id = ?", (run_id,)))
    test_ids = [i for i, s in split_of.items() if s == "test"]
    fig_ids = [r[0] for r in conn.execute(
        "SELECT id FROM media WHERE kind = 'image' AND pos IS NOT NULL AND figcaption IS NOT NULL")]
    if fig_labels:
        # figcaptions were labels: only sites the model never trained or validated on
        seen_sites = {r[0] for r in conn.execute(
            "SELECT DISTINCT p.domain FROM span_examples x JOIN media m ON m.id = x.media_id "
            "JOIN pages p ON p.id = m.page_id WHERE x.run_id = ? AND x.split != 'test'", (run_id,))}
        site = dict(conn.execute("SELECT m.id, p.domain FROM media m JOIN pages p ON p.id = m.page_id "
                                 "WHERE m.figcaption IS NOT NULL"))
        fig_ids = [i for i in fig_ids if site.get(i) not in seen_sites]
    else:
        fig_ids = [i for i in fig_ids if split_of.get(i, "test") == "test"]
    predict(conn, run_id, media_ids=test_ids + fig_ids, log=log)
    preds = {r[0]: ((r[1], r[2]) if r[1] is not None else None, r[3], r[4])
             for r in conn.execute("SELECT media_id, start, \"end\", confidence, none_prob FROM spans WHERE run_id = ?",
                                   (run_id,))}
    labels = ("alt", "figcaption") if fig_labels else ("alt",)
    test = [e for e in _examples(conn, test_ids, words, labels) if e.kind != "outside"]
    labelled = {e.media_id for e in test}
    figs = [e for e in iter_examples(conn, f"AND m.id IN ({_ids(fig_ids)})", labelled=False, words=words)
            if e.figcaption]
    train_ids = [i for i, s in split_of.items() if s == "train"]
    train = _examples(conn, train_ids, words, labels)
    none_rate = sum(1 for e in train if e.label is None) / max(1, len(train))
    lengths = [len(e.context[e.label[0]:e.label[1]].split()) for e in train if e.label]
    rng = random.Random(seed)

    def truth(e: Example):
        return e.to_page(*e.label) if e.label else None

    def fig_truth(e: Example):
        return e.to_page(*e.figcaption) if e.figcaption else None

    methods = {
        "model": lambda e: preds[e.media_id][0],
        "nearest_sentence": nearest_sentence,
        "figcaption": fig_truth,
        "random": lambda e: random_span(e, rng, none_rate, lengths),
    }
    rows, metric_rows = [], []
    out: dict = {"run": run_id, "none_threshold": run_threshold(conn, run_id), "test_examples": len(test),
                 "figcaption_examples": len(figs), "results": {}}
    for name, fn in methods.items():
        groups: dict[str, list[tuple]] = {}
        for e in test:
            pair = (fn(e), truth(e))
            groups.setdefault("all", []).append(pair)
            groups.setdefault(e.kind, []).append(pair)
            if name == "model":
                conf = max(preds[e.media_id][1] or 0.0, preds[e.media_id][2] or 0.0)
                lo, hi = next(b for b in BINS if b[0] <= conf < b[1])
                groups.setdefault(f"conf:{lo:.1f}-{min(hi, 1.0):.1f}", []).append(pair)
        for e in figs:  # human-written captions (never labels on these sites)
            groups.setdefault("figcaption_truth", []).append((fn(e), fig_truth(e)))
        res = {}
        for g, pairs in sorted(groups.items()):
            m = scores(pairs)
            n = len(pairs)
            both = [char_scores(p, t) for p, t in pairs]
            m["em"] = round(sum(b[0] for b in both) / n, 4)
            m["iou"] = round(sum(b[1] for b in both) / n, 4)
            res[g] = m
            rows.append((run_id, name, g, n, m["em"], m["iou"]))
            metric_rows.append(("test", name, g, m))
        out["results"][name] = res
    out["unlabelled_test_images"] = len(set(test_ids) - labelled)
    from .train import store_metrics

    with transaction(conn):
        conn.execute("DELETE FROM span_evals WHERE run_id = ?", (run_id,))
        conn.executemany("INSERT INTO span_evals (run_id, method, grp, n, em, iou) VALUES (?,?,?,?,?,?)", rows)
        conn.execute("DELETE FROM span_metrics WHERE run_id = ? AND split = 'test' AND method != 'model'", (run_id,))
        store_metrics(conn, run_id, metric_rows)
    return out


def _ids(ids) -> str:
    return ",".join(map(str, ids)) or "NULL"


def _examples(conn, ids, words, labels) -> list[Example]:
    """The run's examples with their labels, as training saw them."""
    out = []
    fig = "figcaption" in labels
    for e in iter_examples(conn, f"AND m.id IN ({_ids(ids)})", words=words):
        out.append(label_figcaption(e) if fig else e)
    return out
