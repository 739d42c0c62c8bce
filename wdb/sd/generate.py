"""`wdb sd generate`: images for a prompt set from the base model or a fine-tuned run, fixed seeds.

Each prompt gets `images` images with seeds seed, seed+1, ...; the initial latents come from a CPU
torch.Generator per image, so an image depends only on (model, prompt, seed, sampling settings).
Prompts are cut into fixed chunks of the set (in prompt id order, `chunk` prompts each): a chunk is
generated as one batch; a writer thread encodes its PNGs, appends them to the database's own WARC
(`<db>.wdb/sd/`), syncs the file and commits the chunk's rows in one transaction while the next
batch is generated (no per-image commit, the device not waiting on the disk). A re-run skips the chunks whose images are all
there; a killed run leaves at most one chunk's records unreferenced in the WARC and redoes that
chunk with the same batch, hence the same bytes.
"""
from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..db import side_dir, transaction
from ..stage import Result, stage_run
from ..errors import ModelLoadError
from .models import SdError, device_of, dtype_of, load_pipeline, model_index, sd_run
from .prompts import prompt_set_id
from .warc import GeneratedWarc


@dataclass
class GenerateSettings:
    prompts: str = "thesis"  # prompt set name
    model: str = "base"  # base | an sd_runs id
    base: str | None = None  # the base model (default: that of the run, or of the newest run for `base`)
    images: int = 4  # images per prompt
    seed: int = 0  # first seed; image k of a prompt uses seed + k
    steps: int = 30  # denoising steps
    guidance: float = 7.5
    width: int | None = None  # default: the model's own resolution
    height: int | None = None
    chunk: int = 4  # prompts per batch (and per commit)
    kinds: tuple[str, ...] = ()  # only these prompt kinds (default all)
    limit: int | None = None  # at most this many prompts
    precision: str = "auto"
    device: str = "auto"


def resolve_model(conn: sqlite3.Connection, s: GenerateSettings) -> tuple[str, int, dict | None]:
    """(base, sd_run_id or 0, the run's row or None)."""
    if s.model == "base":
        if s.base:
            return s.base, 0, None
        row = conn.execute("SELECT base FROM sd_runs WHERE status = 'done' ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            raise SdError("--model base needs --base MODEL (no sd run to take the base model from)")
        return row[0], 0, None
    if not str(s.model).isdigit():
        raise SdError(f"--model must be base or an sd run id, not {s.model!r}")
    run = sd_run(conn, int(s.model))
    if s.base and s.base != run["base"]:
        raise SdError(f"sd run {run['id']} was trained from {run['base']}, not {s.base}")
    return run["base"], run["id"], run


def sampling_config(base: str, s: GenerateSettings, precision: str) -> str:
    """The sampling settings an image is keyed by, JSON; the default size is the model's own
    (UNet sample size times the VAE's downscaling), read from the configs without loading weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    index = model_index(base)
    try:
        unet = UNet2DConditionModel.load_config(base, subfolder="unet")
        vae = AutoencoderKL.load_config(base, subfolder="vae")
    except Exception as e:  # noqa: BLE001 - a model without these configs is one line for the user
        raise ModelLoadError(f"cannot read the unet/vae configs of {base!r}: {str(e).splitlines()[0][:200]}") from e
    size = unet["sample_size"] * 2 ** (len(vae["block_out_channels"]) - 1)
    return json.dumps({"steps": s.steps, "guidance": s.guidance, "width": s.width or size, "height": s.height or size,
                       "scheduler": index.get("scheduler", ["", ""])[1], "precision": precision}, sort_keys=True)


def png_bytes(image) -> bytes:
    b = io.BytesIO()
    image.save(b, "PNG", optimize=False, compress_level=6)  # deterministic: same pixels, same bytes
    return b.getvalue()


def generate(conn: sqlite3.Connection, s: GenerateSettings) -> Result:
    """Generate what is missing; counts: images (written this run), chunks, skipped_chunks."""
    if s.images < 1 or s.chunk < 1 or s.steps < 1:
        raise SdError("images, chunk and steps must be at least 1")
    with stage_run(conn, "sd generate", s) as run:
        _generate(conn, s, run)
    return run.result()


def _generate(conn, s: GenerateSettings, run) -> None:
    import torch

    set_id = prompt_set_id(conn, s.prompts)
    base, rid, row = resolve_model(conn, s)
    sql = "SELECT id, prompt FROM sd_prompts WHERE set_id = ?"
    args: list = [set_id]
    if s.kinds:
        sql += f" AND kind IN ({','.join('?' * len(s.kinds))})"
        args += list(s.kinds)
    prompts = conn.execute(sql + " ORDER BY id", args).fetchall()[: s.limit]
    seeds = [s.seed + k for k in range(s.images)]
    device = device_of(s.device)
    precision, dtype = dtype_of(s.precision, device)
    config = sampling_config(base, s, precision)
    cfg = json.loads(config)
    have = set(conn.execute("SELECT prompt_id, seed FROM sd_images WHERE base = ? AND sd_run_id = ? AND config = ?",
                            (base, rid, config)))
    chunks = [[(p, text, sd) for p, text in prompts[i:i + s.chunk] for sd in seeds]
              for i in range(0, len(prompts), s.chunk)]
    pending = [c for c in chunks if not all((p, sd) in have for p, _, sd in c)]
    run.counts.update(images=0, chunks=0, skipped_chunks=len(chunks) - len(pending), sd_run_id=rid)
    if not pending:
        return
    pipe = load_pipeline(base, dtype, device, row)
    writer = _Writer(conn, GeneratedWarc(side_dir(conn, "sd")), (base, rid, config), have, run)
    # the next batch is generated while a writer thread encodes, appends and commits the last one
    with ThreadPoolExecutor(1, thread_name_prefix="sd-writer") as pool:
        last = None
        try:
            for todo in pending:
                with torch.inference_mode():
                    out = pipe([t for _, t, _ in todo], num_inference_steps=s.steps, guidance_scale=s.guidance,
                               width=cfg["width"], height=cfg["height"],
                               generator=[torch.Generator("cpu").manual_seed(sd) for _, _, sd in todo],
                               output_type="pil")
                if last is not None:
                    last.result()
                last = pool.submit(writer.store, todo, out.images)
            last.result()
        finally:
            if last is not None and not last.done():
                last.result()  # an interrupt keeps the chunk being committed
            writer.warc.close()


class _Writer:
    """PNG encoding, WARC records and the chunk's commit, in one thread."""

    def __init__(self, conn, warc: GeneratedWarc, key: tuple, have: set, run):
        self.conn, self.warc, self.key, self.have, self.run = conn, warc, key, have, run
        self.kill_after = int(os.environ.get("WDB_SD_KILL_AFTER_CHUNKS", "0") or 0)  # crash injection for the tests

    def store(self, todo: list, images: list) -> None:
        base, rid, config = self.key
        rows = []
        for (p, _, sd), im in zip(todo, images, strict=True):
            if (p, sd) in self.have:
                continue
            body = png_bytes(im)
            loc, off, length, digest = self.warc.write(f"urn:wdb:sd:{rid}:{p}:{sd}", body,
                                                       extra={"WARC-Wdb-Model": base})
            rows.append((base, rid, p, sd, config, loc, off, length, "image/png", len(body), digest,
                         im.width, im.height, self.run.id))
        self.warc.flush()  # durable before the database points at it
        with transaction(self.conn):
            self.conn.executemany(
                "INSERT OR IGNORE INTO sd_images (base, sd_run_id, prompt_id, seed, config, location, \"offset\", "
                "length, mime, bytes, sha256, width, height, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        self.run.counts["images"] += len(rows)
        self.run.counts["chunks"] += 1
        if self.kill_after and self.run.counts["chunks"] >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
