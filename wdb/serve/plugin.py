"""Datasette plugin: media item pages, archived bytes, thumbnails in tables and query results."""
from __future__ import annotations

import asyncio
import sqlite3

from datasette import hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from ..warc.payload import MAX_SERVE_BYTES, read_payload
from .media_page import media_context

SQL_MAX_LENGTH = 32 << 20  # no single string/blob over 32 MB (bounds memory, e.g. randomblob)


def _db(datasette):
    return datasette.get_database()


@hookimpl
def prepare_connection(conn):
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQL_MAX_LENGTH)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)


async def media_view(datasette, request):
    media_id = int(request.url_vars["media_id"])
    db = _db(datasette)
    ctx = await db.execute_fn(lambda conn: media_context(conn, media_id))
    if ctx is None:
        return Response.html("no such media item", status=404)
    return Response.html(await datasette.render_template(
        "wdb_media.html",
        {"m": ctx, "database": db.name,
         "thumb_url": datasette.urls.path(f"/-/wdb/thumb/{media_id}"),
         "archived_url": datasette.urls.path(f"/-/wdb/archived/{ctx['archived_id']}") if ctx["archived_id"] else None},
        request=request))


async def _payload_response(row) -> Response:
    location, offset, length, inner, mime = row
    try:
        body, capped = await asyncio.get_running_loop().run_in_executor(
            None, read_payload, location, offset, length, inner, MAX_SERVE_BYTES)
    except (OSError, ValueError) as e:
        return Response.text(f"cannot read archived record: {e}", status=502)
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
               "Cache-Control": "max-age=3600"}
    if capped:
        headers["X-Wdb-Capped"] = str(MAX_SERVE_BYTES)
    return Response(body, content_type=mime or "application/octet-stream", headers=headers)


async def archived_view(datasette, request):
    res = await _db(datasette).execute(
        "SELECT a.location, x.\"offset\", x.length, x.inner, x.mime FROM archived_media x "
        "JOIN archives a ON a.id = x.archive_id WHERE x.id = ?", [int(request.url_vars["archived_id"])])
    row = res.first()
    if row is None:
        return Response.text("no such archived record", status=404)
    return await _payload_response(tuple(row))


async def thumb_view(datasette, request):
    """The item's archived bytes when an archive holds them, else a redirect to its URL."""
    res = await _db(datasette).execute(
        "SELECT a.location, x.\"offset\", x.length, x.inner, x.mime, m.url FROM media m "
        "LEFT JOIN archived_media x ON x.url_key = m.url_key LEFT JOIN archives a ON a.id = x.archive_id "
        "WHERE m.id = ? ORDER BY x.mime LIKE 'image/%' DESC, x.id LIMIT 1", [int(request.url_vars["media_id"])])
    row = res.first()
    if row is None:
        return Response.text("no such media item", status=404)
    if row[0] is None:
        return Response.redirect(row[5])
    return await _payload_response(tuple(row)[:5])


@hookimpl
def register_routes():
    return [
        (r"^/-/wdb/media/(?P<media_id>\d+)$", media_view),
        (r"^/-/wdb/thumb/(?P<media_id>\d+)$", thumb_view),
        (r"^/-/wdb/archived/(?P<archived_id>\d+)$", archived_view),
    ]


def _keys(row) -> list[str]:
    try:
        return list(row.keys())
    except AttributeError:
        return []


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    keys = _keys(row)
    if value is None:
        return None
    if column == "media_id":
        return Markup(f'<a href="{datasette.urls.path(f"/-/wdb/media/{int(value)}")}">{int(value)}</a>')
    media_id = None
    if table == "media" and "id" in keys:
        media_id = row["id"]
    elif "media_id" in keys:
        media_id = row["media_id"]
    is_image = ("kind" in keys and row["kind"] == "image") or column == "image_url"
    if media_id is not None and column in ("url", "image_url") and is_image:
        thumb = datasette.urls.path(f"/-/wdb/thumb/{int(media_id)}")
        page = datasette.urls.path(f"/-/wdb/media/{int(media_id)}")
        return Markup(f'<a href="{page}"><img src="{thumb}" loading="lazy" alt="" '
                      f'style="max-width:160px;max-height:120px"></a><br>{escape(value)}')
    if table == "archived_media" and column == "url" and "mime" in keys and "id" in keys:
        src = datasette.urls.path(f"/-/wdb/archived/{int(row['id'])}")
        mime = row["mime"] or ""
        if mime.startswith("image/"):
            tag = f'<img src="{src}" loading="lazy" alt="" style="max-width:160px;max-height:120px">'
        elif mime.startswith("audio/"):
            tag = f'<audio controls preload="none" src="{src}"></audio>'
        elif mime.startswith("video/"):
            tag = f'<video controls preload="none" width="240" src="{src}"></video>'
        else:
            return None
        return Markup(f"{tag}<br>{escape(value)}")
    return None
