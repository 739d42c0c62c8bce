"""`wdb score`: CLIP cosine similarity of each image with its texts (alt, span, figcaption), per model.

Images are read through their pointers (sha256 checked), decoded at reduced size and cut to the
model's geometry in DataLoader worker processes, which also tokenise the batch's distinct texts
(`inputs.py`); uint8 pixels are normalised on the device; several models share one pass over the
decoded images. Each distinct text is encoded once per model (cached on the device); results stay
on the device until one non-blocking copy per batch, and a writer thread commits every
`commit_every` batches (a kill loses at most those; they are scored again next run). Image
embeddings are kept as float16 blobs; scores are computed in float32. Every (image, model) attempt leaves a row in `clip_image_status`, so an image
that cannot be read or decoded is recorded, not retried forever. A model is identified by its name,
tag and the sha256 of its weights when they are local files (new weights at the same path are a
new model). Texts for images already embedded by the model are scored against the stored
embedding, without decoding the image again.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..db import transaction
from ..errors import ModelLoadError
from ..stage import Result, stage_run
from .inputs import DECODES, Collate, Geometry, Images, decode_jpegs_on, normalize, pil_pixels, split_preprocess

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
    more_models: tuple[tuple[str, str], ...] = ()  # (name, pretrained) scored in the same pass over the images
    decode: str = "auto"  # draft (reduced-size JPEG decode), full, device (batched decode_jpeg there), auto
    commit_every: int = 8  # batches per SQLite commit (a kill loses at most these, re-scored next run)

    def models(self) -> list[tuple[str, str]]:
        """(name, pretrained) of every model, in order; a local-dir has its own weights."""
        out = []
        for name, pre in ((self.model, self.pretrained), *self.more_models):
            key = (name, "" if name.startswith("local-dir:") else (pre or ""))
            if key not in out:
                out.append(key)
        return out


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


def _worker_init(_):
    import torch

    torch.set_num_threads(1)  # many decoding processes: one thread each, no oversubscription


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


def _load(name: str, pretrained: str, device):
    import torch

    try:
        return load_clip(name, pretrained, device)
    except torch.cuda.OutOfMemoryError:
        raise
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"cannot load {name} / {pretrained or 'no weights'}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def resolve_decode(decode: str, device) -> str:
    """auto: batched decode_jpeg on a CUDA device when this torchvision has it, else draft."""
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {', '.join(DECODES)}")
    if decode != "auto":
        return decode
    if device.type == "cuda":
        try:
            import inspect

            from torchvision.io import decode_jpeg

            if "device" in inspect.signature(decode_jpeg).parameters:
                return "device"
        except (ImportError, ValueError, TypeError):
            pass
    return "draft"


def score(conn: sqlite3.Connection, s: ScoreSettings, log=sys.stderr) -> Result:
    """Score what is pending for each model; `counts` has images (decoded this run), scores,
    failed_images, seconds (from after the models are loaded), model_id (the first model's) and
    model_ids."""
    with stage_run(conn, "score", s) as run:
        _score(conn, s, run, log)
    return run.result()


class _Model:
    """One model of the pass: weights, its geometry and tokenizer slots, what is pending for it."""

    def __init__(self, conn, name, pretrained, device):
        self.name, self.pretrained = name, pretrained
        self.model, self.preprocess, self.tokenizer = _load(name, pretrained, device)
        self.mid = model_id(conn, name, pretrained, weights_identity(name, pretrained))
        self.geometry = split_preprocess(self.preprocess, getattr(self.model.visual, "preprocess_cfg", None))
        self.todo: dict = {}
        self.stored: dict = {}
        self.text_cache: dict = {}  # text -> normalised embedding on the device (bounded)
        self.dim_written = False


class _Writer(threading.Thread):
    """Writes the batches' rows from a queue and commits every `every` batches (and at the end).
    A job holds CPU tensors copied with non_blocking=True and the CUDA event to wait on first."""

    def __init__(self, conn, run, every: int):
        super().__init__(name="wdb-score-writer", daemon=True)
        self.conn, self.stage, self.every = conn, run, max(1, every)
        self.q: queue.Queue = queue.Queue(maxsize=4 * self.every)
        self.error: BaseException | None = None

    def put(self, job) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(job, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.q.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:  # noqa: D401 -- threading.Thread.run
        emb, st, rows, dims, n = [], [], [], [], 0
        try:
            while True:
                job = self.q.get()
                if job is not None:
                    event, mid, keys, emb16, pairs, sims, statuses, dim = job
                    if event is not None:
                        event.synchronize()  # the non-blocking copies of this batch have landed
                    if emb16 is not None:
                        e = emb16.numpy().astype("<f2")
                        emb.extend((k, mid, e[r].tobytes()) for r, k in enumerate(keys))
                    if sims is not None:
                        rows.extend((o[0], o[1], mid, float(v)) for o, v in zip(pairs, sims.tolist(), strict=True))
                    st.extend(statuses)
                    if dim:
                        dims.append((dim, mid))
                    n += 1
                if (job is None or n >= self.every) and (emb or st or rows or dims):
                    with transaction(self.conn):
                        self.conn.executemany("UPDATE clip_models SET embed_dim = ? WHERE id = ?", dims)
                        self.conn.executemany("INSERT OR IGNORE INTO image_embeddings (url_key, model_id, embedding) "
                                              "VALUES (?,?,?)", emb)
                        self.conn.executemany("INSERT OR REPLACE INTO clip_image_status (url_key, model_id, status, "
                                              "error, run_id) VALUES (?,?,?,?,?)", st)
                        self.conn.executemany("INSERT OR IGNORE INTO clip_scores (media_id, text_source, model_id, "
                                              "score) VALUES (?,?,?,?)", rows)
                    self.stage.counts["scores"] += len(rows)
                    emb, st, rows, dims, n = [], [], [], [], 0
                if job is None:
                    return
        except BaseException as e:  # noqa: BLE001 -- handed to the main thread, which raises it
            self.error = e
            while True:  # keep draining so the main thread never blocks on a full queue
                if self.q.get() is None:
                    return


def _text_embeddings(m: _Model, tokens, texts: list[str], wanted: list[int], device, step: int = 256):
    """Normalised embeddings of texts[wanted] (tokens already made in the worker); each distinct
    text is encoded once per run while the cache holds (bounded at 65,536 texts)."""
    import torch

    missing = [t for t in wanted if texts[t] not in m.text_cache]
    for k in range(0, len(missing), step):
        part = missing[k:k + step]
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            txt = m.model.encode_text(tokens[part].to(device, non_blocking=True))
        txt = torch.nn.functional.normalize(txt.float(), dim=-1)
        if len(m.text_cache) + len(part) > 65536:
            m.text_cache.clear()
        for j, t in enumerate(part):
            m.text_cache[texts[t]] = txt[j]
    return torch.stack([m.text_cache[texts[t]] for t in wanted])


def _copy_out(*tensors):
    """One non-blocking device-to-host copy per tensor, and the event that says they are done."""
    import torch

    outs = [t.to("cpu", non_blocking=True) if t.device.type != "cpu" else t for t in tensors]
    event = None
    if any(t.device.type == "cuda" for t in tensors):
        event = torch.cuda.Event()
        event.record()
    return event, outs


def _score(conn, s: ScoreSettings, run, log) -> None:
    import numpy as np
    import torch

    device = torch.device("cuda" if s.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if s.device == "auto" else s.device))
    decode = resolve_decode(s.decode, device)
    models = [_Model(conn, name, pre, device) for name, pre in s.models()]
    workers = s.workers if s.workers is not None else (0 if device.type == "cpu" else min(8, os.cpu_count() or 1))
    geoms: list[Geometry] = []
    for m in models:
        keys = [g.key for g in geoms]
        m.gi = keys.index(m.geometry.key) if m.geometry.key in keys else (geoms.append(m.geometry) or len(geoms) - 1)
    if decode == "device" and not all(g.simple for g in geoms):
        decode = "draft"  # a preprocess the tensor path does not reproduce: decode in the workers
    toks: list = []  # models whose tokenizers are the same kind share one tokenisation in the workers
    for m in models:
        same = [j for j, t in enumerate(toks) if t is m.tokenizer or (
            type(t) is type(m.tokenizer) and type(t).__name__ == "SimpleTokenizer"
            and getattr(t, "context_length", None) == getattr(m.tokenizer, "context_length", None))]
        m.ti = same[0] if same else (toks.append(m.tokenizer) or len(toks) - 1)

    # what each model still needs, the union of images to decode (first come, first served)
    order: list[str] = []
    for m in models:
        m.todo = pending(conn, m.mid, s.sources, s.retry_failed)
        order.extend(m.todo)
    keys = list(dict.fromkeys(order))
    keys = keys[: s.limit] if s.limit is not None else keys
    wanted = json.dumps(keys)
    for m in models:
        m.stored = {k: e for k, e in conn.execute(
            "SELECT url_key, embedding FROM image_embeddings WHERE model_id = ? AND url_key IN "
            "(SELECT value FROM json_each(?))", (m.mid, wanted))}
    ptr = {r[0]: r for r in conn.execute(
        "SELECT url_key, location, \"offset\", length, inner, sha256 FROM images WHERE status = 'ok' AND url_key IN "
        "(SELECT value FROM json_each(?))", (wanted,))}
    items, need = [], []  # need[i]: the models (positions) that decode item i
    for k in keys:
        who = [j for j, m in enumerate(models) if k in m.todo and k not in m.stored]
        if who and k in ptr:
            items.append(ptr[k])
            need.append(who)

    texts_of = [[t for j in who for _, _, t in models[j].todo[item[0]]] for item, who in zip(items, need)]

    run.counts.update(images=0, scores=0, failed_images=0, model_id=models[0].mid,
                      model_ids=[m.mid for m in models], decode=decode)
    writer = _Writer(conn, run, s.commit_every)
    writer.start()
    t0 = time.monotonic()
    try:
        with torch.no_grad():
            # texts of images a model already embedded: against the stored embedding
            for m in models:
                done = [k for k in keys if k in m.stored and k in m.todo]
                for b in range(0, len(done), s.batch_size):
                    part = done[b:b + s.batch_size]
                    emb = np.stack([np.frombuffer(m.stored[k], dtype="<f2").astype(np.float32) for k in part])
                    img = torch.nn.functional.normalize(torch.from_numpy(emb).to(device), dim=-1)
                    owners = [(r, media_id, src, text) for r, k in enumerate(part) for media_id, src, text in m.todo[k]]
                    sims = text_cosines(m.model, m.tokenizer, img, [o[0] for o in owners], [o[3] for o in owners],
                                        device)
                    writer.put((None, m.mid, [], None, [(o[1], o[2]) for o in owners], torch.tensor(sims), [], 0))
            loader = torch.utils.data.DataLoader(
                Images(items, geoms, decode), batch_size=s.batch_size, num_workers=workers,
                collate_fn=Collate(texts_of, toks), worker_init_fn=_worker_init if workers else None,
                pin_memory=device.type == "cuda", prefetch_factor=4 if workers else None)
            for batch in loader:
                _batch(batch, models, geoms, items, need, decode, device, run, writer)
                rate = run.counts["images"] / max(time.monotonic() - t0, 1e-9)
                print(f"wdb: score: {run.counts['images']}/{len(items)} images ({rate:.1f}/s)", file=log)
    finally:
        writer.close()  # what was computed is committed, also when interrupted
    run.counts["seconds"] = round(time.monotonic() - t0, 2)


def _batch(batch, models, geoms, items, need, decode, device, run, writer) -> None:
    import torch

    idx, failed = list(batch["idx"]), list(batch["failed"])
    n = len(idx)
    # pixels per geometry on the device, rows in idx order; raw JPEGs decoded there as a batch
    full: list = [None] * len(geoms)
    if n:
        for g, geom in enumerate(geoms):
            if not batch["raw"]:  # the common case: every row decoded in the workers
                full[g] = batch["stacks"][g].to(device, non_blocking=True)
                continue
            full[g] = torch.empty((n, 3, *geom.crop), dtype=torch.uint8, device=device)
            if batch["stacks"] is not None:
                full[g][batch["pix_rows"]] = batch["stacks"][g].to(device, non_blocking=True)
    bad_rows: list[int] = []
    if batch["raw"]:
        decoded = decode_jpegs_on(device, batch["raw"], geoms)
        for r, raw, out in zip(batch["raw_rows"], batch["raw"], decoded, strict=True):
            if out is None:  # the device decoder refused it: PIL in this process
                try:
                    out = [p.to(device) for p in pil_pixels(raw.numpy().tobytes(), geoms, 1 << 62, True)]
                except Exception as e:  # noqa: BLE001 -- this image's status
                    failed.append((idx[r], "undecodable", f"{type(e).__name__}: {e}"))
                    bad_rows.append(r)
                    continue
            for g in range(len(geoms)):
                full[g][r] = out[g]
    keep = [r for r in range(n) if r not in set(bad_rows)]
    idx = [idx[r] for r in keep]
    full = [f[keep] if f is not None and bad_rows else f for f in full]
    run.counts["failed_images"] += len(failed)
    texts, text_index = batch["texts"], batch["text_index"]
    for j, m in enumerate(models):
        statuses = [(items[i][0], m.mid, st, err, run.id) for i, st, err in failed if j in need[i]]
        rows = [r for r, i in enumerate(idx) if j in need[i]]
        if not rows:
            if statuses:
                writer.put((None, m.mid, [], None, [], None, statuses, 0))
            continue
        x = normalize(full[m.gi][rows] if len(rows) < len(idx) else full[m.gi], geoms[m.gi], device)
        img = image_embeddings(m.model, x, device)
        keys = [items[idx[r]][0] for r in rows]
        pairs, prow, ptext = [], [], []
        for local, key in enumerate(keys):
            for media_id, src, text in m.todo[key]:
                pairs.append((media_id, src))
                prow.append(local)
                ptext.append(text_index[text])
        sims = None
        if pairs:
            uniq = sorted(set(ptext))
            pos = {t: u for u, t in enumerate(uniq)}
            txt = _text_embeddings(m, batch["tokens"][m.ti], texts, uniq, device)
            sims = (img[prow] * txt[[pos[t] for t in ptext]]).sum(-1)
        event, outs = _copy_out(img.half(), *([sims] if sims is not None else []))
        writer.put((event, m.mid, keys, outs[0], pairs, outs[1] if sims is not None else None,
                    statuses + [(k, m.mid, "ok", None, run.id) for k in keys],
                    0 if m.dim_written else int(img.shape[-1])))
        m.dim_written = True
    run.counts["images"] += len(idx)
