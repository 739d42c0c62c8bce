"""Decide the character set of an HTML payload and decode it."""
from __future__ import annotations

import codecs
import re

_BOMS = [
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]
_META = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE
)
_HEADER = re.compile(r"charset\s*=\s*[\"']?\s*([a-zA-Z0-9_:.\-]+)", re.IGNORECASE)


def _known(name: str | None) -> str | None:
    if not name:
        return None
    try:
        enc = codecs.lookup(name).name
    except LookupError:
        return None
    # WHATWG: a meta/header "utf-16" on bytes that reached us as ASCII-compatible means utf-8
    if enc in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"  # browsers treat these labels as windows-1252
    return enc


def charset_from_content_type(ct: str | None) -> str | None:
    m = _HEADER.search(ct or "")
    return m.group(1) if m else None


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str, str]:
    """Return (text, charset, source) where source is bom/header/meta/utf-8/detected/fallback.

    Order: a BOM wins (as in browsers), then the HTTP header, then <meta> in the first 4 KiB,
    then strict UTF-8, then detection (charset-normalizer), then windows-1252.
    """
    for bom, enc in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(enc, "replace"), enc, "bom"
    enc = _known(charset_from_content_type(content_type))
    if enc and not enc.startswith("utf-16") and not enc.startswith("utf-32"):
        return body.decode(enc, "replace"), enc, "header"
    m = _META.search(body, 0, 4096)
    if m:
        enc = _known(m.group(1).decode("ascii", "ignore"))
        if enc and not enc.startswith("utf-16") and not enc.startswith("utf-32"):
            return body.decode(enc, "replace"), enc, "meta"
    try:
        return body.decode("utf-8"), "utf-8", "utf-8"
    except UnicodeDecodeError:
        pass
    if body[:2048].count(b"\x00") > 100:  # UTF-16 without a BOM
        even = body[0:2048:2].count(b"\x00")
        odd = body[1:2048:2].count(b"\x00")
        enc = "utf-16-be" if even > odd else "utf-16-le"
        return body.decode(enc, "replace"), enc, "detected"
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(body[:65536]).best()
        if best is not None and best.encoding:
            enc = _known(best.encoding) or "cp1252"
            return body.decode(enc, "replace"), enc, "detected"
    except Exception:  # noqa: BLE001 -- detection is best effort
        pass
    return body.decode("cp1252", "replace"), "cp1252", "fallback"
