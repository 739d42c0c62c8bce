"""Download one URL with every wait and read bounded; classify failures as statuses.

The URL is canonicalised as a browser would (so no string raises), every host of every redirect hop
is resolved and checked against the address policy before a connection is made, every socket read
is bounded by the per-read timeout AND by a wall-clock deadline for the whole URL, and a reply that
is not well-formed HTTP is a `bad_reply` status, never an exception."""
from __future__ import annotations

import email.utils
import errno
import http.client
import io
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

from .guard import AddressPolicy, RefusedAddress
from .limits import POLL, HostGate, Stopped, check
from .url import BadUrl, split

USER_AGENT = "wdb/0.1 (+https://github.com/; dataset research; honours X-Robots-Tag noai)"
REDIRECTS = (301, 302, 303, 307, 308)
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is not waited for (the URL fails, retry later)
_TLS = ssl.create_default_context()


@dataclass
class Download:
    url: str
    status: str  # ok | http_error | timeout | dns | connection | too_large | robots | bad_reply | bad_url
    #              | refused_address
    http_status: int | None = None
    final_url: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error: str | None = None
    attempts: int = 0
    request: bytes = b""
    retry_after: float | None = None
    final: bool = False  # do not retry (the whole-transfer deadline was spent)


class ReadTimeout(TimeoutError):
    """No byte for the per-read timeout."""


class DeadlineExceeded(TimeoutError):
    """The wall-clock bound for the whole URL passed."""


class _Clock:
    def __init__(self, timeout: float, deadline: float, stop: threading.Event | None):
        self.timeout, self.deadline, self.stop = timeout, deadline, stop

    def slice(self, started: float) -> float:
        """Seconds the next wait may last; raises when the run stops or a bound has passed."""
        check(self.stop)
        now = time.monotonic()
        if now >= self.deadline:
            raise DeadlineExceeded()
        if now - started >= self.timeout:
            raise ReadTimeout()
        return min(POLL, self.deadline - now, started + self.timeout - now)


class _Wire(io.RawIOBase):
    """The socket as a raw stream whose every recv is bounded by the clock."""

    def __init__(self, sock: socket.socket, clock: _Clock):
        self.sock, self.clock = sock, clock

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        started = time.monotonic()
        while True:
            self.sock.settimeout(self.clock.slice(started))
            try:
                return self.sock.recv_into(b)
            except (socket.timeout, ssl.SSLWantReadError):
                continue


class _Sock:
    """What http.client.HTTPResponse needs of a socket: makefile()."""

    def __init__(self, sock: socket.socket, clock: _Clock):
        self.wire = _Wire(sock, clock)

    def makefile(self, mode: str):
        return io.BufferedReader(self.wire, 16384)


def _wait(sock: socket.socket, events: int, clock: _Clock, started: float) -> None:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, events)
        while not sel.select(clock.slice(started)):
            pass


def _connect(addrs: list[tuple[int, tuple]], host: str, tls: bool, clock: _Clock) -> socket.socket:
    last: Exception = ConnectionError("no address")
    for family, sockaddr in addrs:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            started = time.monotonic()
            err = sock.connect_ex(sockaddr)
            if err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                _wait(sock, selectors.EVENT_WRITE, clock, started)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise ConnectionError(err, f"{errno.errorcode.get(err, err)} connecting to {sockaddr[0]}")
            if tls:
                sock = _TLS.wrap_socket(sock, server_hostname=host.strip("[]"), do_handshake_on_connect=False)
                started = time.monotonic()
                while True:
                    try:
                        sock.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        _wait(sock, selectors.EVENT_READ, clock, started)
                    except ssl.SSLWantWriteError:
                        _wait(sock, selectors.EVENT_WRITE, clock, started)
            return sock
        except BaseException as e:  # Stopped included: the socket is closed whatever ends the attempt
            sock.close()
            if not isinstance(e, OSError) or isinstance(e, (ssl.SSLError, DeadlineExceeded)):
                raise
            last = e  # refused, unreachable or slow: the next address
    raise last


def _request(host: str, port: int, scheme: str, target: str) -> bytes:
    default = 443 if scheme == "https" else 80
    hostport = host if port == default else f"{host}:{port}"
    return (f"GET {target} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: image/*,*/*;q=0.5\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n").encode("ascii")


def _robots(headers) -> bool:
    value = ",".join(v for k, v in headers if k.lower() == "x-robots-tag").lower()
    return any(t.strip() in ("noai", "noimageai") for part in value.split(",") for t in part.split(":")[-1].split())


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _location(value: str, base: str) -> str:
    """The absolute target of a Location header (its bytes read as UTF-8, as browsers do)."""
    try:
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    value = value.strip().replace("\t", "").replace("\n", "").replace("\r", "")
    head, sep, rest = value.partition("?")
    return urljoin(base, head.replace("\\", "/") + sep + rest)


def _exchange(url: str, policy: AddressPolicy, clock: _Clock, max_bytes: int, d: Download):
    """One request/response; fills d and returns the Location of a redirect (or None)."""
    d.http_status = None
    scheme, host, port, target = split(url)
    addrs = policy.resolve(host, port, timeout=min(clock.timeout, clock.deadline - time.monotonic()))
    sock = _connect(addrs, host, scheme == "https", clock)
    try:
        d.request = _request(host, port, scheme, target)
        sock.settimeout(max(0.001, min(clock.timeout, clock.deadline - time.monotonic())))
        sock.sendall(d.request)
        r = http.client.HTTPResponse(_Sock(sock, clock), method="GET")
        r.begin()
        d.http_status, d.headers, d.final_url = r.status, list(r.getheaders()), url
        if r.status in REDIRECTS and r.getheader("Location"):
            return r.getheader("Location")
        if not 200 <= r.status < 300:
            d.status, d.error = "http_error", f"HTTP {r.status} {r.reason}"[:300]
            d.retry_after = _retry_after(r.getheader("Retry-After")) if r.status in (429, 503) else None
            return None
        if _robots(d.headers):
            d.status, d.error = "robots", "X-Robots-Tag forbids AI use (noai/noimageai)"
            return None
        length = r.getheader("Content-Length")
        if length and length.strip().isascii() and length.strip().isdigit() and int(length) > max_bytes:
            d.status, d.error = "too_large", f"Content-Length {length.strip()[:30]} over {max_bytes} bytes"
            return None
        chunks, got = [], 0
        while True:
            chunk = r.read(min(65536, max_bytes + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            if got > max_bytes:
                d.status, d.error = "too_large", f"body over {max_bytes} bytes"
                return None
        expected = int(length.strip()) if length and length.strip().isdigit() and not r.chunked else None
        if expected is not None and got < expected:  # http.client returns a short body without a word
            raise http.client.IncompleteRead(b"", expected - got)
        d.body, d.status = b"".join(chunks), "ok"
        return None
    finally:
        sock.close()


def fetch_once(url: str, timeout: float, max_bytes: int, max_redirects: int, *, policy: AddressPolicy | None = None,
               stop: threading.Event | None = None, deadline: float | None = None) -> Download:
    """One attempt at url, following redirects; never raises but Stopped (the run is stopping)."""
    policy = policy or AddressPolicy()
    bound = deadline if deadline is not None else timeout * 4
    clock = _Clock(timeout, time.monotonic() + bound, stop)
    d = Download(url, "connection")
    current = url
    try:
        for hop in range(max_redirects + 1):
            location = _exchange(current, policy, clock, max_bytes, d)
            if location is None:
                return d
            if hop == max_redirects:
                d.status, d.error = "http_error", f"more than {max_redirects} redirects (HTTP {d.http_status})"
                return d
            current = _location(location, current)
            d.final_url = current
        return d
    except Stopped:
        raise
    except BadUrl as e:
        d.status, d.error = "bad_url", (f"redirect to {current[:200]}: {e}" if current != url else str(e))
    except RefusedAddress as e:
        d.status, d.error = "refused_address", (f"redirect to {current[:200]}: {e}" if current != url else str(e))
    except socket.gaierror as e:
        d.status, d.error = "dns", f"DNS: {e}"
    except DeadlineExceeded:
        d.status, d.error, d.final = "timeout", f"whole transfer over {bound:g}s (wall-clock bound)", True
    except (ReadTimeout, socket.timeout, TimeoutError):
        d.status, d.error = "timeout", f"timeout after {timeout:g}s"
    except ssl.SSLError as e:  # before ValueError: a certificate failure is both
        d.status, d.error = "connection", f"TLS: {type(e).__name__}: {e}"[:300]
        d.final = isinstance(e, ssl.SSLCertVerificationError)  # the same certificate fails again
    except http.client.RemoteDisconnected as e:
        d.status, d.error = "connection", f"RemoteDisconnected: {e}"
    except (http.client.HTTPException, ValueError, UnicodeError) as e:
        d.status, d.error = "bad_reply", f"{type(e).__name__}: {e}"[:300]
    except OSError as e:  # ConnectionError, unreachable
        d.status, d.error = "connection", f"{type(e).__name__}: {e}"[:300]
    d.body = b""
    return d


RETRYABLE = ("timeout", "connection", "dns")


def _host_of(url: str) -> str:
    try:
        return split(url)[1]
    except BadUrl:
        return ""


def fetch(url: str, timeout: float = 10.0, max_bytes: int = 20 << 20, max_redirects: int = 5,
          retries: int = 2, backoff: float = 0.5, *, policy: AddressPolicy | None = None,
          stop: threading.Event | None = None, gate: HostGate | None = None, deadline: float | None = None,
          max_retry_after: float = MAX_RETRY_AFTER) -> Download:
    """fetch_once with retries (exponential backoff, or the server's Retry-After) for timeouts, connection
    errors, 429 and 5xx; one host's requests go through its gate slots. Raises only Stopped."""
    policy = policy or AddressPolicy()
    host = _host_of(url)
    attempt = 0
    while True:
        attempt += 1
        if gate is not None and host:
            with gate.slot(host):
                d = fetch_once(url, timeout, max_bytes, max_redirects, policy=policy, stop=stop, deadline=deadline)
        else:
            d = fetch_once(url, timeout, max_bytes, max_redirects, policy=policy, stop=stop, deadline=deadline)
        d.attempts = attempt
        code = d.http_status or 0
        again = not d.final and (d.status in RETRYABLE or (d.status == "http_error" and (code >= 500 or code == 429)))
        wait = backoff * 2 ** (attempt - 1)
        if d.retry_after is not None and d.status == "http_error":
            if d.retry_after > max_retry_after:
                again = False
                d.error = f"{d.error}; Retry-After {d.retry_after:.0f}s is over the {max_retry_after:g}s wait cap"
            else:
                wait = max(wait, d.retry_after)
                if gate is not None and host:
                    gate.pause(host, d.retry_after)
        if not again or attempt > retries:
            return d
        if stop is not None:
            if stop.wait(wait):
                raise Stopped("stopping")
        else:
            time.sleep(wait)
