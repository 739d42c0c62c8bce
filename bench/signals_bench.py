"""`wdb signals` against `wdb ingest` on the same benchmark WARC of real pages (issue: signals must
not be slower than the ingest of the pages they are computed for).

    python bench/signals_bench.py --size-mb 30

Builds the Common-Crawl-like WARC of bench/ingest_bench.py (the 129 real pages, replicated), ingests
it with 1 worker, then runs `wdb signals` with its default families; prints each stage's CPU
seconds (children included) and pages per CPU-second, and their ratio. The pages' images are not
fetched (their URLs are synthetic), so the image and aesthetic families find nothing to do: the
figure is the text side (language, caption statistics, page language), which is what scales with
the pages.
"""
from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from ingest_bench import build, cpu  # noqa: E402


def timed(cmd: list[str]) -> tuple[float, float]:
    c0, t0 = cpu(), time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return cpu() - c0, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=30)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    warc = args.out / f"signals-bench-{args.size_mb}.warc"
    if not warc.exists():
        build(warc, args.size_mb)
    db = args.out / f"signals-bench-{args.size_mb}.db"
    for s in ("", "-wal", "-shm"):
        Path(str(db) + s).unlink(missing_ok=True)
    wdb = [sys.executable, "-m", "wdb.cli"]
    ing_cpu, ing_wall = timed(wdb + ["ingest", str(db), str(warc), "--workers", "1", "--silent"])
    sig_cpu, sig_wall = timed(wdb + ["signals", str(db), "--silent"])
    conn = sqlite3.connect(db)
    pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    texts = conn.execute("SELECT count(DISTINCT media_id || source) FROM text_signals").fetchone()[0]
    rows = conn.execute("SELECT (SELECT count(*) FROM text_signals) + (SELECT count(*) FROM page_signals)").fetchone()[0]
    print(f"{pages} pages, {texts} texts with signals, {rows} signal rows")
    print(f"wdb ingest --workers 1: {ing_cpu:7.1f} CPU-s ({ing_wall:.1f} s wall), {pages / ing_cpu:7.0f} pages/CPU-s")
    print(f"wdb signals:            {sig_cpu:7.1f} CPU-s ({sig_wall:.1f} s wall), {pages / sig_cpu:7.0f} pages/CPU-s")
    print(f"signals / ingest CPU time: {sig_cpu / ing_cpu:.2f}")


if __name__ == "__main__":
    main()
