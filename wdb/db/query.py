"""Query files (package data in wdb/db/queries/, or any .sql path): `-- title:` / `-- description:`
headers, then SQL with :parameters.

A file declares its parameters' types in a `-- params:` header, comma-separated `NAME TYPE` pairs
where TYPE is `integer`, `real`, `text` or a list of allowed values (`kind image|audio|video|embed`).
A parameter the header leaves out takes its type from a `CAST(:name AS INTEGER)` (or REAL) in the
SQL, else it is text. `run()` checks and converts every value before SQLite sees it, so
`-p min_words five` is an error instead of a query that silently returns every row, and an SQL error
is a one-line QueryError instead of a traceback.

Queries that read the figures `wdb index` precomputes (page_stats, alt_words, domain_stats,
media_url_stats) refuse to run while those lag behind the pages, rather than answer for part of
the database.
"""
from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Iterator

from ..errors import BadParameter, QueryError, WdbError

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_CAST = re.compile(r"CAST\s*\(\s*:([A-Za-z_]\w*)\s+AS\s+(INTEGER|INT|REAL|FLOAT|DOUBLE|NUMERIC|TEXT)\s*\)", re.I)
_INT = re.compile(r"[+-]?\d+")
_FIGURES = re.compile(r"\b(page_stats|alt_words|domain_stats|media_url_stats)\b")
TYPES = ("integer", "real", "text")


class UnknownQuery(WdbError):
    """No query file of that name."""


@dataclass
class QueryFile:
    name: str
    title: str
    description: str
    sql: str
    types: dict[str, str] = field(default_factory=dict)  # declared in `-- params:`: integer | real | text | a|b|c

    @property
    def params(self) -> list[str]:
        body = re.sub(r"--[^\n]*|'(?:[^']|'')*'", "", self.sql)
        return list(dict.fromkeys(_PARAM.findall(body)))

    def param_type(self, name: str) -> str:
        """integer, real, text, or the allowed values joined by `|`."""
        if name in self.types:
            return self.types[name]
        for p, t in _CAST.findall(re.sub(r"--[^\n]*", "", self.sql)):
            if p == name:
                return "integer" if t.upper() in ("INTEGER", "INT") else "real" if t.upper() != "TEXT" else "text"
        return "text"


def _declared(name: str, text: str) -> dict[str, str]:
    types: dict[str, str] = {}
    for line in re.findall(r"^--\s*params:\s*(.*)$", text, re.M):
        for item in filter(None, (s.strip() for s in line.split(","))):
            parts = item.split()
            if len(parts) != 2 or not (parts[1].lower() in TYPES or "|" in parts[1]):
                raise QueryError(f"query {name}: bad -- params: entry {item!r} (NAME integer|real|text|a|b|c)")
            types[parts[0]] = parts[1].lower() if parts[1].lower() in TYPES else parts[1]
    return types


def convert(q: QueryFile, name: str, value) -> int | float | str:
    """The value of one parameter as its declared type; BadParameter if it is not one."""
    kind = q.param_type(name)
    s = value.strip() if isinstance(value, str) else value
    if kind == "integer":
        if isinstance(s, int) and not isinstance(s, bool):
            return s
        if isinstance(s, str) and _INT.fullmatch(s):
            return int(s)
        raise BadParameter(f"{name} must be an integer, got {value!r}")
    if kind == "real":
        try:
            x = float(s) if isinstance(s, (str, int, float)) and not isinstance(s, bool) else math.nan
        except ValueError:
            x = math.nan
        if not math.isfinite(x):
            raise BadParameter(f"{name} must be a number, got {value!r}")
        return x
    s = str(value)
    if kind != "text" and s not in kind.split("|"):
        raise BadParameter(f"{name} must be one of {', '.join(kind.split('|'))}, got {value!r}")
    return s


def query_dir() -> Traversable:
    return resources.files("wdb.db") / "queries"


def _files() -> list[Traversable]:
    return sorted((f for f in query_dir().iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


def load(path: Path | Traversable) -> QueryFile:
    text = path.read_text()
    meta = dict(re.findall(r"^--\s*(title|description):\s*(.*)$", text, re.M))
    name = path.name[:-4] if path.name.endswith(".sql") else path.name
    return QueryFile(name, meta.get("title", path.stem), meta.get("description", ""), text, _declared(name, text))


def locate(name_or_path: str, folder: Traversable) -> Path | Traversable | None:
    """A .sql file given by its path, or `NAME.sql` in a package folder; None when there is neither."""
    p = Path(name_or_path)
    if p.suffix == ".sql" and p.is_file():
        return p
    f = folder / f"{name_or_path}.sql"
    return f if "/" not in name_or_path and f.is_file() else None


def find(name_or_path: str) -> QueryFile:
    f = locate(name_or_path, query_dir())
    if f is None:
        names = ", ".join(f.name[:-4] for f in _files())
        raise UnknownQuery(f"no query named {name_or_path!r}; known: {names}")
    return load(f)


def all_queries() -> list[QueryFile]:
    return [load(f) for f in _files()]


def _one_line(q: QueryFile, e: sqlite3.Error) -> QueryError:
    msg = " ".join(str(e).split()) or type(e).__name__
    return QueryError(f"query {q.name} failed: {msg}")


def _rows(q: QueryFile, conn: sqlite3.Connection, cur: sqlite3.Cursor, query_only: int) -> Iterator[tuple]:
    try:
        yield ()  # primed by run(), so that closing an unread iterator still runs the finally
        yield from cur
    except sqlite3.Error as e:  # raised while stepping, after the first rows
        raise _one_line(q, e) from e
    finally:
        cur.close()
        conn.execute(f"PRAGMA query_only = {query_only}")


def check_params(q: QueryFile, params: dict) -> dict:
    """The parameters converted to their types; BadParameter for a missing, unknown or ill-typed one.

    For any caller that runs a query file itself (a web form, as Datasette's canned queries are).
    """
    missing = [p for p in q.params if p not in params]
    if missing:
        raise BadParameter(f"query {q.name} needs -p {' -p '.join(m + ' VALUE' for m in missing)}")
    unknown = [p for p in params if p not in q.params]
    if unknown:
        takes = f"it takes {', '.join(q.params)}" if q.params else "it takes none"
        raise BadParameter(f"query {q.name} has no parameter {', '.join(unknown)}; {takes}")
    return {k: convert(q, k, params[k]) for k in q.params}


def run(conn: sqlite3.Connection, q: QueryFile, params: dict) -> tuple[list[str], Iterator[tuple]]:
    """Check and convert the parameters, run the query read-only; (column names, row iterator).

    The connection is query-only until the rows have been read (or the iterator is closed).

    BadParameter for a missing, unknown or ill-typed parameter; QueryError for an SQL error (also
    one raised while the rows are being read) or figures that `wdb index` has not brought up to date.
    """
    values = check_params(q, params)
    query_only = conn.execute("PRAGMA query_only").fetchone()[0]
    try:
        if _FIGURES.search(re.sub(r"--[^\n]*", "", q.sql)):
            from .indexes import figures_behind

            behind = figures_behind(conn)
            if behind:
                raise QueryError(f"query {q.name} reads figures that `wdb index` computes, and {behind:,} pages "
                                 "are not in them yet: run `wdb index` on this database first")
        conn.execute("PRAGMA query_only = 1")
        cur = conn.execute(q.sql, values)
    except sqlite3.Error as e:
        conn.execute(f"PRAGMA query_only = {query_only}")
        raise _one_line(q, e) from e
    rows = _rows(q, conn, cur, int(query_only))
    next(rows)
    return [d[0] for d in cur.description or ()], rows
