"""What the page of one media item shows; later stages add highlights and sections here.

A stage registers functions in HIGHLIGHTS (spans of the page text to mark in the context) and
SECTIONS (titled lists of fields); the page renders whatever they return.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Callable

from markupsafe import Markup


@dataclass
class Highlight:
    start: int  # character offsets in pages.text
    end: int
    css: str  # class of the <mark>: alt-match, span, ...
    label: str  # tooltip


@dataclass
class Section:
    title: str
    fields: list[tuple] = field(default_factory=list)  # (name, value) pairs, or rows under `columns`
    columns: tuple[str, ...] | None = None  # set: a table with these headings, one row per field tuple


def _alt_match(conn: sqlite3.Connection, media_id: int) -> list[Highlight]:
    row = conn.execute("SELECT start, \"end\", kind, score FROM alt_matches WHERE media_id = ?", (media_id,)).fetchone()
    if not row:
        return []
    return [Highlight(row[0], row[1], "alt-match", f"alt text found here ({row[2]}, score {row[3]:.2f})")]


def _provenance(conn: sqlite3.Connection, media_id: int) -> Section | None:
    row = conn.execute(
        "SELECT a.name, a.location, p.record_id, p.\"offset\", p.length, p.inner, p.captured_at, p.http_status, "
        "p.content_type, p.charset FROM media m JOIN pages p ON p.id = m.page_id JOIN archives a "
        "ON a.id = p.archive_id WHERE m.id = ?", (media_id,)).fetchone()
    if not row:
        return None
    names = ["archive", "location", "WARC-Record-ID", "offset", "length", "inner offset", "captured",
             "HTTP status", "content type", "charset"]
    return Section("Page provenance", list(zip(names, row, strict=True)))


def _archived(conn: sqlite3.Connection, media_id: int) -> Section | None:
    row = conn.execute(
        "SELECT a.name, x.\"offset\", x.length, x.mime, x.bytes, x.width, x.height, x.sha256 FROM media m "
        "JOIN archived_media x ON x.url_key = m.url_key JOIN archives a ON a.id = x.archive_id "
        "WHERE m.id = ? ORDER BY x.id LIMIT 1", (media_id,)).fetchone()
    if not row:
        return None
    names = ["archive", "offset", "length", "mime", "bytes", "width", "height", "sha256"]
    return Section("Archived bytes", list(zip(names, row, strict=True)))


def _urls(conn: sqlite3.Connection, media_id: int) -> Section | None:
    rows = conn.execute("SELECT attr, raw, descriptor, url FROM media_urls WHERE media_id = ?", (media_id,)).fetchall()
    if not rows:
        return None
    return Section("URL attributes", [(f"{a}{' ' + d if d else ''}", f"{raw} → {url or 'skipped'}")
                                       for a, raw, d, url in rows])


def _span(conn: sqlite3.Connection, media_id: int) -> list[Highlight]:
    """The description span predicted by the latest span-extractor run that has one."""
    row = conn.execute("SELECT start, \"end\", confidence, run_id FROM spans WHERE media_id = ? AND start IS NOT NULL "
                       "ORDER BY run_id DESC LIMIT 1", (media_id,)).fetchone()
    if not row:
        return []
    return [Highlight(row[0], row[1], "span", f"predicted description (run {row[3]}, confidence {row[2]:.2f})")]


def _span_runs(conn: sqlite3.Connection, media_id: int) -> Section | None:
    rows = conn.execute("SELECT run_id, text, confidence, none_prob FROM spans WHERE media_id = ? ORDER BY run_id DESC",
                        (media_id,)).fetchall()
    if not rows:
        return None
    return Section("Predicted descriptions", [
        (f"run {r}", f"{t!r} (confidence {c:.2f})" if t is not None else f"no description (probability {n:.2f})")
        for r, t, c, n in rows])


def _fetch_status(conn: sqlite3.Connection, media_id: int) -> Section | None:
    """The images row of the item's URL: where its bytes came from, or why there are none."""
    row = conn.execute(
        "SELECT i.status, i.http_status, i.error, i.mime, i.bytes, i.source, i.url, i.width, i.height, i.attempts, "
        "i.fetched_at FROM media m JOIN images i ON i.url_key = m.url_key WHERE m.id = ?", (media_id,)).fetchone()
    if not row:
        return None
    names = ["status", "HTTP status", "error", "mime", "size (bytes)", "source", "URL fetched", "width", "height",
             "attempts", "fetched at"]
    return Section("Fetch status", list(zip(names, row, strict=True)))


def _clip_scores(conn: sqlite3.Connection, media_id: int) -> Section | None:
    rows = conn.execute(
        "SELECT k.name, k.pretrained, c.text_source, c.score FROM clip_scores c JOIN clip_models k "
        "ON k.id = c.model_id WHERE c.media_id = ? ORDER BY k.id, c.text_source", (media_id,)).fetchall()
    if not rows:
        return None
    return Section("CLIP scores", [(n, p, t, f"{s:.4f}") for n, p, t, s in rows],
                   columns=("model", "pretrained", "text source", "score"))



def _signals(conn: sqlite3.Connection, media_id: int) -> Section | None:
    """Curation signals of the item's texts and of its image (`wdb signals`)."""
    rows = conn.execute(
        "SELECT source, signal, version, value, label FROM text_signals WHERE media_id = ?1 UNION ALL "
        "SELECT 'image', s.signal, s.version, s.value, s.label FROM image_signals s JOIN media m "
        "ON m.url_key = s.url_key WHERE m.id = ?1 ORDER BY 1, 2, 3", (media_id,)).fetchall()
    if not rows:
        return None
    return Section("Signals", [(src, sig, ver, round(v, 4) if isinstance(v, float) else v, lab)
                               for src, sig, ver, v, lab in rows],
                   ("of", "signal", "version", "value", "label"))


def _duplicates(conn: sqlite3.Connection, media_id: int) -> Section | None:
    """The duplicate groups (`wdb dedup`) the item or its image belongs to, with the other members
    as thumbnails (at most 12 a group)."""
    groups = conn.execute(
        "SELECT g.kind, g.method, g.version, g.group_id, g.keep FROM dup_groups g JOIN media m ON m.id = ?1 "
        "WHERE (g.kind = 'media' AND g.key = CAST(m.id AS TEXT)) OR (g.kind = 'image' AND g.key = m.url_key) "
        "ORDER BY g.method, g.version", (media_id,)).fetchall()
    rows = []
    for kind, method, version, group_id, keep in groups:
        members = conn.execute(
            "SELECT g.key, g.keep FROM dup_groups g WHERE g.method = ? AND g.version = ? AND g.group_id = ? "
            "AND g.kind = ? ORDER BY g.keep DESC, g.key LIMIT 13", (method, version, group_id, kind)).fetchall()
        size = conn.execute("SELECT count(*) FROM dup_groups WHERE method = ? AND version = ? AND group_id = ? "
                            "AND kind = ?", (method, version, group_id, kind)).fetchone()[0]
        thumbs = []
        for key, kept in members[:12]:
            mid = int(key) if kind == "media" else conn.execute(
                "SELECT min(id) FROM media WHERE url_key = ?", (key,)).fetchone()[0]
            if mid is None or mid == media_id:
                continue
            thumbs.append(Markup('<a href="/-/wdb/media/{0}"><img src="/-/wdb/thumb/{0}" alt="" loading="lazy" '
                                 'style="max-width:96px;max-height:72px{1}"></a>').format(
                int(mid), ";outline:2px solid #2a2" if kept else ""))
        rows.append((method, version, size, "kept" if keep else "duplicate", Markup(" ").join(thumbs)))
    if not rows:
        return None
    return Section("Duplicate groups", rows, ("method", "version", "members", "this item", "other members"))

HIGHLIGHTS: list[Callable[[sqlite3.Connection, int], list[Highlight]]] = [_alt_match, _span]
SECTIONS: list[Callable[[sqlite3.Connection, int], Section | None]] = [
    _clip_scores, _span_runs, _fetch_status, _archived, _urls, _provenance, _signals, _duplicates]


def segments(text: str, lo: int, hi: int, marks: list[Highlight]) -> list[tuple[str, Highlight | None]]:
    """Cut text[lo:hi] into (piece, highlight or None), marks clipped to the window."""
    inside = sorted((h for h in marks if h.end > lo and h.start < hi), key=lambda h: h.start)
    out: list[tuple[str, Highlight | None]] = []
    at = lo
    for h in inside:
        s, e = max(h.start, at), min(h.end, hi)
        if s >= e:
            continue
        if s > at:
            out.append((text[at:s], None))
        out.append((text[s:e], h))
        at = e
    if at < hi:
        out.append((text[at:hi], None))
    return out


def media_context(conn: sqlite3.Connection, media_id: int) -> dict | None:
    row = conn.execute(
        "SELECT m.id, m.kind, m.tag, m.url, m.alt, m.title, m.figcaption, m.width, m.height, m.pos, m.ctx_start, "
        "m.ctx_end, p.id, p.url, p.title, p.text, p.lang, (SELECT x.id FROM archived_media x "
        "WHERE x.url_key = m.url_key ORDER BY x.id LIMIT 1), (SELECT x.mime FROM archived_media x "
        "WHERE x.url_key = m.url_key ORDER BY x.id LIMIT 1) FROM media m JOIN pages p ON p.id = m.page_id "
        "WHERE m.id = ?", (media_id,)).fetchone()
    if row is None:
        return None
    (mid, kind, tag, url, alt, title, figcaption, width, height, pos, cs, ce, page_id, page_url, page_title,
     text, lang, archived_id, archived_mime) = row
    marks = [h for fn in HIGHLIGHTS for h in fn(conn, mid)]
    before = segments(text, cs, pos, marks) if pos is not None else []
    after = segments(text, pos, ce, marks) if pos is not None else []
    sections = [s for fn in SECTIONS if (s := fn(conn, mid)) is not None]
    source = conn.execute("SELECT source FROM media_bytes WHERE media_id = ? ORDER BY source = 'archive' DESC LIMIT 1",
                          (mid,)).fetchone()
    return dict(
        id=mid, kind=kind, tag=tag, url=url, alt=alt, title=title, figcaption=figcaption, width=width,
        height=height, page_id=page_id, page_url=page_url, page_title=page_title, lang=lang,
        archived_id=archived_id, archived_mime=archived_mime, before=before, after=after,
        marks=marks, sections=sections, bytes_source=source[0] if source else None,
    )
