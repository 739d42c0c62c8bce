"""`wdb score`: CLIP cosine similarity of each image with its texts (alt, span, figcaption), per model.

Images are read through their pointers (sha256 checked), decoded and preprocessed in DataLoader
worker processes while the model runs; image embeddings are kept as float16 blobs; scores are
computed in float32. Every (image, model) attempt leaves a row in `clip_image_status`, so an image
that cannot be read or decoded is recorded, not retried forever. A model is identified by its name,
tag and the sha256 of its weights when they are local files (new weights at the same path are a
new model). Texts for images already embedded by the model are scored against the stored
embedding, without decoding the image again.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..db import transaction
from ..errors import ModelLoadError
from ..stage import Result, stage_run

SOURCES = ("alt", "span", "figcaption")

TEXT_SQL = {
    "alt": "SELECT m.id, m.url_key, m.alt FROM media m WHERE m.kind = 'image' AND m.alt IS NOT NULL",
    "figcaption": "SELECT m.id, m.url_key, m.figcaption FROM media m WHERE m.kind = 'image' AND m.figcaption IS NOT NULL",
    # the shared rule for an image's current span: view current_spans (migration 006)
    "span": "SELECT m.id, m.url_key, s.text FROM current_spans s JOIN media m ON m.id = s.media_id "
            "WHERE s.start IS NOT NULL",
}


@dataclass
class ScoreSettings:
    model: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    sources: tuple[str, ...] = ("alt",)
    batch_size: int = 64
    workers: int | None = None  # None: 0 on CPU (the model already uses every core), up to 8 on GPU
    device: str = "auto"
    limit: int | None = None
    retry_failed: bool = False  # try images again whose last attempt with this model failed


def weights_identity(name: str, pretrained: str) -> str:
    """sha256 of the local weights (a local-dir: folder's files, or a checkpoint file); '' for a
    named open_clip tag, which identifies its weights itself."""
    files: list[Path] = []
    if name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:"):])
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    elif pretrained and Path(pretrained).is_file():
        files = [Path(pretrained)]
    if not files:
        return ""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def model_id(conn: sqlite3.Connection, name: str, pretrained: str, weights: str = "",
             embed_dim: int | None = None) -> int:
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO clip_models (name, pretrained, weights, embed_dim) VALUES (?,?,?,?)",
                     (name, pretrained or "", weights, embed_dim))
        return conn.execute("SELECT id FROM clip_models WHERE name = ? AND pretrained = ? AND weights = ?",
                            (name, pretrained or "", weights)).fetchone()[0]


def pending(conn: sqlite3.Connection, mid: int, sources, retry_failed: bool = False
            ) -> dict[str, list[tuple[int, str, str]]]:
    """url_key -> [(media_id, source, text)] still to score with this model (image bytes ok, and the
    image not failed with this model unless retry_failed)."""
    out: dict[str, list] = {}
    failed = "" if retry_failed else (
        "AND NOT EXISTS (SELECT 1 FROM clip_image_status f WHERE f.url_key = q.url_key AND f.model_id = ?2 "
        "AND f.status != 'ok')")
    for src in sources:
        sql = (f"SELECT q.* FROM ({TEXT_SQL[src]}) q JOIN images i ON i.url_key = q.url_key AND i.status = 'ok' "
               f"WHERE NOT EXISTS (SELECT 1 FROM clip_scores c WHERE c.media_id = q.id AND c.text_source = ?1 "
               f"AND c.model_id = ?2) {failed}")
        for media_id, key, text in conn.execute(sql, (src, mid)):
            if text and text.strip():
                out.setdefault(key, []).append((media_id, src, text))
    return out


class _Images:
    """torch Dataset over image pointers: read (sha256 checked), decode, preprocess (runs in
    DataLoader workers). Yields (index, tensor or None, status, error)."""

    def __init__(self, items, preprocess):
        self.items, self.preprocess = items, preprocess

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from ..errors import PointerMismatch
        from ..fetch.probe import decode_rgb
        from ..warc.payload import read_verified

        key, loc, off, length, inner, sha = self.items[i]
        try:
            body = read_verified(loc, off, length, inner, sha)
        except PointerMismatch as e:
            return i, None, "sha256_mismatch", str(e)
        except (OSError, ValueError) as e:
            return i, None, "unreadable", f"{type(e).__name__}: {e}"
        try:
            return i, self.preprocess(decode_rgb(body)), "ok", None
        except Exception as e:  # noqa: BLE001 -- any decoder failure is this image's status, not the run's
            return i, None, "undecodable", f"{type(e).__name__}: {e}"


def _worker_init(_):
    import torch

    torch.set_num_threads(1)  # many decoding processes: one thread each, no oversubscription


def _collate(batch):
    import torch

    ok = [(i, t) for i, t, _, _ in batch if t is not None]
    failed = [(i, st, err) for i, t, st, err in batch if t is None]
    return [i for i, _ in ok], (torch.stack([t for _, t in ok]) if ok else None), failed


def load_clip(name: str, pretrained: str, device):
    """open_clip model, preprocessing and tokenizer exactly as open_clip names them."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None, device=device)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)


def image_embeddings(model, pixels, device):
    """L2-normalised float32 image embeddings of a batch of preprocessed pixels (mixed precision on GPU)."""
    import torch

    with torch.autocast(device.type, enabled=device.type == "cuda"):
        img = model.encode_image(pixels.to(device, non_blocking=True))
    return torch.nn.functional.normalize(img.float(), dim=-1)


def text_cosines(model, tokenizer, img, rows: list[int], texts: list[str], device, step: int = 256) -> list[float]:
    """Cosine of each text with the image embedding img[rows[k]]; texts truncated by the tokenizer.
    The model loop alone: no database."""
    import torch

    out: list[float] = []
    for k in range(0, len(texts), step):
        tok = tokenizer(texts[k:k + step]).to(device)  # truncated to the context length by open_clip
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            txt = model.encode_text(tok)
        txt = torch.nn.functional.normalize(txt.float(), dim=-1)
        out.extend((img[rows[k:k + step]] * txt).sum(-1).tolist())
    return out


def _load(s: ScoreSettings, pretrained: str, device):
    import torch

    try:
        return load_clip(s.model, pretrained, device)
    except torch.cuda.OutOfMemoryError:
        raise
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"cannot load {s.model} / {pretrained or 'no weights'}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def score(conn: sqlite3.Connection, s: ScoreSettings, log=sys.stderr) -> Result:
    """Score what is pending for this model; `counts` has images, scores, failed_images, seconds
    (from after the model is loaded) and model_id."""
    with stage_run(conn, "score", s) as run:
        _score(conn, s, run, log)
    return run.result()


def _score(conn, s: ScoreSettings, run, log) -> None:
    import numpy as np
    import torch

    device = torch.device("cuda" if s.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if s.device == "auto" else s.device))
    pretrained = "" if s.model.startswith("local-dir:") else s.pretrained  # a local-dir has its own weights
    model, preprocess, tokenizer = _load(s, pretrained, device)
    workers = s.workers if s.workers is not None else (0 if device.type == "cpu" else min(8, os.cpu_count() or 1))
    mid = model_id(conn, s.model, pretrained, weights_identity(s.model, pretrained))
    todo = pending(conn, mid, s.sources, s.retry_failed)
    keys = list(todo)[: s.limit] if s.limit is not None else list(todo)
    wanted = json.dumps(keys)
    stored = {k: e for k, e in conn.execute(
        "SELECT url_key, embedding FROM image_embeddings WHERE model_id = ? AND url_key IN "
        "(SELECT value FROM json_each(?))", (mid, wanted))}
    ptr = {r[0]: r for r in conn.execute(
        "SELECT url_key, location, \"offset\", length, inner, sha256 FROM images WHERE status = 'ok' AND url_key IN "
        "(SELECT value FROM json_each(?))", (wanted,))}
    items = [ptr[k] for k in keys if k in ptr and k not in stored]
    run.counts.update(images=0, scores=0, failed_images=0, model_id=mid)
    t0 = time.monotonic()

    def text_scores(img, owners, texts) -> list[tuple]:
        sims = text_cosines(model, tokenizer, img, [o[0] for o in owners], texts, device)
        return [(o[1], o[2], mid, sim) for o, sim in zip(owners, sims, strict=True)]

    def owners_of(keys_in_batch):
        texts, owners = [], []
        for row, key in enumerate(keys_in_batch):
            for media_id, src, text in todo[key]:
                texts.append(text)
                owners.append((row, media_id, src))
        return texts, owners

    def write(rows, embeddings=(), statuses=()):
        with transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO image_embeddings (url_key, model_id, embedding) VALUES (?,?,?)",
                             embeddings)
            conn.executemany("INSERT OR REPLACE INTO clip_image_status (url_key, model_id, status, error, run_id) "
                             "VALUES (?,?,?,?,?)", statuses)
            conn.executemany("INSERT OR IGNORE INTO clip_scores (media_id, text_source, model_id, score) "
                             "VALUES (?,?,?,?)", rows)
        run.counts["scores"] += len(rows)

    with torch.no_grad():
        # texts of images this model already embedded: against the stored embedding
        done_keys = [k for k in keys if k in stored]
        for b in range(0, len(done_keys), s.batch_size):
            part = done_keys[b:b + s.batch_size]
            emb = np.stack([np.frombuffer(stored[k], dtype="<f2").astype(np.float32) for k in part])
            img = torch.nn.functional.normalize(torch.from_numpy(emb).to(device), dim=-1)
            write(text_scores(img, *reversed(owners_of(part))))
        loader = torch.utils.data.DataLoader(
            _Images(items, preprocess), batch_size=s.batch_size, num_workers=workers, collate_fn=_collate,
            worker_init_fn=_worker_init if workers else None, pin_memory=device.type == "cuda",
            prefetch_factor=4 if workers else None)
        for idx, pixels, failed in loader:
            statuses = [(items[i][0], mid, st, err, run.id) for i, st, err in failed]
            run.counts["failed_images"] += len(failed)
            if pixels is None:
                write([], (), statuses)
                continue
            img = image_embeddings(model, pixels, device)
            batch_keys = [items[i][0] for i in idx]
            texts, owners = owners_of(batch_keys)
            rows = text_scores(img, owners, texts)
            emb = img.cpu().numpy().astype("<f2")
            with transaction(conn):
                conn.execute("UPDATE clip_models SET embed_dim = ? WHERE id = ?", (int(img.shape[-1]), mid))
            write(rows, [(k, mid, emb[r].tobytes()) for r, k in enumerate(batch_keys)],
                  statuses + [(k, mid, "ok", None, run.id) for k in batch_keys])
            run.counts["images"] += len(idx)
            rate = run.counts["images"] / max(time.monotonic() - t0, 1e-9)
            print(f"wdb: score: {run.counts['images']}/{len(items)} images ({rate:.1f}/s)", file=log)
    run.counts["seconds"] = round(time.monotonic() - t0, 2)
