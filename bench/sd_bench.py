"""Stable Diffusion throughput: `wdb sd train` steps/s and `wdb sd generate` images/s against a bare
diffusers loop and pipeline in the same run, on the same model, resolution and batch size.

    python bench/sd_bench.py                                    # GPU: SD 1.5 at 512 px
    python bench/sd_bench.py --model /models/sd15 --mode full   # a local save_pretrained folder
    python bench/sd_bench.py --tiny                             # CPU: tiny random model, 32 px (plumbing)

With --tiny the rates measure loading noise, not throughput: it only shows that the bench runs.

wdb's rates come from two runs of different lengths (the difference cancels model loading and
DataLoader start-up): steps/s = (long - short steps) / (long - short seconds), the same for images.
The bare loop trains on one batch of real COCO pixels already on the device (no data loading, no
bookkeeping); the bare pipeline generates the same batches without writing anything. Pairs are the
79 COCO photos of ../shared/corpus/coco-mini with their first caption, in a temporary database.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
COCO = ROOT.parent / "shared" / "corpus" / "coco-mini"
HOST = "http://coco.example.org"


def coco_db(folder: Path, n: int) -> tuple[Path, Path]:
    from wdb.db import open_db
    from wdb.ingest import ingest
    from wdb.warc.write import HTTP_RESPONSE, gz, warc_record

    files = sorted((COCO / "val2017").glob("*.jpg"))[:n]
    if not files:
        sys.exit(f"no COCO photos under {COCO}")
    ann = json.loads((COCO / "annotations" / "captions_val2017.json").read_text())
    names = {i["id"]: i["file_name"] for i in ann["images"]}
    caps: dict[str, str] = {}
    for a in ann["annotations"]:
        caps.setdefault(names[a["image_id"]], a["caption"].strip().replace('"', "'"))
    page = ("<html><body>" + "".join(f'<p>{i}</p><img src="{HOST}/{f.name}" alt="{caps[f.name]}">'
                                     for i, f in enumerate(files)) + "</body></html>").encode()

    def resp(url, body, ctype):
        return gz(warc_record("response", url, f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n\r\n".encode() + body,
                              HTTP_RESPONSE, "2024-05-18T01:58:10Z"))

    warc = folder / "coco.warc.gz"
    warc.write_bytes(resp(f"{HOST}/", page, "text/html") + b"".join(
        resp(f"{HOST}/{f.name}", f.read_bytes(), "image/jpeg") for f in files))
    db = folder / "bench.db"
    conn = open_db(db)
    ingest(conn, [str(warc)], workers=0, progress=False, quiet=True)
    conn.close()
    recipe = folder / "coco.sql"
    recipe.write_text("-- title: COCO\n-- description: bench pairs\nSELECT m.id AS media_id, m.alt AS text, "
                      "'alt' AS text_source FROM media m WHERE m.kind = 'image' AND m.alt IS NOT NULL ORDER BY m.id\n")
    return db, recipe


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_train(a, device, dtype, pixels, texts) -> float:
    """Steps/s of diffusers' training step on one batch already on the device."""
    import torch
    import torch.nn.functional as F

    from wdb.sd.models import load_components

    tok, te, vae, unet, sched = load_components(a.model)
    frozen = dtype if a.mode == "lora" else torch.float32
    vae.requires_grad_(False).to(device, dtype=frozen)
    te.requires_grad_(False).to(device, dtype=frozen)
    if a.mode == "lora":
        from peft import LoraConfig

        unet.requires_grad_(False).to(device, dtype=frozen)
        unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                    target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        for p in unet.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    else:
        unet.to(device)
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = tok(texts, max_length=tok.model_max_length, padding="max_length", truncation=True,
              return_tensors="pt").input_ids.to(device)
    px = pixels.to(device, dtype=frozen)
    auto = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step():
        with torch.no_grad():
            lat = vae.encode(px).latent_dist.sample() * vae.config.scaling_factor
            hid = te(ids, return_dict=False)[0]
        noise = torch.randn_like(lat)
        t = torch.randint(0, sched.config.num_train_timesteps, (lat.shape[0],), device=device)
        with auto:
            pred = unet(sched.add_noise(lat, noise, t), t, hid, return_dict=False)[0]
        F.mse_loss(pred.float(), noise.float()).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(a.warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(a.train_steps):
        step()
    sync(device)
    return a.train_steps / (time.perf_counter() - t0)


def bare_generate(a, device, dtype, prompts: list[str]) -> float:
    import torch

    from wdb.sd.models import load_pipeline

    pipe = load_pipeline(a.model, dtype, device)
    batch = a.chunk * a.per_prompt

    def run(texts, seed0):
        pipe(texts, num_inference_steps=a.inference_steps, height=a.resolution, width=a.resolution,
             generator=[torch.Generator("cpu").manual_seed(seed0 + k) for k in range(len(texts))], output_type="pil")

    run(prompts[:batch], 10_000)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    n = 0
    for k in range(0, a.images, batch):
        texts = prompts[k:k + batch]
        run(texts, k)
        n += len(texts)
    sync(device)
    return n / (time.perf_counter() - t0)


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    res = fn(*args)
    if not res.ok:
        sys.exit(f"{res.command} ended {res.status}: {res.error}")
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="stable-diffusion-v1-5/stable-diffusion-v1-5")
    p.add_argument("--tiny", action="store_true", help="a tiny random model on the CPU (tests the bench itself)")
    p.add_argument("--mode", choices=["lora", "full"], default="lora")
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--train-steps", type=int, default=30, help="timed steps (wdb: the longer run's extra steps)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--images", type=int, default=32, help="timed images (wdb: the longer run's extra images)")
    p.add_argument("--per-prompt", type=int, default=2, help="images (seeds) per prompt")
    p.add_argument("--chunk", type=int, default=4, help="prompts per batch")
    p.add_argument("--inference-steps", type=int, default=30)
    p.add_argument("--precision", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--pairs", type=int, default=79, help="COCO pairs to train on (at most 79)")
    p.add_argument("--workers", type=int, default=2, help="wdb train's image-reading processes")
    a = p.parse_args(argv)
    import torch

    from wdb.db import open_db
    from wdb.sd.data import load_image, recipe_pairs
    from wdb.sd.generate import GenerateSettings, generate
    from wdb.sd.models import device_of, dtype_of
    from wdb.sd.prompts import PromptSettings, make_prompt_set
    from wdb.sd.train import TrainSettings, train

    tmp = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    if a.tiny:
        from wdb.sd.tiny import build_tiny_pipeline

        a.model, a.device = str(build_tiny_pipeline(tmp / "tiny-sd")), "cpu"
        a.resolution = 32 if a.resolution == 512 else a.resolution
    device = device_of(a.device)
    precision, dtype = dtype_of(a.precision, device)
    db, recipe = coco_db(tmp, a.pairs)
    conn = open_db(db)
    # wdb sd train, two lengths
    base = dict(recipe=str(recipe), base=a.model, mode=a.mode, resolution=a.resolution, batch_size=a.batch_size,
                precision=a.precision, device=a.device, log_every=50, workers=a.workers)
    t_short = timed(train, conn, TrainSettings(**base, steps=a.warmup))
    t_long = timed(train, conn, TrainSettings(**base, steps=a.warmup + a.train_steps))
    wdb_steps = a.train_steps / max(t_long - t_short, 1e-9)
    # the bare loop on one real batch
    pairs = recipe_pairs(conn, str(recipe)).pairs[: a.batch_size]
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize(a.resolution), transforms.CenterCrop(a.resolution),
                             transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    pixels = torch.stack([tf(load_image(x)) for x in pairs])
    bare_steps = bare_train(a, device, dtype, pixels, [x.text for x in pairs])
    # wdb sd generate, two lengths (distinct seeds, so nothing is skipped)
    make_prompt_set(conn, PromptSettings(name="bench"))
    n_prompts = max(1, a.images // a.per_prompt)
    gen = dict(prompts="bench", model="base", base=a.model, images=a.per_prompt, steps=a.inference_steps,
               width=a.resolution, height=a.resolution, chunk=a.chunk, precision=a.precision, device=a.device)
    t_short = timed(generate, conn, GenerateSettings(**gen, seed=0, limit=a.chunk))
    t_long = timed(generate, conn, GenerateSettings(**gen, seed=100, limit=a.chunk + n_prompts))
    wdb_images = n_prompts * a.per_prompt / max(t_long - t_short, 1e-9)
    prompts = [t for (t,) in conn.execute("SELECT prompt FROM sd_prompts ORDER BY id LIMIT ?",
                                          (a.images + a.chunk * a.per_prompt,))]
    bare_images = bare_generate(a, device, dtype, prompts)
    out = {"model": a.model if not a.tiny else "tiny", "device": str(device), "gpu": torch.cuda.get_device_name(0)
           if device.type == "cuda" else None, "precision": precision, "mode": a.mode, "resolution": a.resolution,
           "batch_size": a.batch_size, "inference_steps": a.inference_steps, "batch_images": a.chunk * a.per_prompt,
           "train_steps_per_s": {"wdb": round(wdb_steps, 3), "bare": round(bare_steps, 3),
                                 "ratio": round(wdb_steps / bare_steps, 3)},
           "images_per_s": {"wdb": round(wdb_images, 3), "bare": round(bare_images, 3),
                            "ratio": round(wdb_images / bare_images, 3)},
           "images_stored": conn.execute("SELECT count(*) FROM sd_images").fetchone()[0]}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
