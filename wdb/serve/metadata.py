"""Datasette metadata built in Python: descriptions from the migrations' comments, canned queries
from queries/*.sql, facets for the columns people filter on."""
from __future__ import annotations

import re
from pathlib import Path

from ..db import migration_files
from ..db.query import all_queries

_CREATE = re.compile(r"CREATE\s+(?:VIRTUAL\s+)?(TABLE|VIEW)\s+(\w+)", re.I)
_COLUMN = re.compile(r'^\s*"?(\w+)"?\s+[^-]*?--\s*(.+)$')
_VIEW_COLUMN = re.compile(r"(?:AS\s+|\.)(\w+),?\s*--\s*(.+)$", re.I)

FACETS = {
    "media": ["kind", "tag"],
    "media_items": ["kind", "domain", "lang", "alt_in_context", "archived"],
    "pages": ["domain", "lang", "http_status", "charset_source"],
    "archives": ["status", "compression"],
    "archived_media": ["mime"],
    "alt_matches": ["kind", "side"],
    "problems": ["kind"],
    "images": ["status", "source", "mime"],
    "clip_scores": ["text_source", "model_id"],
    "clip_image_status": ["status"],
    "span_examples": ["split", "label"],
    # curation: languages and other labels, duplicate status
    "text_signals": ["source", "signal", "label"],
    "page_signals": ["signal", "label"],
    "image_signals": ["signal", "label"],
    "dup_groups": ["method", "kind", "keep"],
}
LABELS = {"pages": "url", "archives": "name", "media": "url", "clip_models": "name"}


def describe_schema(folder: Path | None = None) -> dict[str, dict]:
    """{table: {"description": str, "columns": {col: str}}} from the SQL comments of the migrations."""
    out: dict[str, dict] = {}
    for f in migration_files(folder):
        comments: list[str] = []
        current = None
        for line in f.read_text().splitlines():
            s = line.strip()
            m = _CREATE.match(s)
            if m:
                # a table rebuilt by a migration is created as NAME_new, then renamed to NAME
                current = m.group(2).removesuffix("_new")
                out[current] = {"description": " ".join(comments), "columns": {}}
                comments = []
                continue
            if s.startswith("--"):
                if current is None:  # comments above a CREATE describe it
                    comments.append(s[2:].strip())
                continue
            if not s:  # a blank line ends a comment block and a statement
                comments, current = [], None
                continue
            if current:
                cm = (_COLUMN if not s.upper().startswith(("SELECT", "FROM")) else _VIEW_COLUMN).match(s) \
                    or _VIEW_COLUMN.search(s)
                if cm and cm.group(1).upper() not in ("PRIMARY", "UNIQUE", "FOREIGN"):
                    out[current]["columns"][cm.group(1)] = cm.group(2).strip()
            if s.endswith(";"):
                current = None
    return {k: v for k, v in out.items() if not k.endswith("_fts") or v["description"]}


def recipe_queries(taken: set[str] = frozenset()) -> dict:
    """Every built-in recipe as a canned query: the SQL select() runs (opted-out pairs excluded),
    an empty form field taking the recipe's default. Named `recipe_NAME` only where NAME is taken."""
    from .. import recipes

    out = {}
    for r in recipes.builtin():
        name = r.name if r.name not in taken else f"recipe_{r.name}"
        dflt = recipes.defaults(r)
        note = f" Empty fields take the defaults: {', '.join(f'{k}={v}' for k, v in dflt.items())}." if dflt else ""
        out[name] = {"sql": recipes.canned_sql(r), "title": f"Recipe: {r.title}",
                     "description": f"{r.description} Opted-out pairs (wdb optout) are excluded.{note} "
                                    f"Gallery: /-/wdb/gallery/{r.name}"}
    return out


def build_metadata(db_name: str) -> dict:
    tables = {}
    for name, info in describe_schema().items():
        t: dict = {}
        if info["description"]:
            t["description"] = info["description"]
        if info["columns"]:
            t["columns"] = info["columns"]
        if name in FACETS:
            t["facets"] = FACETS[name]
        if name in LABELS:
            t["label_column"] = LABELS[name]
        tables[name] = t
    queries = {
        q.name: {"sql": q.sql, "title": q.title, "description": q.description}
        for q in all_queries()
    }
    queries.update(recipe_queries(set(queries)))
    return {
        "title": "wdb",
        "description": "Web archives mined for image, audio and video items with their texts. "
                       "Open an item at /-/wdb/media/<id>.",
        "databases": {db_name: {"tables": tables, "queries": queries}},
    }
