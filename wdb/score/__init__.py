"""`wdb score`: CLIP cosine similarity of each image with its texts (alt, span, figcaption), per model.

Images are read from their WARC pointers and preprocessed in DataLoader worker processes while the
model runs; image embeddings are kept as float16 blobs; scores are computed in float32.
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass

SOURCES = ("alt", "span", "figcaption")

TEXT_SQL = {
    "alt": "SELECT m.id, m.url_key, m.alt FROM media m WHERE m.alt IS NOT NULL",
    "figcaption": "SELECT m.id, m.url_key, m.figcaption FROM media m WHERE m.figcaption IS NOT NULL",
    # the latest span-extractor run that gave this image a span
    "span": "SELECT m.id, m.url_key, (SELECT s.text FROM spans s WHERE s.media_id = m.id AND s.start IS NOT NULL "
            "ORDER BY s.run_id DESC LIMIT 1) AS t FROM media m WHERE t IS NOT NULL",
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


def model_id(conn: sqlite3.Connection, name: str, pretrained: str, embed_dim: int | None = None) -> int:
    conn.execute("INSERT OR IGNORE INTO clip_models (name, pretrained, embed_dim) VALUES (?,?,?)",
                 (name, pretrained or "", embed_dim))
    return conn.execute("SELECT id FROM clip_models WHERE name = ? AND pretrained = ?", (name, pretrained or "")).fetchone()[0]


def pending(conn: sqlite3.Connection, mid: int, sources) -> dict[str, list[tuple[int, str, str]]]:
    """url_key -> [(media_id, source, text)] still to score with this model (image bytes ok)."""
    out: dict[str, list] = {}
    for src in sources:
        sql = (f"SELECT q.* FROM ({TEXT_SQL[src]}) q JOIN images i ON i.url_key = q.url_key AND i.status = 'ok' "
               f"WHERE NOT EXISTS (SELECT 1 FROM clip_scores c WHERE c.media_id = q.id AND c.text_source = ? "
               f"AND c.model_id = ?)")
        for media_id, key, text in conn.execute(sql, (src, mid)):
            if text and text.strip():
                out.setdefault(key, []).append((media_id, src, text))
    return out


class _Images:
    """torch Dataset over image pointers: read, decode, preprocess (runs in DataLoader workers)."""

    def __init__(self, items, preprocess):
        self.items, self.preprocess = items, preprocess

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from ..fetch.probe import decode_rgb
        from ..warc.payload import read_payload

        key, loc, off, length, inner = self.items[i]
        try:
            body, _ = read_payload(loc, off, length, inner)
            return i, self.preprocess(decode_rgb(body))
        except Exception:  # noqa: BLE001 -- a bad image is skipped, not fatal
            return i, None


def _worker_init(_):
    import torch

    torch.set_num_threads(1)  # many decoding processes: one thread each, no oversubscription


def _collate(batch):
    import torch

    ok = [(i, t) for i, t in batch if t is not None]
    if not ok:
        return [], None
    return [i for i, _ in ok], torch.stack([t for _, t in ok])


def load_clip(name: str, pretrained: str, device):
    """open_clip model, preprocessing and tokenizer exactly as open_clip names them."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None, device=device)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)


def score(conn: sqlite3.Connection, s: ScoreSettings, log=sys.stderr) -> dict:
    import numpy as np
    import torch

    device = torch.device("cuda" if s.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if s.device == "auto" else s.device))
    model, preprocess, tokenizer = load_clip(s.model, s.pretrained, device)
    workers = s.workers if s.workers is not None else (0 if device.type == "cpu" else min(8, os.cpu_count() or 1))
    mid = model_id(conn, s.model, s.pretrained)
    todo = pending(conn, mid, s.sources)
    keys = list(todo)[: s.limit] if s.limit is not None else list(todo)
    ptr = {r[0]: r for r in conn.execute(
        "SELECT url_key, location, \"offset\", length, inner FROM images WHERE status = 'ok' AND url_key IN "
        "(SELECT value FROM json_each(?))", (json.dumps(keys),))}
    items = [ptr[k] for k in keys if k in ptr]
    loader = torch.utils.data.DataLoader(
        _Images(items, preprocess), batch_size=s.batch_size, num_workers=workers, collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None, pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None)
    amp = device.type == "cuda"
    counts = {"images": 0, "scores": 0, "skipped_images": 0}
    t0 = time.monotonic()
    with torch.no_grad():
        for idx, pixels in loader:
            if pixels is None:
                counts["skipped_images"] += s.batch_size
                continue
            with torch.autocast(device.type, enabled=amp):
                img = model.encode_image(pixels.to(device, non_blocking=True))
            img = torch.nn.functional.normalize(img.float(), dim=-1)
            texts, owners = [], []
            for row, i in enumerate(idx):
                for media_id, src, text in todo[items[i][0]]:
                    texts.append(text)
                    owners.append((row, media_id, src))
            rows = []
            for k in range(0, len(texts), 256):
                tok = tokenizer(texts[k:k + 256]).to(device)  # truncated to the context length by open_clip
                with torch.autocast(device.type, enabled=amp):
                    txt = model.encode_text(tok)
                txt = torch.nn.functional.normalize(txt.float(), dim=-1)
                sims = (img[[o[0] for o in owners[k:k + 256]]] * txt).sum(-1).tolist()
                rows.extend((o[1], o[2], mid, sim) for o, sim in zip(owners[k:k + 256], sims, strict=True))
            emb = img.cpu().numpy().astype(np.float16)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE clip_models SET embed_dim = ? WHERE id = ?", (int(img.shape[-1]), mid))
            conn.executemany("INSERT OR IGNORE INTO image_embeddings VALUES (?,?,?)",
                             [(items[i][0], mid, emb[r].astype("<f2").tobytes()) for r, i in enumerate(idx)])
            conn.executemany("INSERT OR IGNORE INTO clip_scores VALUES (?,?,?,?)", rows)
            conn.execute("COMMIT")
            counts["images"] += len(idx)
            counts["scores"] += len(rows)
            rate = counts["images"] / max(time.monotonic() - t0, 1e-9)
            print(f"wdb: score: {counts['images']}/{len(items)} images ({rate:.1f}/s)", file=log)
    counts["seconds"] = round(time.monotonic() - t0, 2)
    counts["model_id"] = mid
    return counts
