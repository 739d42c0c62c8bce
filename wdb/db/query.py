"""Query files (package data in wdb/db/queries/, or any .sql path): `-- title:` / `-- description:`
headers, then SQL with :parameters."""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Iterator

from ..errors import WdbError

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class UnknownQuery(WdbError):
    """No query file of that name."""


@dataclass
class QueryFile:
    name: str
    title: str
    description: str
    sql: str

    @property
    def params(self) -> list[str]:
        body = re.sub(r"--[^\n]*|'(?:[^']|'')*'", "", self.sql)
        return list(dict.fromkeys(_PARAM.findall(body)))


def query_dir() -> Traversable:
    return resources.files("wdb.db") / "queries"


def _files() -> list[Traversable]:
    return sorted((f for f in query_dir().iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


def load(path: Path | Traversable) -> QueryFile:
    text = path.read_text()
    meta = dict(re.findall(r"^--\s*(title|description):\s*(.*)$", text, re.M))
    return QueryFile(path.name[:-4] if path.name.endswith(".sql") else path.name, meta.get("title", path.stem), meta.get("description", ""), text)


def find(name_or_path: str) -> QueryFile:
    p = Path(name_or_path)
    if p.suffix == ".sql" and p.is_file():
        return load(p)
    q = query_dir() / f"{name_or_path}.sql"
    if "/" in name_or_path or not q.is_file():
        names = ", ".join(f.name[:-4] for f in _files())
        raise UnknownQuery(f"no query named {name_or_path!r}; known: {names}")
    return load(q)


def all_queries() -> list[QueryFile]:
    return [load(f) for f in _files()]


def run(conn: sqlite3.Connection, q: QueryFile, params: dict[str, str]) -> tuple[list[str], Iterator[tuple]]:
    missing = [p for p in q.params if p not in params]
    if missing:
        raise WdbError(f"query {q.name} needs -p {' -p '.join(m + ' VALUE' for m in missing)}")
    conn.execute("PRAGMA query_only = 1")
    cur = conn.execute(q.sql, {k: params[k] for k in q.params})
    return [d[0] for d in cur.description], iter(cur)
