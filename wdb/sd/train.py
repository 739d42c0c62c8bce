"""`wdb sd train`: fine-tune Stable Diffusion on a recipe's pairs, the whole UNet or LoRA adapters (peft).

The loop is diffusers' examples/text_to_image (train_text_to_image.py / _lora.py): VAE latents times
the scaling factor, noise at a uniformly drawn timestep, the UNet predicts the noise (or velocity),
MSE loss. Images are read through their pointers (sha256 checked) in DataLoader workers. Losses stay
on the device and are copied to the host every `log_every` steps (no per-step sync), then written
as `sd_losses` rows with the run's progress. The trained weights go to `<db>.wdb/sd/run-N/`
(written as run-N.tmp, then renamed), a `sd_runs` row holds every parameter, the recipe and the hash
of its pairs. A second run with the same model, recipe, pairs and parameters is skipped.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass, field

from ..db import now, side_dir, transaction
from ..stage import Result, stage_run
from .data import Pair, Pairs, load_image, recipe_pairs
from .models import SdError, device_of, dtype_of, load_components


@dataclass
class TrainSettings:
    recipe: str = ""
    base: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    recipe_params: dict = field(default_factory=dict)
    mode: str = "lora"  # lora | full
    resolution: int = 512
    steps: int = 1000
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 1e-4
    lr_warmup: int = 0
    max_grad_norm: float = 1.0
    rank: int = 4  # LoRA rank (alpha = rank, as diffusers' script)
    seed: int = 0
    precision: str = "auto"  # no | fp16 | bf16 | auto (bf16 on a GPU that has it)
    center_crop: bool = True
    random_flip: bool = False
    limit: int | None = None  # at most this many pairs
    workers: int = 2  # DataLoader processes reading and decoding images
    log_every: int = 50  # steps between host copies of the losses (and commits of sd_losses rows)
    device: str = "auto"

    def training_params(self) -> dict:
        """The parameters that decide the weights (not device or logging cadence)."""
        d = dataclasses.asdict(self)
        for k in ("recipe", "base", "recipe_params", "mode", "limit", "workers", "log_every", "device"):
            d.pop(k)
        return d


class PairImages:
    """torch Dataset: (pixels in [-1, 1], caption) per pair; an unreadable pair yields None."""

    def __init__(self, pairs: list[Pair], resolution: int, center_crop: bool, random_flip: bool):
        from torchvision import transforms

        self.pairs = pairs
        steps = [transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BILINEAR),
                 transforms.CenterCrop(resolution) if center_crop else transforms.RandomCrop(resolution)]
        if random_flip:
            steps.append(transforms.RandomHorizontalFlip())
        self.tf = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        try:
            return self.tf(load_image(self.pairs[i])), self.pairs[i].text
        except Exception:  # noqa: BLE001 - a bad image is counted and left out of its batch
            return None


def _collate(batch):
    import torch

    ok = [b for b in batch if b is not None]
    pixels = torch.stack([b[0] for b in ok]) if ok else None
    return pixels, [b[1] for b in ok], len(batch) - len(ok)


def run_hash(s: TrainSettings, pairs: Pairs) -> str:
    key = {"base": s.base, "mode": s.mode, "recipe": s.recipe, "recipe_sha256": pairs.recipe_sha256,
           "recipe_params": s.recipe_params, "pairs_sha256": pairs.sha256, "params": s.training_params()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def train(conn: sqlite3.Connection, s: TrainSettings, log=None) -> Result:
    """Fine-tune; counts: sd_run_id, steps, pairs, no_bytes, bad_images, skipped (1: an identical run was done)."""
    if s.mode not in ("lora", "full"):
        raise SdError(f"mode must be lora or full, not {s.mode!r}")
    if s.steps < 1 or s.batch_size < 1 or s.grad_accum < 1 or s.resolution < 8 or s.resolution % 8:
        raise SdError("steps, batch size and gradient accumulation must be at least 1, the resolution a "
                      "multiple of 8 (the VAE's downscaling)")
    with stage_run(conn, "sd train", s) as run:
        pairs = recipe_pairs(conn, s.recipe, s.recipe_params, s.limit)
        run.counts.update(pairs=len(pairs.pairs), no_bytes=pairs.no_bytes)
        digest = run_hash(s, pairs)
        done = conn.execute("SELECT id FROM sd_runs WHERE params_sha256 = ? AND status = 'done' ORDER BY id DESC",
                            (digest,)).fetchone()
        if done:
            run.counts.update(sd_run_id=done[0], skipped=1, steps=0)
        else:
            _new_run(conn, s, pairs, digest, run)
    return run.result()


def _new_run(conn, s: TrainSettings, pairs: Pairs, digest: str, run) -> None:
    with transaction(conn):
        sid = conn.execute(
            "INSERT INTO sd_runs (run_id, base, mode, recipe, recipe_sha256, recipe_params, pairs, pairs_sha256, "
            "params, params_sha256, status, created) VALUES (?,?,?,?,?,?,?,?,?,?, 'running', ?)",
            (run.id, s.base, s.mode, s.recipe, pairs.recipe_sha256, json.dumps(s.recipe_params, sort_keys=True),
             len(pairs.pairs), pairs.sha256, json.dumps(dataclasses.asdict(s), sort_keys=True, default=str),
             digest, now())).lastrowid
    run.counts["sd_run_id"] = sid
    status = "failed"
    try:
        _train(conn, s, pairs, sid, run)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        with transaction(conn):
            conn.execute("UPDATE sd_runs SET status = ?, finished = ? WHERE id = ?", (status, now(), sid))


def _train(conn, s: TrainSettings, pairs: Pairs, sid: int, run) -> None:
    import torch
    import torch.nn.functional as F

    device = device_of(s.device)
    precision, dtype = dtype_of(s.precision, device)
    torch.manual_seed(s.seed)
    tokenizer, text_encoder, vae, unet, noise_scheduler = load_components(s.base)
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    weight_dtype = dtype if s.mode == "lora" else torch.float32  # frozen parts in half precision for LoRA
    vae.to(device, dtype=weight_dtype)
    text_encoder.to(device, dtype=weight_dtype)
    if s.mode == "lora":
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.to(device, dtype=weight_dtype)
        unet.add_adapter(LoraConfig(r=s.rank, lora_alpha=s.rank, init_lora_weights="gaussian",
                                    target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        for p in unet.parameters():  # trainable LoRA parameters in float32, as diffusers' script casts them
            if p.requires_grad:
                p.data = p.data.float()
    else:
        unet.to(device)
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / s.lr_warmup) if s.lr_warmup else 1.0)
    gen = torch.Generator().manual_seed(s.seed)
    loader = torch.utils.data.DataLoader(
        PairImages(pairs.pairs, s.resolution, s.center_crop, s.random_flip), batch_size=s.batch_size, shuffle=True,
        generator=gen, num_workers=s.workers, collate_fn=_collate, drop_last=False,
        persistent_workers=s.workers > 0, pin_memory=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=dtype, enabled=precision != "no")
    scaler = torch.amp.GradScaler(enabled=precision == "fp16")  # fp16 gradients underflow without it
    pending: list = []  # (step, loss tensor on the device, lr)
    step, micro, bad = 0, 0, 0

    def batches():
        while True:
            got = False
            for b in loader:
                got = got or b[0] is not None
                yield b
            if not got:
                raise SdError("no image of the recipe's pairs could be read or decoded")

    for pixels, texts, n_bad in batches():
        bad += n_bad
        if pixels is None:
            continue
        ids = tokenizer(texts, max_length=tokenizer.model_max_length, padding="max_length", truncation=True,
                        return_tensors="pt").input_ids.to(device, non_blocking=True)
        pixels = pixels.to(device, dtype=weight_dtype, non_blocking=True)
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
            hidden = text_encoder(ids, return_dict=False)[0]
        noise = torch.randn_like(latents)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=device).long()
        noisy = noise_scheduler.add_noise(latents, noise, t)
        ptype = noise_scheduler.config.prediction_type
        target = noise if ptype == "epsilon" else noise_scheduler.get_velocity(latents, noise, t)
        with autocast:
            pred = unet(noisy, t, hidden, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
        scaler.scale(loss / s.grad_accum).backward()
        micro += 1
        if micro % s.grad_accum:
            continue
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        step += 1
        pending.append((step, loss.detach(), sched.get_last_lr()[0]))
        sched.step()
        if step % s.log_every == 0 or step == s.steps:
            _write_losses(conn, sid, pending, step)
            pending = []
        if step >= s.steps:
            break
    run.counts.update(steps=step, bad_images=bad)
    _save(conn, s, sid, unet)


def _write_losses(conn, sid: int, pending: list, step: int) -> None:
    import torch

    values = torch.stack([x[1] for x in pending]).float().cpu().tolist()  # the one host copy
    with transaction(conn):
        conn.executemany("INSERT OR REPLACE INTO sd_losses (sd_run_id, step, loss, lr) VALUES (?,?,?,?)",
                         [(sid, st, v, lr) for (st, _, lr), v in zip(pending, values, strict=True)])
        conn.execute("UPDATE sd_runs SET steps_done = ? WHERE id = ?", (step, sid))


def _save(conn, s: TrainSettings, sid: int, unet) -> None:
    folder = side_dir(conn, "sd")
    final, tmp = folder / f"run-{sid}", folder / f"run-{sid}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if s.mode == "full":
        unet.save_pretrained(tmp / "unet")
    else:
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
        StableDiffusionPipeline.save_lora_weights(save_directory=str(tmp), unet_lora_layers=layers,
                                                  safe_serialization=True)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    with transaction(conn):
        conn.execute("UPDATE sd_runs SET checkpoint = ? WHERE id = ?", (str(final.resolve()), sid))
