"""Settings of `wdb sd eval` in a module of its own: the CLI builds its options from them without
importing numpy (wdb.sd.evaluate does)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalSettings:
    model: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    batch_size: int = 32
    reference: str | None = None  # a recipe whose images are the Fréchet reference set
    reference_params: dict | None = None
    reference_limit: int | None = 5000
    limit: int | None = None
    device: str = "auto"
