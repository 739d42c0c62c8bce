"""Download one URL with every wait and read bounded; classify failures as statuses."""
from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

USER_AGENT = "wdb/0.1 (+https://github.com/; dataset research; honours X-Robots-Tag noai)"


@dataclass
class Download:
    url: str
    status: str  # ok | http_error | timeout | dns | connection | too_large | robots
    http_status: int | None = None
    final_url: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error: str | None = None
    attempts: int = 0
    request: bytes = b""


class _Redirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, limit: int):
        self.max_redirections = limit


def _robots(headers) -> bool:
    value = ",".join(v for k, v in headers if k.lower() == "x-robots-tag").lower()
    return any(t.strip() in ("noai", "noimageai") for part in value.split(",") for t in part.split(":")[-1].split())


def fetch_once(url: str, timeout: float, max_bytes: int, max_redirects: int) -> Download:
    opener = urllib.request.build_opener(_Redirects(max_redirects))
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.5"})
    request_bytes = (f"GET {url} HTTP/1.1\r\nUser-Agent: {USER_AGENT}\r\nAccept: image/*,*/*;q=0.5\r\n\r\n").encode()
    deadline = time.monotonic() + timeout * 4  # whole-transfer bound on top of the per-read timeout
    try:
        with opener.open(req, timeout=timeout) as r:
            headers = list(r.headers.items())
            d = Download(url, "ok", r.status, r.geturl(), headers, request=request_bytes)
            if _robots(headers):
                d.status, d.error = "robots", "X-Robots-Tag forbids AI use (noai/noimageai)"
                return d
            length = r.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                d.status, d.error = "too_large", f"Content-Length {length} over {max_bytes} bytes"
                return d
            chunks, got = [], 0
            while True:
                if time.monotonic() > deadline:
                    d.status, d.error = "timeout", f"transfer took over {timeout * 4:.0f}s"
                    return d
                chunk = r.read(min(65536, max_bytes + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
                if got > max_bytes:
                    d.status, d.error = "too_large", f"body over {max_bytes} bytes"
                    return d
            d.body = b"".join(chunks)
            return d
    except urllib.error.HTTPError as e:
        return Download(url, "http_error", e.code, error=f"HTTP {e.code} {e.reason}", request=request_bytes)
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, socket.gaierror):
            return Download(url, "dns", error=f"DNS: {reason}", request=request_bytes)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return Download(url, "timeout", error=f"timeout after {timeout}s", request=request_bytes)
        return Download(url, "connection", error=f"{type(reason).__name__}: {reason}", request=request_bytes)
    except (socket.timeout, TimeoutError):
        return Download(url, "timeout", error=f"timeout after {timeout}s", request=request_bytes)
    except (ConnectionError, ssl.SSLError, OSError, ValueError) as e:
        return Download(url, "connection", error=f"{type(e).__name__}: {e}", request=request_bytes)


RETRYABLE = ("timeout", "connection", "dns")


def fetch(url: str, timeout: float = 10.0, max_bytes: int = 20 << 20, max_redirects: int = 5,
          retries: int = 2, backoff: float = 0.5) -> Download:
    """fetch_once with retries (exponential backoff) for timeouts, connection errors and 5xx."""
    attempt = 0
    while True:
        attempt += 1
        d = fetch_once(url, timeout, max_bytes, max_redirects)
        d.attempts = attempt
        again = d.status in RETRYABLE or (d.status == "http_error" and (d.http_status or 0) >= 500)
        if not again or attempt > retries:
            return d
        time.sleep(backoff * 2 ** (attempt - 1))
