"""`wdb spans eval`: EM and IoU on the held-out sites, by description type, against baselines."""
from __future__ import annotations

import random
import re
import sqlite3
import sys

from .data import SHIFT, Example, iter_examples
from ..db import transaction
from ..stage import stage_run

BINS = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]
_SENT = re.compile(r"[^\n.!?]+[.!?]*")


def char_scores(pred: tuple[int, int] | None, truth: tuple[int, int] | None) -> tuple[float, float]:
    """(exact match, IoU) of two character spans; None is "no description"."""
    if pred is None or truth is None:
        v = 1.0 if pred is None and truth is None else 0.0
        return v, v
    inter = max(0, min(pred[1], truth[1]) - max(pred[0], truth[0]))
    union = (pred[1] - pred[0]) + (truth[1] - truth[0]) - inter
    return float(pred == truth), inter / union if union else 0.0


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
    """Model and baselines on the run's test split; rows in span_evals (replaced), a runs row."""
    with stage_run(conn, "spans eval", dict(run_id=run_id, seed=seed)) as run:
        out = _evaluate(conn, run_id, seed, log)
        run.counts["groups"] = sum(len(v) for v in out["results"].values())
    return out


def _evaluate(conn: sqlite3.Connection, run_id: int, seed: int, log) -> dict:
    from .predict import predict, run_params

    words = run_params(conn, run_id)[1].get("context_words")

    test_ids = [r[0] for r in conn.execute(
        "SELECT media_id FROM span_examples WHERE run_id = ? AND split = 'test'", (run_id,))]
    seen = {r[0] for r in conn.execute("SELECT media_id FROM span_examples WHERE run_id = ? AND split != 'test'",
                                       (run_id,))}
    fig_ids = [r[0] for r in conn.execute(
        "SELECT id FROM media WHERE kind = 'image' AND pos IS NOT NULL AND figcaption IS NOT NULL")]
    fig_ids = [i for i in fig_ids if i not in seen]
    predict(conn, run_id, media_ids=test_ids + fig_ids, log=log)
    preds = {r[0]: ((r[1], r[2]) if r[1] is not None else None, r[3], r[4])
             for r in conn.execute("SELECT media_id, start, \"end\", confidence, none_prob FROM spans WHERE run_id = ?",
                                   (run_id,))}
    ids = ",".join(map(str, test_ids)) or "NULL"
    test = list(iter_examples(conn, f"AND m.id IN ({ids})", words=words))
    fids = ",".join(map(str, fig_ids)) or "NULL"
    figs = [e for e in iter_examples(conn, f"AND m.id IN ({fids})", labelled=False, words=words) if e.figcaption]
    train = list(iter_examples(conn, "AND m.id IN (SELECT media_id FROM span_examples WHERE run_id = ? "
                                     "AND split = 'train')", (run_id,), words=words))
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
    rows = []
    out: dict = {"run": run_id, "test_examples": len(test), "figcaption_examples": len(figs), "results": {}}
    for name, fn in methods.items():
        groups: dict[str, list[tuple[float, float]]] = {}
        for e in test:
            score = char_scores(fn(e), truth(e))
            groups.setdefault("all", []).append(score)
            groups.setdefault(e.kind, []).append(score)
            if name == "model":
                conf = max(preds[e.media_id][1] or 0.0, preds[e.media_id][2] or 0.0)
                lo, hi = next(b for b in BINS if b[0] <= conf < b[1])
                groups.setdefault(f"conf:{lo:.1f}-{min(hi, 1.0):.1f}", []).append(score)
        for e in figs:  # human-written captions, never used as labels
            groups.setdefault("figcaption", []).append(char_scores(fn(e), fig_truth(e)))
        res = {}
        for g, scores in sorted(groups.items()):
            n = len(scores)
            em = sum(s[0] for s in scores) / n
            iou = sum(s[1] for s in scores) / n
            res[g] = {"n": n, "em": round(em, 4), "iou": round(iou, 4)}
            rows.append((run_id, name, g, n, em, iou))
        out["results"][name] = res
    with transaction(conn):
        conn.execute("DELETE FROM span_evals WHERE run_id = ?", (run_id,))
        conn.executemany("INSERT INTO span_evals (run_id, method, grp, n, em, iou) VALUES (?,?,?,?,?,?)", rows)
    return out
