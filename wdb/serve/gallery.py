"""`/-/wdb/gallery/<recipe>`: a built-in recipe's pairs as thumbnails with their text, text source
and scores; paged (`page`, `size`), filtered by score range (`score_min`, `score_max`: the recipe's
`score` column), the recipe's parameters as form fields (empty: its default). Pairs come from the
same wrapped SQL as select() (opted-out pairs excluded), under a time limit of TIME_LIMIT_MS. Every
value is escaped by the template (autoescape); only http(s) URLs become links."""
from __future__ import annotations

import math
import re
import sqlite3
import time
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from .. import recipes
from ..db.query import check_params
from ..errors import WdbError

PAGE_SIZE = 48
MAX_PAGE_SIZE = 200
MAX_PAGE = 100_000
TIME_LIMIT_MS = 10_000  # a recipe ranks or deduplicates its whole pool before its first pair (canned queries: 1 s)
SHOWN = ("media_id", "text", "text_source", "url", "page_url", "score")
_URL = re.compile(r"https?://[\x21-\x7e]+")


def _builtin(name: str):
    if not re.fullmatch(r"[a-z0-9_]{1,64}", name or ""):
        return None
    return next((r for r in recipes.builtin() if r.name == name), None)


def _number(args, key: str) -> float | None:
    raw = (args.get(key) or "").strip()
    if not raw:
        return None
    x = float(raw)  # ValueError: a 400 below
    if not math.isfinite(x):
        raise ValueError(raw)
    return x


def _int(args, key: str, default: int, low: int, high: int) -> int:
    raw = (args.get(key) or "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"\d{1,9}", raw):
        raise ValueError(raw)
    return max(low, min(high, int(raw)))


async def _error(datasette, request, recipe, message: str, status: int = 400) -> Response:
    return Response.html(await datasette.render_template(
        "wdb_gallery.html", {"error": message, "recipe": recipe, "items": [], "form": [], "all": recipes.builtin()},
        request=request), status=status)


async def gallery_view(datasette, request):
    recipe = _builtin(request.url_vars["recipe"])
    if recipe is None:
        return Response.text("no such recipe (built-in recipes only: wdb recipe list)", status=404)
    args = request.args
    given = {p: args.get(p) for p in recipe.params if (args.get(p) or "").strip()}
    try:
        smin, smax = _number(args, "score_min"), _number(args, "score_max")
        page = _int(args, "page", 1, 1, MAX_PAGE)
        size = _int(args, "size", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    except ValueError:
        return await _error(datasette, request, recipe, "score_min and score_max are numbers; page and size whole numbers")
    try:
        values = check_params(recipe, recipes.with_defaults(recipe, given))
    except WdbError as e:
        return await _error(datasette, request, recipe, str(e))
    sql = (f"SELECT * FROM (\n{recipes.wrapped(recipe).sql}\n) g\n"
           "WHERE (:_wdb_smin IS NULL OR g.score >= :_wdb_smin) AND (:_wdb_smax IS NULL OR g.score <= :_wdb_smax)\n"
           "LIMIT :_wdb_n OFFSET :_wdb_off")
    values.update(_wdb_smin=smin, _wdb_smax=smax, _wdb_n=size + 1, _wdb_off=(page - 1) * size)
    db = datasette.get_database()

    def page_rows(conn):
        """The page's rows, under TIME_LIMIT_MS (Datasette's own limit can only be lowered per query)."""
        deadline = time.monotonic() + TIME_LIMIT_MS / 1000
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
        try:
            return conn.execute(sql, values).fetchmany(size + 1)
        finally:
            conn.set_progress_handler(None, 1000)

    try:
        fetched = await db.execute_fn(page_rows)
    except sqlite3.OperationalError as e:
        if "interrupted" not in str(e):
            return await _error(datasette, request, recipe, f"recipe {recipe.name} failed: {' '.join(str(e).split())[:300]}")
        return await _error(datasette, request, recipe, f"the recipe took longer than {TIME_LIMIT_MS // 1000} s: count "
                            "it with `wdb recipe count`, or export it")
    except Exception as e:  # noqa: BLE001 - an SQL error of the recipe is a 400 line, not a 500
        return await _error(datasette, request, recipe, f"recipe {recipe.name} failed: {' '.join(str(e).split())[:300]}")
    rows = [dict(r) for r in fetched]
    more = len(rows) > size
    items = []
    for r in rows[:size]:
        mid = r.get("media_id")
        if not isinstance(mid, int):
            continue
        extra = [(k, v) for k, v in r.items() if k not in SHOWN and v is not None and not isinstance(v, bytes)]
        items.append({
            "media_id": mid, "text": str(r.get("text") or "")[:2000], "text_source": r.get("text_source"),
            "score": r.get("score"), "extra": extra[:8],
            "url": r.get("url") if isinstance(r.get("url"), str) and _URL.fullmatch(r["url"]) else None,
            "page_url": r.get("page_url") if isinstance(r.get("page_url"), str) and _URL.fullmatch(r["page_url"]) else None,
            "thumb": datasette.urls.path(f"/-/wdb/thumb/{mid}"), "media": datasette.urls.path(f"/-/wdb/media/{mid}"),
        })
    keep = {**given, **({"score_min": args.get("score_min")} if smin is not None else {}),
            **({"score_max": args.get("score_max")} if smax is not None else {}),
            **({"size": str(size)} if size != PAGE_SIZE else {})}
    base = datasette.urls.path(f"/-/wdb/gallery/{recipe.name}")
    dflt = recipes.defaults(recipe)
    return Response.html(await datasette.render_template("wdb_gallery.html", {
        "recipe": recipe, "items": items, "page": page, "size": size, "error": None, "all": recipes.builtin(),
        "form": [(p, given.get(p, ""), dflt.get(p, "")) for p in recipe.params],
        "score_min": args.get("score_min") or "", "score_max": args.get("score_max") or "",
        "prev": f"{base}?{urlencode({**keep, 'page': page - 1})}" if page > 1 else None,
        "next": f"{base}?{urlencode({**keep, 'page': page + 1})}" if more else None,
        "canned": datasette.urls.path(f"/{db.name}/{recipe.name}"), "first": (page - 1) * size + 1,
    }, request=request))
