"""`wdb show DB ITEM`: a media item with its page's WARC record re-read through its pointer.

The record is read again from where the page says it is (a local path, or an HTTP Range request
for a URL) and checked against what was ingested: its WARC-Record-ID and target URI, the sha256
of the page text extracted from it again against the sha256 of the stored text, the record's own
digest headers where it has them, and the item's archived bytes against their stored sha256.
"""
from __future__ import annotations

import base64
import hashlib
import json
import sqlite3

from ..errors import PointerMismatch, WdbError
from ..ingest import columns as C
from ..ingest.extract_record import Batch, Settings, process_record
from ..warc.payload import RangeNotServed, open_range, read_verified
from ..warc.reader import read_record

MAX_BLOCK = 64 << 20
_TEXT = C.PAGES.index("text") - 2  # Batch.pages rows start after id and archive_id


class NoSuchItem(WdbError):
    """No media item with that id."""


def _record(location: str, offset: int, length: int | None, inner: int):
    try:
        f = open_range(location, offset, length)
    except RangeNotServed as e:
        raise PointerMismatch(str(e)) from e
    with f:
        return read_record(f, offset, inner, max_block=MAX_BLOCK)


def _digest(header: str | None, data: bytes) -> str | None:
    """'match' / 'MISMATCH' for a WARC digest header (sha1/sha256, base32 or hex), None if absent."""
    if not header or ":" not in header:
        return None
    algo, _, value = header.strip().partition(":")
    algo = algo.lower().replace("-", "")
    if algo not in ("sha1", "sha256", "sha512", "md5"):
        return f"not checked ({algo})"
    d = hashlib.new(algo, data).digest()
    ok = value.strip().upper() in (base64.b32encode(d).decode().rstrip("="), d.hex().upper())
    return "match" if ok else "MISMATCH"


def _settings(conn: sqlite3.Connection, run_id: int | None) -> Settings:
    row = conn.execute("SELECT params FROM runs WHERE id = ?", (run_id,)).fetchone() if run_id else None
    try:
        p = json.loads(row[0]) if row else {}
    except ValueError:
        p = {}
    keys = ("context_words", "max_page_bytes", "max_text_chars", "max_record_bytes")
    return Settings(**{k: int(p[k]) for k in keys if isinstance(p, dict) and isinstance(p.get(k), int)})


def show(conn: sqlite3.Connection, media_id: int) -> dict:
    """Everything `wdb show` prints, with `checks` (name -> 'match' / 'MISMATCH' / a note) and
    `ok` (no mismatch)."""
    conn.row_factory = sqlite3.Row
    try:
        m = conn.execute("SELECT * FROM media WHERE id = ?", (media_id,)).fetchone()
        if m is None:
            raise NoSuchItem(f"no media item {media_id}")
        p = conn.execute("SELECT p.*, a.location, a.run_id AS archive_run FROM pages p JOIN archives a "
                         "ON a.id = p.archive_id WHERE p.id = ?", (m["page_id"],)).fetchone()
        ctx = conn.execute("SELECT text_before, text_after FROM media_context WHERE media_id = ?",
                           (media_id,)).fetchone()
        arch = conn.execute("SELECT location, \"offset\", length, inner, mime, bytes, sha256 FROM media_bytes "
                            "WHERE media_id = ? AND source = 'archive'", (media_id,)).fetchone()
    finally:
        conn.row_factory = None
    out = dict(item={k: m[k] for k in m.keys()},
               page=dict(id=p["id"], url=p["url"], title=p["title"], captured_at=p["captured_at"],
                         http_status=p["http_status"]),
               pointer=dict(location=p["location"], offset=p["offset"], length=p["length"], inner=p["inner"],
                            record_id=p["record_id"]),
               context=dict(before=ctx[0] if ctx else None, after=ctx[1] if ctx else None), checks={})
    checks = out["checks"]
    try:
        rec = _record(p["location"], p["offset"], p["length"], p["inner"])
    except (OSError, ValueError) as e:
        checks["record"] = f"MISMATCH: cannot re-read the record: {e}"
        out["ok"] = False
        return out
    out["headers"] = dict(rec.headers)
    checks["record_id"] = "match" if rec.headers.get("warc-record-id") == p["record_id"] else "MISMATCH"
    url = rec.headers.get("warc-target-uri", "").strip().strip("<>")
    checks["target_uri"] = "match" if url == p["url"] else "MISMATCH"
    got = _digest(rec.headers.get("warc-block-digest"), rec.block) if not rec.capped else "not checked (capped)"
    if got:
        checks["warc-block-digest"] = got
    batch = Batch()
    process_record(rec, batch, _settings(conn, p["archive_run"]))
    stored = hashlib.sha256(p["text"].encode("utf-8", "surrogatepass")).hexdigest()
    again = hashlib.sha256(batch.pages[0][_TEXT].encode("utf-8", "surrogatepass")).hexdigest() if batch.pages else None
    out["text_sha256"] = stored
    checks["text_sha256"] = "match" if again == stored else "MISMATCH"
    if arch is not None:
        out["archived"] = dict(location=arch[0], offset=arch[1], length=arch[2], inner=arch[3], mime=arch[4],
                               bytes=arch[5], sha256=arch[6])
        try:
            read_verified(arch[0], arch[1], arch[2], arch[3], arch[6], cap=MAX_BLOCK)  # raises on another sha256
            checks["archived_sha256"] = "match" if arch[6] else "MISMATCH: no sha256 stored"
        except (PointerMismatch, OSError, ValueError) as e:
            checks["archived_sha256"] = f"MISMATCH: {e}"
    out["ok"] = not any(str(v).startswith("MISMATCH") for v in checks.values())
    return out


def render(d: dict) -> str:
    """The text `wdb show` prints."""
    it, pg, pt = d["item"], d["page"], d["pointer"]
    lines = [f"item {it['id']}: {it['kind']} <{it['tag']}> {it['url']}"]
    for k in ("alt", "title", "figcaption"):
        if it.get(k) is not None:
            lines.append(f"  {k}: {it[k]}")
    lines.append(f"page {pg['id']}: {pg['url']} (HTTP {pg['http_status']}, captured {pg['captured_at']})")
    if pg.get("title"):
        lines.append(f"  title: {pg['title']}")
    lines.append(f"record: {pt['location']} @{pt['offset']}" + (f" +{pt['inner']}" if pt["inner"] else "")
                 + f" length {pt['length']} {pt['record_id']}")
    for k, v in (d.get("headers") or {}).items():
        lines.append(f"  {k}: {v}")
    c = d["context"]
    if c["before"] is not None or c["after"] is not None:
        lines.append("context:")
        lines.append(f"  …{(c['before'] or '')[-600:]} [{it['kind']} {it['id']}] {(c['after'] or '')[:600]}…")
    else:
        lines.append("context: (not in the text flow)")
    if d.get("archived"):
        a = d["archived"]
        lines.append(f"archived bytes: {a['location']} @{a['offset']} {a['mime']} {a['bytes']} bytes sha256 {a['sha256']}")
    lines.append("checks: " + ", ".join(f"{k} {v}" for k, v in d["checks"].items()))
    return "\n".join(lines)
