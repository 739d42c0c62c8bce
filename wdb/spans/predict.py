"""`wdb spans predict`: the best description span of every image context worth one, for one run.

One window of the run's `max_length` tokens around each image's [IMG] marker, batched by length
(little padding), bf16 where the hardware has it; "no description" when none_prob reaches the
run's threshold (chosen on the validation split at training). Incremental: only contexts without
a span for this run; a new run adds its own rows and never overwrites another run's
(`current_spans` shows the newest run's).
"""
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
from .metrics import decide
from .model import autocast, best_spans, choose_device, collate, encode, length_batches, load, masked_logits

CHUNK = 1024  # images per transaction: the resume point

# images whose span can matter: in the text flow, not a placeholder, not a failed fetch, and either
# with bytes (archived or fetched) or with a context of at least :min_chars characters
WORTH = """m.kind = 'image' AND m.pos IS NOT NULL AND m.placeholder = 0
AND NOT EXISTS (SELECT 1 FROM images i WHERE i.url_key = m.url_key AND i.status != 'ok')
AND (EXISTS (SELECT 1 FROM images i WHERE i.url_key = m.url_key AND i.status = 'ok')
     OR EXISTS (SELECT 1 FROM archived_answers y WHERE y.url_key = m.url_key AND y.kind = 'image')
     OR coalesce(m.ctx_end - m.ctx_start, 0) >= :min_chars)"""
EVERY = "m.kind = 'image' AND m.pos IS NOT NULL"


def merge(examples: list[Example], windows, results) -> list[tuple]:
    """Per example, its raw answer over its windows: (media_id, page start, page end, text,
    start_prob, end_prob, confidence, none_prob) of the most probable span (start None where no
    window holds a usable span); "none" is decided afterwards (`metrics.decide`).

    results[k] = (start, end, start_prob, end_prob, none_prob) for windows[k].
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
        if w.offsets[s] is None or w.offsets[e] is None:
            rows.append((ex.media_id, None, None, None, sp, ep, conf, none))
            continue
        cs, ce = w.offsets[s][0], w.offsets[e][1]
        ps, pe = ex.to_page(cs, ce)
        rows.append((ex.media_id, ps, pe, ex.page_text(ps, pe), sp, ep, conf, none))
    return rows


def infer(tok, model, examples: list[Example], max_length: int, batch_size: int, device,
          max_tokens: int = 64, bf16: bool = True) -> list[tuple]:
    """Raw answers (see merge) for the examples, in their order."""
    windows = encode(tok, examples, max_length, train=False)
    results: list = [None] * len(windows)
    model.eval()
    pad = tok.pad_token_id or 0
    with torch.inference_mode():
        for idx in length_batches(windows, batch_size):
            b = collate([windows[k] for k in idx], pad, device)
            with autocast(device, bf16):
                out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            sl, el = masked_logits(out.start_logits, b["allowed"]), masked_logits(out.end_logits, b["allowed"])
            s, e, sp, ep, none = best_spans(sl, el, max_tokens)
            for k, r in zip(idx, zip(s.tolist(), e.tolist(), sp.tolist(), ep.tolist(), none.tolist(), strict=True),
                            strict=True):
                results[k] = r
    return merge(examples, windows, results)


def decided(rows: list[tuple], threshold: float | None) -> list[tuple]:
    """Raw rows with the run's "none" decision applied (start, end, text None for "none")."""
    out = []
    for r in rows:
        span = (r[1], r[2]) if r[1] is not None else None
        if decide(span, r[7], r[6], threshold) is None:
            r = (r[0], None, None, None) + r[4:]
        out.append(r)
    return out


def predict_examples(tok, model, examples: list[Example], max_length: int, batch_size: int, device,
                     max_tokens: int = 64, threshold: float | None = None, bf16: bool = True) -> list[tuple]:
    return decided(infer(tok, model, examples, max_length, batch_size, device, max_tokens, bf16), threshold)


def run_params(conn: sqlite3.Connection, run_id: int) -> tuple[str, dict]:
    row = conn.execute("SELECT checkpoint, params, status FROM span_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise SpanRunError(f"no span run {run_id}")
    if row[2] != "done" or not row[0]:
        raise SpanRunError(f"span run {run_id} has no checkpoint (status {row[2]})")
    return row[0], json.loads(row[1])


def run_threshold(conn: sqlite3.Connection, run_id: int) -> float | None:
    row = conn.execute("SELECT none_threshold FROM span_runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def predict(conn: sqlite3.Connection, run_id: int, batch_size: int = 64, limit: int | None = None,
            device: str = "auto", media_ids: list[int] | None = None, where: str | None = None,
            every: bool = False, min_chars: int = 80, log=sys.stderr) -> int:
    """Spans for image contexts that have none for this run yet; returns how many were added.

    By default only images worth one (WORTH); `every` takes every image in the text flow; `where`
    (SQL over `m`, the media row) narrows further; `media_ids` names the images (eval).
    """
    params = dict(run_id=run_id, batch_size=batch_size, limit=limit, device=device, where=where, every=every,
                  min_chars=min_chars)
    with stage_run(conn, "spans predict", params) as run:
        n, seconds = _predict(conn, run_id, batch_size, limit, device, media_ids, where, every, min_chars, log)
        run.counts["contexts"] = n
        run.counts["contexts_per_second"] = round(n / seconds, 2) if seconds else None
    return n


def _predict(conn, run_id, batch_size, limit, device, media_ids, where, every, min_chars, log) -> tuple[int, float]:
    ckpt, params = run_params(conn, run_id)
    threshold = run_threshold(conn, run_id)
    scope = EVERY if every or media_ids is not None else WORTH
    sql = (f"SELECT m.id FROM media m WHERE {scope} {f'AND ({where})' if where else ''} AND NOT EXISTS "
           "(SELECT 1 FROM spans s WHERE s.media_id = m.id AND s.run_id = :run) ORDER BY m.page_id, m.seq")
    try:
        ids = [r[0] for r in conn.execute(sql, {"run": run_id, "min_chars": min_chars})]
    except sqlite3.Error as e:
        raise SpanRunError(f"--where {where!r}: {e}") from e
    if media_ids is not None:
        wanted = set(media_ids)
        ids = [i for i in ids if i in wanted]
    if limit is not None:
        ids = ids[:limit]
    if not ids:
        return 0, 0.0  # nothing pending: no model load
    tok, model = load(ckpt)
    dev = choose_device(device)
    model.to(dev)
    done, t0 = 0, time.monotonic()
    for k in range(0, len(ids), CHUNK):
        part = ids[k:k + CHUNK]
        chunk = list(iter_examples(conn, f"AND m.id IN ({','.join(map(str, part))})", labelled=False,
                                   words=params.get("context_words")))
        rows = predict_examples(tok, model, chunk, params["max_length"], batch_size, dev,
                                params.get("max_span_tokens", 64), threshold, params.get("bf16", True))
        with transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO spans (media_id, run_id, start, \"end\", text, start_prob, end_prob, "
                             "confidence, none_prob) VALUES (?,?,?,?,?,?,?,?,?)", [(r[0], run_id) + r[1:] for r in rows])
        done += len(rows)
        rate = done / max(time.monotonic() - t0, 1e-9)
        print(f"wdb: spans run {run_id}: {done}/{len(ids)} contexts ({rate:.1f}/s)", file=log)
    return done, time.monotonic() - t0
