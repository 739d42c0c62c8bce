"""`wdb report`: CLIP score distributions, the share kept at LAION's 0.28 and at a top-k % cutoff,
and how span confidence relates to CLIP score — as numbers (JSON) and PNG plots."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

LAION_CUTOFF = 0.28


def _quantiles(xs: list[float], qs=(0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
    s = sorted(xs)
    return {f"p{int(q * 100)}": s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] for q in qs}


def _spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None

    def ranks(x):
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        for rank, i in enumerate(order):
            r[i] = rank
        return r

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else None


def report(conn: sqlite3.Connection, out_dir: str | Path, top_percent: float = 30.0) -> dict:
    """Score distributions per model and text source as report.json and PNG plots; a runs row."""
    from ..stage import stage_run

    with stage_run(conn, "report", dict(out_dir=str(out_dir), top_percent=top_percent)) as run:
        res = _report(conn, out_dir, top_percent)
        run.counts.update(models=len(res["models"]), plots=len(res["plots"]))
    return res


def _report(conn: sqlite3.Connection, out_dir: str | Path, top_percent: float) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"laion_cutoff": LAION_CUTOFF, "top_percent": top_percent, "models": {}}
    plots = []
    for mid, name, pretrained in conn.execute("SELECT id, name, pretrained FROM clip_models ORDER BY id").fetchall():
        per: dict = {}
        for src, in conn.execute("SELECT DISTINCT text_source FROM clip_scores WHERE model_id = ?", (mid,)).fetchall():
            xs = [r[0] for r in conn.execute("SELECT score FROM clip_scores WHERE model_id = ? AND text_source = ?",
                                             (mid, src))]
            s = sorted(xs, reverse=True)
            k = max(1, int(round(len(s) * top_percent / 100)))
            per[src] = {
                "n": len(xs), "mean": sum(xs) / len(xs), **_quantiles(xs),
                "kept_at_laion_cutoff": sum(1 for x in xs if x >= LAION_CUTOFF) / len(xs),
                "top_k_threshold": s[k - 1], "kept_top_k": k / len(xs),
            }
        # span confidence against CLIP score (the thesis's confidence analysis)
        pairs = conn.execute(
            "SELECT s.confidence, c.score FROM clip_scores c JOIN spans s ON s.media_id = c.media_id "
            "AND s.run_id = (SELECT max(run_id) FROM spans WHERE media_id = c.media_id AND start IS NOT NULL) "
            "WHERE c.model_id = ? AND c.text_source = 'span'", (mid,)).fetchall()
        conf = None
        if pairs:
            bins = {}
            for c, sc in pairs:
                b = min(4, int(c * 5))
                bins.setdefault(b, []).append(sc)
            conf = {"n": len(pairs), "spearman": _spearman([p[0] for p in pairs], [p[1] for p in pairs]),
                    "mean_score_by_confidence": {f"{b / 5:.1f}-{(b + 1) / 5:.1f}": sum(v) / len(v)
                                                 for b, v in sorted(bins.items())}}
        key = f"{name}|{pretrained}" if pretrained else name
        result["models"][key] = {"sources": per, "span_confidence": conf}
        plots.extend(_plot(conn, mid, key, per, pairs, out))
    result["plots"] = [str(p) for p in plots]
    (out / "report.json").write_text(json.dumps(result, indent=2))
    return result


def _plot(conn, mid, key, per, pairs, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)
    fig, ax = plt.subplots(figsize=(7, 4))
    for src in per:
        xs = [r[0] for r in conn.execute("SELECT score FROM clip_scores WHERE model_id = ? AND text_source = ?",
                                         (mid, src))]
        ax.hist(xs, bins=40, alpha=0.5, label=f"{src} (n={len(xs)})")
    ax.axvline(LAION_CUTOFF, color="k", linestyle="--", label="LAION cutoff 0.28")
    ax.set_xlabel("CLIP cosine similarity")
    ax.set_ylabel("image-text pairs")
    ax.set_title(f"CLIP scores, {key}")
    ax.legend()
    path = out / f"clip-scores-{safe}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(path)
    if pairs:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter([p[0] for p in pairs], [p[1] for p in pairs], s=6, alpha=0.5)
        ax.set_xlabel("span confidence")
        ax.set_ylabel("CLIP score of the span")
        ax.set_title(f"span confidence vs CLIP score, {key}")
        path = out / f"span-confidence-{safe}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)
    return files
