"""Scoring benchmark: `wdb score` images/s next to the bare model forward on the same images, and the
input side alone per CPU-second.

    python bench/score_bench.py --images 128 --device cpu
    python bench/score_bench.py --images 4096 --device cuda --batch-size 256 --workers 8 \
        --model ViT-B-32 --model ViT-L-14

Builds a WARC holding real COCO photos (replicated with distinct URLs) and a page that shows them
with their captions as alt texts, ingests it, lets `wdb fetch` take the bytes from the archive,
then measures, in the same run:
  - the input side alone (read + sha256 + decode + geometry + tokenise, DataLoader workers, no
    model): images per CPU-second (resource.getrusage, self + joined children), per decode mode,
    with the main process's share and the steady rate (without the workers' start and exit);
  - a per-stage profile of the input side (ms per image per step, one thread);
  - the same input side in this process, one thread, no worker processes: the ceiling of the
    workers' rate;
  - the bare model forward (encode_image + encode_text on tensors preprocessed in memory, same
    batch size; with several models, the sum of their times);
  - `wdb score` end to end (all models in one pass), with GPU utilisation sampled by nvidia-smi
    when there is a GPU;
  - reduced-size (draft) against full-size decoding: per pair score difference, and how many pairs
    change side of a threshold (the median score: random weights have no meaningful 0.28).
Random weights (pretrained=None): speed and numerical agreement, not quality. Prints one JSON
line at the end (`--json PATH` writes it too).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def _rec(url: str, block: bytes) -> bytes:
    from wdb.warc.write import HTTP_RESPONSE, gz, warc_record

    return gz(warc_record("response", url, block, HTTP_RESPONSE), 1)


def build(out: Path, coco: Path, n: int) -> Path:
    files = sorted((coco / "val2017").glob("*.jpg"))
    ann = json.loads((coco / "annotations" / "captions_val2017.json").read_text())
    names = {im["id"]: im["file_name"] for im in ann["images"]}
    caps: dict[str, str] = {}
    for a in ann["annotations"]:
        caps.setdefault(names.get(a["image_id"]), a["caption"].strip())
    warc = out / f"score-bench-{n}.warc.gz"
    with open(warc, "wb") as f:
        imgs = []
        for i in range(n):
            src = files[i % len(files)]
            url = f"http://img.example.org/{i}/{src.name}"
            body = src.read_bytes()
            f.write(_rec(url, b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n" + body))
            alt = caps.get(src.name, src.name).replace('"', "'")
            imgs.append(f'<img src="{url}" alt="{alt}">')
        html = ("<html><body>" + "".join(f"<p>Photo {i}.</p>{t}" for i, t in enumerate(imgs)) + "</body></html>").encode()
        f.write(_rec("http://img.example.org/", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html))
    return warc



def cpu_seconds() -> float:
    import resource

    t = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        t += r.ru_utime + r.ru_stime
    return t


class Before:
    """The input side as it was before issue 17: full decode + open_clip's preprocess to float32 in
    the worker (the baseline the new modes are compared with, same run)."""

    def __init__(self, items, preprocess):
        self.items, self.preprocess = items, preprocess

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from wdb.fetch.probe import decode_rgb
        from wdb.warc.payload import read_verified

        return self.preprocess(decode_rgb(read_verified(*self.items[i][1:6])))


class Stamped:
    """Collate that stamps each batch with its worker's pid and CPU time (resource.getrusage, self):
    the main process then sees what the workers spent between their first and last batch, without
    their start (fork) and exit."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, batch):
        import os
        import resource

        out = self.collate(batch)
        r = resource.getrusage(resource.RUSAGE_SELF)
        out["stamp"] = (os.getpid(), r.ru_utime + r.ru_stime)
        return out


def input_side(items, geoms, tokenizers, texts, decode: str, workers: int, batch_size: int, preprocess) -> dict:
    """Read + decode + geometry + tokenise through the DataLoader as wdb score runs it; no model.
    decode="device" here is the workers' share only (read, sha256, header): the decode runs on the
    GPU. Children's CPU time counts once the workers are joined (end of the iteration). Also: the
    main process's share, and the steady rate (each worker's CPU between its first and last batch,
    over the images of the batches after its first, plus the main process's over the same span):
    what a long run approaches once the workers' start and exit are spread over many images."""
    import resource

    import torch

    from wdb.score import _worker_init
    from wdb.score.inputs import Collate, Images

    def main_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    c0, m0, t0 = cpu_seconds(), main_cpu(), time.perf_counter()
    n = 0
    if decode == "before":
        ds, collate = Before(items, preprocess), None
    else:
        ds, collate = Images(items, geoms, decode), Collate([[t] for t in texts], tokenizers)
        collate = Stamped(collate) if workers else collate
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, num_workers=workers, collate_fn=collate,
        worker_init_fn=_worker_init if workers else None, prefetch_factor=4 if workers else None)
    first: dict = {}
    last: dict = {}
    m_first = None
    for batch in loader:
        k = len(batch["idx"]) if isinstance(batch, dict) else len(batch)
        n += k
        if isinstance(batch, dict) and "stamp" in batch:
            pid, cpu = batch["stamp"]
            if pid not in first:
                first[pid] = [cpu, 0]
            else:
                last[pid] = cpu
                first[pid][1] += k
            if m_first is None:
                m_first = main_cpu()
    m_last = main_cpu()
    del loader
    cpu, wall = cpu_seconds() - c0, time.perf_counter() - t0
    out = {"decode": decode, "workers": workers, "images": n, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
           "images_per_cpu_s": round(n / cpu, 1), "images_per_wall_s": round(n / wall, 1),
           "main_cpu_share": round((main_cpu() - m0) / cpu, 3)}
    steady_n = sum(first[p][1] for p in last)
    if steady_n:
        steady_cpu = sum(last[p] - first[p][0] for p in last) + (m_last - m_first)
        out.update(steady_images=steady_n, steady_images_per_cpu_s=round(steady_n / steady_cpu, 1),
                   main_until_first_batch_s=round(m_first - m0, 3))
    return out


def stage_profile(items, bodies: list[bytes], geoms, tokenizer, texts: list[str], reps: int = 3) -> dict:
    """ms per image for each step of the input side, in this process, one thread, same run: every
    step on every image in turn, the best of `reps` per image (the machine is shared), summed."""
    import hashlib

    import torch

    from wdb.score.inputs import (PointerReader, decode_rgb_reduced, device_geometry, jpeg_chw_reduced,
                                  pil_pixels, stack_hwc, to_uint8_chw)

    shortest = max(g.shortest for g in geoms)
    reader = PointerReader()
    decoded = [jpeg_chw_reduced(b, shortest, 1 << 30) for b in bodies]
    simplejpeg_ok = all(d is not None for d in decoded)
    if not simplejpeg_ok:
        decoded = [to_uint8_chw(decode_rgb_reduced(b, shortest, 1 << 30, True)) for b in bodies]
    cropped = [device_geometry(d, geoms[0]) for d in decoded]

    steps = {
        "read (pread, gunzip, parse, sha256)": lambda i: reader.read(*items[i][1:6]),
        "  of which sha256": lambda i: hashlib.sha256(bodies[i]).hexdigest(),
        "decode (wdb draft)": lambda i: (jpeg_chw_reduced(bodies[i], shortest, 1 << 30) if simplejpeg_ok
                                         else decode_rgb_reduced(bodies[i], shortest, 1 << 30, True)),
        "  previous: PIL draft + copy to a tensor": lambda i: to_uint8_chw(decode_rgb_reduced(bodies[i], shortest,
                                                                                               1 << 30, True)),
        "geometry (tensor resize + center crop)": lambda i: device_geometry(decoded[i], geoms[0]),
        "stack into the batch": lambda i: stack_hwc([cropped[i]]),
        "all of pil_pixels (decode + geometry)": lambda i: pil_pixels(bodies[i], geoms, 1 << 30, True),
    }
    if simplejpeg_ok:
        import simplejpeg

        steps["  floor: 1/8-scale decode (entropy decoding)"] = lambda i: simplejpeg.decode_jpeg(
            bodies[i], min_height=1, min_width=1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    total = dict.fromkeys(steps, 0.0)
    try:
        for i in range(len(bodies)):
            best = dict.fromkeys(steps, float("inf"))
            for _ in range(reps):
                for k, f in steps.items():
                    t = time.thread_time()
                    f(i)
                    best[k] = min(best[k], time.thread_time() - t)
            for k in steps:
                total[k] += best[k]
    finally:
        torch.set_num_threads(before)
    ms = {k: round(v / len(bodies) * 1e3, 3) for k, v in total.items()}
    best = float("inf")  # texts are tokenised per batch in the workers: a batch of 64 distinct texts
    for _ in range(reps):
        t = time.thread_time()
        for b in range(0, len(texts), 64):
            tokenizer(texts[b:b + 64])
        best = min(best, time.thread_time() - t)
    ms["tokenise (distinct texts, per batch)"] = round(best / len(texts) * 1e3, 3)
    return {"images": len(bodies), "simplejpeg": simplejpeg_ok, "ms_per_image": ms}


def thumbnails(bodies: list[bytes], side: int = 256, quality: int = 90) -> tuple[list[bytes], float]:
    """What a thumbnail at fetch time would cost: full decode, resize (short side `side`, PIL
    bicubic, as img2dataset), JPEG encode; returns the thumbnails and images per CPU-second."""
    import io

    from PIL import Image

    out = []
    c0 = cpu_seconds()
    for b in bodies:
        im = Image.open(io.BytesIO(b))
        im.draft("RGB", (side, side))
        im = im.convert("RGB")
        w, h = im.size
        s = side / min(w, h)
        if s < 1:
            im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out, round(len(bodies) / (cpu_seconds() - c0), 1)


class GpuSampler:
    """nvidia-smi utilisation samples (every 100 ms) while the block runs; nothing without a GPU."""

    def __init__(self, enabled: bool):
        import shutil

        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.samples: list[int] = []

    def __enter__(self):
        import subprocess

        if self.enabled:
            self.p = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                       "-lms", "100"], stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.p.terminate()
            out, _ = self.p.communicate(timeout=10)
            self.samples = [int(x) for x in out.split() if x.strip().isdigit()]

    def summary(self) -> dict | None:
        if not self.samples:
            return None
        xs = sorted(self.samples)
        return {"n": len(xs), "mean": round(sum(xs) / len(xs), 1), "median": xs[len(xs) // 2],
                "share_under_50": round(sum(x < 50 for x in xs) / len(xs), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="default: wdb score's (0 on CPU, 8 on GPU)")
    ap.add_argument("--input-workers", type=int, default=2, help="workers for the input-side-alone measurement")
    ap.add_argument("--input-images", type=int, default=395, help="images for the input side (COCO repeated)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", action="append", default=None, help="open_clip model name (repeat for several)")
    ap.add_argument("--decode", action="append", default=None,
                    help="wdb score's decode: auto, draft, full, device (repeat: one wdb score run each)")
    ap.add_argument("--score-runs", type=int, default=2, help="wdb score runs per decode mode (the best counts)")
    ap.add_argument("--compare-images", type=int, default=158, help="images for draft vs full decoding")
    ap.add_argument("--skip-forward", action="store_true", help="input side and decode comparison only")
    ap.add_argument("--repeat-texts", action="store_true",
                    help="input side with each photo's caption as its text (repeated with the photo); default: distinct")
    ap.add_argument("--coco", type=Path, default=ROOT.parent / "shared" / "corpus" / "coco-mini")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    names = args.model or ["ViT-B-32"]
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    from wdb.db import open_db
    from wdb.fetch import FetchSettings, fetch
    from wdb.ingest import ingest
    from wdb.score import ScoreSettings, image_embeddings, load_clip, score
    from wdb.score.inputs import normalize, pil_pixels, split_preprocess
    from wdb.warc.payload import read_payload

    if args.device == "cuda" and not torch.cuda.is_available():
        print("score_bench: --device cuda but torch sees no CUDA device; run with --device cpu", file=sys.stderr)
        sys.exit(2)
    device = torch.device(args.device)
    report: dict = {"device": str(device), "models": names, "batch_size": args.batch_size,
                    "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if device.type == "cuda" else None}

    def make_db(n: int):
        warc = build(args.out, args.coco, n)
        db = args.out / f"score-bench-{n}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        conn = open_db(db)
        ingest(conn, [str(warc)], workers=1, progress=False, quiet=True)
        counts = fetch(conn, FetchSettings(), progress=False).counts
        return conn, counts

    loaded = {n: load_clip(n, "", device) for n in names}
    geoms = [split_preprocess(loaded[n][1]) for n in names]
    geoms = list({g.key: g for g in geoms}.values())

    # 1. the input side alone, per CPU-second, on real COCO photos (repeated)
    conn, _ = make_db(args.input_images)
    rows = conn.execute("SELECT i.url_key, i.location, i.\"offset\", i.length, i.inner, i.sha256, m.alt FROM images i "
                        "JOIN media m ON m.url_key = i.url_key WHERE i.status = 'ok' ORDER BY m.id").fetchall()
    items, texts = [r[:6] for r in rows], [r[6] for r in rows]
    if not args.repeat_texts:  # every text distinct: the workers' token cache cannot help
        texts = [f"{t} (photo {i})" for i, t in enumerate(texts)]
    toks = [loaded[names[0]][2]]
    modes = ["draft", "full", "before"] + (["device"] if device.type == "cuda" else [])
    report["input_side"] = [input_side(items, geoms, toks, texts, d, args.input_workers, args.batch_size,
                                       loaded[names[0]][1]) for d in modes]
    for r in report["input_side"]:
        print(f"input side alone, decode={r['decode']:6s} {r['workers']} workers: {r['images_per_cpu_s']:7.1f} images/CPU-s "
              f"({r['images_per_wall_s']:.1f}/s wall, {r['images']} images)", flush=True)
    from wdb.warc.payload import read_payload as _rp

    for r in report["input_side"]:
        if "steady_images_per_cpu_s" in r:
            print(f"  decode={r['decode']}: main process {100 * r['main_cpu_share']:.1f} % of the CPU time "
                  f"({r['main_until_first_batch_s']:.3f} s of it before the first batch: the workers' fork); "
                  f"steady rate (workers between their first and last batch + main) "
                  f"{r['steady_images_per_cpu_s']:.1f} images/CPU-s over {r['steady_images']} images", flush=True)
    n_prof = min(len(rows), 79)  # each distinct COCO photo once
    prof_bodies = [_rp(*r[1:5])[0] for r in rows[:n_prof]]
    report["stages"] = stage_profile(items[:n_prof], prof_bodies, geoms, toks[0], texts[:n_prof])
    print(f"per-stage profile, ms per image, one thread, best of 3 per image ({n_prof} photos):", flush=True)
    for k, v in report["stages"]["ms_per_image"].items():
        print(f"  {k:48s} {v:6.3f}")
    # the same Images + Collate in this process, one thread: no fork, no IPC, no second process
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    report["sequential"] = input_side(items, geoms, toks, texts, "draft", 0, args.batch_size, None)
    torch.set_num_threads(before)
    print(f"input side in this process, one thread, no worker processes (the ceiling of the workers): "
          f"{report['sequential']['images_per_cpu_s']:.1f} images/CPU-s ({len(items)} images)", flush=True)

    # 2. reduced-size against full-size decoding, first model, every image with its alt text
    model, _, tokenizer = loaded[names[0]]
    g0 = split_preprocess(loaded[names[0]][1])
    bodies = [read_payload(*r[1:5])[0] for r in rows[:min(len(rows), args.compare_images)]]
    with torch.no_grad():
        te = torch.nn.functional.normalize(model.encode_text(tokenizer(texts[:len(bodies)]).to(device)).float(), dim=-1)
        sims, pix = {}, {}
        thumbs, thumb_rate = thumbnails(bodies)
        for mode, reduced in (("full", False), ("draft", True), ("thumb", True)):
            src = thumbs if mode == "thumb" else bodies
            p = torch.stack([pil_pixels(b, [g0], 1 << 30, reduced)[0] for b in src])
            pix[mode] = p
            ie = torch.cat([image_embeddings(model, normalize(p[i:i + 32], g0, device), device)
                            for i in range(0, len(p), 32)])
            sims[mode] = (ie * te).sum(-1).cpu()
    d = (sims["draft"] - sims["full"]).abs()
    thr = sims["full"].median().item()
    flips = ((sims["draft"] >= thr) != (sims["full"] >= thr)).float().mean().item()
    # the same at every decile of the full-decode scores (random weights: no real 0.28)
    qs = [sims["full"].quantile(q / 10).item() for q in range(1, 10)]
    worst = max(((sims["draft"] >= q) != (sims["full"] >= q)).float().mean().item() for q in qs)
    dt = (sims["thumb"] - sims["full"]).abs()
    worst_t = max(((sims["thumb"] >= q) != (sims["full"] >= q)).float().mean().item() for q in qs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a decoding worker
    c0 = cpu_seconds()
    for b in thumbs:
        pil_pixels(b, [g0], 1 << 30, True)
    thumb_in = round(len(thumbs) / (cpu_seconds() - c0), 1)
    c0 = cpu_seconds()
    for b in bodies:
        pil_pixels(b, [g0], 1 << 30, True)
    draft_in = round(len(bodies) / (cpu_seconds() - c0), 1)
    torch.set_num_threads(threads)
    report["thumbnail"] = {"make_per_cpu_s": thumb_rate, "decode_geometry_per_cpu_s": thumb_in,
                           "draft_decode_geometry_per_cpu_s": draft_in,
                           "mean_bytes": round(sum(map(len, thumbs)) / len(thumbs)),
                           "mean_bytes_original": round(sum(map(len, bodies)) / len(bodies)),
                           "max_abs": float(dt.max()), "mean_abs": float(dt.mean()), "worst_decile_flip": worst_t}
    report["draft_vs_full"] = {
        "pairs": len(bodies), "max_abs": float(d.max()), "mean_abs": float(d.mean()),
        "score_std": float(sims["full"].std()), "threshold_median": thr, "share_flipped": flips,
        "worst_decile_flip": worst,
        "pixel_mean_abs_of_255": float((pix["draft"].int() - pix["full"].int()).abs().float().mean())}
    r = report["draft_vs_full"]
    print(f"draft vs full decode ({r['pairs']} pairs, random weights): max |d| {r['max_abs']:.2e}, mean {r['mean_abs']:.2e} "
          f"(score std {r['score_std']:.2e}); {100 * flips:.1f} % of pairs change side of the median; "
          f"pixels differ by {r['pixel_mean_abs_of_255']:.2f}/255 on average; at the worst decile threshold "
          f"{100 * worst:.1f} %", flush=True)
    t = report["thumbnail"]
    print(f"thumbnail at fetch time (256 px, JPEG q90): making one {t['make_per_cpu_s']:.1f} images/CPU-s; then decode + "
          f"geometry {t['decode_geometry_per_cpu_s']:.1f}/CPU-s against {t['draft_decode_geometry_per_cpu_s']:.1f} from the "
          f"original (one thread, same run); {t['mean_bytes']} against {t['mean_bytes_original']} bytes; scores vs full "
          f"decode: max |d| {t['max_abs']:.2e}, mean {t['mean_abs']:.2e}, worst decile flip {100 * t['worst_decile_flip']:.1f} %",
          flush=True)
    conn.close()
    if args.skip_forward:
        print(json.dumps(report))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return

    # 3. bare forward and wdb score on the same images
    conn, counts = make_db(args.images)
    print(f"{args.images} images; fetch (from the archive): {counts}", flush=True)
    rows = conn.execute("SELECT i.location, i.\"offset\", i.length, i.inner, m.alt FROM images i "
                        "JOIN media m ON m.url_key = i.url_key WHERE i.status = 'ok' ORDER BY m.id").fetchall()
    amp = device.type == "cuda"
    bare_s = 0.0
    for name in names:
        model, preprocess, tokenizer = loaded[name]
        from wdb.fetch.probe import decode_rgb

        pixels = torch.stack([preprocess(decode_rgb(read_payload(*r[:4])[0])) for r in rows])
        tokens = tokenizer([r[4] for r in rows])

        def forward() -> float:
            if amp:
                torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                for i in range(0, len(pixels), args.batch_size):
                    with torch.autocast(device.type, enabled=amp):
                        model.encode_image(pixels[i:i + args.batch_size].to(device))
                        model.encode_text(tokens[i:i + args.batch_size].to(device))
            if amp:
                torch.cuda.synchronize()
            return time.perf_counter() - t

        forward()  # warm-up
        with GpuSampler(amp) as gs:
            t = min(forward() for _ in range(2))
        bare_s += t
        report.setdefault("bare", {})[name] = {"images_per_s": round(len(rows) / t, 1), "gpu_util": gs.summary()}
    pixels = tokens = None  # free the preprocessed copies before wdb score runs
    workers = args.workers if args.workers is not None else ("auto: 0" if device.type == "cpu" else "auto: 8")
    bare_rate = len(rows) / bare_s
    report.update(bare_images_per_s=round(bare_rate, 1), workers=workers, score={})
    print(f"device {device}, batch {args.batch_size}, workers {workers}, torch threads {torch.get_num_threads()}, "
          f"models {', '.join(names)}")
    print(f"bare model forward (image + text, all models): {bare_rate:8.1f} images/s", flush=True)
    for decode in args.decode or ["auto"]:
        best = None
        for _ in range(args.score_runs):  # best of N, as the bare forward is the best of 2
            for table in ("clip_scores", "image_embeddings", "clip_image_status", "clip_models"):
                conn.execute(f"DELETE FROM {table}")  # each run scores everything again
            settings = ScoreSettings(model=names[0], pretrained="", more_models=tuple((n, "") for n in names[1:]),
                                     sources=("alt",), batch_size=args.batch_size, workers=args.workers,
                                     device=args.device, decode=decode)
            model_s = [0.0]
            if not amp:  # CPU: time spent inside the encoders during wdb score (no device sync needed)
                import wdb.score as score_mod

                real_load = score_mod.load_clip

                def timed_load(*a, real_load=real_load):
                    m, pre, tok = real_load(*a)
                    for fn in ("encode_image", "encode_text"):
                        def timed(*x, f=getattr(m, fn), **k):
                            t = time.perf_counter()
                            try:
                                return f(*x, **k)
                            finally:
                                model_s[0] += time.perf_counter() - t
                        setattr(m, fn, timed)
                    return m, pre, tok

                score_mod.load_clip = timed_load
            try:
                with GpuSampler(amp) as gs:
                    res = score(conn, settings, log=open("/dev/null", "w")).counts  # clock starts after the models load
            finally:
                if not amp:
                    score_mod.load_clip = real_load
            res["model_seconds"] = round(model_s[0], 2)
            assert res["images"] == len(rows), res
            if best is None or res["seconds"] < best[0]["seconds"]:
                best = (res, gs)
        res, gs = best
        score_rate = len(rows) / res["seconds"]
        outside = None if amp else round(1 - res["model_seconds"] / res["seconds"], 3)
        report["score"][decode] = {"decode": res["decode"], "images_per_s": round(score_rate, 1),
                                   "seconds": res["seconds"], "model_seconds": res["model_seconds"],
                                   "share_outside_encoders": outside,
                                   "share_of_bare": round(score_rate / bare_rate, 3), "gpu_util": gs.summary(),
                                   "scores": res["scores"]}
        print(f"wdb score end to end (one pass), decode {decode} -> {res['decode']}: {score_rate:8.1f} images/s "
              f"({res['scores']} scores), {100 * score_rate / bare_rate:.1f} % of the bare forward's rate "
              f"(overhead {100 * (1 - score_rate / bare_rate):.1f} %)", flush=True)
        if gs.summary():
            print(f"  GPU utilisation during wdb score: {gs.summary()}")
        if outside is not None:
            print(f"  wdb score's own time outside encode_image/encode_text: {100 * outside:.1f} % of its "
                  f"{res['seconds']} s (load-independent measure of the loop's overhead)")
    print(json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
