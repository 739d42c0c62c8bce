"""The pairs of a recipe, with everything an export writes about them: uid, item, page, pointer, scores.

A pair's uid is 32 hex characters (128 bits, as DataComp's pools), the head of

    sha256("wdb-pair-v1" \\x1f url_key \\x1f page URL \\x1f text_source \\x1f text)

over the UTF-8 of the image's canonical URL key (media.url_key), the URL of the page it is on (the
capture's WARC-Target-URI), the text source (alt, span, figcaption, ...) and the text itself. None of
these are row ids, so the same pair has the same uid in every database that ingested it (two crawls
of one page, two machines), and a pair whose text changes (a new span prediction) is a new pair.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..db.query import QueryFile
from ..recipes import RECIPE_COLUMNS, select

UID_VERSION = "wdb-pair-v1"
BATCH = 500


def pair_uid(url_key: str, page_url: str, text_source: str, text: str | None) -> str:
    """The pair's 32-hex uid (see the module docstring)."""
    s = "\x1f".join((UID_VERSION, url_key or "", page_url or "", text_source or "", text or ""))
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def uid_halves(uid: str) -> tuple[int, int]:
    """DataComp's subset-file form of a uid: two unsigned 64-bit halves."""
    return int(uid[:16], 16), int(uid[16:32], 16)


@dataclass
class Pair:
    index: int                      # position in the recipe's order
    media_id: int
    text: str
    text_source: str
    extra: dict                     # the recipe's other columns
    uid: str = ""
    kind: str = ""
    url: str = ""
    url_key: str = ""
    seq: int = 0
    pos: int | None = None
    ctx_start: int | None = None
    ctx_end: int | None = None
    alt: str | None = None
    render_width: int | None = None
    render_height: int | None = None
    page_id: int = 0
    page_url: str = ""
    page_warc: str = ""
    page_offset: int = 0
    page_length: int | None = None
    text_len: int = 0
    source: str | None = None       # archive | web | None (no bytes known)
    location: str | None = None
    offset: int | None = None
    length: int | None = None
    inner: int = 0
    mime: str | None = None
    nbytes: int | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    scores: dict = field(default_factory=dict)   # "model/pretrained" -> score for this text source
    span: tuple | None = None       # text_source span: (start, end) of the current span in the page text

    @property
    def pointer(self) -> dict:
        return {"source": self.source, "location": self.location, "offset": self.offset, "length": self.length,
                "inner": self.inner}

    def score(self, model_name: str) -> float | None:
        """The score of the first model of that open_clip name (any pretrained tag), else None."""
        for k in sorted(self.scores):
            if k.split("/", 1)[0] == model_name:
                return self.scores[k]
        return None


_META = """
SELECT m.id, m.kind, m.url, m.url_key, m.seq, m.pos, m.ctx_start, m.ctx_end, m.alt, m.render_width,
       m.render_height, p.id, p.url, a.name, p."offset", p.length, length(p.text)
FROM media m JOIN pages p ON p.id = m.page_id JOIN archives a ON a.id = p.archive_id
WHERE m.id IN ({})"""
_BYTES = """SELECT media_id, source, location, "offset", length, inner, mime, bytes, sha256, width, height
FROM media_bytes WHERE media_id IN ({})"""
_SPANS = "SELECT media_id, start, \"end\" FROM current_spans WHERE media_id IN ({})"
_SCORES = """SELECT s.media_id, s.text_source, c.name, c.pretrained, s.score FROM clip_scores s
JOIN clip_models c ON c.id = s.model_id WHERE s.media_id IN ({})"""


def _chunks(xs: list, n: int) -> Iterator[list]:
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def recipe_pairs(conn: sqlite3.Connection, recipe: QueryFile, params: dict) -> list[Pair]:
    """Every row of the recipe as a Pair, in the recipe's order, with its item, page, pointer and scores."""
    cols, rows = select(conn, recipe, params)
    idx = {c: i for i, c in enumerate(cols)}
    others = [c for c in cols if c not in RECIPE_COLUMNS]
    pairs = []
    for n, r in enumerate(rows):
        pairs.append(Pair(n, int(r[idx["media_id"]]), r[idx["text"]] if r[idx["text"]] is not None else "",
                          str(r[idx["text_source"]]), {c: r[idx[c]] for c in others}))
    attach(conn, pairs)
    return pairs


def attach(conn: sqlite3.Connection, pairs: list[Pair]) -> None:
    """Fill in each pair's item, page, bytes pointer (view media_bytes), scores and uid."""
    ids = sorted({p.media_id for p in pairs})
    meta, ptr, scores, spans = {}, {}, {}, {}
    span_ids = sorted({p.media_id for p in pairs if p.text_source == "span"})
    for chunk in _chunks(ids, BATCH):
        marks = ",".join("?" * len(chunk))
        for r in conn.execute(_META.format(marks), chunk):
            meta[r[0]] = r
        for r in conn.execute(_BYTES.format(marks), chunk):
            ptr.setdefault(r[0], r)
        for mid, src, name, pre, score in conn.execute(_SCORES.format(marks), chunk):
            scores.setdefault((mid, src), {})[f"{name}/{pre}"] = score
    for chunk in _chunks(span_ids, BATCH):
        for mid, a, b in conn.execute(_SPANS.format(",".join("?" * len(chunk))), chunk):
            spans[mid] = (a, b)
    for p in pairs:
        m = meta.get(p.media_id)
        if m is None:
            continue  # a media_id the database does not hold: check() reports it
        (_, p.kind, p.url, p.url_key, p.seq, p.pos, p.ctx_start, p.ctx_end, p.alt, p.render_width, p.render_height,
         p.page_id, p.page_url, p.page_warc, p.page_offset, p.page_length, p.text_len) = m
        b = ptr.get(p.media_id)
        if b is not None:
            (_, p.source, p.location, p.offset, p.length, p.inner, p.mime, p.nbytes, p.sha256, p.width,
             p.height) = b
            p.inner = p.inner or 0
        p.scores = scores.get((p.media_id, p.text_source), {})
        if p.text_source == "span":
            p.span = spans.get(p.media_id)
        p.uid = pair_uid(p.url_key, p.page_url, p.text_source, p.text)


def state_hash(pairs: Iterable[Pair], recipe_sha: str, params: dict) -> str:
    """A hash of the database state an export reads: the recipe, its parameters, and per pair its uid,
    item position, page text length, payload sha256 and scores. Equal hashes: the same export."""
    h = hashlib.sha256()
    h.update(json.dumps({"recipe": recipe_sha, "params": params, "uid": UID_VERSION}, sort_keys=True).encode())
    for p in pairs:
        line = [p.uid, p.media_id, p.pos, p.text_len, p.sha256, p.width, p.height, p.mime,
                sorted(p.scores.items()), sorted((k, str(v)) for k, v in p.extra.items())]
        h.update(json.dumps(line, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()
