"""`wdb spans predict`: the best description span of every image context, for one trained run."""
from __future__ import annotations

import json
import sqlite3
import sys
import time

import torch

from ..errors import SpanRunError
from ..db import transaction
from ..stage import stage_run
from .data import Example, iter_examples
from .model import best_spans, choose_device, collate, encode, load, masked_logits

CHUNK = 256  # images per transaction: the resume point


def merge(examples: list[Example], windows, results) -> list[tuple]:
    """Per example, the most probable span over its windows, mapped back to page offsets.

    results[k] = (start, end, start_prob, end_prob, none_prob) for windows[k]. "No description" wins
    when its probability in the window of the best span exceeds that span's.
    """
    best: dict[int, tuple] = {}
    for w, (s, e, sp, ep, none) in zip(windows, results, strict=True):
        conf = sp * ep
        cur = best.get(w.example)
        if cur is None or conf > cur[0]:
            best[w.example] = (conf, w, s, e, sp, ep, none)
    rows = []
    for i, ex in enumerate(examples):
        conf, w, s, e, sp, ep, none = best[i]
        if none >= conf or w.offsets[s] is None or w.offsets[e] is None:
            rows.append((ex.media_id, None, None, None, sp, ep, conf, none))
            continue
        cs, ce = w.offsets[s][0], w.offsets[e][1]
        ps, pe = ex.to_page(cs, ce)
        rows.append((ex.media_id, ps, pe, ex.page_text(ps, pe), sp, ep, conf, none))
    return rows


def predict_examples(tok, model, examples: list[Example], max_length: int, stride: int, batch_size: int,
                     device, max_tokens: int = 64) -> list[tuple]:
    windows = encode(tok, examples, max_length, stride, train=False)
    results = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            batch = windows[i:i + batch_size]
            b = collate(batch, tok.pad_token_id or 0, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            sl, el = masked_logits(out.start_logits, b["allowed"]), masked_logits(out.end_logits, b["allowed"])
            s, e, sp, ep, none = best_spans(sl, el, max_tokens)
            results.extend(zip(s.tolist(), e.tolist(), sp.tolist(), ep.tolist(), none.tolist(), strict=True))
    return merge(examples, windows, results)


def run_params(conn: sqlite3.Connection, run_id: int) -> tuple[str, dict]:
    row = conn.execute("SELECT checkpoint, params, status FROM span_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise SpanRunError(f"no span run {run_id}")
    if row[2] != "done" or not row[0]:
        raise SpanRunError(f"span run {run_id} has no checkpoint (status {row[2]})")
    return row[0], json.loads(row[1])


def predict(conn: sqlite3.Connection, run_id: int, batch_size: int = 32, limit: int | None = None,
            device: str = "auto", media_ids: list[int] | None = None, log=sys.stderr) -> int:
    """Spans for image contexts that have none for this run yet; returns how many were added."""
    with stage_run(conn, "spans predict", dict(run_id=run_id, batch_size=batch_size, limit=limit, device=device)) as run:
        run.counts["contexts"] = n = _predict(conn, run_id, batch_size, limit, device, media_ids, log)
    return n


def _predict(conn, run_id, batch_size, limit, device, media_ids, log) -> int:
    ckpt, params = run_params(conn, run_id)
    sql = ("SELECT m.id FROM media m WHERE m.kind = 'image' AND m.pos IS NOT NULL AND NOT EXISTS "
           "(SELECT 1 FROM spans s WHERE s.media_id = m.id AND s.run_id = ?) ORDER BY m.page_id, m.seq")
    ids = [r[0] for r in conn.execute(sql, (run_id,))]
    if media_ids is not None:
        wanted = set(media_ids)
        ids = [i for i in ids if i in wanted]
    if limit is not None:
        ids = ids[:limit]
    if not ids:
        return 0  # nothing pending: no model load
    tok, model = load(ckpt)
    dev = choose_device(device)
    model.to(dev)
    done, t0 = 0, time.monotonic()
    for k in range(0, len(ids), CHUNK):
        part = ids[k:k + CHUNK]
        chunk = list(iter_examples(conn, f"AND m.id IN ({','.join(map(str, part))})", labelled=False,
                                   words=params.get("context_words")))
        rows = predict_examples(tok, model, chunk, params["max_length"], params["stride"], batch_size, dev,
                                params.get("max_span_tokens", 64))
        with transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO spans (media_id, run_id, start, \"end\", text, start_prob, end_prob, "
                             "confidence, none_prob) VALUES (?,?,?,?,?,?,?,?,?)", [(r[0], run_id) + r[1:] for r in rows])
        done += len(rows)
        rate = done / max(time.monotonic() - t0, 1e-9)
        print(f"wdb: spans run {run_id}: {done}/{len(ids)} contexts ({rate:.1f}/s)", file=log)
    return done
