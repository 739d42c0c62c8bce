"""`wdb spans train`: fine-tune a BERT-style encoder with start/end heads on the alt-text matches."""
from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass

import torch

from ..errors import SpanRunError
from ..stage import stage_run
from ..db import now, side_dir, transaction
from .data import load_training_examples, split_by_domain
from .metrics import FIELDS, choose_threshold, scores
from .settings import TrainParams
from .model import (autocast, best_spans, choose_device, collate, encode, length_batches, load,
                    masked_logits, span_loss, token_iou)
from .predict import decided, infer


@dataclass
class FitResult:
    seen: int  # windows trained on
    epochs: int  # epochs run
    best_epoch: int  # the epoch whose weights were kept (best validation span IoU)
    best_span_iou: float | None


EVAL_TRAIN_WINDOWS = 512  # per-epoch train figures on the first this many train windows


def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def evaluate_windows(model, windows, pad_id, device, p: TrainParams) -> dict:
    """Mean loss, Exact Match and token IoU over windows ("none" when its probability reaches the
    best span's), and span_em / span_iou over the windows of examples with a true span (best
    non-"none" span; a true span outside the window scores 0): the early-stopping figure."""
    if not windows:
        return {"loss": None, "em": None, "iou": None, "examples": 0, "span_n": 0, "span_em": None,
                "span_iou": None}
    model.eval()
    loss_sum, em, iou, span_n, span_em, span_iou = 0.0, 0, 0.0, 0, 0, 0.0
    with torch.inference_mode():
        for idx in length_batches(windows, p.batch_size):
            batch = [windows[k] for k in idx]
            b = collate(batch, pad_id, device)
            with autocast(device, p.bf16):
                out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            sl, el = masked_logits(out.start_logits, b["allowed"]), masked_logits(out.end_logits, b["allowed"])
            loss, _, _ = span_loss(sl, el, b["start"], b["end"], p.iou_weight)
            loss_sum += loss.item() * len(batch)
            s, e, sp, ep, none = best_spans(sl, el, p.max_span_tokens)
            s, e, sp, ep, none = s.tolist(), e.tolist(), sp.tolist(), ep.tolist(), none.tolist()
            for k, w in enumerate(batch):
                best = (s[k], e[k])
                pred = (0, 0) if none[k] >= sp[k] * ep[k] else best
                em += pred == (w.start, w.end)
                iou += token_iou(*pred, w.start, w.end)
                if (w.start, w.end) != (0, 0) or not w.has_label:
                    span_n += 1
                    if w.has_label:
                        span_em += best == (w.start, w.end)
                        span_iou += token_iou(*best, w.start, w.end)
    n = len(windows)
    return {"loss": loss_sum / n, "em": em / n, "iou": iou / n, "examples": n, "span_n": span_n,
            "span_em": span_em / span_n if span_n else None, "span_iou": span_iou / span_n if span_n else None}


def fit(model, train_w, val_w, pad: int, device, p: TrainParams, on_epoch=None, eval_train: bool = True) -> FitResult:
    """The training loop alone (no database): up to `p.epochs` epochs over length-sorted batches
    (shuffled by the seed), bf16 autocast where it helps; `on_epoch(epoch, {"train": metrics,
    "validation": metrics})` before training (epoch 0) and after each epoch. Stops when the
    validation span IoU has not improved for `p.patience` epochs and keeps the best epoch's weights
    (without validation windows: the last epoch's). eval_train=False: validation figures only."""
    def report(epoch: int) -> float | None:
        sets = (("train", train_w[:EVAL_TRAIN_WINDOWS]), ("validation", val_w)) if on_epoch and eval_train else (("validation", val_w),)
        m = {name: evaluate_windows(model, ws, pad, device, p) for name, ws in sets}
        if on_epoch is not None:
            on_epoch(epoch, m)
        return m["validation"]["span_iou"]

    report(0)
    head = [q for n, q in model.named_parameters() if n.startswith("qa_outputs.")]
    ids = {id(q) for q in head}
    body = [q for q in model.parameters() if id(q) not in ids]
    opt = torch.optim.AdamW([{"params": body, "lr": p.lr}, {"params": head, "lr": p.lr * p.head_lr}], lr=p.lr)
    rng = random.Random(p.seed)
    seen, best, best_epoch, bad, epoch = 0, None, 0, 0, 0
    best_state = None
    for epoch in range(1, p.epochs + 1):
        model.train()
        for idx in length_batches(train_w, p.batch_size, rng):
            batch = [train_w[k] for k in idx]
            b = collate(batch, pad, device)
            weights = None
            if p.none_weight != 1.0:
                weights = torch.tensor([p.none_weight if (w.start, w.end) == (0, 0) else 1.0 for w in batch],
                                       device=device)
            with autocast(device, p.bf16):
                out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            sl, el = masked_logits(out.start_logits, b["allowed"]), masked_logits(out.end_logits, b["allowed"])
            loss, _, _ = span_loss(sl, el, b["start"], b["end"], p.iou_weight, weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(batch)
        score = report(epoch)
        if score is None:
            best_epoch = epoch
            continue
        if best is None or score > best:
            best, best_epoch, bad = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= p.patience:
                break
    if best_state is not None and best_epoch != epoch:
        model.load_state_dict(best_state)
    return FitResult(seen, epoch, best_epoch, best)


def train(conn: sqlite3.Connection, p: TrainParams, log=sys.stderr) -> int:
    """Train one model; returns the span run id. Metrics per epoch and the split go into the
    database; the checkpoint into the database's own side folder (`<db>.wdb/spans/run-N/`)."""
    with stage_run(conn, "spans train", p) as run:
        run.counts["span_run"] = span_run = _train(conn, p, log)
    return span_run


def _train(conn: sqlite3.Connection, p: TrainParams, log) -> int:
    seed_all(p.seed)
    device = choose_device(p.device)
    labels = tuple(x.strip() for x in p.labels.split(",") if x.strip())
    try:
        examples = load_training_examples(conn, p.seed, p.negatives, p.max_examples, p.context_words, labels)
    except ValueError as e:
        raise SpanRunError(str(e)) from e
    if not any(e.label for e in examples):
        raise SpanRunError("no image has its alt text in its context: ingest archives first")
    split = split_by_domain(examples, p.seed)
    by_split = {name: [e for e in examples if split[e.media_id] == name] for name in ("train", "validation", "test")}
    counts: dict = {}
    for name, sel in by_split.items():
        counts[name] = {"examples": len(sel), "positives": sum(1 for e in sel if e.label),
                        "domains": len({e.domain for e in sel})}
    with transaction(conn):
        cur = conn.execute("INSERT INTO span_runs (base, params, seed, split_counts, started_at) VALUES (?,?,?,?,?)",
                           (p.base, json.dumps(asdict(p), sort_keys=True), p.seed, json.dumps(counts), now()))
        run_id = cur.lastrowid
        conn.executemany("INSERT INTO span_examples (run_id, media_id, split, label) VALUES (?,?,?,?)",
                         [(run_id, e.media_id, split[e.media_id], "span" if e.label else "none") for e in examples])
    try:  # from here on the run's row exists: any failure (loading, encoding, disk full) closes it
        tok, model = load(p.base)
        model.to(device)
        pad = tok.pad_token_id or 0
        train_w = encode(tok, by_split["train"], p.max_length, train=True)
        val_w = encode(tok, by_split["validation"], p.max_length, train=False)
        counts["train_windows"] = len(train_w)
        counts["train_left_out"] = len(by_split["train"]) - len(train_w)  # span too far from the marker
        print(f"wdb: span run {run_id}: {len(by_split['train'])} train / {len(by_split['validation'])} validation "
              f"examples ({len(train_w)} / {len(val_w)} windows of <= {p.max_length} tokens) on {device}", file=log)

        def record(epoch: int, metrics: dict[str, dict]) -> None:
            rows, spans = [], []
            for name, m in metrics.items():
                rows.append((run_id, epoch, name, m["loss"], m["em"], m["iou"], m["examples"]))
                spans.append((run_id, epoch, name, m["span_n"], m["span_em"], m["span_iou"]))
                print(f"wdb: epoch {epoch} {name}: loss {m['loss']:.4f} EM {m['em']:.3f} IoU {m['iou']:.3f} "
                      f"span IoU {m['span_iou'] if m['span_iou'] is not None else float('nan'):.3f}"
                      if m["examples"] else f"wdb: epoch {epoch} {name}: no examples", file=log)
            with transaction(conn):
                conn.executemany("INSERT INTO span_epochs (run_id, epoch, split, loss, em, iou, examples) "
                                 "VALUES (?,?,?,?,?,?,?)", rows)
                conn.executemany("INSERT INTO span_epoch_spans (run_id, epoch, split, span_n, span_em, span_iou) "
                                 "VALUES (?,?,?,?,?,?)", spans)

        t0 = time.monotonic()
        res = fit(model, train_w, val_w, pad, device, p, record)
        seconds = time.monotonic() - t0
        threshold, metrics = split_metrics(tok, model, by_split, device, p)
        ckpt = side_dir(conn, "spans") / f"run-{run_id}"
        ckpt.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(ckpt)
        tok.save_pretrained(ckpt)
    except BaseException:
        with transaction(conn):
            conn.execute("UPDATE span_runs SET status = 'failed', finished_at = ? WHERE id = ?", (now(), run_id))
        raise
    counts["train_windows_per_second"] = round(res.seen / seconds, 2) if seconds else None
    counts["epochs_run"] = res.epochs
    with transaction(conn):
        conn.execute("UPDATE span_runs SET checkpoint = ?, status = 'done', finished_at = ?, train_seconds = ?, "
                     "split_counts = ?, none_threshold = ?, best_epoch = ? WHERE id = ?",
                     (str(ckpt), now(), round(seconds, 2), json.dumps(counts), threshold, res.best_epoch, run_id))
        store_metrics(conn, run_id, [(name, "model", "all", m) for name, m in metrics.items()])
    print(f"wdb: span run {run_id} trained in {seconds:.0f}s ({counts['train_windows_per_second']} windows/s), "
          f"{res.epochs} epochs, kept epoch {res.best_epoch}; none threshold {threshold:.4f}; checkpoint {ckpt}",
          file=log)
    for name, m in metrics.items():
        print(f"wdb: {name}: {format_metrics(m)}", file=log)
    return run_id


def split_metrics(tok, model, by_split: dict, device, p: TrainParams) -> tuple[float, dict[str, dict]]:
    """The none threshold chosen on the validation split, and the model's figures on every split."""
    return metrics_at(*split_raw(tok, model, by_split, device, p))


def split_raw(tok, model, by_split: dict, device, p: TrainParams) -> tuple[dict, dict]:
    """Per split, the model's raw answers (`predict.infer` rows) and the true page spans."""
    raw = {name: infer(tok, model, sel, p.max_length, 64, device, p.max_span_tokens, p.bf16)
           for name, sel in by_split.items()}
    truths = {name: [e.to_page(*e.label) if e.label else None for e in sel] for name, sel in by_split.items()}
    return raw, truths


def metrics_at(raw: dict, truths: dict, choose=choose_threshold) -> tuple[float, dict[str, dict]]:
    """The none threshold chosen by `choose` on the validation split's raw answers, and every
    split's figures at that threshold."""
    val = [((r[1], r[2]) if r[1] is not None else None, r[7], r[6]) for r in raw["validation"]]
    threshold = choose(val, truths["validation"])
    metrics = {}
    for name in raw:
        rows = decided(raw[name], threshold)
        metrics[name] = scores([((r[1], r[2]) if r[1] is not None else None, t)
                                for r, t in zip(rows, truths[name], strict=True)])
    return threshold, metrics


def store_metrics(conn: sqlite3.Connection, run_id: int, rows: list[tuple[str, str, str, dict]]) -> None:
    """(split, method, group, figures) rows into span_metrics, replacing those of the same key."""
    conn.executemany(f"INSERT OR REPLACE INTO span_metrics (run_id, split, method, grp, {', '.join(FIELDS)}) "
                     f"VALUES (?,?,?,?{', ?' * len(FIELDS)})",
                     [(run_id, split, method, grp) + tuple(m[f] for f in FIELDS) for split, method, grp, m in rows])


def format_metrics(m: dict) -> str:
    def f(x):
        return "  -  " if x is None else f"{x:.3f}"

    return (f"n={m['n']} spans={m['span_n']} span EM {f(m['span_em'])} IoU {f(m['span_iou'])} | none P "
            f"{f(m['none_precision'])} R {f(m['none_recall'])} share {f(m['none_share'])} (true "
            f"{f(m['true_none_share'])}) | F1 {f(m['f1'])}")
