"""Scoring benchmark: `wdb score` images/s next to the bare model forward on the same images.

    python bench/score_bench.py --images 256 --device cpu
    python bench/score_bench.py --images 4096 --device cuda --batch-size 256 --workers 8

Builds a WARC holding real COCO photos (replicated with distinct URLs) and a page that shows them
with their captions as alt texts, ingests it, lets `wdb fetch` take the bytes from the archive,
then times, in the same run: `wdb score` end to end (read from the WARC, decode, preprocess in
worker processes, model, SQLite) and the bare model forward (encode_image + encode_text on
tensors already preprocessed in memory, same batch size). Random ViT-B-32 weights: speed, not quality.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="default: wdb score's (0 on CPU, 8 on GPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--coco", type=Path, default=ROOT.parent / "shared" / "corpus" / "coco-mini")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    from wdb.db import open_db
    from wdb.fetch import FetchSettings, fetch_images
    from wdb.ingest import ingest
    from wdb.score import ScoreSettings, load_clip, score

    warc = build(args.out, args.coco, args.images)
    db = args.out / f"score-bench-{args.images}.db"
    for s in ("", "-wal", "-shm"):
        Path(str(db) + s).unlink(missing_ok=True)
    conn = open_db(db)
    ingest(conn, [str(warc)], workers=1, progress=False, quiet=True)
    counts = fetch_images(conn, db, FetchSettings(), progress=False)
    print(f"{args.images} images in {warc.name}; fetch (from the archive): {counts}", flush=True)
    device = torch.device(args.device)
    settings = ScoreSettings(model="ViT-B-32", pretrained="", sources=("alt",), batch_size=args.batch_size,
                             workers=args.workers, device=args.device)

    # bare forward on the same images, preprocessed in memory beforehand (not timed)
    from wdb.fetch.probe import decode_rgb
    from wdb.warc.payload import read_payload

    model, preprocess, tokenizer = load_clip("ViT-B-32", "", device)
    rows = conn.execute("SELECT i.location, i.\"offset\", i.length, i.inner, m.alt FROM images i "
                        "JOIN media m ON m.url_key = i.url_key WHERE i.status = 'ok' ORDER BY m.id").fetchall()
    pixels = torch.stack([preprocess(decode_rgb(read_payload(*r[:4])[0])) for r in rows])
    tokens = tokenizer([r[4] for r in rows])
    amp = device.type == "cuda"

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
    bare = min(forward() for _ in range(2))
    res = score(conn, settings, log=open("/dev/null", "w")).counts  # its clock starts after the model is loaded
    assert res["images"] == len(rows), res
    bare_rate, score_rate = len(rows) / bare, len(rows) / res["seconds"]
    workers = args.workers if args.workers is not None else ("auto: 0" if device.type == "cpu" else "auto: 8")
    print(f"device {device}, batch {args.batch_size}, decode workers {workers}, torch threads {torch.get_num_threads()}")
    print(f"bare model forward (image + text): {bare_rate:8.1f} images/s")
    print(f"wdb score end to end:              {score_rate:8.1f} images/s ({res['scores']} scores)")
    print(f"overhead: {100 * (1 - score_rate / bare_rate):.1f} % of the bare forward's rate")


if __name__ == "__main__":
    main()
