"""Speed of wdb signals / wdb dedup, all figures and ratios from one run.

    python bench/curate_bench.py [--n 200000] [--baseline 100000] [--clip-baseline 50000] [--json OUT]

- language id: real texts (COCO captions, alt texts and paragraphs of the 129 readability pages),
  texts per CPU-second through wdb.curate.lang.detect, and through the whole `signals` stage;
- phash: n synthetic 64-bit hashes (uniform, plus planted near-duplicates at distance 1-5):
  multi-index hashing vs an all-pairs numpy popcount on `--baseline` hashes; and `dedup --by phash`
  end to end on a database of n images;
- CLIP: n synthetic 512-d float16 unit vectors, clustered like real embeddings (2,000 centres,
  within-cluster cosine ~0.5) with planted near-duplicates (cosine >= 0.95): inverted-file cells vs
  the exact blocked all-pairs matmul on `--clip-baseline` vectors (recall measured there).
All-pairs cost grows with n²: the baselines' 1M figures are extrapolated by n². The indexed
searches are not linear either (candidates grow as n²/2^21 per phash band; CLIP cells as n/1000,
their assignment as n·cells): measure them at 1M directly with
`--n 1000000 --baseline 0 --clip-baseline 0 --texts 0 --copies 0`.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from wdb.curate import lang, near  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def cpu(fn, *a, **k):
    t0, w0 = time.process_time(), time.perf_counter()
    out = fn(*a, **k)
    return out, time.process_time() - t0, time.perf_counter() - w0


def real_texts(limit: int) -> list[str]:
    texts = []
    ann = CORPUS / "coco-mini" / "annotations" / "captions_val2017.json"
    if ann.exists():
        texts += [a["caption"].strip() for a in json.loads(ann.read_text())["annotations"]]
    for src in sorted((CORPUS / "pages" / "readability" / "test-pages").glob("*/source.html")):
        html = src.read_text(errors="replace")
        texts += [m for m in re.findall(r'alt="([^"]{3,300})"', html)]
        texts += [re.sub(r"<[^>]+>", " ", p).strip()[:300] for p in re.findall(r"<p[^>]*>(.*?)</p>", html, re.S)]
    texts = [t for t in texts if t]
    out = []
    while len(out) < limit:
        out += texts
    return out[:limit]


def bench_lang(n: int) -> dict:
    texts = real_texts(n)
    lang.load()
    _, c, w = cpu(lambda: [lang.detect(t) for t in texts])
    return {"texts": len(texts), "cpu_s": round(c, 2), "texts_per_cpu_s": round(len(texts) / c)}


def bench_signals_stage(copies: int) -> dict:
    """`signals` lang + stats + page_lang over the 129 readability pages written `copies` times (as
    different sites) into a WARC and ingested: texts per CPU-second with the database in the loop."""
    from wdb.curate import SignalsSettings, signals
    from wdb.db import open_db
    from wdb.ingest import ingest
    from wdb.warc.write import HTTP_RESPONSE, gz, warc_record

    pages = sorted((CORPUS / "pages" / "readability" / "test-pages").glob("*/source.html"))
    with tempfile.TemporaryDirectory() as d:
        warc = Path(d) / "p.warc.gz"
        with open(warc, "wb") as f:
            for c in range(copies):
                for src in pages:
                    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + src.read_bytes()
                    f.write(gz(warc_record("response", f"https://{src.parent.name}-{c}.example.org/", block,
                                           HTTP_RESPONSE)))
        conn = open_db(Path(d) / "s.db")
        ingest(conn, [str(warc)], workers=0, progress=False, quiet=True)
        res, c, w = cpu(signals, conn, SignalsSettings(families=("lang",)), progress=False)
        res2, c2, w2 = cpu(signals, conn, SignalsSettings(families=("stats",)), progress=False)
        res3, c3, w3 = cpu(signals, conn, SignalsSettings(families=("page_lang",)), progress=False)
        again, c4, _ = cpu(signals, conn, SignalsSettings(families=("lang", "stats", "page_lang")), progress=False)
        conn.close()
    n = res.counts.get("lang_texts", 0)
    return {"texts": n, "lang_cpu_s": round(c, 2), "lang_texts_per_cpu_s": round(n / c),
            "stats_texts_per_cpu_s": round(res2.counts.get("stats_texts", 0) / c2),
            "pages": res3.counts.get("pages"), "page_lang_pages_per_cpu_s": round(res3.counts.get("pages", 0) / c3),
            "second_run_counts": again.counts, "second_run_cpu_s": round(c4, 2)}


def planted_hashes(n: int, rng) -> np.ndarray:
    h = rng.integers(0, 2 ** 63, size=n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + \
        rng.integers(0, 2, size=n).astype(np.uint64)
    k = n // 100
    src, dst = rng.choice(n, k, replace=False), rng.choice(n, k, replace=False)
    flips = np.zeros(k, np.uint64)
    for _ in range(5):
        flips |= np.uint64(1) << rng.integers(0, 64, k).astype(np.uint64)
    h[dst] = h[src] ^ flips
    return h


def allpairs_phash(h: np.ndarray, max_dist: int = 5, block: int = 1024):
    pi, pj = [], []
    for a in range(0, len(h), block):
        d = np.bitwise_count(h[a:a + block, None] ^ h[None, a:])
        r, c = np.nonzero(d <= max_dist)
        k = c > r
        pi.append(r[k] + a)
        pj.append(c[k] + a)
    return np.concatenate(pi), np.concatenate(pj)


def partition(n, i, j) -> list:
    lab = near.components(n, i, j)
    groups: dict = {}
    for k, x in enumerate(lab.tolist()):
        groups.setdefault(x, []).append(k)
    return sorted(g for g in groups.values() if len(g) > 1)


def bench_phash(n: int, baseline: int, rng) -> dict:
    h = planted_hashes(n, rng)
    (i, j), c_n, _ = cpu(near.phash_pairs, h)
    if not baseline:
        return {"n": n, "mih_cpu_s": round(c_n, 2), "pairs": len(i)}
    hb = h[:baseline]
    (ib, jb), c_b, _ = cpu(near.phash_pairs, hb)
    (pi, pj), c_all, _ = cpu(allpairs_phash, hb)
    return {"n": n, "mih_cpu_s": round(c_n, 2), "pairs": len(i), "baseline_n": baseline,
            "mih_cpu_s_at_baseline": round(c_b, 3), "allpairs_cpu_s_at_baseline": round(c_all, 2),
            "allpairs_pairs": len(pi), "same_groups_as_allpairs": partition(baseline, ib, jb) == partition(baseline, pi, pj),
            "speedup_at_baseline": round(c_all / max(c_b, 1e-9), 1),
            "allpairs_1M_extrapolated_s": round(c_all * (1e6 / baseline) ** 2)}


def bench_phash_db(n: int, rng) -> dict:
    """dedup --by phash end to end: n images rows in a fresh database."""
    from wdb.curate import DedupSettings, dedup
    from wdb.db import open_db

    h = planted_hashes(n, rng)
    with tempfile.TemporaryDirectory() as d:
        conn = open_db(Path(d) / "b.db")
        with conn:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO images (url_key, url, status, width, height, phash) VALUES (?,?,?,?,?,?)",
                             ((f"h.example/{k}", f"http://h.example/{k}", "ok", 100, 100, f"{int(x):016x}")
                              for k, x in enumerate(h)))
        res, c, w = cpu(dedup, conn, DedupSettings(by=("phash",), repeats=False), progress=False)
        conn.close()
    return {"n": n, "cpu_s": round(c, 2), "wall_s": round(w, 2), "groups": res.counts.get("phash_groups"),
            "members": res.counts.get("phash_members")}


def planted_embeddings(n: int, rng, d: int = 512, centres: int = 2000) -> np.ndarray:
    c = rng.standard_normal((centres, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centres, n)] + rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d)
    k = n // 100
    src, dst = rng.choice(n, k, replace=False), rng.choice(n, k, replace=False)
    x[dst] = x[src] + 0.15 * rng.standard_normal((k, d)).astype(np.float32) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16)


def bench_clip(n: int, baseline: int, rng, threshold: float = 0.95) -> dict:
    e = planted_embeddings(n, rng)
    (i, j), c_n, w_n = cpu(near.clip_pairs, e, threshold)
    if not baseline:
        return {"n": n, "cells_cpu_s": round(c_n, 1), "cells_wall_s": round(w_n, 1), "pairs": len(i),
                "planted": n // 100}
    eb = e[:baseline]
    (ei, ej), c_all, w_all = cpu(near.clip_pairs_exact, eb, threshold)
    (ai, aj), c_b, w_b = cpu(near.clip_pairs, eb, threshold, exact_max=0)
    exact, approx = set(zip(ei.tolist(), ej.tolist())), set(zip(ai.tolist(), aj.tolist()))
    recall = len(exact & approx) / max(len(exact), 1)
    return {"n": n, "cells_cpu_s": round(c_n, 1), "cells_wall_s": round(w_n, 1), "pairs": len(i),
            "baseline_n": baseline, "exact_cpu_s_at_baseline": round(c_all, 1),
            "exact_wall_s_at_baseline": round(w_all, 1), "cells_cpu_s_at_baseline": round(c_b, 2),
            "cells_wall_s_at_baseline": round(w_b, 2), "exact_pairs_at_baseline": len(exact),
            "recall_at_baseline": round(recall, 4), "false_pairs": len(approx - exact),
            "exact_1M_extrapolated_wall_s": round(w_all * (1e6 / baseline) ** 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--baseline", type=int, default=100_000, help="0: no phash baseline")
    ap.add_argument("--clip-baseline", type=int, default=50_000, help="0: no CLIP baseline")
    ap.add_argument("--texts", type=int, default=100_000, help="0: no language-id figure")
    ap.add_argument("--copies", type=int, default=10, help="readability pages written this many times (0: skip)")
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    out = {}
    if a.texts:
        out["lang"] = bench_lang(a.texts)
        print("lang", out["lang"], flush=True)
    if a.copies:
        out["signals_stage"] = bench_signals_stage(a.copies)
        print("signals_stage", out["signals_stage"], flush=True)
    out["phash"] = bench_phash(a.n, a.baseline, rng)
    print("phash", out["phash"], flush=True)
    out["phash_db"] = bench_phash_db(a.n, rng)
    print("phash_db", out["phash_db"], flush=True)
    out["clip"] = bench_clip(a.n, a.clip_baseline, rng)
    print("clip", out["clip"], flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
