"""Datasette plugin: media item pages, item bytes, thumbnails in tables and query results, and the
guards of a server that answers anonymous requests (Host names, response and result sizes, ids,
headers, SQL functions, one-line error logs)."""
from __future__ import annotations

import asyncio
import hashlib
import html
import ipaddress
import re
import sqlite3
import sys
import traceback
import weakref
from urllib.parse import quote

from datasette import hookimpl
from datasette.utils.asgi import Base400, Response
from datasette.views.base import DatasetteError
from markupsafe import Markup, escape

from ..warc.payload import MAX_SERVE_BYTES, read_payload
from .gallery import gallery_view
from .media_page import media_context

SQL_MAX_LENGTH = 16 << 20  # no single string/blob over 16 MB in a served query (page texts stay under 11 MB)
MAX_RESULT_BYTES = 16 << 20  # the values one query returns, summed (max_returned_rows does not bound bytes)
MAX_RESPONSE_BYTES = 24 << 20  # body of one response; the byte routes serve at most MAX_SERVE_BYTES
CELL_MAX_CHARS = 64 << 10  # a longer text cell is cut in HTML views (row pages included)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_ID = re.compile(r"[0-9]{1,18}")  # ids in /-/wdb/ routes; anything else is a 404
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_DENIED_FUNCTIONS = {"fts3_tokenizer"}  # returns / installs native pointers


class ResultTooLarge(sqlite3.OperationalError):
    pass


def _db(datasette):
    return datasette.get_database()


# ---- connections: value and result sizes, denied functions ------------------------------------

_spent: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _row_factory(cursor, row):
    """sqlite3.Row, refusing a query whose values add up to more than MAX_RESULT_BYTES."""
    n = sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in row)
    total = _spent.get(cursor, 0) + n
    if total > MAX_RESULT_BYTES:
        raise ResultTooLarge(f"query result over {MAX_RESULT_BYTES >> 20} MB: ask for fewer rows (_size) "
                             f"or columns (_col), or shorter values (substr)")
    _spent[cursor] = total
    return sqlite3.Row(cursor, row)


def _authorizer(action, arg1, arg2, db_name, source):
    if action == sqlite3.SQLITE_FUNCTION and arg2 and arg2.lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@hookimpl
def prepare_connection(conn):
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQL_MAX_LENGTH)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_authorizer)
    conn.row_factory = _row_factory  # Datasette sets sqlite3.Row just before this hook


# ---- ASGI: Host names and response sizes -------------------------------------------------------

def host_allowed(host: str | None, allowed: frozenset[str]) -> bool:
    """A Host header names this server: an IP literal (DNS rebinding needs a name) or an allowed name."""
    if host is None:
        return True  # HTTP/1.0 without Host: no browser sends that
    h = host.strip().lower()
    if h.startswith("["):
        name = h[: h.find("]") + 1] if "]" in h else h
    else:
        name = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    name = name.rstrip(".")
    if name in allowed:
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


async def _send_text(send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


_CANNED: dict | None = None


def _canned_files() -> dict:
    """{canned query name: its QueryFile} for wdb's query files and built-in recipes (as metadata names them)."""
    global _CANNED
    if _CANNED is None:
        from .. import recipes
        from ..db.query import all_queries

        files = {q.name: q for q in all_queries()}
        for r in recipes.builtin():
            files[r.name if r.name not in files else f"recipe_{r.name}"] = r
        _CANNED = files
    return _CANNED


def _bad_canned_param(path: str, query_string: bytes) -> str | None:
    """Why a canned query's form value is not of the type its file declares (None: fine or not one).

    Datasette passes every form value as text: `min_words=five` would reach SQLite as a string and
    `CAST('five' AS INTEGER)` is 0, so the query would silently answer for every row."""
    parts = path.strip("/").split("/")
    if len(parts) != 2 or not query_string:
        return None
    name = parts[1].rsplit(".", 1)[0] if parts[1].endswith((".json", ".csv")) else parts[1]
    q = _canned_files().get(name)
    if q is None:
        return None
    from urllib.parse import parse_qsl

    from ..db.query import convert
    from ..errors import BadParameter

    params = set(q.params)
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in params and value.strip():  # an empty field: the form's first view (or a recipe default)
            try:
                convert(q, key, value)
            except BadParameter as e:
                return f"query {name}: {e}"
    return None


def _guard(app, datasette):
    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        # read per request: Datasette builds its app (and ds.client's) inside Datasette()
        allowed = getattr(datasette, "wdb_allowed_hosts", frozenset(LOCAL_HOSTS))
        cap = getattr(datasette, "wdb_max_response_bytes", MAX_RESPONSE_BYTES)
        hosts = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"]
        if len(hosts) > 1 or not host_allowed(hosts[0] if hosts else None, allowed):
            shown = ascii(hosts[0][:100]) if hosts else "(several)"
            return await _send_text(send, 400, f"wdb serve answers only {', '.join(sorted(allowed))} "
                                               f"(and IP addresses), not Host {shown}")
        bad = _bad_canned_param(scope.get("path", ""), scope.get("query_string", b""))
        if bad:
            return await _send_text(send, 400, bad)
        held = None
        sent = 0
        cut = False

        async def capped(message):
            nonlocal held, sent, cut
            if cut:
                return
            if message["type"] == "http.response.start":
                held = message  # sent with the first body chunk, or replaced if that is over the cap
                return
            if message["type"] != "http.response.body":
                return await send(message)
            body = message.get("body", b"")
            if sent + len(body) > cap:
                cut = True
                if held is not None:
                    held = None
                    return await _send_text(send, 400, f"response over {cap:,} bytes: ask for fewer rows "
                                                       f"(_size) or columns (_col)")
                note = f"\n[wdb serve: response cut at {cap:,} bytes]\n".encode()
                return await send({"type": "http.response.body", "body": body[: cap - sent] + note,
                                   "more_body": False})
            if held is not None:
                await send(held)
                held = None
            sent += len(body)
            await send(message)

        await app(scope, receive, capped)

    return guarded


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        return _guard(app, datasette)

    return wrap


# ---- errors: one log line, no traceback with locals on stdout ----------------------------------

def _plain(message) -> str:
    text = html.unescape(re.sub(r"<textarea.*?</textarea>|<[^>]+>", " ", str(message), flags=re.S))
    return " ".join(text.split())[:200]


@hookimpl(tryfirst=True)
def handle_exception(datasette, request, exception):
    """Datasette's default handler prints a rich traceback (with locals: 44 KB for one canned-query
    timeout) to stdout; this one logs one line to stderr and renders the same error page."""
    async def inner():
        title = None
        if isinstance(exception, Base400):
            status, info, message = exception.status, {}, exception.args[0]
        elif isinstance(exception, DatasetteError):
            status, info, message, title = exception.status, exception.error_dict, exception.message, exception.title
            if exception.message_is_html:
                message = Markup(message)
        else:
            status, info, message = 500, {}, str(exception)
        what = title or type(exception).__name__
        if status >= 500 and exception.__traceback__ is not None:  # where: the innermost frame
            frame = traceback.extract_tb(exception.__traceback__)[-1]
            what += f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
        sys.stderr.write(f"wdb serve: {status} {request.method} {ascii(request.path)[1:-1][:200]}: "
                         f"{what}: {_plain(message)}\n")
        sys.stderr.flush()
        info.update({"ok": False, "error": message, "status": status, "title": title})
        if request.path.split("?")[0].endswith(".json"):
            return Response.json(info, status=status)
        template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
        return Response.html(await template.render_async(dict(
            info, urls=datasette.urls, app_css_hash=datasette.app_css_hash(), menu_links=lambda: [])),
            status=status)

    return inner


def quiet_default_exception_handler() -> None:
    """Take Datasette's default handle_exception out: it prints before ours answers."""
    from datasette.plugins import pm

    default = pm.get_plugin("datasette.handle_exception")
    if default is not None:
        pm.unregister(default)


# ---- routes: media pages and bytes ------------------------------------------------------------

def _route_id(request, key: str) -> int | None:
    raw = request.url_vars[key]
    return int(raw) if _ID.fullmatch(raw) else None


def safe_mime(mime: str | None) -> str:
    """A stored media type as a header value: type/subtype tokens only, else application/octet-stream."""
    m = (mime or "").split(";", 1)[0].strip().lower()
    return m if _MIME.fullmatch(m) else "application/octet-stream"


def _safe_url(url: str | None) -> str | None:
    if not url or not re.fullmatch(r"https?://[\x21-\x7e]+", url):
        return None
    return url


async def media_view(datasette, request):
    media_id = _route_id(request, "media_id")
    if media_id is None:
        return Response.text("no such media item", status=404)
    db = _db(datasette)
    ctx = await db.execute_fn(lambda conn: media_context(conn, media_id))
    if ctx is None:
        return Response.text("no such media item", status=404)
    return Response.html(await datasette.render_template(
        "wdb_media.html",
        {"m": ctx, "database": db.name,
         "thumb_url": datasette.urls.path(f"/-/wdb/thumb/{media_id}"),
         "archived_url": datasette.urls.path(f"/-/wdb/archived/{ctx['archived_id']}") if ctx["archived_id"] else None},
        request=request))


async def _payload_response(location, offset, length, inner, mime, sha256, *, allow_capped: bool) -> Response:
    """The payload at a WARC pointer, if its sha256 is the stored one (502 otherwise, never other bytes)."""
    try:
        body, capped = await asyncio.get_running_loop().run_in_executor(
            None, read_payload, location, offset, length, inner, MAX_SERVE_BYTES)
    except (OSError, ValueError, EOFError) as e:
        return Response.text(f"cannot read the record: {_plain(e)[:150]}", status=502)
    except Exception as e:  # noqa: BLE001 - a damaged record is a 502, not a 500
        return Response.text(f"cannot read the record: {type(e).__name__}: {_plain(e)[:150]}", status=502)
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
               "Cache-Control": "max-age=3600"}
    if capped:
        if not allow_capped:
            return Response.text(f"payload over {MAX_SERVE_BYTES >> 20} MB: not served", status=502)
        headers["X-Wdb-Capped"] = str(MAX_SERVE_BYTES)  # a prefix: its sha256 cannot be checked
    elif sha256 and hashlib.sha256(body).hexdigest() != sha256:
        return Response.text("the bytes at this record's pointer do not match its sha256: not served", status=502)
    return Response(body, content_type=safe_mime(mime), headers=headers)


async def _serve_pointer(datasette, sql: str, key, missing: str, allow_capped: bool) -> Response:
    """The payload at the pointer (location, offset, length, inner, mime, sha256) that `sql` finds
    for `key`; 404 with `missing` when the key is absent or finds nothing."""
    row = None
    if key is not None:
        row = (await _db(datasette).execute(sql, [key])).first()
    if row is None:
        return Response.text(missing, status=404)
    return await _payload_response(*tuple(row), allow_capped=allow_capped)


async def archived_view(datasette, request):
    return await _serve_pointer(
        datasette, "SELECT a.location, x.\"offset\", x.length, x.inner, x.mime, x.sha256 FROM archived_media x "
        "JOIN archives a ON a.id = x.archive_id WHERE x.id = ?", _route_id(request, "archived_id"),
        "no such archived record", allow_capped=True)


async def thumb_view(datasette, request):
    """The item's bytes (media_bytes: an archive's record first, then a `wdb fetch` download), else a
    redirect to its URL."""
    media_id = _route_id(request, "media_id")
    if media_id is None:
        return Response.text("no such media item", status=404)
    db = _db(datasette)
    res = await db.execute(
        "SELECT location, \"offset\", length, inner, mime, sha256 FROM media_bytes WHERE media_id = ? "
        "ORDER BY source = 'archive' DESC LIMIT 1", [media_id])
    row = res.first()
    if row is not None:
        return await _payload_response(*tuple(row), allow_capped=False)
    res = await db.execute("SELECT url FROM media WHERE id = ?", [media_id])
    item = res.first()
    if item is None:
        return Response.text("no such media item", status=404)
    url = _safe_url(item[0])
    if url is None:
        return Response.text("no bytes for this item, and its URL is not a plain http(s) URL", status=404)
    return Response.redirect(url)


async def image_view(datasette, request):
    """The bytes of an `images` row (the archive record or the `wdb fetch` download it points to)."""
    return await _serve_pointer(
        datasette, "SELECT location, \"offset\", length, inner, mime, sha256 FROM images "
        "WHERE url_key = ? AND status = 'ok' AND location IS NOT NULL", request.args.get("url_key") or None,
        "no such image", allow_capped=False)


@hookimpl
def register_routes():
    from .ratings import routes as rating_routes

    return [
        (r"^/-/wdb/image$", image_view),
        (r"^/-/wdb/media/(?P<media_id>[^/]+)$", media_view),
        (r"^/-/wdb/thumb/(?P<media_id>[^/]+)$", thumb_view),
        (r"^/-/wdb/archived/(?P<archived_id>[^/]+)$", archived_view),
        (r"^/-/wdb/gallery/(?P<recipe>[^/]+)$", gallery_view),
        *rating_routes(),
    ]


# ---- cells ------------------------------------------------------------------------------------

def _keys(row) -> list[str]:
    try:
        return list(row.keys())
    except AttributeError:
        return []


def _raw(value):
    """A cell's value; Datasette passes an expanded foreign key as {"value": ..., "label": ...}."""
    return value.get("value") if isinstance(value, dict) else value


def _as_id(value) -> int | None:
    value = _raw(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 1 << 62 else None
    if isinstance(value, str) and _ID.fullmatch(value):
        return int(value)
    return None


def _get(row, keys, name):
    return _raw(row[name]) if name in keys else None


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    keys = _keys(row)
    if value is None:
        return None
    if isinstance(value, str) and len(value) > CELL_MAX_CHARS:
        cut = datasette.setting("truncate_cells_html") or 2048
        return Markup(f"{escape(value[:cut])}… <em>({len(value):,} characters; the .json has them all)</em>")
    if column == "media_id":
        mid = _as_id(value)
        if mid is None:
            return None
        label = value.get("label") if isinstance(value, dict) else None
        extra = f" {escape(str(label)[:80])}" if label and str(label) != str(mid) else ""
        return Markup(f'<a href="{datasette.urls.path(f"/-/wdb/media/{mid}")}">{mid}</a>{extra}')
    media_id = None
    if table == "media" and "id" in keys:
        media_id = _as_id(row["id"])
    elif "media_id" in keys:
        media_id = _as_id(row["media_id"])
    is_image = _get(row, keys, "kind") == "image" or column == "image_url"
    if media_id is not None and column in ("url", "image_url") and is_image and isinstance(value, str):
        thumb = datasette.urls.path(f"/-/wdb/thumb/{media_id}")
        page = datasette.urls.path(f"/-/wdb/media/{media_id}")
        return Markup(f'<a href="{page}"><img src="{thumb}" loading="lazy" alt="" '
                      f'style="max-width:160px;max-height:120px"></a><br>{escape(value)}')
    if table == "archived_media" and column == "url" and "mime" in keys and "id" in keys:
        aid = _as_id(row["id"])
        if aid is None:
            return None
        src = datasette.urls.path(f"/-/wdb/archived/{aid}")
        mime = safe_mime(_get(row, keys, "mime"))
        if mime.startswith("image/"):
            tag = f'<img src="{src}" loading="lazy" alt="" style="max-width:160px;max-height:120px">'
        elif mime.startswith("audio/"):
            tag = f'<audio controls preload="none" src="{src}"></audio>'
        elif mime.startswith("video/"):
            tag = f'<video controls preload="none" width="240" src="{src}"></video>'
        else:
            return None
        return Markup(f"{tag}<br>{escape(value)}")
    if table == "images" and column == "url" and _get(row, keys, "status") == "ok" and "url_key" in keys:
        key = _get(row, keys, "url_key")
        if isinstance(key, str):
            src = datasette.urls.path(f"/-/wdb/image?url_key={quote(key, safe='')}")
            return Markup(f'<img src="{src}" loading="lazy" alt="" style="max-width:160px;max-height:120px">'
                          f"<br>{escape(value)}")
    return None
