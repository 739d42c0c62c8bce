"""Recipes: named SQL files that select a training subset as (media item, text, text source) rows.

A recipe is a query file (see wdb.db.query) whose rows have at least the columns in RECIPE_COLUMNS,
one row per pair. Built-in recipes are package data in wdb/recipes/builtin/; a user's recipe is any
.sql path. Its headers:

    -- title: one line
    -- description: one line, citing the rule the recipe reproduces
    -- params: min_score real, model text          (types, as for query files)
    -- defaults: min_score=0.28, model=ViT-B-32/openai   (a value may hold commas: a, b=x,y)

and each condition a pair must pass on a line of its own, beginning with AND and tagged with a rule
name (and, after it, what the rule keeps):

      AND m.region NOT IN ('nav', 'footer')   -- rule: region: not in a boilerplate region

`wdb recipe diff` turns rules off one at a time to say which one drops a pair; a rule's line must
therefore leave valid SQL when it is replaced by `AND 1`. A recipe's pairs are keyed by
(media_id, text_source).

`select()` is the one way every consumer (recipe count/diff, exports, the gallery, the Stable
Diffusion loop) reads a recipe's pairs, so that rules every recipe must obey are applied in one
place: it wraps the recipe's SQL so that no pair of an opted-out item (view `optout_media`) is ever
returned. The Datasette canned query of a recipe is the same wrapped SQL.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Iterator

from ..db import query
from ..db.query import QueryFile
from ..errors import QueryError, WdbError

RECIPE_COLUMNS = ("media_id", "text", "text_source")
MAX_RECIPE_BYTES = 1 << 20  # a recipe file larger than this is not a recipe

_RULE = re.compile(r"^(?P<indent>[ \t]*)(?P<cond>.*?)--\s*rule:\s*(?P<name>[A-Za-z_][\w-]*)\s*:?\s*(?P<about>.*)$")
_DEFAULTS = re.compile(r"^--\s*defaults:\s*(.*)$", re.M)
_COMMENT_OR_STRING = re.compile(r"(--[^\n]*|'(?:[^']|'')*')")


class UnknownRecipe(WdbError):
    """No recipe of that name."""


@dataclass(frozen=True)
class Rule:
    name: str
    about: str     # what the rule keeps (the text after its name)
    line: int      # 0-based line index in the recipe's SQL
    condition: str  # the SQL after AND


def recipe_dir() -> Traversable:
    return resources.files("wdb.recipes") / "builtin"


def builtin() -> list[QueryFile]:
    """The built-in recipes, read and checked once per process (package data does not change)."""
    return list(_builtin())


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[QueryFile, ...]:
    files = sorted((f for f in recipe_dir().iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return tuple(_load(f) for f in files)


def _load(path: Path | Traversable) -> QueryFile:
    """A recipe file, checked: one-line QueryError for anything that is not a usable recipe."""
    name = path.name
    try:
        if isinstance(path, Path) and path.stat().st_size > MAX_RECIPE_BYTES:
            raise QueryError(f"recipe {name}: over {MAX_RECIPE_BYTES >> 20} MiB: not a recipe file")
        q = query.load(path)
    except UnicodeDecodeError as e:
        raise QueryError(f"recipe {name}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise QueryError(f"recipe {name}: cannot read it: {e.strerror or e}") from e
    rules(q)
    defaults(q, check=True)
    return q


def find(name_or_path: str) -> QueryFile:
    """A built-in recipe by name, or a user's recipe by its .sql path."""
    f = query.locate(name_or_path, recipe_dir())
    if f is None:
        names = ", ".join(r.name for r in builtin())
        raise UnknownRecipe(f"no recipe named {name_or_path!r}; built in: {names} (or give a .sql path)")
    return _load(f)


def rules(recipe: QueryFile) -> list[Rule]:
    """The recipe's tagged conditions, in file order; QueryError for a malformed or repeated one."""
    out: list[Rule] = []
    for i, line in enumerate(recipe.sql.splitlines()):
        if "rule:" not in line:
            continue
        m = _RULE.match(line)
        if not m or line.lstrip().startswith("--"):
            if re.search(r"--\s*rule:", line) and not line.lstrip().startswith("--"):
                raise QueryError(f"recipe {recipe.name}: line {i + 1}: a rule needs a name: -- rule: NAME")
            continue
        cond = m["cond"].strip()
        if not re.match(r"AND\s", cond, re.I):
            raise QueryError(f"recipe {recipe.name}: line {i + 1}: a rule line must begin with AND "
                             f"(one condition per line), got {cond[:60]!r}")
        if "--" in cond or cond.count("(") != cond.count(")"):
            raise QueryError(f"recipe {recipe.name}: line {i + 1}: rule {m['name']} must be a whole "
                             "condition on its line (balanced parentheses)")
        if any(r.name == m["name"] for r in out):
            raise QueryError(f"recipe {recipe.name}: line {i + 1}: rule {m['name']} is named twice")
        out.append(Rule(m["name"], m["about"].strip(), i, cond[3:].strip()))
    return out


def defaults(recipe: QueryFile, check: bool = False) -> dict[str, str]:
    """`-- defaults: NAME=VALUE, ...` as text values (converted by the parameter's type when used);
    with `check`, QueryError for a default of a parameter the SQL does not use or of the wrong type."""
    out: dict[str, str] = {}
    for line in _DEFAULTS.findall(recipe.sql):
        for item in filter(None, (s.strip() for s in re.split(r",\s*(?=[A-Za-z_]\w*\s*=)", line))):
            k, eq, v = item.partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z_]\w*", k.strip()):
                raise QueryError(f"recipe {recipe.name}: bad -- defaults: entry {item!r} (NAME=VALUE)")
            out[k.strip()] = v.strip()
    if not check:
        return out
    unknown = [k for k in out if k not in recipe.params]
    if unknown:
        raise QueryError(f"recipe {recipe.name}: -- defaults: names {', '.join(unknown)}, which it does not use")
    for k, v in out.items():
        try:
            query.convert(recipe, k, v)
        except WdbError as e:
            raise QueryError(f"recipe {recipe.name}: default {e}") from e
    return out


def with_defaults(recipe: QueryFile, params: dict) -> dict:
    """The parameters a run of the recipe uses: its defaults, overridden by `params`."""
    return {**defaults(recipe), **params}


def variant(recipe: QueryFile, off: set[str] | frozenset[str]) -> QueryFile:
    """The recipe with the rules named in `off` turned off (their line becomes `AND 1`)."""
    lines = recipe.sql.splitlines()
    for r in rules(recipe):
        if r.name in off:
            indent = re.match(r"[ \t]*", lines[r.line]).group()
            lines[r.line] = f"{indent}AND 1 -- rule off: {r.name}"
    return dataclasses.replace(recipe, sql="\n".join(lines) + "\n")


OPTOUT_FILTER = ("NOT EXISTS (SELECT 1 FROM optout) OR NOT EXISTS "
                 "(SELECT 1 FROM optout_media x WHERE x.media_id = r.media_id)")


def wrapped(recipe: QueryFile) -> QueryFile:
    """The recipe as it is run: its SQL inside one that drops every opted-out pair."""
    lines = recipe.sql.rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()  # trailing comment lines: a `;` before them would end the statement inside the wrapper
    body = "\n".join(lines).rstrip().rstrip(";").rstrip()
    sql = f"SELECT r.* FROM (\n{body}\n) r\nWHERE {OPTOUT_FILTER}\n"
    return dataclasses.replace(recipe, sql=sql)


def _literal(value: str) -> str:
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("'", "''") + "'"


def canned_sql(recipe: QueryFile) -> str:
    """The wrapped SQL for a Datasette canned query: an empty form field takes the recipe's default."""
    dflt = defaults(recipe)
    parts = _COMMENT_OR_STRING.split(wrapped(recipe).sql)
    for i in range(0, len(parts), 2):  # even parts are outside comments and strings
        parts[i] = query._PARAM.sub(
            lambda m: f"coalesce(nullif(:{m[1]}, ''), {_literal(dflt[m[1]])})" if m[1] in dflt else m[0], parts[i])
    return "".join(parts)


def run(conn: sqlite3.Connection, recipe: QueryFile, params: dict) -> tuple[list[str], Iterator[tuple]]:
    """Run (a variant of) a recipe with opt-outs applied; parameters it does not use are ignored
    only when they belong to rules turned off (`variant`)."""
    values = with_defaults(recipe, params)
    q = wrapped(recipe)
    cols, rows = query.run(conn, q, {k: v for k, v in values.items() if k in q.params})
    return cols, rows


def select(conn: sqlite3.Connection, recipe: QueryFile, params: dict) -> tuple[list[str], Iterator[tuple]]:
    """Run a recipe read-only, opted-out pairs excluded: (column names, rows).

    `params` override the recipe's `-- defaults:`; BadParameter for an unknown or ill-typed one;
    QueryError when the recipe lacks a required column or its SQL fails."""
    unknown = [k for k in params if k not in recipe.params]
    if unknown:
        takes = f"it takes {', '.join(recipe.params)}" if recipe.params else "it takes none"
        from ..errors import BadParameter

        raise BadParameter(f"recipe {recipe.name} has no parameter {', '.join(unknown)}; {takes}")
    cols, rows = run(conn, recipe, params)
    missing = [c for c in RECIPE_COLUMNS if c not in cols]
    if missing:
        rows.close()
        raise QueryError(f"recipe {recipe.name} must select {', '.join(RECIPE_COLUMNS)}; it lacks {', '.join(missing)}")
    return cols, rows


def count(conn: sqlite3.Connection, recipe: QueryFile, params: dict) -> int:
    """How many pairs the recipe keeps (opt-outs applied)."""
    _, rows = select(conn, recipe, params)
    n = 0
    for _ in rows:
        n += 1
    return n
