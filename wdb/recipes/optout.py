"""`wdb optout DB FILE`: opted-out URLs and domains become rows of `optout`; every recipe excludes
the pairs they match (view `optout_media`, applied by wdb.recipes.select), and the exports that
contained newly opted-out pairs are listed so that they can be re-issued.

A line is a URL (http or https: an image URL or a page URL; compared by its canonical key, so
`https://www.Example.com/a.jpg` and `http://example.com/a.jpg` are one URL) or a domain
(`example.com`: that host and every host under it; a leading `www.` is dropped, as media.url_key and
pages.domain drop it). Blank lines and lines starting with `#` are skipped. Any other line is
reported (one line each, and a row in optout_rejects) and never stops the file. Adding a file twice
adds nothing the second time.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..db import now, transaction
from ..errors import NoInputs
from ..html.urls import url_key
from ..stage import Result, stage_run

MAX_LINE = 8192     # a longer line is rejected without being parsed
MAX_LINES = 10_000_000
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@dataclass
class OptoutSettings:
    file: str = ""


@dataclass
class OptoutResult(Result):
    rejected: list[str] = field(default_factory=list)   # "FILE:LINE: reason: 'line'"
    exports: list[dict] = field(default_factory=list)   # exports holding newly opted-out pairs


def _domain(s: str) -> str | None:
    try:
        host = s.encode("idna").decode("ascii").lower() if not s.isascii() else s.lower()
    except UnicodeError:
        return None
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    if len(labels) < 2 or len(host) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        return None
    if labels[-1].isdigit():  # an IPv4 address is a host, not a domain under which others lie
        return None
    return host


def parse_line(line: str) -> tuple[str, str] | str | None:
    """(kind, value) for a URL or domain; None for a blank or comment line; a reason string otherwise."""
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    if len(s) > MAX_LINE:
        return f"over {MAX_LINE} characters"
    if any(c.isspace() for c in s):
        return "holds white space: one URL or domain per line"
    if "://" in s:
        try:
            p = urlsplit(s)
            host = p.hostname
        except ValueError as e:
            return f"not a URL ({e})"
        if p.scheme.lower() not in ("http", "https"):
            return f"not an http(s) URL (scheme {p.scheme!r})"
        if not host:
            return "a URL without a host"
        key = url_key(s)
        return ("url", key) if key else "not a URL"
    d = _domain(s)
    return ("domain", d) if d else "neither an http(s) URL nor a domain name"


def optout(conn: sqlite3.Connection, s: OptoutSettings) -> OptoutResult:
    path = Path(s.file)
    if not path.is_file():
        raise NoInputs(f"no such opt-out file: {s.file}")
    where = str(path.resolve())
    with stage_run(conn, "optout", {"file": where}) as run:
        before = {r[0] for r in conn.execute("SELECT media_id FROM optout_media")}
        when = now()
        entries, rejects = [], []
        with open(path, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                if n > MAX_LINES:
                    rejects.append((where, n, "", f"file over {MAX_LINES:,} lines: the rest is not read"))
                    break
                text = raw[:MAX_LINE + 1].decode("utf-8", "replace").rstrip("\r\n")
                if n == 1:
                    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the first line
                got = parse_line(text)
                if got is None:
                    continue
                if isinstance(got, str):
                    rejects.append((where, n, text[:1000], got))
                else:
                    entries.append((got[0], got[1], text.strip(), where, n, when, run.id))
        with transaction(conn):
            cur = conn.executemany("INSERT OR IGNORE INTO optout (kind, value, raw, file, line, added_at, run_id) "
                                   "VALUES (?,?,?,?,?,?,?)", entries)
            added = cur.rowcount
            conn.executemany("INSERT OR IGNORE INTO optout_rejects (file, line, raw, reason, run_id) VALUES (?,?,?,?,?)",
                             [(*r, run.id) for r in rejects])
        after = {r[0] for r in conn.execute("SELECT media_id FROM optout_media")}
        new = sorted(after - before)
        run.counts.update(lines=len(entries) + len(rejects), added=added, known=len(entries) - added,
                          rejected=len(rejects), media=len(after), newly_media=len(new))
        rejected = [f"{f}:{n}: {why}: {t[:100]!r}" for f, n, t, why in rejects]
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS optout_new (media_id INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM optout_new")
        conn.executemany("INSERT INTO optout_new VALUES (?)", [(m,) for m in new])
        exports = [dict(zip(("id", "recipe", "format", "out", "created", "pairs"), r)) for r in conn.execute(
            "SELECT e.id, e.recipe, e.format, e.out, e.created, count(*) FROM export_items i "
            "JOIN exports e ON e.id = i.export_id WHERE i.media_id IN (SELECT media_id FROM temp.optout_new) "
            "GROUP BY e.id ORDER BY e.id")]
        conn.execute("DROP TABLE temp.optout_new")
        run.counts["exports"] = len(exports)
    r = run.result()
    return OptoutResult(r.command, r.run_id, r.counts, r.seconds, r.status, r.error, rejected, exports)
