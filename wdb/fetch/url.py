"""The URL a browser would request for a URL string, per the WHATWG URL standard (http and https only):
tabs and newlines removed, backslashes as slashes, host lower-cased and IDNA-encoded, IPv4 in its
numeric forms normalised, dot segments removed, and everything outside the path and query
percent-encode sets percent-encoded as UTF-8. So no URL string can make the request line invalid."""
from __future__ import annotations

import ipaddress
import re

MAX_URL = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}

# WHATWG percent-encode sets (besides C0 controls, space and everything above U+007E)
_PATH_SET = frozenset(b'"#<>?`{}')
_QUERY_SET = frozenset(b"\"#<>'")
_FORBIDDEN_HOST = frozenset("\x00\t\n\r #/:<>?@[\\]^|%\x7f")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


class BadUrl(ValueError):
    """A URL string that no browser would request (unsupported scheme, no host, bad port or host)."""


def _encode(text: str, extra: frozenset) -> str:
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        if byte <= 0x20 or byte >= 0x7F or byte in extra:
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def _ipv4_number(part: str) -> int | None:
    if part[:2].lower() == "0x":
        digits, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if digits == "":
        return 0
    try:
        return int(digits, base) if re.fullmatch(r"[0-9a-fA-F]+", digits) else None
    except ValueError:
        return None


def _ipv4(host: str) -> str | None:
    """The dotted quad for a host in any WHATWG IPv4 form (2130706433, 0x7f.1, 0177.0.0.1), else None."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if not (last.isdigit() or (last[:2].lower() == "0x" and re.fullmatch(r"[0-9a-fA-F]*", last[2:]))):
        return None
    if len(parts) > 4:
        raise BadUrl(f"bad IPv4 address {host!r}")
    nums = [_ipv4_number(p) for p in parts]
    if any(n is None for n in nums) or any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        raise BadUrl(f"bad IPv4 address {host!r}")
    value = nums[-1]
    for i, n in enumerate(nums[:-1]):
        value += n * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(value))


def _host(raw: str) -> str:
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise BadUrl(f"bad IPv6 address {raw!r}")
        try:
            return f"[{ipaddress.IPv6Address(raw[1:-1]).compressed}]"
        except ValueError as e:
            raise BadUrl(f"bad IPv6 address {raw!r}") from e
    from urllib.parse import unquote

    try:
        host = unquote(raw, errors="strict")
    except UnicodeDecodeError as e:
        raise BadUrl(f"host {raw!r} is not UTF-8 once percent-decoded") from e
    if not host:
        raise BadUrl("no host")
    bad = sorted({c for c in host if c in _FORBIDDEN_HOST or ord(c) < 0x20})
    if bad:
        raise BadUrl(f"forbidden character {bad[0]!r} in host {raw!r}")
    if not host.isascii():
        try:
            import idna

            host = idna.encode(host, uts46=True).decode("ascii")
        except ImportError:
            host = host.encode("idna").decode("ascii")
        except (idna.IDNAError, UnicodeError) as e:
            raise BadUrl(f"host {raw!r} is not a valid international domain name: {e}") from e
    host = host.lower()
    v4 = _ipv4(host)
    if v4 is not None:
        return v4
    if len(host) > 253 or any(len(label) > 63 for label in host.rstrip(".").split(".")):
        raise BadUrl(f"host {raw[:80]!r} is too long")
    return host


def _path(raw: str) -> str:
    out: list[str] = []
    segments = raw.split("/")[1:] if raw.startswith("/") else raw.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        low = seg.lower()
        if low in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif low in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(_encode(seg, _PATH_SET))
    return "/" + "/".join(out)


def split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-and-query) of the request for `url`; raises BadUrl."""
    if len(url) > MAX_URL:
        raise BadUrl(f"URL of {len(url)} characters is over {MAX_URL}")
    url = url.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
                    "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
    url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    m = _SCHEME.match(url)
    if not m:
        raise BadUrl("not an absolute URL")
    scheme = m.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise BadUrl(f"unsupported scheme {scheme}:")
    rest = url[m.end():].split("#", 1)[0]
    head, sep, query = rest.partition("?")
    head = head.replace("\\", "/").lstrip("/")
    authority, slash, path = head.partition("/")
    authority = authority.rpartition("@")[2]  # credentials are never sent
    if authority.startswith("[") and "]" not in authority:
        raise BadUrl(f"bad IPv6 address {authority[:80]!r}")
    hostport = authority
    port = DEFAULT_PORTS[scheme]
    colon = authority.rfind(":")
    if colon > authority.rfind("]"):
        hostport, digits = authority[:colon], authority[colon + 1:]
        if digits:
            if not digits.isdigit() or not digits.isascii() or int(digits) > 65535:
                raise BadUrl(f"bad port {digits[:20]!r}")
            port = int(digits)
    host = _host(hostport)
    target = _path("/" + path) + (("?" + _encode(query, _QUERY_SET)) if sep else "")
    return scheme, host, port, target


def request_url(url: str) -> str:
    """The canonical form of `url` that is requested (no fragment); raises BadUrl."""
    scheme, host, port, target = split(url)
    return f"{scheme}://{host}{'' if port == DEFAULT_PORTS[scheme] else f':{port}'}{target}"
