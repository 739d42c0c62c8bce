"""The ratings page, `/-/wdb/ratings`: generated images side by side (base vs a fine-tuned run, same
prompt, seed and sampling settings) with a form to rate five aspects 0-5.

Writing is off unless `wdb serve --ratings` was given. A POST is taken only when it is same-origin
(Origin / Sec-Fetch-Site), carries Datasette's CSRF cookie and form token (asgi-csrf checks that
they match; it skips requests without cookies, so the cookie is required here), and comes from a
Datasette actor or carries the server's ratings token. Rows are written through wdb's own
connection (Datasette's stay read-only), whose authorizer allows INSERT into `sd_ratings` and
nothing else.
"""
from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
import threading
from urllib.parse import urlencode, urlsplit

from datasette.utils.asgi import Response

from ..db import connect, now, transaction
from ..sd.report import ASPECTS

PAGE_SIZE = 10
MAX_FORM_BYTES = 64 << 10
_FIELD = re.compile(r"r\.([0-9]{1,18})\.([a-z]{1,20})")
_lock = threading.Lock()


def _only_ratings(action, arg1, arg2, db_name, source):
    """The writer's authorizer: reads, transactions and INSERT INTO sd_ratings; everything else denied."""
    if action in (sqlite3.SQLITE_READ, sqlite3.SQLITE_SELECT, sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_FUNCTION):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_INSERT and arg1 == "sd_ratings":
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def ratings_connection(db_path: str) -> sqlite3.Connection:
    """wdb's connection for ratings: it can insert sd_ratings rows and write nothing else."""
    conn = connect(db_path)
    conn.set_authorizer(_only_ratings)
    return conn


def write_ratings(db_path: str, rater: str, rows: list[tuple[int, str, int]]) -> int:
    """Insert (image_id, aspect, value) rows for rater in one transaction; the number written."""
    with _lock:
        conn = ratings_connection(db_path)
        try:
            at = now()
            with transaction(conn):
                conn.executemany("INSERT INTO sd_ratings (image_id, rater, aspect, value, rated_at) VALUES (?,?,?,?,?)",
                                 [(i, rater, a, v, at) for i, a, v in rows])
        finally:
            conn.close()
    return len(rows)


def _settings(datasette) -> tuple[str | None, str | None]:
    """(ratings token, database path); token None: writing is off."""
    return getattr(datasette, "wdb_ratings_token", None), getattr(datasette, "wdb_db_path", None)


PAIRS = """
SELECT b.id, t.id, p.prompt, p.kind, p.grp, p.level, t.seed
FROM sd_images t
JOIN sd_images b ON b.prompt_id = t.prompt_id AND b.seed = t.seed AND b.config = t.config AND b.base = t.base
                AND b.sd_run_id = 0
JOIN sd_prompts p ON p.id = t.prompt_id
WHERE t.sd_run_id = ? ORDER BY p.id, t.seed LIMIT ? OFFSET ?"""


def _int_arg(request, name: str, default: int) -> int:
    raw = request.args.get(name) or ""
    return int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else default


async def ratings_view(datasette, request):
    if request.method == "POST":
        return await _post(datasette, request)
    db = datasette.get_database()
    run = _int_arg(request, "run", 0)
    if not run:
        row = (await db.execute("SELECT max(sd_run_id) FROM sd_images")).first()
        run = row[0] or 0
    page = _int_arg(request, "page", 0)
    pairs = [tuple(r) for r in (await db.execute(PAIRS, [run, PAGE_SIZE + 1, page * PAGE_SIZE])).rows] if run else []
    runs = [r[0] for r in (await db.execute("SELECT DISTINCT sd_run_id FROM sd_images WHERE sd_run_id > 0 "
                                            "ORDER BY 1")).rows]
    token, _ = _settings(datasette)
    given = request.args.get("token") or ""
    link = lambda p: "?" + urlencode({"run": run, "page": p, **({"token": given} if given else {})})  # noqa: E731
    return Response.html(await datasette.render_template("wdb_ratings.html", {
        "pairs": pairs[:PAGE_SIZE], "run": run, "runs": runs, "page": page, "aspects": ASPECTS,
        "writable": token is not None, "token": given, "actor_id": (request.actor or {}).get("id"),
        "saved": _int_arg(request, "saved", -1), "prev": link(page - 1) if page else None,
        "next": link(page + 1) if len(pairs) > PAGE_SIZE else None,
        "image_url": lambda i: datasette.urls.path(f"/-/wdb/sd-image/{i}")}, request=request))


def _refuse(status: int, text: str) -> Response:
    return Response.text(text, status=status)


def _same_origin(request) -> bool:
    headers = request.headers
    site = headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin:
        if origin == "null":
            return False
        return urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower()
    return True


async def _post(datasette, request):
    token, db_path = _settings(datasette)
    if token is None or not db_path:
        return _refuse(403, "ratings are read-only here: start `wdb serve DB --ratings` to rate")
    if not _same_origin(request):
        return _refuse(403, "cross-site POST refused")
    if "ds_csrftoken" not in request.cookies:
        return _refuse(403, "CSRF cookie missing: open the ratings page and submit its form")
    body = await request.post_body()
    if len(body) > MAX_FORM_BYTES:
        return _refuse(400, "form too large")
    from urllib.parse import parse_qsl

    form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    fields = dict(form)
    actor = (request.actor or {}).get("id")
    if actor:
        rater = str(actor)[:64]
    elif secrets.compare_digest((fields.get("token") or "").encode(), token.encode()):
        rater = (fields.get("rater") or "").strip()[:64]
        if not rater:
            return _refuse(400, "give your name as rater")
    else:
        return _refuse(403, "a ratings token (or a signed-in Datasette actor) is required to rate")
    rows = []
    for k, v in form:
        m = _FIELD.fullmatch(k)
        if not m or v == "":
            continue
        if m.group(2) not in ASPECTS or not re.fullmatch(r"[0-5]", v):
            return _refuse(400, f"bad rating {k[:40]}={v[:10]!r}: aspects {', '.join(ASPECTS)}, values 0-5")
        rows.append((int(m.group(1)), m.group(2), int(v)))
    if not rows:
        return _refuse(400, "no rating given")
    ids = sorted({i for i, _, _ in rows})
    db = datasette.get_database()
    found = (await db.execute(f"SELECT count(*) FROM sd_images WHERE id IN ({','.join('?' * len(ids))})", ids)).first()
    if found[0] != len(ids):
        return _refuse(400, "unknown generated image")
    n = await asyncio.get_running_loop().run_in_executor(None, write_ratings, db_path, rater, rows)
    back = {"run": fields.get("run", ""), "page": fields.get("page", ""), "saved": n}
    if not actor:
        back["token"] = token
    return Response.redirect(datasette.urls.path("/-/wdb/ratings") + "?" + urlencode(back), status=303)


async def sd_image_view(datasette, request):
    """The PNG of a generated image, from its pointer (sha256 checked)."""
    from .plugin import _serve_pointer

    raw = request.url_vars["image_id"]
    key = int(raw) if re.fullmatch(r"[0-9]{1,18}", raw) else None
    return await _serve_pointer(datasette, "SELECT location, \"offset\", length, inner, mime, sha256 FROM sd_images "
                                "WHERE id = ?", key, "no such generated image", allow_capped=False)


def routes() -> list:
    return [(r"^/-/wdb/ratings$", ratings_view), (r"^/-/wdb/sd-image/(?P<image_id>[^/]+)$", sd_image_view)]
