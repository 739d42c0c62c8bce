"""`wdb export`: a recipe's pairs written in the formats trainers read, straight from the WARC pointers.

    export(conn, "datacomp_basic", {}, Path("out"), ExportSettings(format="webdataset")) -> Result

The recipe's pairs are read through `wdb.recipes.select`, checked (wdb.export.check: duplicates,
offsets, subset), planned into shards in the recipe's order, and each shard is written under
temporary names then renamed (wdb.export.shards). A re-run of the same export into the same folder
(same recipe, parameters, settings and database state) skips the shards already finished and
gives the same files byte for byte. Pairs whose bytes cannot be read are counted, listed in their
shard's stats file, the manifest and the `problems` table, and never stop the export. At the end,
`manifest.json`: recipe SQL, parameters, settings, the hash of the database state read, counts,
each file's sha256 and wdb's version. The database gets an `exports` row, one `export_items` row
per pair written and a `runs` row.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..db import now, transaction
from ..errors import BadParameter, WdbError
from ..db.query import check_params
from ..recipes import find, with_defaults
from ..stage import Result, progress_bar, stage_run
from .check import CheckFailed, Issue, check, verify
from .formats import FORMATS, Ctx
from .pairs import pair_uid, recipe_pairs, state_hash
from .shards import Outcome, commit_files, dumps, tmp_path

__all__ = ["CheckFailed", "ExportSettings", "FORMATS", "check", "export", "pair_uid"]

PLAN_FILE = ".wdb-export.json"
MANIFEST = "manifest.json"
MAX_LISTED = 1000


class ExportExists(WdbError):
    """The output folder holds another export (other recipe, parameters, settings or database state)."""


@dataclass
class ExportSettings:
    format: str = "webdataset"
    shard_size: int = 10_000          # pairs per shard (page formats: whole pages up to this many pairs)
    resize: int | None = None         # shorter side to this many pixels, keeping the ratio (webdataset, tar-in-tar)
    max_images: int | None = 5        # interleaved: images per document (Flamingo kept <= 5)
    images: str = "url"               # interleaved: url | embed
    verify: bool = True               # formats that do not write the bytes still read and verify each pointer
    superset: str | None = None       # recipe name/path or export:ID the pairs must be a subset of
    first_of_duplicates: bool = False  # keep the first of pairs sharing a uid instead of refusing


def _shape(s: ExportSettings) -> dict:
    """The settings that change what is written."""
    keep = ("format", "shard_size", "resize", "max_images", "images", "verify", "first_of_duplicates")
    return {k: v for k, v in dataclasses.asdict(s).items() if k in keep}


class _Killer:
    """Crash injection for the resume tests: SIGKILL after N pairs (mid-shard) or N committed shards."""

    def __init__(self):
        self.after_pairs = int(os.environ.get("WDB_EXPORT_KILL_AFTER_PAIRS", "0") or 0)
        self.after_shards = int(os.environ.get("WDB_EXPORT_KILL_AFTER_SHARDS", "0") or 0)
        self.pairs = self.shards = 0

    def pair(self) -> None:
        self.pairs += 1
        if self.after_pairs and self.pairs >= self.after_pairs:
            os.kill(os.getpid(), signal.SIGKILL)

    def shard(self) -> None:  # after the rename, before the database knows
        self.shards += 1
        if self.after_shards and self.shards >= self.after_shards:
            os.kill(os.getpid(), signal.SIGKILL)


def _export_row(conn, recipe_ref: str, recipe_sha: str, params: dict, s: ExportSettings, out: Path,
                shash: str, run_id: int) -> int:
    with transaction(conn):
        r = conn.execute("SELECT id FROM exports WHERE out = ? AND recipe_sha256 = ? AND params = ? AND format = ? "
                         "AND state_hash = ? ORDER BY id DESC LIMIT 1",
                         (str(out), recipe_sha, json.dumps(params, sort_keys=True), s.format, shash)).fetchone()
        if r:
            conn.execute("UPDATE exports SET status = 'running', run_id = ?, finished = NULL WHERE id = ?",
                         (run_id, r[0]))
            return r[0]
        return conn.execute(
            "INSERT INTO exports (recipe, recipe_sha256, params, format, out, state_hash, status, run_id, created) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            (recipe_ref, recipe_sha, json.dumps(params, sort_keys=True), s.format, str(out), shash, run_id,
             now())).lastrowid


def _record(conn, export_id: int, run_id: int, outcome: Outcome, shard_file: str) -> None:
    """export_items for the pairs a shard holds and a problems row per pair it could not write (once)."""
    with transaction(conn):
        known = conn.execute("SELECT 1 FROM export_items WHERE export_id = ? AND shard = ? LIMIT 1",
                             (export_id, shard_file)).fetchone()
        if not known and outcome.failures:  # a shard of failures only: its problem rows say it was recorded
            f = outcome.failures[0]
            known = conn.execute("SELECT 1 FROM problems WHERE kind = ? AND message LIKE ? LIMIT 1",
                                 (f"export_{f.kind}", f"export {export_id} pair {f.pair.index} %")).fetchone()
        if known:
            return
        conn.executemany("INSERT OR IGNORE INTO export_items (export_id, uid, media_id, text_source, shard) "
                         "VALUES (?, ?, ?, ?, ?)",
                         [(export_id, p.uid, p.media_id, p.text_source, shard_file) for p in outcome.written])
        conn.executemany("INSERT INTO problems (run_id, url, kind, message) VALUES (?, ?, ?, ?)",
                         [(run_id, f.pair.url, f"export_{f.kind}", f"export {export_id} pair {f.pair.index} "
                           f"(media {f.pair.media_id}, uid {f.pair.uid}): {f.message}"[:1000])
                          for f in outcome.failures])


def _load_outcome(fmt, shard, out: Path) -> Outcome:
    """The outcome of a finished shard, from its stats file."""
    from .shards import Failure

    stats = json.loads((out / fmt.files(shard)[-1]).read_text())
    by_index = {p.index: p for p in shard.pairs}
    return Outcome(shard, [Failure(by_index[f["index"]], f["kind"], f["message"]) for f in stats["failures"]
                           if f["index"] in by_index])


def _lock(out: Path) -> int:
    """An exclusive lock on the output folder for this export (released when the process ends)."""
    import fcntl

    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ExportExists(f"another wdb export is writing into {out}; wait for it to end") from None
    return fd


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def export(conn: sqlite3.Connection, recipe_ref: str, params: dict, out: Path | str, s: ExportSettings,
           superset_params: dict | None = None, progress: bool = False) -> Result:
    """Write the recipe's pairs into `out` in `s.format`; resumable; see the module docstring."""
    if s.format not in FORMATS:
        raise BadParameter(f"unknown format {s.format!r}; one of {', '.join(FORMATS)}")
    if s.shard_size < 1 or (s.resize is not None and s.resize < 1) or s.images not in ("url", "embed"):
        raise BadParameter("--shard-size and --resize must be positive, --images url or embed")
    recipe = find(recipe_ref)
    # the recipe's defaults, then typed as it declares them: the manifest and the state hash hold these
    params = check_params(recipe, with_defaults(recipe, params))
    recipe_sha = hashlib.sha256(recipe.sql.encode()).hexdigest()
    out = Path(out).resolve()
    fmt = FORMATS[s.format]
    with stage_run(conn, "export", {**dataclasses.asdict(s), "recipe": recipe_ref, "params": params,
                                    "out": str(out)}) as run:
        pairs = recipe_pairs(conn, recipe, params)
        run.counts["selected"] = len(pairs)
        issues = check(conn, recipe, params, s.superset, superset_params, pointers=False, pairs=pairs).issues
        dropped: list[Issue] = []
        if s.first_of_duplicates:
            dropped = [i for i in issues if i.kind == "duplicate_uid"]
            issues = [i for i in issues if i.kind != "duplicate_uid"]
            gone = {i.index for i in dropped}
            pairs = [p for p in pairs if p.index not in gone]
        if issues:
            counts = Counter(i.kind for i in issues)
            raise CheckFailed(f"check failed, nothing written: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}"
                              f"; first: {issues[0].line()} (`wdb check` lists them all"
                              + ("; --first-of-duplicates keeps the first of each uid" if counts["duplicate_uid"]
                                 else "") + ")")
        shash = state_hash(pairs, recipe_sha, params)
        plan = {"format": s.format, "settings": _shape(s), "recipe": recipe.name, "recipe_sha256": recipe_sha,
                "params": params, "state_hash": shash, "wdb_version": __version__}
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
        try:
            outcomes = _locked(conn, fmt, pairs, dropped, out, s, plan, recipe, recipe_ref, params, run, progress)
        finally:
            os.close(lock)
        run.counts.update(written=sum(len(o.written) for o in outcomes), shards=len(outcomes),
                          failed=sum(len(o.failures) for o in outcomes), duplicates_dropped=len(dropped))
    return run.result()


def _locked(conn, fmt, pairs, dropped, out: Path, s: ExportSettings, plan: dict, recipe, recipe_ref: str,
            params: dict, run, progress: bool) -> list[Outcome]:
    """The export once its folder is locked: the plan file, the exports row, the shards, the manifest."""
    pf = out / PLAN_FILE
    if pf.exists() and json.loads(pf.read_text()) != plan:
        raise ExportExists(f"{out} holds another export (other recipe, parameters, settings or database "
                           "state); export into a new folder or remove it")
    if not pf.exists():
        if any(out.iterdir()):
            raise ExportExists(f"{out} is not empty and holds no wdb export; export into a new or empty folder")
        tmp_path(pf).write_bytes(dumps(plan))
        commit_files(out, [PLAN_FILE])
    export_id = _export_row(conn, recipe_ref, plan["recipe_sha256"], params, s, out, plan["state_hash"], run.id)
    run.counts["export_id"] = export_id
    try:
        outcomes = _write(conn, fmt, pairs, out, s, export_id, run, progress)
        _finish(conn, fmt, out, plan, recipe, outcomes, dropped, export_id, len(pairs) + len(dropped))
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        try:
            with transaction(conn):
                conn.execute("UPDATE exports SET status = ? WHERE id = ?", (status, export_id))
        except sqlite3.Error:
            pass  # disk full: the row stays 'running'; a re-run takes it over
        raise
    return outcomes


def _write(conn, fmt, pairs, out: Path, s: ExportSettings, export_id: int, run, progress: bool) -> list[Outcome]:
    killer = _Killer()
    bar = progress_bar(progress, len(pairs), "export", "pair")

    def tick():
        bar.update()
        killer.pair()

    def page_text(page_id: int) -> str:
        return conn.execute("SELECT text FROM pages WHERE id = ?", (page_id,)).fetchone()[0]

    ctx = Ctx(conn, s, verify, page_text, tick)
    outcomes = []
    try:
        for shard in fmt.plan(pairs, s):
            names = fmt.files(shard)
            if (out / names[-1]).exists():
                outcome = _load_outcome(fmt, shard, out)
                run.add("shards_kept")
                bar.update(len(shard.pairs))
            else:
                outcome = fmt.write(shard, out, ctx)
                commit_files(out, names)
                run.add("shards_written")
                killer.shard()
            _record(conn, export_id, run.id, outcome, names[0])
            outcomes.append(outcome)
    finally:
        bar.close()
    return outcomes


def _finish(conn, fmt, out: Path, plan: dict, recipe, outcomes: list[Outcome], dropped: list[Issue],
            export_id: int, selected: int) -> None:
    tops = fmt.finish(out, outcomes)
    for name, data in tops.items():
        tmp_path(out / name).write_bytes(data)
    commit_files(out, list(tops))
    for stray in out.glob(".*.tmp"):
        stray.unlink()
    failures = [f for o in outcomes for f in o.failures]
    written = sum(len(o.written) for o in outcomes)
    kinds = Counter(f.kind for f in failures)
    kinds.update(i.kind for i in dropped)
    files = {}
    for o in outcomes:
        for n in fmt.files(o.shard):
            files[n] = _sha(out / n)
    for n in tops:
        files[n] = _sha(out / n)
    manifest = {
        **plan,
        "recipe_title": recipe.title, "recipe_sql": recipe.sql,
        "uid": "first 32 hex of sha256('wdb-pair-v1' \\x1f url_key \\x1f page URL \\x1f text_source \\x1f text)",
        "counts": {"selected": selected, "written": written, "failed": len(failures), "duplicates_dropped": len(dropped),
                   "by_reason": dict(sorted(kinds.items())), "shards": len(outcomes)},
        "shards": [{"name": o.shard.name, "pairs": len(o.shard.pairs), "written": len(o.written),
                    "files": fmt.files(o.shard)} for o in outcomes],
        "files": files,
        "failures": ([f.as_json() for f in failures] + [{"index": i.index, "uid": i.uid, "media_id": i.media_id,
                                                           "kind": i.kind, "message": i.message} for i in dropped]
                     )[:MAX_LISTED],
        "failures_listed": f"first {MAX_LISTED}; every one is in its shard's _stats.json and the problems table",
    }
    data = dumps(manifest)
    tmp_path(out / MANIFEST).write_bytes(data)
    commit_files(out, [MANIFEST])
    with transaction(conn):
        conn.execute("UPDATE exports SET status = 'done', pairs = ?, manifest_sha256 = ?, finished = ? WHERE id = ?",
                     (written, hashlib.sha256(data).hexdigest(), now(), export_id))

