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
from .model import (DEFAULT_BASE, best_spans, choose_device, collate, encode, load, masked_logits, span_loss,
                    token_iou)


@dataclass
class TrainParams:
    base: str = DEFAULT_BASE
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 16
    max_length: int = 256
    stride: int = 64
    iou_weight: float = 1.0
    seed: int = 0
    max_examples: int | None = None
    negatives: float = 1.0  # "no span" examples per positive
    max_span_tokens: int = 64
    context_words: int | None = None  # narrow the stored 256-word windows (None: use them whole)
    device: str = "auto"


def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def evaluate_windows(model, windows, pad_id, device, p: TrainParams) -> dict:
    """Mean loss, Exact Match and token IoU over windows."""
    if not windows:
        return {"loss": None, "em": None, "iou": None, "examples": 0}
    model.eval()
    losses, em, iou = [], 0, 0.0
    with torch.no_grad():
        for i in range(0, len(windows), p.batch_size):
            batch = windows[i:i + p.batch_size]
            b = collate(batch, pad_id, device)
            out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            sl, el = masked_logits(out.start_logits, b["allowed"]), masked_logits(out.end_logits, b["allowed"])
            loss, _, _ = span_loss(sl, el, b["start"], b["end"], p.iou_weight)
            losses.append(loss.item() * len(batch))
            s, e, sp, ep, none = best_spans(sl, el, p.max_span_tokens)
            for k, w in enumerate(batch):
                pred = (0, 0) if none[k] >= sp[k] * ep[k] else (int(s[k]), int(e[k]))
                em += pred == (w.start, w.end)
                iou += token_iou(*pred, w.start, w.end)
    n = len(windows)
    return {"loss": sum(losses) / n, "em": em / n, "iou": iou / n, "examples": n}


def fit(model, train_w, val_w, pad: int, device, p: TrainParams, on_epoch=None) -> int:
    """The training loop alone (no database): `p.epochs` epochs over the windows, shuffled by the
    seed; `on_epoch(epoch, {"train": metrics, "validation": metrics})` before training (epoch 0)
    and after each epoch. Returns the windows trained on."""
    def report(epoch: int) -> None:
        if on_epoch is not None:
            on_epoch(epoch, {name: evaluate_windows(model, ws, pad, device, p)
                             for name, ws in (("train", train_w), ("validation", val_w))})

    report(0)
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr)
    rng = random.Random(p.seed)
    seen = 0
    for epoch in range(1, p.epochs + 1):
        model.train()
        order = list(range(len(train_w)))
        rng.shuffle(order)
        for i in range(0, len(order), p.batch_size):
            batch = [train_w[k] for k in order[i:i + p.batch_size]]
            b = collate(batch, pad, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            sl, el = masked_logits(out.start_logits, b["allowed"]), masked_logits(out.end_logits, b["allowed"])
            loss, _, _ = span_loss(sl, el, b["start"], b["end"], p.iou_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(batch)
        report(epoch)
    return seen


def train(conn: sqlite3.Connection, p: TrainParams, log=sys.stderr) -> int:
    """Train one model; returns the span run id. Metrics per epoch and the split go into the
    database; the checkpoint into the database's own side folder (`<db>.wdb/spans/run-N/`)."""
    with stage_run(conn, "spans train", p) as run:
        run.counts["span_run"] = span_run = _train(conn, p, log)
    return span_run


def _train(conn: sqlite3.Connection, p: TrainParams, log) -> int:
    seed_all(p.seed)
    device = choose_device(p.device)
    examples = load_training_examples(conn, p.seed, p.negatives, p.max_examples, p.context_words)
    if not any(e.label for e in examples):
        raise SpanRunError("no image has its alt text in its context: ingest archives first")
    split = split_by_domain(examples, p.seed)
    counts = {}
    for name in ("train", "validation", "test"):
        sel = [e for e in examples if split[e.media_id] == name]
        counts[name] = {"examples": len(sel), "positives": sum(1 for e in sel if e.label),
                        "domains": len({e.domain for e in sel})}
    with transaction(conn):
        cur = conn.execute("INSERT INTO span_runs (base, params, seed, split_counts, started_at) VALUES (?,?,?,?,?)",
                           (p.base, json.dumps(asdict(p), sort_keys=True), p.seed, json.dumps(counts), now()))
        run_id = cur.lastrowid
        conn.executemany("INSERT INTO span_examples (run_id, media_id, split, label) VALUES (?,?,?,?)",
                         [(run_id, e.media_id, split[e.media_id], "span" if e.label else "none") for e in examples])
    tok, model = load(p.base)
    model.to(device)
    pad = tok.pad_token_id or 0
    train_ex = [e for e in examples if split[e.media_id] == "train"]
    val_ex = [e for e in examples if split[e.media_id] == "validation"]
    train_w = encode(tok, train_ex, p.max_length, p.stride, train=True)
    val_w = encode(tok, val_ex, p.max_length, p.stride, train=True)
    print(f"wdb: span run {run_id}: {len(train_ex)} train / {len(val_ex)} validation examples "
          f"({len(train_w)} / {len(val_w)} windows) on {device}", file=log)

    def record(epoch: int, metrics: dict[str, dict]) -> None:
        rows = []
        for name, m in metrics.items():
            rows.append((run_id, epoch, name, m["loss"], m["em"], m["iou"], m["examples"]))
            print(f"wdb: epoch {epoch} {name}: loss {m['loss']:.4f} EM {m['em']:.3f} IoU {m['iou']:.3f}"
                  if m["examples"] else f"wdb: epoch {epoch} {name}: no examples", file=log)
        with transaction(conn):
            conn.executemany("INSERT INTO span_epochs (run_id, epoch, split, loss, em, iou, examples) "
                             "VALUES (?,?,?,?,?,?,?)", rows)

    t0 = time.monotonic()
    try:
        seen = fit(model, train_w, val_w, pad, device, p, record)
    except BaseException:
        with transaction(conn):
            conn.execute("UPDATE span_runs SET status = 'failed', finished_at = ? WHERE id = ?", (now(), run_id))
        raise
    seconds = time.monotonic() - t0
    ckpt = side_dir(conn, "spans") / f"run-{run_id}"
    ckpt.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    counts["train_windows_per_second"] = round(seen / seconds, 2) if seconds else None
    with transaction(conn):
        conn.execute("UPDATE span_runs SET checkpoint = ?, status = 'done', finished_at = ?, train_seconds = ?, "
                     "split_counts = ? WHERE id = ?", (str(ckpt), now(), round(seconds, 2), json.dumps(counts), run_id))
    print(f"wdb: span run {run_id} trained in {seconds:.0f}s ({counts['train_windows_per_second']} windows/s); "
          f"checkpoint {ckpt}", file=log)
    return run_id
