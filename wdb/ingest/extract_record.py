"""Turn archive records into rows (pure: records in, tuples out; no SQLite here)."""
from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass, field

from ..context import PageTokens, find_alt_page, windows
from ..html.charset import decode_html
from ..html.extract import extract
from ..html.urls import domain, url_key
from ..warc.http import parse_http_response
from ..warc.reader import Record

HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml+xhtml")
MEDIA_PREFIXES = ("image/", "audio/", "video/")
_SNIFF_HTML = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)", re.I | re.S)
_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"), (b"ID3", "audio/mpeg"), (b"OggS", "audio/ogg"), (b"FLV", "video/x-flv"),
    (b"\x1aE\xdf\xa3", "video/webm"),
]


@dataclass
class Settings:
    context_words: int = 256
    max_page_bytes: int = 5 << 20
    max_text_chars: int = 2_000_000
    max_record_bytes: int = 64 << 20


@dataclass
class Batch:
    """Rows produced from consecutive records, with local page numbers (the writer assigns ids)."""

    pages: list[tuple] = field(default_factory=list)
    media: list[tuple] = field(default_factory=list)
    media_urls: list[tuple] = field(default_factory=list)
    alt_matches: list[tuple] = field(default_factory=list)
    archived_media: list[tuple] = field(default_factory=list)
    problems: list[tuple] = field(default_factory=list)  # (offset, url, kind, message)
    records: int = 0
    text_bytes: int = 0
    skipped_urls: int = 0

    def size(self) -> int:
        return len(self.pages) + len(self.archived_media) + len(self.problems)


def _mime(ct: str | None) -> str:
    return (ct or "").split(";", 1)[0].strip().lower()


def _sniff(body: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if body.startswith(magic):
            if mime == "image/webp" and body[8:12] != b"WEBP":
                continue
            return mime
    if body[4:8] == b"ftyp":
        return "video/mp4"
    return None


def image_size(body: bytes) -> tuple[int | None, int | None]:
    """Width and height from the image header (Pillow reads only the header here)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(body)) as im:
                return im.size
    except Exception:  # noqa: BLE001 -- undecodable header: no size, not an error of the record
        return None, None


def process_record(rec: Record, batch: Batch, s: Settings) -> None:
    """Add the rows of one record to batch (pages, media, or problems)."""
    h = rec.headers
    rtype = rec.rec_type
    batch.records += 1
    if rtype not in ("response", "resource"):
        return
    target = h.get("warc-target-uri", "").strip().strip("<>")
    if not target:
        batch.problems.append((rec.offset, None, "no_target_uri", f"{rtype} record without WARC-Target-URI"))
        return
    if not target.lower().startswith(("http://", "https://")):
        return  # dns:, whois:, wget logs and the like
    flags = []
    if rec.short:
        flags.append("short")
        batch.problems.append((rec.offset, target, "short_record",
                               f"short record: {rec.block_len} of {rec.declared_len} declared bytes"))
    if rec.capped:
        flags.append("record_capped")
        batch.problems.append((rec.offset, target, "record_capped",
                               f"record block over {s.max_record_bytes} bytes; read capped"))
    for p in rec.problems:
        if not p.startswith("short record"):
            batch.problems.append((rec.offset, target, "record", p))
    if h.get("warc-truncated"):
        flags.append("truncated")
    complete = not (rec.short or rec.capped)
    if rtype == "response":
        pl = parse_http_response(rec.block, s.max_record_bytes, complete, html_cap=s.max_page_bytes)
        status, ctype, body = pl.status, pl.headers.get("content-type"), pl.body
        for p in pl.problems:
            batch.problems.append((rec.offset, target, "http", p))
        if pl.capped:
            flags.append("capped")
        content_lang = pl.headers.get("content-language")
    else:
        status, ctype, body, content_lang = None, h.get("content-type"), rec.block, None
    mime = _mime(ctype) or _mime(h.get("warc-identified-payload-type"))
    date = h.get("warc-date")
    rid = h.get("warc-record-id")
    if mime in HTML_TYPES or ((not mime or mime == "text/plain") and _SNIFF_HTML.match(body[:1024])):
        _page(rec, batch, s, target, rid, date, status, ctype, body, flags, content_lang)
        return
    sniffed = _sniff(body[:16]) if body else None
    if mime.startswith(MEDIA_PREFIXES) or (sniffed and mime in ("", "application/octet-stream", "text/plain")):
        kind_mime = mime if mime.startswith(MEDIA_PREFIXES) else sniffed
        w = hgt = None
        if kind_mime.startswith("image/") and body:
            w, hgt = image_size(body)
        batch.archived_media.append((
            rid, target, url_key(target), rec.offset, rec.length, rec.inner, date, status,
            kind_mime, len(body), hashlib.sha256(body).hexdigest() if body else None, w, hgt,
            ",".join(flags) or None,
        ))


def _page(rec, batch, s, url, rid, date, status, ctype, body, flags, content_lang) -> None:
    if len(body) > s.max_page_bytes:
        body = body[: s.max_page_bytes]
        if "capped" not in flags:
            flags.append("capped")
        batch.problems.append((rec.offset, url, "page_capped", f"page over {s.max_page_bytes} bytes; parsed the first part only"))
    html, charset, source = decode_html(body, ctype)
    page = extract(html, url, s.max_text_chars)
    if page.text_capped:
        flags.append("text_capped")
        batch.problems.append((rec.offset, url, "text_capped", f"visible text over {s.max_text_chars} characters; cut"))
    local = len(batch.pages)
    batch.skipped_urls += page.skipped_urls
    text = page.text
    batch.text_bytes += len(text)
    batch.pages.append((
        rid, url, domain(url), rec.offset, rec.length, rec.inner, date, status, ctype, charset, source,
        page.title, page.lang or content_lang, text, len(body), ",".join(flags) or None,
        json.dumps(page.regions, separators=(",", ":")) if page.regions else None,
    ))
    if not page.items:
        return
    placed = [it.pos for it in page.items if it.pos is not None]
    spans = iter(windows(text, placed, s.context_words) if placed else ())
    tokens = None
    for it in page.items:
        cs = ce = None
        if it.pos is not None:
            cs, ce = next(spans)
            if it.alt:
                if tokens is None:
                    tokens = PageTokens(text)
                m = find_alt_page(tokens, it.alt, cs, it.pos, ce)
                if m:
                    batch.alt_matches.append((local, it.seq, m.side, m.start, m.end, m.kind, m.score))
        batch.media.append((local, it.seq, it.kind, it.tag, it.url, url_key(it.url), it.alt, it.title,
                            it.figcaption, it.width, it.height, it.pos, cs, ce,
                            it.region, it.placeholder, it.render_width, it.render_height))
        for attr, raw, res, desc in it.urls:
            batch.media_urls.append((local, it.seq, attr, raw, res, desc))
