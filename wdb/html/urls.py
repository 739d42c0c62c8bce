"""Resolve, filter and canonicalise media URLs; parse srcset."""
from __future__ import annotations

import json
import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_TABNL = re.compile(r"[\t\n\r]+")  # removed from URLs, as browsers do (WHATWG URL)
_LEAD = re.compile(r"[\s,]*")
_URLTOK = re.compile(r"\S+")
_DESC = re.compile(r"[^,(]*(?:\([^)]*\)[^,(]*)*")


# an absolute http(s) URL needing no normalisation: scheme, plain host[:port], no dot segments, only
# printable ASCII that browsers leave as it is (no space, quote, <, >, backtick, braces, backslash)
_SAFE = r"[!$-;=?-\[\]-_a-z|~]"
# (no IGNORECASE: it makes every character test slower; the classes name both cases)
_SIMPLE_ABS = re.compile(r"([Hh][Tt][Tt][Pp][Ss]?)://([A-Za-z0-9.\-]+(?::\d{1,5})?)((?:/" + _SAFE + r"*)?(?:\?" + _SAFE
                         + r"*)?)(?:#.*)?", re.DOTALL | re.ASCII)
_DOTSEG = re.compile(r"(?:^|/)\.\.?(?:/|$|\?)")
_SIMPLE_REL = re.compile(r"[!$-9;=?-\[\]-_a-z|~]*", re.ASCII)
# templates and JSON are not URLs: "{width}", "${GDPR}", '{"default": ...}'
_NOT_URL = re.compile(r'[{}"]')
# what browsers percent-encode in a path or query (WHATWG URL): controls, space, ", <, >, `, non-ASCII
_ENCODE = re.compile(r'[\x00-\x20\x7f"<>`]+|[^\x00-\x7f]+')
# a value that can be a URL: an absolute or scheme-relative http(s) URL, or a path; no white space
_URLISH = re.compile(r"(?:https?:)?//[^\s\\<>`]+|[^\s\\<>`:]*[/.][^\s\\<>`]*", re.IGNORECASE)
_BASES: dict[str, tuple[str, str, str]] = {}


def _split_base(base: str) -> tuple[str, str, str] | None:
    """(scheme, netloc, directory path) of a simple absolute base URL, cached."""
    got = _BASES.get(base)
    if got is None:
        m = _SIMPLE_ABS.fullmatch(base)
        if not m or _DOTSEG.search(m.group(3)):
            return None
        path = m.group(3).split("?", 1)[0] or "/"
        got = (m.group(1).lower(), m.group(2).lower(), path[: path.rfind("/") + 1])
        if len(_BASES) > 1000:
            _BASES.clear()
        _BASES[base] = got
    return got


def _fast(base: str, raw: str) -> str | None:
    m = _SIMPLE_ABS.fullmatch(raw)
    if m:
        if _DOTSEG.search(m.group(3)):
            return None
        return f"{m.group(1).lower()}://{m.group(2)}{m.group(3) or '/'}"
    if ":" in raw or "\\" in raw or not _SIMPLE_REL.fullmatch(raw) or _DOTSEG.search(raw) or raw.startswith("?"):
        return None
    b = _split_base(base)
    if b is None:
        return None
    scheme, netloc, directory = b
    if raw.startswith("//"):
        m = _SIMPLE_ABS.fullmatch(f"{scheme}:{raw}")
        return f"{scheme}://{m.group(2)}{m.group(3) or '/'}" if m and not _DOTSEG.search(m.group(3)) else None
    if raw.startswith("/"):
        return f"{scheme}://{netloc}{raw}"
    return f"{scheme}://{netloc}{directory}{raw}"


def resolve(base: str, raw: str | None) -> str | None:
    """Absolute http(s) URL for raw against base, or None (javascript:, data:, broken, empty)."""
    if raw is None:
        return None
    raw = raw.strip()
    if not raw or raw.startswith("#"):
        return None
    fast = _fast(base, raw.split("#", 1)[0])
    if fast is not None:
        return fast
    if _NOT_URL.search(raw):
        return None
    try:
        url = urljoin(base, _TABNL.sub("", raw))
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
        netloc = parts.netloc
        if " " in netloc or _NOT_URL.search(netloc):
            return None
        if not netloc.isascii():
            netloc = netloc.encode("idna").decode("ascii")
        return urlunsplit((parts.scheme.lower(), netloc, _encode(parts.path) or "/", _encode(parts.query), ""))
    except (ValueError, UnicodeError):
        return None


def _encode(part: str) -> str:
    """Percent-encode what a browser would (raw spaces, quotes, non-ASCII as UTF-8), keep the rest."""
    return _ENCODE.sub(lambda m: quote(m.group(), safe=""), part) if part and not _SAFE_PART.fullmatch(part) else part


_SAFE_PART = re.compile(_SAFE + "*", re.ASCII)


def looks_like_url(value: str | None, spaces: bool = False) -> bool:
    """Whether an attribute value can be a URL: no template braces, quotes or (unless spaces) inner
    white space, and a path, file name or host in it."""
    if not value:
        return False
    v = value.strip()
    if not v or len(v) > 4096 or _NOT_URL.search(v) or v.startswith(("#", "data:", "javascript:")):
        return False
    if spaces:
        v = v.replace(" ", "%20")
    return _URLISH.fullmatch(v) is not None


def url_in_json(value: str) -> str | None:
    """The first URL among the string values of a JSON attribute value ('{"default": "//host/a.jpg"}')."""
    v = value.strip()
    if not v.startswith(("{", "[")) or len(v) > 65536:
        return None
    try:
        stack = [json.loads(v)]
    except ValueError:
        return None
    seen = 0
    while stack and seen < 1000:
        x = stack.pop()
        seen += 1
        if isinstance(x, str):
            if looks_like_url(x) and ("/" in x):
                return x.strip()
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
        elif isinstance(x, list):
            stack.extend(reversed(x))
    return None


def url_key(url: str | None) -> str | None:
    """Canonical key used to join a media URL with an archived record's Target-URI."""
    if not url:
        return None
    m = _SIMPLE_ABS.fullmatch(url.strip())
    if m:
        host, _, port = m.group(2).lower().partition(":")
        if host.startswith("www."):
            host = host[4:]
        if port in ("80", "443"):
            port = ""
        return f"{host}{':' + port if port else ''}{m.group(3) or '/'}"
    try:
        p = urlsplit(url.strip())
        host = (p.hostname or "").lower()
        if host.startswith("www."):
            host = host[4:]
        port = p.port
    except ValueError:
        return url
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    return f"{netloc}{p.path or '/'}{'?' + p.query if p.query else ''}"


def parse_srcset(value: str) -> list[tuple[str, str]]:
    """Candidates (url, descriptor) of a srcset attribute, following the HTML parsing rules."""
    out = []
    pos, n = 0, len(value)
    while pos < n:
        pos = _LEAD.match(value, pos).end()
        if pos >= n:
            break
        m = _URLTOK.match(value, pos)
        url = m.group()
        pos = m.end()
        if url.endswith(","):
            url = url.rstrip(",")
            desc = ""
        else:
            d = _DESC.match(value, pos)
            desc = " ".join(d.group().split())
            pos = d.end() + 1
        if url:
            out.append((url, desc))
    return out


def srcset_weight(desc: str) -> float:
    """Larger for bigger candidates: 300w -> 300, 2x -> 2000, none -> 1000 (1x)."""
    try:
        if desc.endswith("w"):
            return float(desc[:-1])
        if desc.endswith("x"):
            return float(desc[:-1]) * 1000
    except ValueError:
        return 0.0
    return 1000.0


def domain(url: str | None) -> str | None:
    try:
        h = urlsplit(url or "").hostname
    except ValueError:
        return None
    if h and h.startswith("www."):
        h = h[4:]
    return h
