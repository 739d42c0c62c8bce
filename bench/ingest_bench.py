"""Ingest benchmark: a Common-Crawl-like WARC built from the real pages, measured in one run.

    python bench/ingest_bench.py                  # 300 MB input (built once, cached in bench/out/)
    python bench/ingest_bench.py --size-mb 1000   # the 1 GB input for the memory check

Prints, for the same file: the floor (gzip inflate + record iteration, with the inflater wdb uses
and with the standard library's zlib), parse only (wdb's native scanner, lexbor for reference, and
wdb's whole extraction without SQLite), `wdb ingest` end to end into a fresh database with 1
worker and with all cores, and `wdb index` after it: pages/s and MB/s per CPU-second (user+sys,
children included), wall time, peak RSS of the process tree, database bytes per page (all indexes
built), and the ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAGES = ROOT.parent / "shared" / "corpus" / "pages" / "readability" / "test-pages"
sys.path.insert(0, str(ROOT))


def _record(rtype: str, url: str, block: bytes, ctype: str) -> bytes:
    from wdb.warc.write import gz, warc_record

    return gz(warc_record(rtype, url, block, ctype, "2024-05-18T01:58:10Z"))


def build(path: Path, size_mb: int) -> tuple[int, int]:
    """Write request, response and metadata records per page until the file is size_mb."""
    sources = sorted(PAGES.glob("*/source.html"))
    if not sources:
        sys.exit(f"no pages under {PAGES}")
    bodies = [(p.parent.name, p.read_bytes()) for p in sources]
    target = size_mb << 20
    tmp = path.with_suffix(".part")
    n = 0
    with open(tmp, "wb") as f:
        f.write(_record("warcinfo", "", b"software: wdb bench\r\nformat: WARC File Format 1.0\r\n",
                        "application/warc-fields"))
        while f.tell() < target:
            name, body = bodies[n % len(bodies)]
            url = f"https://site{n // len(bodies)}.example.org/{name}/page-{n}.html"
            req = f"GET /{name}/page-{n}.html HTTP/1.1\r\nHost: site.example.org\r\nUser-Agent: bench\r\n\r\n".encode()
            resp = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            meta = "fetchTimeMs: 120\r\ncharset-detected: UTF-8\r\nlanguages-cld2: {}\r\n".encode()
            f.write(_record("request", url, req, "application/http; msgtype=request"))
            f.write(_record("response", url, resp, "application/http; msgtype=response"))
            f.write(_record("metadata", url, meta, "application/warc-fields"))
            n += 1
    tmp.rename(path)
    return n, path.stat().st_size


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def floor(path: Path, inflater=None) -> int:
    """Inflate every gzip member and count the records: no header parsing, no HTTP, no HTML.
    inflater: the zlib module to use (default: the one wdb reads with, zlib-ng where installed)."""
    from wdb.warc.inflate import zlib as fast

    zlib_mod = inflater or fast
    n = 0
    with open(path, "rb") as f:
        buf = memoryview(f.read(1 << 24))
        i = 0
        while True:
            if len(buf) - i < (1 << 20):
                more = f.read(1 << 24)
                if more:
                    buf = memoryview(bytes(buf[i:]) + more)
                    i = 0
            if i >= len(buf):
                break
            d = zlib_mod.decompressobj(31)
            j, head = i, b""
            while not d.eof:
                chunk = buf[j:j + 65536]
                if not chunk:
                    break
                out = d.decompress(chunk)
                head = head or out[:8]
                j += len(chunk)
            n += head.startswith(b"WARC/")
            i = j - len(d.unused_data)
    return n


def reader_only(path: Path) -> int:
    from wdb.warc.reader import ArchiveReader

    with open(path, "rb") as f:
        return sum(1 for _ in ArchiveReader(f))


def parse_only(path: Path, full: bool, parser: str = "lexbor") -> int:
    """Parse every page (lexbor, or wdb's native scanner), or run wdb's whole extraction without
    SQLite (full=True)."""
    from selectolax.lexbor import LexborHTMLParser

    from wdb.html.charset import decode_html
    from wdb.html.extract import scan_native
    from wdb.ingest.extract_record import Batch, Settings, process_record
    from wdb.warc.http import parse_http_response
    from wdb.warc.reader import ArchiveReader

    s = Settings()
    pages = 0
    with open(path, "rb") as f:
        for rec in ArchiveReader(f):
            if getattr(rec, "rec_type", None) != "response":
                continue
            if full:
                b = Batch()
                process_record(rec, b, s)
                pages += len(b.pages)
            else:
                pl = parse_http_response(rec.block, s.max_page_bytes)
                html = decode_html(pl.body, pl.headers.get("content-type"))[0]
                if parser == "lexbor":
                    LexborHTMLParser(html)
                else:
                    scan_native(html, s.max_text_chars)
                pages += 1
    return pages


class RssSampler(threading.Thread):
    """Peak summed RSS of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def _tree(self, pid: int) -> list[int]:
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            try:
                for t in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{t}/children") as fh:
                        todo.extend(int(c) for c in fh.read().split())
            except OSError:
                pass
        return out

    def run(self) -> None:
        while not self.stop:
            total = 0
            for p in self._tree(self.pid):
                try:
                    with open(f"/proc/{p}/status") as fh:
                        for line in fh:
                            if line.startswith("VmRSS:"):
                                total += int(line.split()[1]) * 1024
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.1)


def ingest(path: Path, workers: int, out: Path) -> dict:
    db = out / f"bench-w{workers}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    c0, t0 = cpu(), time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "wdb.cli", "ingest", str(db), str(path), "--workers",
                             str(workers), "--silent"], cwd=ROOT)
    sampler = RssSampler(proc.pid)
    sampler.start()
    proc.wait()
    sampler.stop = True
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    index_cpu = index_wall = None
    if workers == 1:  # the indexes ingest leaves out (URL lookups, full text), built after it
        c1, t1 = cpu(), time.perf_counter()
        subprocess.run([sys.executable, "-m", "wdb.cli", "index", str(db)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        index_cpu, index_wall = cpu() - c1, time.perf_counter() - t1
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    text = conn.execute("SELECT sum(length(CAST(text AS BLOB))) FROM pages").fetchone()[0] or 0
    media = conn.execute(
        "SELECT sum(length(url) + length(url_key) + coalesce(length(alt), 0) + coalesce(length(title), 0) "
        "+ coalesce(length(figcaption), 0) + 40) FROM media").fetchone()[0] or 0
    urls = conn.execute("SELECT sum(length(raw) + coalesce(length(url), 0) + 10) FROM media_urls").fetchone()[0] or 0
    conn.close()
    size = db.stat().st_size
    return dict(workers=workers, rc=proc.returncode, pages=pages, wall=wall, cpu=cpu_s, rss=sampler.peak,
                index_cpu=index_cpu, index_wall=index_wall,
                db_bytes=size, text_bytes=text, media_bytes=media + urls)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cc-like-{args.size_mb}mb.warc.gz"
    if not path.exists():
        t = time.perf_counter()
        n, size = build(path, args.size_mb)
        print(f"built {path.name}: {n} pages, {size / 1e6:.0f} MB in {time.perf_counter() - t:.0f}s", flush=True)
    mb = path.stat().st_size / 1e6
    res = {}
    for name, fn in [("floor: inflate + split records", lambda: floor(path)),
                     ("floor with the standard library's zlib", lambda: floor(path, zlib)),
                     ("wdb reader: records with headers", lambda: reader_only(path)),
                     ("parse only: lexbor (for reference)", lambda: parse_only(path, False)),
                     ("parse only: wdb native scanner", lambda: parse_only(path, False, "native")),
                     ("parse only: wdb extraction (no SQLite)", lambda: parse_only(path, True))]:
        c0, t0 = cpu(), time.perf_counter()
        n = fn()
        res[name] = dict(cpu=cpu() - c0, wall=time.perf_counter() - t0, n=n)
    pages = res["parse only: wdb native scanner"]["n"]
    print(f"\ninput: {path.name}, {mb:.0f} MB, {pages} pages, {mb * 1e6 / pages / 1e3:.1f} KB compressed per page")
    print(f"{'stage':48s} {'pages/s/CPU-s':>14s} {'MB/s/CPU-s':>11s} {'wall s':>8s}")
    for name, r in res.items():
        print(f"{name:48s} {pages / r['cpu']:14.0f} {mb / r['cpu']:11.1f} {r['wall']:8.1f}")
    runs = [ingest(path, 1, args.out)]
    if args.workers > 1:
        runs.append(ingest(path, args.workers, args.out))
    for r in runs:
        label = f"wdb ingest --workers {r['workers']}"
        print(f"{label:48s} {r['pages'] / r['cpu']:14.0f} {mb / r['cpu']:11.1f} {r['wall']:8.1f}"
              f"   peak RSS {r['rss'] / 2**20:.0f} MiB, exit {r['rc']}")
    one = runs[0]
    label = "wdb index (URL + full-text indexes, after)"
    print(f"{label:48s} {one['pages'] / one['index_cpu']:14.0f} {mb / one['index_cpu']:11.1f} {one['index_wall']:8.1f}")
    label = "ingest (1 worker) + index"
    both = one["cpu"] + one["index_cpu"]
    print(f"{label:48s} {one['pages'] / both:14.0f} {mb / both:11.1f} {one['wall'] + one['index_wall']:8.1f}")
    print("\nratios (per CPU-second):")
    floor_rate = pages / res["floor: inflate + split records"]["cpu"]
    parse_rate = pages / res["parse only: wdb native scanner"]["cpu"]
    lexbor_rate = pages / res["parse only: lexbor (for reference)"]["cpu"]
    full_rate = pages / res["parse only: wdb extraction (no SQLite)"]["cpu"]
    ing = one["pages"] / one["cpu"]
    print(f"  ingest(1 worker) / floor               {ing / floor_rate:.2f}")
    print(f"  ingest(1 worker) / parse only (scanner) {ing / parse_rate:.2f}")
    print(f"  ingest(1 worker) / lexbor parse only   {ing / lexbor_rate:.2f}")
    print(f"  ingest(1 worker) / wdb extraction      {ing / full_rate:.2f}")
    if len(runs) > 1:
        print(f"  wall-clock speed-up, {runs[1]['workers']} workers vs 1: {one['wall'] / runs[1]['wall']:.2f}x")
    per_page = one["db_bytes"] / one["pages"]
    basis = (one["text_bytes"] + one["media_bytes"]) / one["pages"]
    print(f"\ndatabase: {one['db_bytes'] / 1e6:.0f} MB, {per_page / 1e3:.1f} KB per page; visible text + media rows "
          f"{basis / 1e3:.1f} KB per page; ratio {per_page / basis:.2f}")
    print(json.dumps({"input_mb": round(mb), "pages": pages, "stages": res, "ingest": runs}, default=str),
          file=open(args.out / f"results-{args.size_mb}mb.json", "w"))


if __name__ == "__main__":
    main()
