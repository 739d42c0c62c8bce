"""`wdb signals` against `wdb ingest` on the same benchmark WARC of real pages (issue: signals must
not be slower than the ingest of the pages they are computed for).

    python bench/signals_bench.py --size-mb 30

Builds the Common-Crawl-like WARC of bench/ingest_bench.py (the 129 real pages, replicated), ingests
it with 1 worker, then runs `wdb signals` with its default families; prints each stage's CPU
seconds (children included) and pages per CPU-second, and their ratio. The pages' images are not
fetched (their URLs are synthetic), so the image and aesthetic families find nothing to do: the
figure is the text side (language, caption statistics, page language), which is what scales with
the pages.

Also, same run: the current-version lookup recipes make for each signal (SELECT version ... ORDER BY
run_id DESC, version DESC LIMIT 1), with the (signal, run_id, version) indexes of
migrations/016_signal_versions.sql and on a copy of the ingested database without them, and what
those indexes cost `wdb signals` (the same signals run on the copy).
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


CURRENT = ("text_signals", "image_signals", "page_signals")


def lookups(db: Path, table: str) -> list[float]:
    """Seconds of each signal's current-version lookup (best of 3), as the recipes write it."""
    conn = sqlite3.connect(db)
    out = []
    for (signal,) in conn.execute(f"SELECT DISTINCT signal FROM {table}").fetchall():
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            conn.execute(f"SELECT version FROM {table} WHERE signal = ? ORDER BY run_id DESC, version DESC LIMIT 1",
                         (signal,)).fetchone()
            best = min(best, time.perf_counter() - t0)
        out.append(best)
    conn.close()
    return out


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
    bare = args.out / f"signals-bench-{args.size_mb}-noindex.db"
    for s in ("", "-wal", "-shm"):
        Path(str(bare) + s).unlink(missing_ok=True)
    src, dst = sqlite3.connect(db), sqlite3.connect(bare)
    src.backup(dst)
    src.close()
    for t in CURRENT:
        dst.execute(f"DROP INDEX {t}_current")
    dst.commit()
    dst.close()
    sig_cpu, sig_wall = timed(wdb + ["signals", str(db), "--silent"])
    bare_cpu, _ = timed(wdb + ["signals", str(bare), "--silent"])
    conn = sqlite3.connect(db)
    pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    texts = conn.execute("SELECT count(DISTINCT media_id || source) FROM text_signals").fetchone()[0]
    rows = conn.execute("SELECT (SELECT count(*) FROM text_signals) + (SELECT count(*) FROM page_signals)").fetchone()[0]
    print(f"{pages} pages, {texts} texts with signals, {rows} signal rows")
    print(f"wdb ingest --workers 1: {ing_cpu:7.1f} CPU-s ({ing_wall:.1f} s wall), {pages / ing_cpu:7.0f} pages/CPU-s")
    print(f"wdb signals:            {sig_cpu:7.1f} CPU-s ({sig_wall:.1f} s wall), {pages / sig_cpu:7.0f} pages/CPU-s")
    print(f"signals / ingest CPU time: {sig_cpu / ing_cpu:.2f}")
    print(f"wdb signals without the current-version indexes: {bare_cpu:7.1f} CPU-s "
          f"(with them: {sig_cpu / bare_cpu:.2f}x)")
    for t in CURRENT:
        with_i, without = lookups(db, t), lookups(bare, t)
        if with_i:
            n = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            print(f"current-version lookup, {t} ({n} rows, {len(with_i)} signals): "
                  f"{1e3 * sum(with_i) / len(with_i):.3f} ms with the index, "
                  f"{1e3 * sum(without) / len(without):.2f} ms without ({sum(without) / sum(with_i):.0f}x)")


if __name__ == "__main__":
    main()
