"""`wdb sd report`: base vs fine-tuned per prompt kind and level (CLIP score, compliance, group rank,
complexity, diversity, ratings), as report.json and PNG plots, with an image grid per prompt group
(rows: models, columns: levels, the first seed)."""
from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..db import side_dir
from ..stage import Result, stage_run
from ..warc.payload import read_verified
from .models import SdError
from .prompts import prompt_set_id

METRICS = ("clip_score", "compliance", "group_rank", "bytes_per_pixel", "edge_density", "entropy")
ASPECTS = ("conformity", "quality", "detail", "realism", "aesthetics")
THUMB = 128


@dataclass
class ReportSettings:
    prompts: str = "thesis"
    out: str | None = None  # default: <db>.wdb/sd/report-<run id>/
    clip_model_id: int | None = None  # default: the newest CLIP model that scored generated images
    grids: bool = True
    max_grids: int = 200


def model_label(base: str, sd_run_id: int) -> str:
    return f"base {Path(base).name or base}" if sd_run_id == 0 else f"run {sd_run_id}"


def summary(conn: sqlite3.Connection, set_id: int, mid: int) -> dict:
    """The report's numbers: per model, kind and level."""
    rows = conn.execute(f"""
        SELECT i.base, i.sd_run_id, p.kind, p.level, count(DISTINCT i.id), avg(p.words), avg(p.content_words),
               {', '.join(f"avg(CASE WHEN c.metric = '{m}' THEN c.value END)" for m in METRICS)}
        FROM sd_images i JOIN sd_prompts p ON p.id = i.prompt_id
        LEFT JOIN sd_scores c ON c.image_id = i.id AND c.clip_model_id IN (0, ?) AND c.element = ''
        WHERE p.set_id = ? GROUP BY 1, 2, 3, 4 ORDER BY 2, 3, 4""", (mid, set_id)).fetchall()
    div = {tuple(r[:4]): r[4] for r in conn.execute("""
        SELECT i.base, i.sd_run_id, p.kind, p.level, avg(d.value) FROM sd_set_scores d
        JOIN sd_prompts p ON d.scope = 'prompt:' || p.id
        JOIN (SELECT DISTINCT base, sd_run_id, config, prompt_id FROM sd_images) i
          ON i.prompt_id = p.id AND i.base = d.base AND i.sd_run_id = d.sd_run_id AND i.config = d.config
        WHERE d.metric = 'diversity' AND d.clip_model_id = ? AND p.set_id = ? GROUP BY 1, 2, 3, 4""", (mid, set_id))}
    ratings: dict[tuple, dict] = {}
    for base, rid, kind, level, aspect, mean, n in conn.execute("""
        SELECT i.base, i.sd_run_id, p.kind, p.level, r.aspect, avg(r.value), count(*) FROM sd_ratings r
        JOIN sd_images i ON i.id = r.image_id JOIN sd_prompts p ON p.id = i.prompt_id
        WHERE p.set_id = ? GROUP BY 1, 2, 3, 4, 5""", (set_id,)):
        ratings.setdefault((base, rid, kind, level), {})[aspect] = {"mean": mean, "n": n}
    out = []
    for base, rid, kind, level, n, words, content, *vals in rows:
        k = (base, rid, kind, level)
        out.append({"model": model_label(base, rid), "base": base, "sd_run_id": rid, "kind": kind, "level": level,
                    "images": n, "words": words, "content_words": content, **dict(zip(METRICS, vals, strict=True)),
                    "diversity": div.get(k), "ratings": ratings.get(k, {})})
    frechet = [{"model": model_label(b, r), "base": b, "sd_run_id": r, "config": json.loads(c), "reference": ref,
                "n": n, "value": v} for b, r, c, ref, n, v in conn.execute(
        "SELECT base, sd_run_id, config, reference, n, value FROM sd_set_scores WHERE metric = 'frechet' "
        "AND clip_model_id = ? AND scope = ? ORDER BY sd_run_id", (mid, f"set:{set_id}"))]
    losses = {}
    for sid, step, loss in conn.execute("SELECT sd_run_id, step, loss FROM sd_losses ORDER BY sd_run_id, step"):
        losses.setdefault(str(sid), []).append([step, loss])
    return {"rows": out, "frechet": frechet, "losses": losses}


def report(conn: sqlite3.Connection, s: ReportSettings) -> Result:
    """Write report.json, the plots and the grids; counts: rows, plots, grids."""
    with stage_run(conn, "sd report", s) as run:
        set_id = prompt_set_id(conn, s.prompts)
        mid = s.clip_model_id
        if mid is None:
            row = conn.execute("SELECT max(clip_model_id) FROM sd_scores WHERE metric = 'clip_score'").fetchone()
            mid = row[0] or 0
        out = Path(s.out) if s.out else side_dir(conn, "sd") / f"report-{run.id}"
        out.mkdir(parents=True, exist_ok=True)
        data = {"prompt_set": s.prompts, "clip_model_id": mid, **summary(conn, set_id, mid)}
        if not data["rows"]:
            raise SdError(f"no generated images for prompt set {s.prompts}: run `wdb sd generate` first")
        (out / "report.json").write_text(json.dumps(data, indent=2))
        run.counts.update(rows=len(data["rows"]), plots=_plots(data, out),
                          grids=_grids(conn, set_id, out / "grids", s.max_grids) if s.grids else 0, out=str(out))
    return run.result()


def _plots(data: dict, out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, path: Path) -> None:
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)

    rows = data["rows"]
    series = sorted({(r["model"], r["kind"]) for r in rows})
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, metric in zip(axes.flat, (*METRICS, "diversity", "content_words"), strict=True):
        for model, kind in series:
            pts = [(r["level"], r[metric]) for r in rows if r["model"] == model and r["kind"] == kind
                   and r[metric] is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{model} / {kind}")
        ax.set_title(metric)
        ax.set_xlabel("prompt level")
    axes.flat[0].legend(fontsize=7)
    save(fig, out / "metrics_by_level.png")
    n = 1
    models = sorted({(r["model"], r["kind"]) for r in rows if r["ratings"]})
    if models:
        fig, ax = plt.subplots(figsize=(10, 4))
        width = 0.8 / len(models)
        for j, (model, kind) in enumerate(models):
            means = []
            for a in ASPECTS:
                vals = [(r["ratings"][a]["mean"], r["ratings"][a]["n"]) for r in rows
                        if r["model"] == model and r["kind"] == kind and a in r["ratings"]]
                total = sum(k for _, k in vals)
                means.append(sum(m * k for m, k in vals) / total if total else 0)
            ax.bar([i + j * width for i in range(len(ASPECTS))], means, width, label=f"{model} / {kind}")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(ASPECTS))], ASPECTS)
        ax.set_ylim(0, 5)
        ax.set_title("manual ratings (0-5)")
        ax.legend(fontsize=7)
        save(fig, out / "ratings.png")
        n += 1
    if data["losses"]:
        fig, ax = plt.subplots(figsize=(8, 4))
        for sid, pts in data["losses"].items():
            ax.plot(*zip(*pts, strict=True), label=f"run {sid}")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
        save(fig, out / "loss.png")
        n += 1
    return n


def _grids(conn, set_id: int, out: Path, max_grids: int) -> int:
    """One PNG per (kind, group): a row per model, a column per level, each the image of the lowest seed."""
    from PIL import Image, ImageDraw

    out.mkdir(parents=True, exist_ok=True)
    cells: dict[tuple, dict] = {}
    for kind, grp, level, base, rid, loc, off, length, inner, sha in conn.execute("""
        SELECT p.kind, p.grp, p.level, i.base, i.sd_run_id, i.location, i."offset", i.length, i.inner, i.sha256
        FROM sd_images i JOIN sd_prompts p ON p.id = i.prompt_id
        WHERE p.set_id = ? AND i.seed = (SELECT min(j.seed) FROM sd_images j WHERE j.prompt_id = i.prompt_id
                                          AND j.base = i.base AND j.sd_run_id = i.sd_run_id AND j.config = i.config)
        ORDER BY p.kind, p.grp, i.sd_run_id, p.level, i.id""", (set_id,)):
        cells.setdefault((kind, grp), {}).setdefault((base, rid), {}).setdefault(level, (loc, off, length, inner, sha))
    n = 0
    for (kind, grp), by_model in list(cells.items())[:max_grids]:
        levels = sorted({lv for m in by_model.values() for lv in m})
        grid = Image.new("RGB", (THUMB * len(levels) + 110, THUMB * len(by_model)), "white")
        draw = ImageDraw.Draw(grid)
        for y, ((base, rid), imgs) in enumerate(sorted(by_model.items(), key=lambda kv: kv[0][1])):
            draw.text((4, y * THUMB + THUMB // 2), model_label(base, rid)[:16], fill="black")
            for x, lv in enumerate(levels):
                if lv in imgs:
                    try:
                        im = Image.open(io.BytesIO(read_verified(*imgs[lv]))).convert("RGB")
                    except Exception:  # noqa: BLE001 - a cell that cannot be read stays blank
                        continue
                    grid.paste(im.resize((THUMB, THUMB)), (110 + x * THUMB, y * THUMB))
        grid.save(out / f"{kind}-{grp:03d}.png")
        n += 1
    return n
