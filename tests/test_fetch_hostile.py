"""wdb fetch against a hostile HTTP server on 127.0.0.1 (raw sockets: malformed replies, drips, hangs,
redirects inward) and hostile URLs and images: every URL ends with a status row, no URL stops a run,
no request reaches an address that was not allowed, memory and time per URL stay bounded, and
SIGINT/SIGTERM stop a fetch at once with the committed rows kept."""
import json
import os
import shutil
import signal
import socketserver
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT, corpus
from wdb.db import open_db, transaction
from wdb.fetch import FAILED, FetchSettings, fetch
from wdb.ingest import ingest

COCO = CORPUS / "coco-mini" / "val2017"
ALLOW = ("127.0.0.1",)  # the hostile server is on loopback: the tests allow it, except the SSRF ones


def coco() -> list[bytes]:
    files = sorted(COCO.glob("*.jpg"))[:4]
    if not files:
        pytest.skip("coco-mini missing")
    return [f.read_bytes() for f in files]


def _http(body: bytes, status: str = "200 OK", headers: str = "Content-Type: image/jpeg\r\n") -> bytes:
    return f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body


class Hostile(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def hostile():
    """(base URL, state): every request's path is appended to state.seen (a Condition guards it)."""
    photos = coco()

    class State:
        seen: list[str] = []
        cond = threading.Condition()
        quit = threading.Event()
        active = 0
        max_active = 0
        dripped: dict[str, int] = {}
        times: dict[str, list[float]] = {}

        def wait_for(self, pred, tries=600):  # bounded: 600 x 0.1 s
            with self.cond:
                for _ in range(tries):
                    if pred(self.seen):
                        return True
                    self.cond.wait(0.1)
            return pred(self.seen)

    st = State()

    def drip(sock, path, data: bytes, limit=400):
        n = 0
        try:
            for n in range(limit):  # bounded: 400 x 0.05 s, and ends when the client hangs up
                if st.quit.is_set():
                    break
                sock.sendall(data[n % len(data):n % len(data) + 1])
                time.sleep(0.05)
        except OSError:
            pass
        st.dripped[path] = n

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            sock = self.request
            sock.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    head += chunk
            except OSError:
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = parts[1] if len(parts) > 2 else ""
            with st.cond:
                st.seen.append(path)
                st.times.setdefault(path, []).append(time.monotonic())
                st.cond.notify_all()
            try:
                self.reply(sock, path)
            except OSError:
                pass

        def reply(self, sock, path):
            port = self.server.server_address[1]
            if path.startswith("/img/"):
                return sock.sendall(_http(photos[int(path[5:6]) % len(photos)]))
            if path == "/page%20tutoriel/corps%20d'article/photo%20%C3%A9t%C3%A9.jpg?taille=grande%20image":
                return sock.sendall(_http(photos[0]))
            if path == "/bad-chunk":
                return sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"zz-not-hex\r\nabc\r\n0\r\n\r\n")
            if path == "/short-chunk":
                return sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + photos[0][:100])
            if path == "/short-length":
                return sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(photos[0])}\r\n\r\n".encode()
                                    + photos[0][:100])
            if path == "/many-headers":
                return sock.sendall(_http(photos[0], headers="".join(f"X-H{i}: {i}\r\n" for i in range(150))))
            if path == "/long-header":
                return sock.sendall(_http(photos[0], headers="X-Long: " + "a" * 70_000 + "\r\n"))
            if path == "/long-status":
                return sock.sendall(b"HTTP/1.1 200 " + b"O" * 70_000 + b"\r\n\r\n")
            if path == "/bad-status":
                return sock.sendall(b"HTTP/1.1 two-hundred OK\r\nContent-Length: 0\r\n\r\n")
            if path == "/not-http":
                return sock.sendall(b"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n")
            if path == "/tls-record":
                return sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(256)))
            if path == "/html-only":  # HTTP/0.9 style: a body with no status line
                return sock.sendall(b"<html><body><img src=x></body></html>\n")
            if path == "/huge-chunk":
                return sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n"
                                    + photos[0])
            if path == "/long-chunk-line":
                return sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 70_000)
            if path == "/endless-continue":
                n = 0
                try:
                    for n in range(2000):  # bounded: 2000 x 0.01 s, and ends when the client hangs up
                        if st.quit.is_set():
                            break
                        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                        time.sleep(0.01)
                finally:
                    st.dripped[path] = n // 5  # comparable with the drips' counts below
                return None
            if path == "/drip-body":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n")
                return drip(sock, path, photos[0])
            if path == "/drip-head":
                return drip(sock, path, b"HTTP/1.1 200 OK\r\nX-Drip: " + b"d" * 1000)
            if path.startswith("/redirect-to/"):
                target = {"zero": f"http://0.0.0.0:{port}", "v6": f"http://[::1]:{port}", "ten": "http://10.1.2.3",
                          "decimal": f"http://2130706434:{port}", "mapped": f"http://[::ffff:127.0.0.1]:{port}",
                          "file": "file:///etc/passwd#"}[path.split("/")[2]]
                return sock.sendall(_http(b"", "302 Found", f"Location: {target}/internal/admin?action=reboot\r\n"))
            if path.startswith("/retry-after/"):
                wait = path.split("/")[2]
                if len(st.times[path]) == 1:
                    return sock.sendall(_http(b"slow down", "429 Too Many Requests", f"Retry-After: {wait}\r\n"))
                return sock.sendall(_http(photos[1]))
            if path.startswith("/per-host/"):
                with st.cond:
                    st.active += 1
                    st.max_active = max(st.max_active, st.active)
                time.sleep(0.3)
                with st.cond:
                    st.active -= 1
                return sock.sendall(_http(photos[2]))
            if path.startswith("/hang/"):
                for _ in range(600):  # bounded: 60 s at most
                    if st.quit.wait(0.1):
                        break
                return None
            return sock.sendall(_http(b"not found", "404 Not Found", "Content-Type: text/plain\r\n"))

    srv = Hostile(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", st
    st.quit.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A database with a real page (books.toscrape, whose 20 covers come from the archive)."""
    path = tmp_path_factory.mktemp("hostile") / "template.db"
    conn = open_db(path)
    ingest(conn, [str(corpus("node-warc-tests/books.toscrape.warc"))], workers=0, progress=False, quiet=True)
    conn.close()
    return path


@pytest.fixture
def db(template, tmp_path):
    path = tmp_path / "f.db"
    shutil.copy(template, path)
    return path


def add_urls(path: Path, urls: list[str]) -> None:
    """Image items for these URLs (as extraction would store them, or worse), on the first page."""
    conn = open_db(path)
    page, seq = conn.execute("SELECT page_id, max(seq) FROM media GROUP BY page_id ORDER BY page_id").fetchone()
    with transaction(conn):
        conn.executemany("INSERT INTO media (page_id, seq, kind, tag, url, url_key) "
                         "VALUES (?, ?, 'image', 'img', ?, ?)",
                         [(page, seq + 1 + i, u, u) for i, u in enumerate(urls)])
    conn.close()


def run_fetch(path: Path, **kw) -> dict:
    kw.setdefault("allow_private", ALLOW)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("retries", 0)
    conn = open_db(path)
    try:
        return fetch(conn, FetchSettings(**kw), progress=False).counts
    finally:
        conn.close()


def rows(path: Path, urls: list[str]) -> dict[str, tuple]:
    conn = open_db(path)
    out = {u: conn.execute("SELECT status, error, attempts, http_status FROM images WHERE url = ?", (u,)).fetchone()
           for u in urls}
    total = conn.execute("SELECT count(*) FROM images").fetchone()[0]
    keys = conn.execute("SELECT count(DISTINCT url_key) FROM media WHERE kind = 'image'").fetchone()[0]
    conn.close()
    assert total == keys  # every URL ended with a row
    return out


# ---- URLs: canonicalised before requesting; the unusable ones are rows -------------------------

def test_raw_spaces_and_non_ascii_are_percent_encoded_as_browsers_do(db, hostile):
    base, st = hostile
    url = f"{base}/page tutoriel/corps d'article/photo été.jpg?taille=grande image#haut"
    add_urls(db, [url])
    run_fetch(db)
    assert rows(db, [url])[url][0] == "ok"
    assert "/page%20tutoriel/corps%20d'article/photo%20%C3%A9t%C3%A9.jpg?taille=grande%20image" in st.seen


def test_unusable_urls_are_bad_url_rows_and_the_run_goes_on(db, hostile):
    base, st = hostile
    bad = ["javascript:alert(1)", "ftp://127.0.0.1:1/x.jpg", "http://exa mple.com/x.jpg",
           "http://h.example:99999/x.jpg", "http://[::1/x.jpg", "http://", "data:image/png;base64,iVBORw0KGgo=",
           "http://1.2.3.256/x.jpg",
           "http://" + "a" * 300 + ".com/x.jpg", f"{base}/" + "x" * 70_000]
    good = f"{base}/img/0.jpg\r\nX-Injected: 1"  # newlines are dropped, so no header can be injected
    add_urls(db, bad + [good])
    run_fetch(db)
    got = rows(db, bad + [good])
    assert {u[:40]: got[u][0] for u in bad} == {u[:40]: "bad_url" for u in bad}
    assert got[good][0] == "ok" and "/img/0.jpgX-Injected:%201" in st.seen


def test_request_url_follows_the_whatwg_url_standard():
    from wdb.fetch.url import BadUrl, request_url

    cases = {  # what a browser requests (WHATWG URL: special-scheme parsing, path and query encode sets)
        "http://ex.com/page tutoriel/corps d'article/x.svg": "http://ex.com/page%20tutoriel/corps%20d'article/x.svg",
        "HTTP://EX.com:80/a/./b/../c?q=a b'\"#frag": "http://ex.com/a/c?q=a%20b%27%22",
        "http://ex.com/{x}`<y>|^": "http://ex.com/%7Bx%7D%60%3Cy%3E|^",
        "http://ex.com/été.jpg?x=é": "http://ex.com/%C3%A9t%C3%A9.jpg?x=%C3%A9",
        "http://ex.com/%zz%/a%20b": "http://ex.com/%zz%/a%20b",  # existing escapes and lone % kept
        "http://ex.com/a/%2e%2E/b": "http://ex.com/b",
        "http:\\\\ex.com\\a\\b?c\\d": "http://ex.com/a/b?c\\d",
        " \thttp://ex.com/a\r\nb ": "http://ex.com/ab",
        "https://user:pw@ex.com:443/x": "https://ex.com/x",
        "http://bücher.de/x": "http://xn--bcher-kva.de/x",
        "http://2130706433/": "http://127.0.0.1/",
        "http://0x7f.1/": "http://127.0.0.1/",
        "http://0177.0.0.1/": "http://127.0.0.1/",
        "http://[0:0::1]:8080": "http://[::1]:8080/",
        "http:///ex.com": "http://ex.com/",
    }
    assert {u: request_url(u) for u in cases} == cases
    for bad in ["ftp://x/y", "javascript:alert(1)", "/relative.jpg", "http://exa mple.com/", "http://h:65536/",
                "http://1.2.3.256/", "http://09.1.1.1/", "http://a%00b/", "http://[::1/", "http://"]:
        with pytest.raises(BadUrl):
            request_url(bad)


# ---- malformed replies: rows, not tracebacks -------------------------------------------------

MALFORMED = {"/bad-chunk": "IncompleteRead", "/short-chunk": "IncompleteRead", "/short-length": "IncompleteRead",
             "/many-headers": "more than 100 headers", "/long-header": "LineTooLong", "/long-status": "LineTooLong",
             "/bad-status": "BadStatusLine", "/not-http": "BadStatusLine", "/tls-record": "BadStatusLine",
             "/html-only": "BadStatusLine", "/huge-chunk": "IncompleteRead", "/long-chunk-line": "LineTooLong"}


def test_malformed_replies_are_bad_reply_rows(db, hostile):
    base, st = hostile
    urls = [base + p for p in MALFORMED]
    add_urls(db, urls + [f"{base}/img/1.jpg"])
    counts = run_fetch(db, concurrency=4)
    got = rows(db, urls + [f"{base}/img/1.jpg"])
    assert {u[len(base):]: got[u][0] for u in urls} == {p: "bad_reply" for p in MALFORMED}
    for p, what in MALFORMED.items():
        assert what in got[base + p][1], (p, got[base + p][1])
    assert got[f"{base}/img/1.jpg"][0] == "ok" and counts["bad_reply"] == len(MALFORMED)
    assert "bad_reply" in FAILED and "bad_url" in FAILED and "refused_address" in FAILED
    # --retry-failed covers them: a second run asks again
    before = st.seen.count("/bad-chunk")
    run_fetch(db, retry_failed=True, statuses=("bad_reply",))
    assert st.seen.count("/bad-chunk") == before + 1


# ---- the wall-clock bound per URL ------------------------------------------------------------

def test_dripping_server_meets_the_wall_clock_bound(db, hostile):
    base, st = hostile
    urls = [f"{base}/drip-body", f"{base}/drip-head", f"{base}/endless-continue"]
    add_urls(db, urls)
    run_fetch(db, timeout=0.5, retries=2)  # each byte comes within the read timeout; the bound is 2 s
    got = rows(db, urls)
    for u in urls:
        status, error, attempts, _ = got[u]
        assert (status, attempts) == ("timeout", 1) and "wall-clock" in error  # a drip is not retried
    assert st.wait_for(lambda seen: all(p in st.dripped for p in ("/drip-body", "/drip-head", "/endless-continue")))
    assert max(st.dripped.values()) < 399  # the client hung up, not the server


def test_tls_handshake_that_never_answers_times_out(db, hostile):
    base, st = hostile
    url = base.replace("http:", "https:") + "/x.jpg"  # a plain server waiting for a request line
    add_urls(db, [url])
    run_fetch(db, timeout=0.5)
    status, error, attempts, _ = rows(db, [url])[url]
    assert (status, attempts) == ("timeout", 1) and "0.5s" in error


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 with a throwaway certificate: /img.jpg, and /drip (TLS records of one byte)."""
    import ssl

    if not shutil.which("openssl"):
        pytest.skip("openssl missing")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "k.pem"), "-out",
                    str(d / "c.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    photo, quit_ = coco()[3], threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                sock = ctx.wrap_socket(self.request, server_side=True)
                sock.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                if head.startswith(b"GET /img.jpg "):
                    return sock.sendall(_http(photo))
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                for i in range(400):  # bounded: 400 x 0.05 s, and ends when the client hangs up
                    if quit_.is_set():
                        break
                    sock.sendall(photo[i:i + 1])
                    time.sleep(0.05)
            except OSError:
                pass

    srv = Hostile(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_address[1]}", ssl.create_default_context(cafile=str(d / "c.pem"))
    quit_.set()
    srv.shutdown()
    srv.server_close()


def test_https_fetch_and_tls_drip(db, tls_server, monkeypatch):
    download = sys.modules["wdb.fetch.download"]  # (wdb.fetch.download the attribute is the fetch function)
    base, client_ctx = tls_server
    urls = [f"{base}/img.jpg", f"{base}/drip"]
    add_urls(db, urls)
    monkeypatch.setattr(download, "_TLS", client_ctx)  # trust the throwaway certificate
    run_fetch(db, timeout=0.5)
    got = rows(db, urls)
    assert got[urls[0]][0] == "ok"
    assert got[urls[1]][0] == "timeout" and "wall-clock" in got[urls[1]][1]
    monkeypatch.undo()  # the system's CAs do not know the certificate: a connection error, no traceback
    add_urls(db, [f"{base}/img.jpg?again"])
    run_fetch(db, retries=2)
    status, error, attempts = rows(db, [f"{base}/img.jpg?again"])[f"{base}/img.jpg?again"][:3]
    assert status == "connection" and "CERTIFICATE_VERIFY_FAILED" in error and attempts == 1


# ---- SSRF: public addresses only, at every hop -------------------------------------------------

def test_loopback_and_private_addresses_are_refused_by_default(db, hostile):
    base, st = hostile
    port = base.rsplit(":", 1)[1]
    urls = [f"{base}/img/2.jpg", f"http://localhost:{port}/img/2.jpg", f"http://[::1]:{port}/img/2.jpg",
            f"http://2130706433:{port}/img/2.jpg", f"http://0x7f.0.0.1:{port}/img/2.jpg", f"http://0.0.0.0:{port}/x"]
    add_urls(db, urls)
    before = len(st.seen)
    counts = run_fetch(db, allow_private=())
    got = rows(db, urls)
    assert [got[u][0] for u in urls] == ["refused_address"] * len(urls)
    assert "loopback" in got[urls[0]][1] and "--allow-private" in got[urls[0]][1]
    assert counts["refused_address"] == len(urls) and len(st.seen) == before  # no request left


def test_redirect_inward_is_refused_at_the_hop(db, hostile):
    base, st = hostile
    urls = [f"{base}/redirect-to/{k}" for k in ("zero", "v6", "ten", "decimal", "mapped", "file")]
    add_urls(db, urls)
    run_fetch(db)  # 127.0.0.1 is allowed; 0.0.0.0, ::1, 10/8, 127.0.0.2 and ::ffff:127.0.0.1 are not
    got = rows(db, urls)
    assert [got[u][0] for u in urls] == ["refused_address"] * (len(urls) - 1) + ["bad_url"]
    assert all("redirect to" in got[u][1] for u in urls)
    assert "/internal/admin?action=reboot" not in st.seen


def test_a_lookup_that_never_answers_is_bounded_and_the_run_goes_on(db, hostile, monkeypatch):
    """getaddrinfo has no timeout: a resolver that never answers must cost one URL its time, not the run."""
    import socket as socket_module

    base, _ = hostile
    real, release = socket_module.getaddrinfo, threading.Event()

    def stuck(host, *a, **kw):
        if host == "stuck.example":
            release.wait(60)  # released below; bounded in any case
            raise socket_module.gaierror("released")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket_module, "getaddrinfo", stuck)
    urls = ["http://stuck.example/a.jpg", f"{base}/img/2.jpg"]
    add_urls(db, urls)
    try:
        run_fetch(db, timeout=0.5)
    finally:
        release.set()
    got = rows(db, urls)
    assert got[urls[0]][0] == "dns" and "did not answer" in got[urls[0]][1]
    assert got[urls[1]][0] == "ok"


def test_address_policy():
    from wdb.fetch.guard import AddressPolicy

    p = AddressPolicy()
    refused = {"127.0.0.1": "loopback", "::1": "loopback", "10.0.0.5": "private", "192.168.1.1": "private",
               "172.16.0.1": "private", "169.254.169.254": "metadata", "fe80::1": "link-local",
               "fd00:ec2::254": "private", "0.0.0.0": "unspecified", "100.64.0.1": "not globally routable",
               "::ffff:127.0.0.1": "127.0.0.1", "224.0.0.1": "multicast"}
    for ip, why in refused.items():
        assert why in (p.refusal(ip) or ""), ip
    assert p.refusal("93.184.215.14") is None and p.refusal("2606:4700::1111") is None
    allowed = AddressPolicy(["127.0.0.1", "10.0.0.0/8"])
    assert allowed.refusal("127.0.0.1") is None and allowed.refusal("10.9.9.9") is None
    assert "loopback" in allowed.refusal("127.0.0.2")
    with pytest.raises(ValueError, match="not an address or network"):
        AddressPolicy(["localhost"])


# ---- politeness: per-host slots and Retry-After ------------------------------------------------

def test_retry_after_is_honoured(db, hostile):
    base, st = hostile
    urls = [f"{base}/retry-after/1", f"{base}/retry-after/3600"]
    add_urls(db, urls)
    run_fetch(db, retries=2, concurrency=2)
    got = rows(db, urls)
    assert got[urls[0]][:1] + got[urls[0]][2:] == ("ok", 2, 200)
    first, second = st.times["/retry-after/1"]
    assert second - first >= 0.95  # waited as told (a lower bound: no clock runs fast)
    assert got[urls[1]][0] == "http_error" and got[urls[1]][2] == 1 and "over the" in got[urls[1]][1]


def test_per_host_concurrency_limit(db, hostile):
    base, st = hostile
    urls = [f"{base}/per-host/{i}.jpg" for i in range(8)]
    add_urls(db, urls)
    run_fetch(db, concurrency=8, per_host=2)
    assert [r[0] for r in rows(db, urls).values()] == ["ok"] * 8
    assert 1 <= st.max_active <= 2


# ---- SIGINT / SIGTERM ----------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_fetch_at_once_and_keeps_committed_rows(db, hostile, tmp_path, sig):
    base, st = hostile
    tag = f"{int(sig)}-{os.getpid()}"
    done = [f"{base}/img/{i}.jpg?{tag}" for i in range(5)]
    hang = [f"{base}/hang/{tag}/{i}" for i in range(6)]
    add_urls(db, done + hang)
    cmd = [sys.executable, "-m", "wdb.cli", "fetch", str(db), "--concurrency", "2", "--timeout", "30",
           "--retries", "0", "--allow-private", "127.0.0.1", "--silent"]
    proc = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        # both threads are held by the hanging server: the five images before them are finished
        both_held = lambda seen: sum(p.startswith(f"/hang/{tag}/") for p in seen) >= 2  # noqa: E731
        assert st.wait_for(lambda seen: both_held(seen) or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read().decode()
        sent = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)  # a bound on the wait; the time is printed, not asserted
        print(f"{sig!r}: exited {time.monotonic() - sent:.2f} s after the signal")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert rc == 130 and "interrupted" in err and "Traceback" not in err, err
    got = rows_no_total(db, done + hang)
    assert [got[u] for u in done] == ["ok"] * 5 and [got[u] for u in hang] == [None] * 6
    conn = open_db(db)
    last = conn.execute("SELECT status FROM runs WHERE command = 'fetch' ORDER BY id DESC").fetchone()
    assert last == ("interrupted",)
    conn.close()


def rows_no_total(path: Path, urls: list[str]) -> dict:
    conn = open_db(path)
    out = {}
    for u in urls:
        r = conn.execute("SELECT status FROM images WHERE url = ?", (u,)).fetchone()
        out[u] = r[0] if r else None
    conn.close()
    return out


# ---- decode memory -------------------------------------------------------------------------------

def big_png(path: Path, w: int, h: int) -> int:
    """An RGB PNG of w x h pixels, written row by row (a small file; no w x h buffer is ever made)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp, idat = zlib.compressobj(9), bytearray()
    row = bytearray(1 + 3 * w)
    for y in range(h):
        row[1] = y & 0xFF  # not all zeros: the first pixel's red counts the rows
        idat += comp.compress(bytes(row))
    idat += comp.flush()
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b""))
    path.write_bytes(data)
    return len(data)


PEAK = textwrap.dedent("""
    import io, json, resource, sys, threading
    from PIL import Image
    from wdb.fetch.limits import ByteBudget
    from wdb.fetch.probe import ImageProblem, probe

    body = open(sys.argv[1], "rb").read()
    budget = ByteBudget(int(sys.argv[2]))
    out = []

    def one():
        try:
            out.append(probe(body, budget=budget).width)
        except ImageProblem as e:
            out.append(e.status)

    warm = io.BytesIO()
    Image.new("RGB", (64, 64)).save(warm, "PNG")
    probe(warm.getvalue())  # lazy imports (the perceptual hash's) before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    threads = [threading.Thread(target=one) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"out": out, "peak_mib": (peak - base) / 1024}))
""")


def peak(png: Path, budget: int) -> dict:
    res = subprocess.run([sys.executable, "-c", PEAK, str(png), str(budget)], capture_output=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_decode_memory_is_bounded_per_image_and_in_total(tmp_path):
    # the held-out case: a ~200 KB PNG of 62 Mpx, under the pixel cap; four at once
    size = big_png(tmp_path / "62mpx.png", 7900, 7900)
    assert size < 400_000
    r = peak(tmp_path / "62mpx.png", 512 << 20)
    assert r["out"] == ["too_large"] * 4 and r["peak_mib"] < 64  # refused from the header, never decoded
    # under the per-image bound (16 Mpx RGB, 61 MiB decoded): four threads, a budget for two at a time
    big_png(tmp_path / "16mpx.png", 4000, 4000)
    r = peak(tmp_path / "16mpx.png", 128 << 20)
    assert r["out"] == [4000] * 4
    assert r["peak_mib"] < 200, r  # two decode buffers at a time; no full-size RGB or grey copies
