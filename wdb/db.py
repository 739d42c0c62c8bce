"""Open the database and apply numbered migrations transactionally."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from .errors import MigrationFailed

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=60, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def migrate(conn: sqlite3.Connection, folder: Path = MIGRATIONS) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for f in sorted(folder.glob("[0-9][0-9][0-9]_*.sql")):
        if f.name in done:
            continue
        sql = f.read_text()
        try:
            conn.executescript(
                "BEGIN IMMEDIATE;\n" + sql + "\n;INSERT INTO _migrations VALUES ("
                + _quote(f.name) + ", " + _quote(now()) + ");\nCOMMIT;"
            )
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationFailed(f"migration {f.name} failed ({e}); the database is unchanged") from e
        applied.append(f.name)
    return applied


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def open_db(path: str | Path) -> sqlite3.Connection:
    """Connect and bring the schema up to date (every command does this)."""
    conn = connect(path)
    migrate(conn)
    return conn


def schema_dump(conn: sqlite3.Connection) -> str:
    """The schema as SQL, in a stable order (checked in as tests/schema.sql)."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_fts_%' ORDER BY type, name"
    ).fetchall()
    return "\n".join(sql.strip() + ";" for _, _, sql in rows) + "\n"
