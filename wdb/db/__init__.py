"""The database: connections, the one write-transaction helper, migrations, query files, indexes.

Everything a stage needs to reach the schema comes from here; the SQL files ship inside the
package (`wdb/db/migrations/`, `wdb/db/queries/`) and are read with importlib.resources, so an
installed wheel behaves as the checkout does.
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .migrate import migrate, migration_files, schema_dump

__all__ = ["connect", "migrate", "migration_files", "now", "open_db", "schema_dump", "side_dir", "transaction"]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode (writes go through `transaction`), WAL, 60 s busy timeout."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=60, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=60000")
    _wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def _wal(conn: sqlite3.Connection, tries: int = 600) -> None:
    """Switch to WAL. On a fresh file another process doing the same makes SQLite answer "database
    is locked" at once (the busy handler is not consulted for this), so try again, for up to ~60 s."""
    for i in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or i == tries - 1:
                raise
            time.sleep(0.1)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error (the write lock is taken up front, so a
    read-then-write never fails with "database is locked" in WAL mode)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_db(path: str | Path) -> sqlite3.Connection:
    """Connect and bring the schema up to date (every command does this)."""
    conn = connect(path)
    migrate(conn)
    return conn


def db_path(conn: sqlite3.Connection) -> Path:
    """The file of the connection's main database."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file)
    raise ValueError("an in-memory database has no side folder")


def side_dir(conn: sqlite3.Connection, kind: str) -> Path:
    """The folder of one database's side files of one kind: `<db>.wdb/<kind>/` beside `<db>`.

    Named after the database file, so two databases in one folder never share fetched WARCs,
    checkpoints or exports.
    """
    p = db_path(conn)
    d = p.parent / f"{p.name}.wdb" / kind
    d.mkdir(parents=True, exist_ok=True)
    return d
