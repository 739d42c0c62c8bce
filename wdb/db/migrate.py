"""Numbered migrations (package data), applied once each under the write lock."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from ..errors import MigrationFailed


def migration_files(folder: Path | Traversable | None = None) -> list[Traversable]:
    """The `NNN_name.sql` files in order (by default the package's own)."""
    folder = folder if folder is not None else resources.files("wdb.db") / "migrations"
    return sorted((f for f in folder.iterdir() if f.name[:3].isdigit() and f.name.endswith(".sql")),
                  key=lambda f: f.name)


def statements(sql: str) -> list[str]:
    """Split a script into complete statements (triggers' BEGIN ... END included)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip().strip(";").strip():
                out.append(buf)
            buf = ""
    if buf.strip() and not all(s.strip().startswith("--") for s in buf.strip().splitlines()):
        out.append(buf)
    return out


def migrate(conn: sqlite3.Connection, folder: Path | Traversable | None = None) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names.

    Each one is checked again after the write lock is taken, so two processes migrating a fresh
    database at once apply every migration exactly once.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for f in migration_files(folder):
        if f.name in done:
            continue
        sql = f.read_text()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (f.name,)).fetchone():
                conn.execute("COMMIT")  # another process applied it while we waited for the lock
                continue
            for stmt in statements(sql):
                conn.execute(stmt)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                         (f.name, datetime.now(timezone.utc).isoformat(timespec="seconds")))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationFailed(f"migration {f.name} failed ({e}); the database is unchanged") from e
        applied.append(f.name)
    return applied


def schema_dump(conn: sqlite3.Connection) -> str:
    """The schema as SQL, in a stable order (checked in as tests/schema.sql)."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_fts_%' ORDER BY type, name"
    ).fetchall()
    return "\n".join(sql.strip() + ";" for _, _, sql in rows) + "\n"
