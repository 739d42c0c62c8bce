"""Span extractor benchmark: speed against today's code, and the experiment that chose the defaults.

    python bench/spans_bench.py --speed DB [--ref main]     # windows/s and contexts/s, before/after, one run
    python bench/spans_bench.py --experiment DB             # the defaults' table (README)
    python bench/spans_bench.py --seeds 0,1,2,3,4 DB        # the defaults on the whole corpus, per seed (README)

DB: a database with the real corpus ingested (`make setup` plus the 129 real pages, see README).
Neither mode writes to DB: examples are read, models are trained in memory.

--speed checks out REF's wdb/ (git archive) into a temporary folder and runs today's training and
prediction from there in a subprocess at today's defaults (256-token windows of the whole stored
context, stride 64), then this checkout's, on the same examples, and the bare encoder forward on
the same windows as this checkout's prediction. Training figures time the optimisation steps
alone (no evaluation).

--experiment trains each configuration of CONFIGS (a handful, each a few minutes on 2 cores) on the
corpus split by site, keeps the best epoch by validation span IoU (early stopping), chooses the none
threshold on validation, and prints validation and test figures (`wdb/spans/metrics.py`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# every configuration differs from BASE in one setting (the experiment's budget: 2 shared cores)
# ("by_site": False draws the negatives from the whole pool, as before they were drawn site by site)
BASE = dict(lr=2e-4, max_length=64, negatives=0.5, none_weight=1.0, epochs=3, patience=1, batch_size=16,
            max_examples=400)
CONFIGS = [
    ("defaults", {}),
    ("lr 1e-4", dict(lr=1e-4)),
    ("negatives from the whole pool", dict(by_site=False)),
    ("negatives 1.0", dict(negatives=1.0)),
    ("none weight 0.5", dict(none_weight=0.5)),
]

LEGACY = r'''
import json, sys, time, random
import torch
from wdb.db import connect
from wdb.spans.data import iter_examples
from wdb.spans.model import encode, load
from wdb.spans.train import TrainParams, fit, seed_all
from wdb.spans.predict import predict_examples
args = json.loads(sys.argv[1])
conn = connect(args["db"])
def examples(ids, labelled):
    ex = list(iter_examples(conn, f"AND m.id IN ({','.join(map(str, ids))})", labelled=labelled))
    order = {m: k for k, m in enumerate(ids)}
    return sorted(ex, key=lambda e: order[e.media_id])
p = TrainParams(seed=0)  # today's defaults: max_length 256, stride 64, batch 16
seed_all(0)
tok, model = load(None)
train = examples(args["train_ids"], True)
w = encode(tok, train, p.max_length, p.stride, train=True)[: args["train_windows"]]
fit(model, w[:16], [], tok.pad_token_id, torch.device("cpu"), TrainParams(epochs=1, seed=0))  # warm-up
t = time.perf_counter()
fit(model, w, [], tok.pad_token_id, torch.device("cpu"), TrainParams(epochs=1, seed=0))
dt = time.perf_counter() - t
ctx = examples(args["predict_ids"], False)
predict_examples(tok, model, ctx[:8], p.max_length, p.stride, 32, torch.device("cpu"))  # warm-up
t2 = time.perf_counter()
predict_examples(tok, model, ctx, p.max_length, p.stride, 32, torch.device("cpu"))
dt2 = time.perf_counter() - t2
pw = encode(tok, ctx, p.max_length, p.stride, train=False)
print(json.dumps(dict(train_windows=len(w), train_examples=len({x.example for x in w}), train_seconds=dt,
                      mean_tokens=sum(len(x.input_ids) for x in w) / len(w),
                      contexts=len(ctx), predict_windows=len(pw), predict_seconds=dt2)))
'''


def speed(db: str, ref: str, train_windows: int, contexts: int) -> dict:
    import torch

    from wdb.db import connect
    from wdb.spans.data import iter_examples, load_training_examples
    from wdb.spans.model import autocast, collate, encode, length_batches, load
    from wdb.spans.predict import infer
    from wdb.spans.settings import TrainParams
    from wdb.spans.train import fit, seed_all

    conn = connect(db)
    ex = load_training_examples(conn, seed=0, negatives=0.5)
    train_ids = [e.media_id for e in ex][::max(1, len(ex) // (2 * train_windows))][: train_windows]
    predict_ids = [r[0] for r in conn.execute(
        "SELECT id FROM media WHERE kind = 'image' AND pos IS NOT NULL ORDER BY page_id, seq")]
    predict_ids = predict_ids[::max(1, len(predict_ids) // contexts)][:contexts]
    out: dict = {"threads": torch.get_num_threads()}

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "wdb"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = dict(os.environ, PYTHONPATH=tmp)
        arg = json.dumps(dict(db=db, train_ids=train_ids, predict_ids=predict_ids, train_windows=train_windows))
        res = subprocess.run([sys.executable, "-c", LEGACY, arg], env=env, capture_output=True, text=True, cwd=tmp)
        if res.returncode:
            raise SystemExit(res.stderr[-2000:])
        out["before"] = json.loads(res.stdout.strip().splitlines()[-1])

    def by_id(ids, labelled):
        got = list(iter_examples(conn, f"AND m.id IN ({','.join(map(str, ids))})", labelled=labelled))
        order = {m: k for k, m in enumerate(ids)}
        return sorted(got, key=lambda e: order[e.media_id])

    p = TrainParams(seed=0)
    dev = torch.device("cpu")
    after = {}
    for name, bf16 in (("after", True), ("after_fp32", False)):
        seed_all(0)
        tok, model = load(None)
        train = by_id(train_ids, True)
        w = encode(tok, train, p.max_length, train=True)[:train_windows]
        fit(model, w[:16], [], tok.pad_token_id, dev, TrainParams(epochs=1, seed=0, bf16=bf16))  # warm-up
        t = time.perf_counter()
        fit(model, w, [], tok.pad_token_id, dev, TrainParams(epochs=1, seed=0, bf16=bf16))
        dt = time.perf_counter() - t
        after[name] = dict(train_windows=len(w), train_examples=len({x.example for x in w}), train_seconds=dt,
                           mean_tokens=sum(len(x.input_ids) for x in w) / len(w))
    ctx = by_id(predict_ids, False)
    model.eval()
    infer(tok, model, ctx[:8], p.max_length, 64, dev)  # warm-up
    t = time.perf_counter()
    infer(tok, model, ctx, p.max_length, 64, dev)
    after["after"].update(contexts=len(ctx), predict_seconds=time.perf_counter() - t)
    # the bare encoder forward on the same windows and batches (tokenised and collated beforehand)
    pw = encode(tok, ctx, p.max_length, train=False)
    batches = [collate([pw[k] for k in idx], tok.pad_token_id, dev) for idx in length_batches(pw, 64)]
    with torch.inference_mode():
        t = time.perf_counter()
        for b in batches:
            with autocast(dev):
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        after["after"]["bare_forward_seconds"] = time.perf_counter() - t
    out.update(after)
    b, a = out["before"], out["after"]
    rate = {k: v["train_windows"] / v["train_seconds"] for k, v in out.items() if isinstance(v, dict)}
    ex_rate = {k: v["train_examples"] / v["train_seconds"] for k, v in out.items() if isinstance(v, dict)}
    out["summary"] = {
        "train_windows_per_s": {k: round(v, 2) for k, v in rate.items()},
        "train_examples_per_s": {k: round(v, 2) for k, v in ex_rate.items()},
        "train_speedup_windows": round(rate["after"] / rate["before"], 2),
        "train_speedup_examples": round(ex_rate["after"] / ex_rate["before"], 2),
        "predict_contexts_per_s_before": round(b["contexts"] / b["predict_seconds"], 2),
        "predict_contexts_per_s_after": round(a["contexts"] / a["predict_seconds"], 2),
        "bare_forward_contexts_per_s": round(a["contexts"] / a["bare_forward_seconds"], 2),
        "predict_over_bare_forward": round(a["predict_seconds"] / a["bare_forward_seconds"], 3),
    }
    return out


def experiment(db: str, seed: int, configs: list, base: dict | None = None, reach: bool = True) -> list[dict]:
    """Each configuration (BASE, or `base`, changed by it) trained and scored; base={} trains at
    the defaults (`wdb spans train`'s, on the whole corpus: the same run as the CLI's for a seed)."""
    import torch

    from wdb.db import connect
    from wdb.spans.data import load_training_examples, split_by_domain
    from wdb.spans.model import encode, load
    from wdb.spans.settings import TrainParams
    from wdb.spans.train import fit, metrics_at, seed_all, split_raw

    conn = connect(db)
    dev = torch.device("cpu")
    rows = []
    cache: dict = {}
    if reach:  # window length by reach (tokenisation only): positives whose span shares a window with the marker
        tok, _ = load(None)
        pos = [e for e in load_training_examples(conn, seed, 0.0) if e.label]
        fits = {n: dict(trainable=len(encode(tok, pos, n, train=True)),
                        in_centred_window=sum(w.has_label for w in encode(tok, pos, n, train=False)))
                for n in (48, 64, 96, 128, 256)}
        print(json.dumps({"positives": len(pos), "reach": fits}), flush=True)
    for name, change in configs:
        cfg = dict(BASE if base is None else base, **change)
        by_site = cfg.pop("by_site", True)
        p = TrainParams(seed=seed, **cfg)
        key = (p.negatives, p.max_examples, by_site)
        if key not in cache:
            ex = load_training_examples(conn, seed, p.negatives, p.max_examples, by_site=by_site)
            split = split_by_domain(ex, seed)
            cache[key] = {s: [e for e in ex if split[e.media_id] == s] for s in ("train", "validation", "test")}
        by_split = cache[key]
        if ("baselines", key) not in cache:
            cache[("baselines", key)] = baselines(by_split, name)
            print(json.dumps(cache[("baselines", key)]), flush=True)
        seed_all(seed)
        tok, model = load(None)
        train_w = encode(tok, by_split["train"], p.max_length, train=True)
        val_w = encode(tok, by_split["validation"], p.max_length, train=False)
        t = time.perf_counter()
        res = fit(model, train_w, val_w, tok.pad_token_id, dev, p,
                  lambda ep, m: print(f"  {name}: epoch {ep} validation span IoU {m['validation']['span_iou']}",
                                      file=sys.stderr, flush=True), eval_train=False)
        secs = time.perf_counter() - t
        raw, truths = split_raw(tok, model, by_split, dev, p)
        threshold, m = metrics_at(raw, truths)
        f1_t, f1_m = metrics_at(raw, truths, choose=f1_threshold)
        row = dict(config=name, seed=seed, **cfg, by_site=by_site, train_examples=len(by_split["train"]),
                   train_windows=len(train_w), epochs_run=res.epochs, best_epoch=res.best_epoch,
                   seconds=round(secs, 1), threshold=round(threshold, 4), validation=m["validation"], test=m["test"],
                   f1_threshold=round(f1_t, 4), f1_threshold_test=f1_m["test"],
                   test_none_auc=none_auc(raw["test"], truths["test"]),
                   baselines={k: v["test"] for k, v in cache[("baselines", key)].items() if k != "baselines_for"})
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def none_auc(raw: list, truths: list) -> float | None:
    """How well none_prob ranks the true "none" examples above those with a span: the probability
    that a random one of the first has the higher none_prob (ties count half); 0.5 is chance."""
    nones = [r[7] for r, t in zip(raw, truths, strict=True) if t is None]
    spans = [r[7] for r, t in zip(raw, truths, strict=True) if t is not None]
    if not nones or not spans:
        return None
    wins = sum((a > b) + 0.5 * (a == b) for a in nones for b in spans)
    return round(wins / (len(nones) * len(spans)), 3)


def f1_threshold(raw, truths) -> float:
    """The rule before: the none_prob threshold with the best combined F1 on validation (ties nearest
    0.5), for the comparison with the base-rate threshold (`metrics.choose_threshold`)."""
    from wdb.spans.metrics import decide, scores

    cands = sorted({0.0, 0.5, 1.01} | {round(r[1], 6) for r in raw} | {round(r[1] + 1e-6, 6) for r in raw})
    return max(cands, key=lambda t: (scores([(decide(r[0], r[1], r[2], t), y) for r, y in zip(raw, truths, strict=True)])["f1"],
                                     -abs(t - 0.5)))


def baselines(by_split: dict, config: str) -> dict:
    """The nearest sentence and the figcaption on the same validation and test examples."""
    from wdb.spans.evaluate import nearest_sentence
    from wdb.spans.metrics import scores

    out: dict = {"baselines_for": config}
    for name, fn in (("nearest_sentence", nearest_sentence),
                     ("figcaption", lambda e: e.to_page(*e.figcaption) if e.figcaption else None)):
        out[name] = {s: scores([(fn(e), e.to_page(*e.label) if e.label else None) for e in by_split[s]])
                     for s in ("validation", "test")}
    return out


def table(rows: list[dict]) -> str:
    def f(x):
        return "–" if x is None else f"{x:.3f}"

    lines = ["| config | epochs (best) | s | val span IoU | val F1 | test span EM / IoU | test none P / R | "
             "test none share (true) | test F1 | with the F1 threshold: test none share, F1 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        v, t = r["validation"], r["test"]
        lines.append(f"| {r['config']} | {r['epochs_run']} ({r['best_epoch']}) | {r['seconds']:.0f} | "
                     f"{f(v['span_iou'])} | {f(v['f1'])} | {f(t['span_em'])} / {f(t['span_iou'])} | "
                     f"{f(t['none_precision'])} / {f(t['none_recall'])} | {f(t['none_share'])} "
                     f"({f(t['true_none_share'])}) | {f(t['f1'])} | {f(r['f1_threshold_test']['none_share'])}, "
                     f"{f(r['f1_threshold_test']['f1'])} |")
    return "\n".join(lines)


def seed_table(rows: list[dict]) -> str:
    def f(x):
        return "–" if x is None else f"{x:.3f}"

    def em_iou(m):
        return f"{f(m['span_em'])} / {f(m['span_iou'])}"

    lines = ["| seed | test examples | model span EM / IoU | nearest sentence | figcaption | \"none\" share (true) | "
             "with the F1 threshold | none P / R | none-vs-span AUC of `none_prob` |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, b, f1 = r["test"], r["baselines"], r["f1_threshold_test"]
        lines.append(f"| {r['seed']} | {t['n']} | {em_iou(t)} | {em_iou(b['nearest_sentence'])} | {em_iou(b['figcaption'])} | "
                     f"{f(t['none_share'])} ({f(t['true_none_share'])}): {t['none_share'] / t['true_none_share']:.2f}x | "
                     f"{f1['none_share'] / f1['true_none_share']:.2f}x | {f(t['none_precision'])} / {f(t['none_recall'])} | "
                     f"{r['test_none_auc']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--experiment", action="store_true")
    ap.add_argument("--ref", default="main", help="git ref of today's code for --speed")
    ap.add_argument("--train-windows", type=int, default=48)
    ap.add_argument("--contexts", type=int, default=128)
    ap.add_argument("--seeds", default=None,
                    help="comma list: train at the defaults on the whole corpus once per seed (the README's five-seed table)")
    ap.add_argument("--only", default=None, help="--experiment: comma list of config numbers (1-based)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-examples", type=int, default=None, help="--experiment: override BASE's cap (smoke runs)")
    ap.add_argument("--epochs", type=int, default=None, help="--experiment: override BASE's epochs (smoke runs)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    a = ap.parse_args()
    if not (a.speed or a.experiment or a.seeds):
        ap.error("give --speed, --experiment and/or --seeds")
    result: dict = {}
    if a.speed:
        result["speed"] = speed(a.db, a.ref, a.train_windows, a.contexts)
        print(json.dumps(result["speed"]["summary"], indent=2))
    if a.experiment:
        BASE.update({k: v for k, v in (("max_examples", a.max_examples), ("epochs", a.epochs)) if v is not None})
        configs = CONFIGS if not a.only else [CONFIGS[int(k) - 1] for k in a.only.split(",")]
        result["experiment"] = experiment(a.db, a.seed, configs)
        print(table(result["experiment"]))
    if a.seeds:
        base = {k: v for k, v in (("max_examples", a.max_examples), ("epochs", a.epochs)) if v is not None}
        result["seeds"] = [row for k in a.seeds.split(",")
                           for row in experiment(a.db, int(k), [("defaults", {})], base=base, reach=False)]
        print(seed_table(result["seeds"]))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
