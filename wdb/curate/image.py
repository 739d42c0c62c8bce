"""Image signals from the `images` table (no decoding) and LAION aesthetic scores from stored CLIP
embeddings.

The LAION aesthetic heads (`sa_0_4_vit_{b_32,b_16,l_14}_linear.pth`, torch.nn.Linear state dicts)
were trained on OpenAI CLIP image embeddings (L2-normalised); a head is applied only to embeddings
of the matching open_clip model (name ViT-B-32 / ViT-B-16 / ViT-L-14, with or without -quickgelu,
pretrained tag `openai`). Any other model gets no aesthetic score, and the run says so.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

VERSION = "img.1"

# open_clip names of the model each head was trained on
HEADS = {"sa_0_4_vit_b_32_linear.pth": ("ViT-B-32", 512), "sa_0_4_vit_b_16_linear.pth": ("ViT-B-16", 512),
         "sa_0_4_vit_l_14_linear.pth": ("ViT-L-14", 768)}

_PLACEHOLDER_NAME = re.compile(r"(?:^|/)(?:spacer|blank|pixel|transparent|clear|dot|1x1|empty|s)\.(?:gif|png)$",
                               re.I)


def fmt(mime: str | None) -> str | None:
    if not mime or "/" not in mime:
        return None
    sub = mime.split("/", 1)[1].split(";")[0].strip().lower()
    return {"jpg": "jpeg", "pjpeg": "jpeg", "svg+xml": "svg", "x-icon": "ico", "vnd.microsoft.icon": "ico"}.get(sub, sub)


def image_stats(url_key: str, width, height, frames, mime, nbytes) -> list[tuple[str, float | None, str | None]]:
    w, h = (int(width) if width else None), (int(height) if height else None)
    small = min(w, h) if w and h else None
    aspect = (max(w, h) / small) if small else None
    placeholder = bool((w is not None and h is not None and w * h <= 4) or (small is not None and small <= 2)
                       or _PLACEHOLDER_NAME.search(url_key.split("?", 1)[0]))
    return [("width", w, None), ("height", h, None), ("min_side", small, None), ("aspect", aspect, None),
            ("format", None, fmt(mime)), ("frames", frames, None), ("bytes", nbytes, None),
            ("placeholder", 1.0 if placeholder else 0.0, None)]


def head_for(name: str, pretrained: str) -> str | None:
    """The head file trained on this open_clip model, or None."""
    base = name.removesuffix("-quickgelu")
    if pretrained != "openai":
        return None
    for f, (model, _) in HEADS.items():
        if model == base:
            return f
    return None


def load_head(path: Path) -> tuple[np.ndarray, float]:
    """(weight vector, bias) of a LAION head (a torch.nn.Linear(d, 1) state dict)."""
    import torch

    sd = torch.load(str(path), map_location="cpu", weights_only=True)
    w = sd["weight"].float().numpy().reshape(-1)
    b = float(sd["bias"].float().numpy().reshape(-1)[0])
    return w.astype(np.float32), b


def aesthetic(emb: np.ndarray, head: tuple[np.ndarray, float]) -> np.ndarray:
    """Scores of L2-normalised embeddings (rows), as LAION's predictor computes them."""
    e = emb.astype(np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return e @ head[0] + head[1]
