"""Metrics that cannot be gamed by answering "no description" (pure Python, no torch).

Per set of examples (a split, a description type):
- span_em / span_iou: exact match and character IoU on the examples WITH a true span only (an
  answer "none" scores 0 there), so a model that always says "none" scores 0;
- none_precision / none_recall: of the answers "none", and of the true "none" examples;
- f1: the macro F1 of two classes, "span" (a predicted span counts as right when its IoU with the
  true span is at least 0.5) and "none" (a class that is neither true nor answered in the set is
  left out); a collapse to either answer halves it at best where both are true;
- none_share / true_none_share: how often "none" is answered, and how often it is true.
"""
from __future__ import annotations

Span = tuple[int, int] | None
IOU_HIT = 0.5
FIELDS = ("n", "span_n", "span_em", "span_iou", "none_precision", "none_recall", "f1", "none_share",
          "true_none_share")


def char_scores(pred: Span, truth: Span) -> tuple[float, float]:
    """(exact match, IoU) of two character spans; None is "no description"."""
    if pred is None or truth is None:
        v = 1.0 if pred is None and truth is None else 0.0
        return v, v
    inter = max(0, min(pred[1], truth[1]) - max(pred[0], truth[0]))
    union = (pred[1] - pred[0]) + (truth[1] - truth[0]) - inter
    return float(pred == truth), inter / union if union else 0.0


def _f1(tp: int, n_pred: int, n_true: int) -> float:
    if n_pred + n_true == 0:
        return 1.0
    return 2 * tp / (n_pred + n_true)


def scores(pairs: list[tuple[Span, Span]]) -> dict:
    """The figures above for (prediction, truth) pairs; None where a figure has no examples."""
    n = len(pairs)
    spans = [(p, t) for p, t in pairs if t is not None]
    pred_none = sum(1 for p, _ in pairs if p is None)
    true_none = n - len(spans)
    both_none = sum(1 for p, t in pairs if p is None and t is None)
    pred_span = n - pred_none
    hits = 0
    em = iou = 0.0
    for p, t in spans:
        e, i = char_scores(p, t)
        em += e
        iou += i
        hits += p is not None and i >= IOU_HIT
    # macro F1 over the classes that occur (in the truth or the answers): a group without true or
    # answered "none" is scored on spans alone
    classes = [_f1(tp, p_, t_) for tp, p_, t_ in ((hits, pred_span, len(spans)), (both_none, pred_none, true_none))
               if p_ + t_]
    return {
        "n": n,
        "span_n": len(spans),
        "span_em": round(em / len(spans), 4) if spans else None,
        "span_iou": round(iou / len(spans), 4) if spans else None,
        "none_precision": round(both_none / pred_none, 4) if pred_none else None,
        "none_recall": round(both_none / true_none, 4) if true_none else None,
        "f1": round(sum(classes) / len(classes), 4) if classes else None,
        "none_share": round(pred_none / n, 4) if n else None,
        "true_none_share": round(true_none / n, 4) if n else None,
    }


def decide(span: Span, none_prob: float, confidence: float, threshold: float | None) -> Span:
    """The answer: "none" when none_prob reaches the run's threshold (runs from before thresholds:
    when it reaches the best span's confidence), else the best span."""
    if span is None:
        return None
    if threshold is None:
        return None if none_prob >= confidence else span
    return None if none_prob >= threshold else span


def choose_threshold(raw: list[tuple[Span, float, float]], truths: list[Span]) -> float:
    """The none_prob threshold with the best combined F1 on these (validation) examples; raw[k] =
    (best span, none_prob, confidence). Ties go to the threshold nearest 0.5."""
    if not raw:
        return 0.5
    cands = sorted({0.0, 0.5, 1.01} | {round(r[1], 6) for r in raw} | {round(r[1] + 1e-6, 6) for r in raw})
    best = None
    for t in cands:
        f = scores([(decide(r[0], r[1], r[2], t), y) for r, y in zip(raw, truths, strict=True)])["f1"]
        key = (f, -abs(t - 0.5))
        if best is None or key > best[0]:
            best = (key, t)
    return best[1]
