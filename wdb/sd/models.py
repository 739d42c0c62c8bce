"""Loading Stable Diffusion: a Hugging Face id or a local save_pretrained folder, through diffusers'
own from_pretrained (so a folder behaves as the id would online), and a fine-tuned run's weights."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ..errors import ModelLoadError, WdbError


class SdError(WdbError):
    """A Stable Diffusion run that cannot be trained, generated or evaluated as asked."""


def device_of(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def dtype_of(precision: str, device):
    """Weights/autocast dtype: no (float32), fp16, bf16; auto = bf16 on a CUDA device that has it, else fp32."""
    import torch

    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    if precision not in ("no", "fp16", "bf16"):
        raise SdError(f"precision must be auto, no, fp16 or bf16, not {precision!r}")
    if precision != "no" and device.type != "cuda":
        raise SdError(f"mixed precision {precision} needs a CUDA device")
    return precision, {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _one_line(e: BaseException) -> str:
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__


def model_index(base: str) -> dict:
    """The pipeline's model_index.json (from the folder, or the Hub as diffusers fetches it)."""
    from diffusers import DiffusionPipeline

    try:
        return dict(DiffusionPipeline.load_config(base))
    except Exception as e:  # noqa: BLE001 - any failure to find the model is one line for the user
        raise ModelLoadError(f"cannot load Stable Diffusion model {base!r}: {_one_line(e)}") from e


def load_components(base: str):
    """(tokenizer, text_encoder, vae, unet, noise_scheduler) as diffusers' train_text_to_image loads them."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    index = model_index(base)
    if "text_encoder_2" in index:
        raise SdError(f"{base} is an SDXL pipeline: wdb sd train fine-tunes single-text-encoder pipelines "
                      "(Stable Diffusion 1.x/2.x); wdb sd generate and eval work with SDXL")
    try:
        return (AutoTokenizer.from_pretrained(base, subfolder="tokenizer"),
                CLIPTextModel.from_pretrained(base, subfolder="text_encoder"),
                AutoencoderKL.from_pretrained(base, subfolder="vae"),
                UNet2DConditionModel.from_pretrained(base, subfolder="unet"),
                DDPMScheduler.from_pretrained(base, subfolder="scheduler"))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelLoadError(f"cannot load Stable Diffusion model {base!r}: {_one_line(e)}") from e


def load_pipeline(base: str, dtype, device, run: dict | None = None):
    """The text-to-image pipeline of `base`, with a fine-tuned run's weights when run is given (a full
    UNet replaces the base's; LoRA adapters are loaded onto it)."""
    from diffusers import DiffusionPipeline, UNet2DConditionModel

    index = model_index(base)
    kwargs = {"torch_dtype": dtype}
    if "safety_checker" in index:
        kwargs.update(safety_checker=None, requires_safety_checker=False)  # raw images, as the thesis rated them
    try:
        pipe = DiffusionPipeline.from_pretrained(base, **kwargs)
        if run is not None:
            ckpt = Path(run["checkpoint"] or "")
            if not ckpt.is_dir():
                raise SdError(f"sd run {run['id']}: its checkpoint folder {ckpt} is missing")
            if run["mode"] == "full":
                pipe.unet = UNet2DConditionModel.from_pretrained(ckpt / "unet", torch_dtype=dtype)
            else:
                pipe.load_lora_weights(str(ckpt))
    except SdError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelLoadError(f"cannot load Stable Diffusion model {base!r}: {_one_line(e)}") from e
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def sd_run(conn: sqlite3.Connection, run_id: int) -> dict:
    """A done sd_runs row as a dict; SdError when there is none."""
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM sd_runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        conn.row_factory = None
    if row is None:
        raise SdError(f"no sd run {run_id} (see the sd_runs table; `wdb sd train` makes one)")
    if row["status"] != "done":
        raise SdError(f"sd run {run_id} is {row['status']}, not done: train it again")
    out = dict(row)
    out["params"] = json.loads(out["params"])
    return out
