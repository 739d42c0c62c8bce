"""Recipes: named SQL files that select a training subset as (media item, text, text source) rows.

A recipe is a query file (`-- title:` / `-- description:` / `-- params:` headers, :parameters; see
wdb.db.query) whose rows have at least the columns in RECIPE_COLUMNS, one row per pair. Built-in
recipes are package data in wdb/recipes/builtin/; a user's recipe is any .sql path.

`select()` is the one way every consumer (recipe count/diff, exports, the Stable Diffusion loop)
reads a recipe's pairs, so that rules every recipe must obey are applied in one place.
"""
from __future__ import annotations

import sqlite3
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Iterator

from ..db import query
from ..db.query import QueryFile
from ..errors import QueryError, WdbError

RECIPE_COLUMNS = ("media_id", "text", "text_source")


class UnknownRecipe(WdbError):
    """No recipe of that name."""


def recipe_dir() -> Traversable:
    return resources.files("wdb.recipes") / "builtin"


def builtin() -> list[QueryFile]:
    files = sorted((f for f in recipe_dir().iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [query.load(f) for f in files]


def find(name_or_path: str) -> QueryFile:
    """A built-in recipe by name, or a user's recipe by its .sql path."""
    p = Path(name_or_path)
    if p.suffix == ".sql" and p.is_file():
        return query.load(p)
    f = recipe_dir() / f"{name_or_path}.sql"
    if "/" in name_or_path or not f.is_file():
        names = ", ".join(r.name for r in builtin())
        raise UnknownRecipe(f"no recipe named {name_or_path!r}; built in: {names} (or give a .sql path)")
    return query.load(f)


def select(conn: sqlite3.Connection, recipe: QueryFile, params: dict) -> tuple[list[str], Iterator[tuple]]:
    """Run a recipe read-only: (column names, rows). QueryError when it lacks a required column."""
    cols, rows = query.run(conn, recipe, params)
    missing = [c for c in RECIPE_COLUMNS if c not in cols]
    if missing:
        rows.close()
        raise QueryError(f"recipe {recipe.name} must select {', '.join(RECIPE_COLUMNS)}; it lacks {', '.join(missing)}")
    return cols, rows
