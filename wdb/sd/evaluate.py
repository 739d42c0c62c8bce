"""`wdb sd eval`: automatic metrics of generated images, stored per image and CLIP model.

- clip_score: CLIPScore (Hessel et al. 2021) with any open_clip model, 100 * max(cos(image, prompt), 0);
- element: the same score for each part of the prompt (subject, attribute, place, action, detail);
  compliance: their mean (how much of the prompt the image shows, part by part);
- group_rank: rank of the true prompt among the prompts of its group (1 = the image is closest to
  its own prompt among the five levels of its subject);
- image complexity (no model, clip_model_id 0): PNG bytes per pixel, edge density (share of pixels
  whose Sobel gradient magnitude on 0-255 grey is over EDGE_THRESHOLD), grey-level entropy in bits;
  prompt-side complexity (words, distinct content words) is stored with each prompt;
- diversity: mean pairwise 1 - cosine of the image embeddings across the seeds of one prompt;
- frechet (with a reference recipe): Fréchet distance between the CLIP image embeddings of a
  model's images of one prompt set and those of the reference pairs' images.

Images are read back through their pointers (sha256 checked) and preprocessed by the model's own
open_clip transform, so a stored score equals open_clip's on the stored PNG.
"""
from __future__ import annotations

import io
import json
import sqlite3

import numpy as np

from ..db import transaction
from ..stage import Result, stage_run
from ..warc.payload import read_verified
from .models import SdError, device_of
from .settings import EvalSettings  # noqa: F401  (kept importable from here)

EDGE_THRESHOLD = 32.0




def clip_score(cos: float) -> float:
    return 100.0 * max(cos, 0.0)


def image_complexity(png: bytes, image) -> dict[str, float]:
    """bytes_per_pixel (of the stored PNG), edge_density, entropy (bits) of the grey image."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = grey.shape
    out = {"bytes_per_pixel": len(png) / (w * h)}
    if h >= 3 and w >= 3:
        p = np.pad(grey, 1, mode="edge")
        gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
        gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
        out["edge_density"] = float((np.hypot(gx, gy) > EDGE_THRESHOLD).mean())
    else:
        out["edge_density"] = 0.0
    hist = np.bincount(grey.astype(np.uint8).ravel(), minlength=256) / grey.size
    nz = hist[hist > 0]
    out["entropy"] = float(-(nz * np.log2(nz)).sum())
    return out


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings (rows)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ s2 @ root
    tr = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)


def diversity(emb: np.ndarray) -> float:
    """Mean pairwise 1 - cosine of L2-normalised embeddings (rows)."""
    n = len(emb)
    sims = emb @ emb.T
    return float((1 - sims[~np.eye(n, dtype=bool)]).mean())


class _Clip:
    def __init__(self, conn, s: EvalSettings, device):
        import torch

        from ..score import _load, model_id, weights_identity

        self.torch, self.device = torch, device
        self.model, self.preprocess, self.tokenizer = _load(s.model, s.pretrained, device)
        pre = "" if s.model.startswith("local-dir:") else (s.pretrained or "")
        self.mid = model_id(conn, s.model, pre, weights_identity(s.model, s.pretrained))
        self.texts: dict[str, np.ndarray] = {}

    def images(self, pil_images) -> np.ndarray:
        torch = self.torch
        x = torch.stack([self.preprocess(im) for im in pil_images]).to(self.device)
        with torch.inference_mode():
            e = self.model.encode_image(x).float()
        return torch.nn.functional.normalize(e, dim=-1).cpu().numpy()

    def text(self, texts: list[str]) -> dict[str, np.ndarray]:
        torch = self.torch
        new = [t for t in dict.fromkeys(texts) if t not in self.texts]
        for k in range(0, len(new), 256):
            part = new[k:k + 256]
            with torch.inference_mode():
                e = self.model.encode_text(self.tokenizer(part).to(self.device)).float()
            for t, v in zip(part, torch.nn.functional.normalize(e, dim=-1).cpu().numpy(), strict=True):
                self.texts[t] = v
        return {t: self.texts[t] for t in texts}


def evaluate(conn: sqlite3.Connection, s: EvalSettings) -> Result:
    """Score what is pending; counts: images, unreadable, diversity, frechet."""
    with stage_run(conn, "sd eval", s) as run:
        _evaluate(conn, s, run)
    return run.result()


PENDING = """
SELECT i.id, i.location, i."offset", i.length, i.inner, i.sha256, i.prompt_id, p.prompt, p.elements,
       p.set_id, p.kind, p.grp
FROM sd_images i JOIN sd_prompts p ON p.id = i.prompt_id
WHERE NOT EXISTS (SELECT 1 FROM sd_scores c WHERE c.image_id = i.id AND c.clip_model_id = ?
                  AND c.metric IN ('clip_score', 'unreadable'))
ORDER BY i.id"""


def _evaluate(conn, s: EvalSettings, run) -> None:
    from PIL import Image

    device = device_of(s.device)
    clip = _Clip(conn, s, device)
    run.counts.update(images=0, unreadable=0, clip_model_id=clip.mid)
    todo = conn.execute(PENDING, (clip.mid,)).fetchall()[: s.limit]
    groups: dict[tuple, list[str]] = {}
    for k in range(0, len(todo), s.batch_size):
        batch, ims, rows = todo[k:k + s.batch_size], [], []
        for r in batch:
            try:
                body = read_verified(r[1], r[2], r[3], r[4], r[5])
                im = Image.open(io.BytesIO(body))
                im.load()
                ims.append((r, body, im.convert("RGB")))
            except Exception as e:  # noqa: BLE001 - a damaged record or PNG is a row, never a stopped run
                rows.append((r[0], clip.mid, "unreadable", f"{type(e).__name__}: {e}"[:200], 1.0))
                run.counts["unreadable"] += 1
        if ims:
            emb = clip.images([im for _, _, im in ims])
            for (r, body, im), e in zip(ims, emb, strict=True):
                key = (r[9], r[10], r[11])
                if key not in groups:
                    groups[key] = [t for (t,) in conn.execute(
                        "SELECT prompt FROM sd_prompts WHERE set_id = ? AND kind = ? AND grp = ? ORDER BY level",
                        key)]
                elements = json.loads(r[8])
                tv = clip.text([r[7], *elements, *groups[key]])
                cos = float(e @ tv[r[7]])
                el = [clip_score(float(e @ tv[x])) for x in elements]
                others = [float(e @ tv[t]) for t in groups[key] if t != r[7]]
                rows += [(r[0], clip.mid, "clip_score", "", clip_score(cos)),
                         (r[0], clip.mid, "compliance", "", float(np.mean(el)) if el else 0.0),
                         (r[0], clip.mid, "group_rank", "", 1.0 + sum(o > cos for o in others))]
                rows += [(r[0], clip.mid, "element", x, v) for x, v in zip(elements, el, strict=True)]
                rows += [(r[0], 0, m, "", v) for m, v in image_complexity(body, im).items()]
                run.counts["images"] += 1
        with transaction(conn):
            conn.executemany("INSERT OR REPLACE INTO sd_scores (image_id, clip_model_id, metric, element, value) "
                             "VALUES (?,?,?,?,?)", rows)  # an unreadable image: its error as element
            conn.executemany("INSERT OR REPLACE INTO sd_embeddings (image_id, clip_model_id, embedding) VALUES (?,?,?)",
                             [(r[0], clip.mid, e.astype("<f4").tobytes()) for (r, _, _), e in
                              zip(ims, emb if ims else [], strict=True)])
    run.counts["diversity"] = _diversity(conn, clip.mid)
    run.counts["frechet"] = _frechet(conn, clip, s, run) if s.reference else 0


def _embeddings(conn, mid: int, where: str, args: tuple) -> dict[tuple, np.ndarray]:
    out: dict[tuple, list] = {}
    for key0, key1, key2, scope, blob in conn.execute(
            f"SELECT i.base, i.sd_run_id, i.config, {where}, e.embedding FROM sd_embeddings e "
            f"JOIN sd_images i ON i.id = e.image_id JOIN sd_prompts p ON p.id = i.prompt_id "
            f"WHERE e.clip_model_id = ? ORDER BY i.id", (mid, *args)):
        out.setdefault((key0, key1, key2, scope), []).append(np.frombuffer(blob, "<f4"))
    return {k: np.stack(v) for k, v in out.items()}


def _have(conn, mid: int, metric: str, reference: str) -> dict[tuple, int]:
    """{(base, sd_run_id, config, scope): images it was computed over} of a stored set metric."""
    return {tuple(r[:4]): r[4] for r in conn.execute(
        "SELECT base, sd_run_id, config, scope, n FROM sd_set_scores WHERE clip_model_id = ? AND metric = ? "
        "AND reference = ?", (mid, metric, reference))}


def _store_set(conn, mid: int, metric: str, reference: str, values: dict[tuple, tuple[int, float]]) -> int:
    have = _have(conn, mid, metric, reference)
    rows = [(*k, mid, metric, reference, n, v) for k, (n, v) in values.items() if have.get(k) != n]
    with transaction(conn):
        conn.executemany("INSERT OR REPLACE INTO sd_set_scores (base, sd_run_id, config, scope, clip_model_id, metric, "
                         "reference, n, value) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def _diversity(conn, mid: int) -> int:
    sets = _embeddings(conn, mid, "'prompt:' || i.prompt_id", ())
    return _store_set(conn, mid, "diversity", "", {k: (len(e), diversity(e)) for k, e in sets.items() if len(e) >= 2})


def _frechet(conn, clip: _Clip, s: EvalSettings, run) -> int:
    from .data import load_image, recipe_pairs

    pairs = recipe_pairs(conn, s.reference, s.reference_params, s.reference_limit)
    reference = f"{s.reference}@{pairs.sha256[:16]}"
    sets = {k: e for k, e in _embeddings(conn, clip.mid, "'set:' || p.set_id", ()).items() if len(e) >= 2}
    have = _have(conn, clip.mid, "frechet", reference)
    if all(have.get(k) == len(e) for k, e in sets.items()):
        return 0
    ims = []
    for p in pairs.pairs:
        try:
            ims.append(load_image(p))
        except Exception:  # noqa: BLE001 - counted, left out of the reference
            run.add("reference_unreadable")
    if len(ims) < 2:
        raise SdError(f"reference recipe {s.reference}: fewer than 2 readable images")
    ref = np.concatenate([clip.images(ims[k:k + s.batch_size]) for k in range(0, len(ims), s.batch_size)])
    return _store_set(conn, clip.mid, "frechet", reference, {k: (len(e), frechet(e, ref)) for k, e in sets.items()})
