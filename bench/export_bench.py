"""Export benchmark: pairs per CPU-second of `wdb export` from archived images (target >= 500).

    python bench/export_bench.py --pairs 1500
    python bench/export_bench.py --pairs 1500 --format webdataset --resize 256

Builds a WARC of real COCO photos (../shared/corpus/coco-mini, replicated under distinct URLs,
20 a page, their captions as alt texts), ingests it and lets `wdb fetch` take the bytes from the
archive (no network), then measures in the same run, in CPU seconds (user + sys of this process):
  - the floor: reading every payload through its pointer with its sha256 checked
    (wdb.warc.payload.read_verified), nothing written;
  - `wdb check` (duplicates, offsets, every pointer verified);
  - `export()` of every pair in each format asked for (default: webdataset, parquet, uids), into a
    fresh folder, with its check, shards, stats and manifest.
Prints a table and one JSON line at the end.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

RECIPE = """-- title: every image with an alt text
SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source FROM media m
WHERE m.kind = 'image' AND m.alt IS NOT NULL AND m.alt != '' ORDER BY m.id
"""


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build(out: Path, coco: Path, n: int, per_page: int = 20) -> Path:
    from wdb.warc.write import HTTP_RESPONSE, gz, warc_record

    files = sorted((coco / "val2017").glob("*.jpg"))
    if not files:
        sys.exit(f"no COCO photos under {coco}")
    ann = json.loads((coco / "annotations" / "captions_val2017.json").read_text())
    names = {im["id"]: im["file_name"] for im in ann["images"]}
    caps: dict[str, str] = {}
    for a in ann["annotations"]:
        caps.setdefault(names.get(a["image_id"]), " ".join(a["caption"].split()))
    warc = out / f"export-bench-{n}.warc.gz"
    with open(warc, "wb") as f:
        page: list[str] = []
        for i in range(n):
            src = files[i % len(files)]
            url = f"http://img.example.org/{i}/{src.name}"
            f.write(gz(warc_record("response", url, b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n"
                                   + src.read_bytes(), HTTP_RESPONSE), 1))
            page.append(f'<p>Photo {i} sent by a reader.</p><img src="{url}" alt="{caps.get(src.name, src.name)}">')
            if len(page) == per_page or i == n - 1:
                html = f"<html><body>{''.join(page)}</body></html>".encode()
                f.write(gz(warc_record("response", f"http://img.example.org/page{i}.html",
                                       b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html, HTTP_RESPONSE), 1))
                page = []
    return warc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1500)
    ap.add_argument("--format", action="append", help="export format (repeatable; default webdataset, parquet, uids)")
    ap.add_argument("--resize", type=int, default=None)
    ap.add_argument("--shard-size", type=int, default=500)
    ap.add_argument("--coco", default=str(ROOT.parent / "shared" / "corpus" / "coco-mini"))
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    a = ap.parse_args()
    import io

    from wdb.db import open_db
    from wdb.export import ExportSettings, export
    from wdb.export.pairs import recipe_pairs
    from wdb.db.query import load
    from wdb.fetch import FetchSettings, fetch
    from wdb.ingest import ingest
    from wdb.warc.payload import read_verified

    work = Path(a.out or tempfile.mkdtemp(prefix="wdb-export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    warc = build(work, Path(a.coco), a.pairs)
    db = work / "bench.db"
    conn = open_db(db)
    ingest(conn, [str(warc)], workers=0, progress=False, quiet=True)
    fetch(conn, FetchSettings(), progress=False, log=io.StringIO())
    (work / "all.sql").write_text(RECIPE)
    recipe = load(work / "all.sql")
    pairs = recipe_pairs(conn, recipe, {})
    mb = sum(p.nbytes or 0 for p in pairs) / 1e6
    print(f"{len(pairs)} pairs of archived COCO photos, {mb:.0f} MB of payload, WARC {warc.stat().st_size / 1e6:.0f} MB",
          file=sys.stderr)
    results = {"pairs": len(pairs), "payload_mb": round(mb, 1)}
    c0, t0 = cpu(), time.monotonic()
    for p in pairs:
        read_verified(p.location, p.offset, p.length, p.inner, p.sha256, 64 << 20)
    c = cpu() - c0
    results["floor_read_verified"] = {"cpu_s": round(c, 2), "wall_s": round(time.monotonic() - t0, 2),
                                      "pairs_per_cpu_s": round(len(pairs) / c)}
    from wdb.export import check

    c0, t0 = cpu(), time.monotonic()
    rep = check(conn, recipe, {})
    c = cpu() - c0
    assert rep.ok and rep.verified == len(pairs), rep.summary()
    results["wdb check (pointers verified)"] = {"cpu_s": round(c, 2), "wall_s": round(time.monotonic() - t0, 2),
                                                 "pairs_per_cpu_s": round(len(pairs) / c)}
    for fmt in a.format or ["webdataset", "parquet", "uids"]:
        out = work / f"out-{fmt}{'-r' + str(a.resize) if a.resize else ''}"
        c0, t0 = cpu(), time.monotonic()
        res = export(conn, str(work / "all.sql"), {}, out, ExportSettings(format=fmt, resize=a.resize,
                                                                          shard_size=a.shard_size, max_images=None))
        c = cpu() - c0
        assert res.ok and res.counts["written"] == len(pairs), res.counts
        size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
        results[fmt + (f" --resize {a.resize}" if a.resize else "")] = {
            "cpu_s": round(c, 2), "wall_s": round(time.monotonic() - t0, 2),
            "pairs_per_cpu_s": round(len(pairs) / c), "out_mb": round(size, 1)}
    print(f"{'what':<31} {'CPU s':>7} {'wall s':>7} {'pairs/CPU-s':>12}")
    for k, v in results.items():
        if isinstance(v, dict):
            print(f"{k:<31} {v['cpu_s']:>7} {v['wall_s']:>7} {v['pairs_per_cpu_s']:>12,}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
