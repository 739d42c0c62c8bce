"""Ray executor benchmark: CPU-seconds per page against the local pool, 1 -> 2 worker scaling, the
driver's merge rate and share, and an arithmetic model for a Common Crawl snapshot on N nodes.

    python bench/ray_bench.py                       # 4 WARCs of 1,000 pages (built once in bench/out/ray/)
    python bench/ray_bench.py --archives 6 --pages 1000 --cores-per-node 32

Every run is a subprocess that measures the CPU time of its own process tree around the ingest
call alone: the local pool's workers are joined by the ingest (RUSAGE_CHILDREN); Ray's processes
(GCS, raylet, its workers, all descendants of the driver) are read with psutil before and after,
so Ray's start-up (ray.init, reported apart) is left out and its scheduling, object store and
worker overheads are in.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "ray"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

SNAPSHOT_WARCS = 90_000
SNAPSHOT_PAGES = 3.0e9
KB_PER_PAGE = (31, 38)  # database bytes a page, all indexes built (README)


def build(n_archives: int, pages: int) -> list[Path]:
    from ingest_bench import PAGES, _record

    OUT.mkdir(parents=True, exist_ok=True)
    bodies = [(p.parent.name, p.read_bytes()) for p in sorted(PAGES.glob("*/source.html"))]
    out = []
    for a in range(n_archives):
        path = OUT / f"bench-{pages}p-{a}.warc.gz"
        out.append(path)
        if path.exists():
            continue
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as f:
            f.write(_record("warcinfo", "", b"software: wdb ray bench\r\n", "application/warc-fields"))
            for n in range(pages):
                name, body = bodies[(n + a * 7) % len(bodies)]
                url = f"https://site{a}-{n // len(bodies)}.example.org/{name}/page-{n}.html"
                resp = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                f.write(_record("request", url, f"GET /{name} HTTP/1.1\r\n\r\n".encode(),
                                "application/http; msgtype=request"))
                f.write(_record("response", url, resp, "application/http; msgtype=response"))
        tmp.rename(path)
    return out


def _tree_cpu() -> float:
    """CPU seconds of this process and every live descendant (psutil), plus reaped children."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me] + me.children(recursive=True):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + c.ru_utime + c.ru_stime


def measured(cmd: list[str]) -> dict:
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), RAY_AUTH_MODE="disabled"))
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])}...: exit {r.returncode}\n{r.stderr[-3000:]}")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    out = json.loads(lines[-1])
    out["process_wall"] = time.monotonic() - t0
    return out


def child(args) -> None:
    """Run inside a subprocess: one ingest, local pool (--workers) or a Ray of --cpus CPUs."""
    import logging

    from wdb.db import open_db
    from wdb.ingest import ingest

    out = {}
    conn = open_db(args.db)
    if args.child == "local":
        c0, t1 = _tree_cpu(), time.monotonic()
        res = ingest(conn, args.inputs, workers=args.workers, progress=False, quiet=True)
        out.update(ingest_s=time.monotonic() - t1, tree_cpu=_tree_cpu() - c0, pages=res.counts["pages"], ok=res.ok)
        print(json.dumps(out))
        return
    import ray

    t0 = time.monotonic()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    out["init_s"] = time.monotonic() - t0
    c0, p0, t1 = _tree_cpu(), time.process_time(), time.monotonic()
    res = ingest(conn, args.inputs, executor="ray", shard_dir=args.db + ".shards", progress=False, quiet=True)
    out.update(ingest_s=time.monotonic() - t1, tree_cpu=_tree_cpu() - c0, driver_cpu=time.process_time() - p0)
    counters = json.loads(conn.execute("SELECT counters FROM runs WHERE id = ?", (res.run_id,)).fetchone()[0])
    rows, secs, tcpu, n = conn.execute("SELECT sum(rows), sum(seconds), sum(cpu_seconds), count(*) "
                                       "FROM merged_shards").fetchone()
    out.update(pages=res.counts["pages"], merge_rows=rows, merge_s=secs, task_cpu=tcpu, shards=n,
               driver_merge_s=counters.get("driver_seconds"), task_s=counters.get("task_seconds"), ok=res.ok)
    ray.shutdown()
    print(json.dumps(out))


def merge_rate(src: Path, work: Path) -> dict:
    """One big shard (a whole local ingest) merged into an empty database."""
    from wdb.cluster.merge import merge_shard
    from wdb.db import open_db
    from wdb.ingest.store import owner_name
    from wdb.stage import start_run

    dst = work / "merge-target.db"
    for p in (dst, Path(f"{dst}-wal"), Path(f"{dst}-shm")):
        p.unlink(missing_ok=True)
    conn = open_db(dst)
    rid = start_run(conn, "merge", {})
    t0 = time.monotonic()
    res = merge_shard(conn, src, rid, owner_name(rid))
    s = time.monotonic() - t0
    return dict(rows=res.total, seconds=s, rows_per_s=res.total / s, pages=res.rows.get("pages", 0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archives", type=int, default=4)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--cores-per-node", type=int, default=32)
    ap.add_argument("--usd-per-cpu-hour", type=float, default=0.02, help="price of a vCPU-hour (spot) for the cost line")
    ap.add_argument("--local-scaling", action="store_true", help="also the local pool with 1 worker")
    ap.add_argument("--child", choices=["local", "ray"], help=argparse.SUPPRESS)
    ap.add_argument("--cpus", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("inputs", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    t_all = time.monotonic()
    files = build(args.archives, args.pages)
    mb = sum(f.stat().st_size for f in files) / 1e6
    work = OUT / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    me = [sys.executable, str(Path(__file__).resolve())]
    fs = [str(f) for f in files]
    res = {}
    for w in ((1, 2) if args.local_scaling else (2,)):
        res[f"local_{w}"] = measured(me + ["--child", "local", "--workers", str(w), "--db", str(work / f"local-{w}.db"), *fs])
    for n in (1, 2):
        res[f"ray_{n}"] = measured(me + ["--child", "ray", "--cpus", str(n), "--db", str(work / f"ray-{n}.db"), *fs])
    res["merge"] = merge_rate(work / "local-2.db", work)
    pages = res["local_2"]["pages"]
    res["db_bytes_per_page"] = (work / "local-2.db").stat().st_size / pages
    lp = res["local_2"]["tree_cpu"] / pages
    r2, r1 = res["ray_2"], res["ray_1"]
    assert r1["pages"] == r2["pages"] == pages
    print(f"input: {len(files)} WARCs, {pages} pages, {mb:.0f} MB; chunks (tasks): {r2['shards']}")
    for k in ("local_1", "local_2"):
        if k in res:
            r = res[k]
            print(f"local pool, {k[-1]} worker(s): {r['ingest_s']:.1f}s wall, {r['tree_cpu'] / pages * 1e3:.2f} CPU-ms/page")
    for k, r in (("1", r1), ("2", r2)):
        print(f"Ray {k} worker(s): {r['ingest_s']:.1f}s wall (+{r['init_s']:.1f}s ray.init), "
              f"{r['tree_cpu'] / pages * 1e3:.2f} CPU-ms/page (inside tasks {r['task_cpu'] / pages * 1e3:.2f}); "
              f"driver {r['driver_cpu']:.2f} CPU-s = {r['driver_cpu'] / r['tree_cpu']:.1%} of the run's CPU, "
              f"merging {r['driver_merge_s']:.2f}s = {r['driver_merge_s'] / r['ingest_s']:.1%} of its wall; "
              f"{r['merge_rows'] / r['merge_s']:,.0f} rows/s over {r['shards']} shards; tasks ran "
              f"{r['task_s']:.1f}s in all = {r['task_s'] / r['ingest_s']:.2f} at once on average")
    print(f"Ray 2 workers / local pool 2 workers, CPU-s per page: {r2['tree_cpu'] / pages / lp:.2f}x (target <= 1.3x)")
    print(f"Ray wall scaling 1 -> 2 workers: {r1['ingest_s'] / r2['ingest_s']:.2f}x (target >= 1.6x; 2 cores shared "
          f"with other work: load average {os.getloadavg()[0]:.1f})"
          + (f"; local pool {res['local_1']['ingest_s'] / res['local_2']['ingest_s']:.2f}x" if "local_1" in res else ""))
    m = res["merge"]
    print(f"merge of one {m['pages']}-page shard into an empty database: {m['rows']:,} rows in {m['seconds']:.2f}s = "
          f"{m['rows_per_s']:,.0f} rows/s")
    model(res, args.cores_per_node, (r2["tree_cpu"] - r2["driver_cpu"]) / pages, r2["merge_rows"] / pages,
          r2["merge_rows"] / r2["merge_s"], args.usd_per_cpu_hour)
    print(f"bench wall: {time.monotonic() - t_all:.0f}s")
    (OUT / "results.json").write_text(json.dumps(res, indent=1, default=str))


def model(res: dict, cores: int, cpu_per_page: float, rows_per_page: float, merge_rows_s: float,
          usd: float) -> None:
    """A snapshot (90,000 WARCs, ~3e9 pages) on N nodes of `cores` cores, from the measured rates:
    worker CPU a page (Ray's overheads in), rows a page, the driver's merge rate."""
    pages_per_cpu_s = 1 / cpu_per_page
    merge_pages_s = merge_rows_s / rows_per_page
    per_node = cores * pages_per_cpu_s
    cores_star = merge_pages_s / pages_per_cpu_s
    cpu_h = SNAPSHOT_PAGES / pages_per_cpu_s / 3600
    print(f"model: {pages_per_cpu_s:.0f} pages per worker CPU-s, {rows_per_page:.1f} rows a page, one driver merges "
          f"{merge_rows_s:,.0f} rows/s = {merge_pages_s:,.0f} pages/s; a {cores}-core node ingests {per_node:,.0f} pages/s")
    print(f"  one driver's merge keeps up with {cores_star:.1f} worker cores (N = {cores_star / cores:.2f} nodes of "
          f"{cores}); beyond, it is the bottleneck: {SNAPSHOT_PAGES / merge_pages_s / 3600:,.0f} h to merge a snapshot "
          f"into one database")
    print(f"  a snapshot: {cpu_h:,.0f} CPU-hours of ingest = ${cpu_h * usd:,.0f} at ${usd}/vCPU-hour "
          f"({SNAPSHOT_PAGES / SNAPSHOT_WARCS:,.0f} pages a WARC)")
    tb = SNAPSHOT_PAGES * sum(KB_PER_PAGE) / 2 * 1e3 / 1e12
    print(f"  {'nodes':>6} | {'ingest h, shards unmerged':>25} | {'one database h':>14} | databases with one driver per "
          f"{cores_star:.0f} cores (same wall as ingest)")
    for n in (1, 10, 100, 1000):
        ingest_h = SNAPSHOT_PAGES / (n * per_node) / 3600
        one_h = SNAPSHOT_PAGES / min(n * per_node, merge_pages_s) / 3600
        dbs = max(1, round(n * cores / cores_star))
        print(f"  {n:>6} | {ingest_h:>25.2f} | {one_h:>14.1f} | {dbs:,} of {tb / dbs:,.2f} TB")
    here = res["db_bytes_per_page"]
    print(f"  one database: {SNAPSHOT_PAGES * KB_PER_PAGE[0] * 1e3 / 1e12:.0f}-{SNAPSHOT_PAGES * KB_PER_PAGE[1] * 1e3 / 1e12:.0f} TB "
          f"at 31-38 KB a page ({here / 1e3:.1f} KB a page here, before `wdb index`)")


if __name__ == "__main__":
    main()
