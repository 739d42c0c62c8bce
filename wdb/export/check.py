"""`wdb check`: what must hold of a recipe's pairs before they are written (and can be run alone).

- no two pairs share a uid (MMC4 shipped 1–2 % duplicates because nothing checked);
- every item's offsets (pos, context window) lie inside its page's text;
- every pointer's payload has its recorded sha256 (read back through read_verified);
- the pairs are a subset of a superset recipe's where one narrows another: named with `--superset`
  (a recipe, or `export:ID` for the pairs an earlier export wrote), or declared by the recipe itself
  in a `-- narrows: NAME` header.

Structural problems (duplicates, offsets, subset, unknown media) stop an export; a pointer that
cannot be read or does not match only drops its pair, which is counted and listed.
"""
from __future__ import annotations

import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field

from ..db.query import QueryFile
from ..errors import WdbError
from ..warc.payload import read_verified
from .pairs import Pair, recipe_pairs

MAX_PAYLOAD = 64 << 20


class CheckFailed(WdbError):
    """A recipe's pairs break a rule an export must hold (duplicates, offsets, subset)."""


@dataclass
class Issue:
    kind: str          # duplicate_uid | unknown_media | offset_outside_text | not_in_superset | unreadable | sha256_mismatch | no_bytes
    index: int         # the pair's position in the recipe's order
    uid: str
    media_id: int
    message: str

    def line(self) -> str:
        return f"{self.kind}: pair {self.index} (media {self.media_id}, uid {self.uid or '-'}): {self.message}"


@dataclass
class CheckReport:
    pairs: int = 0
    verified: int = 0
    issues: list[Issue] = field(default_factory=list)
    superset: str | None = None

    @property
    def counts(self) -> dict:
        return dict(Counter(i.kind for i in self.issues))

    @property
    def ok(self) -> bool:
        return not self.issues

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "no problems"
        sup = f", subset of {self.superset}" if self.superset else ""
        return f"check: {self.pairs} pairs, {self.verified} pointers verified{sup}: {parts}"


def narrows(recipe: QueryFile) -> str | None:
    """The recipe's declared superset (`-- narrows: NAME`), if any."""
    m = re.search(r"^--\s*narrows:\s*(\S+)\s*$", recipe.sql, re.M)
    return m.group(1) if m else None


def superset_uids(conn: sqlite3.Connection, name: str, params: dict) -> set[str]:
    """The uids of a superset: `export:ID` (the pairs that export wrote) or a recipe run with those of
    `params` it takes."""
    if name.startswith("export:"):
        eid = name.split(":", 1)[1]
        if not eid.isdigit() or conn.execute("SELECT 1 FROM exports WHERE id = ?", (int(eid),)).fetchone() is None:
            raise CheckFailed(f"no export {eid!r} in this database (see the exports table)")
        return {u for (u,) in conn.execute("SELECT uid FROM export_items WHERE export_id = ?", (int(eid),))}
    from ..recipes import find

    sup = find(name)
    return {p.uid for p in recipe_pairs(conn, sup, {k: v for k, v in params.items() if k in sup.params})}


def structure(conn: sqlite3.Connection, pairs: list[Pair], superset: str | None = None,
              superset_params: dict | None = None) -> list[Issue]:
    """Duplicates, unknown media, offsets outside the page text, pairs missing from the superset."""
    issues, seen = [], {}
    for p in pairs:
        if not p.uid:
            issues.append(Issue("unknown_media", p.index, "", p.media_id, "no such media item"))
            continue
        if p.uid in seen:
            issues.append(Issue("duplicate_uid", p.index, p.uid, p.media_id,
                                f"same image, page and text as pair {seen[p.uid]}"))
        else:
            seen[p.uid] = p.index
        offsets = [("pos", p.pos), ("ctx_start", p.ctx_start), ("ctx_end", p.ctx_end)]
        if p.span:
            offsets += [("span start", p.span[0]), ("span end", p.span[1])]
        for name, v in offsets:
            if v is not None and not 0 <= v <= p.text_len:
                issues.append(Issue("offset_outside_text", p.index, p.uid, p.media_id,
                                    f"{name} {v} outside the page text (0..{p.text_len})"))
    if superset:
        sup = superset_uids(conn, superset, superset_params or {})
        for p in pairs:
            if p.uid and p.uid not in sup:
                issues.append(Issue("not_in_superset", p.index, p.uid, p.media_id, f"not selected by {superset}"))
    return issues


def verify(p: Pair, cap: int = MAX_PAYLOAD) -> tuple[bytes | None, Issue | None]:
    """The pair's payload read through its pointer and checked against its sha256, or the Issue."""
    if p.location is None:
        return None, Issue("no_bytes", p.index, p.uid, p.media_id, "no archived or fetched bytes (run wdb fetch)")
    try:
        return read_verified(p.location, p.offset, p.length, p.inner, p.sha256, cap), None
    except WdbError as e:
        kind = "sha256_mismatch" if "sha256" in str(e) else "unreadable"
        return None, Issue(kind, p.index, p.uid, p.media_id, " ".join(str(e).split())[:300])
    except Exception as e:  # an unreadable pointer of any kind drops its pair, never the export
        msg = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        return None, Issue("unreadable", p.index, p.uid, p.media_id, msg)


def check(conn: sqlite3.Connection, recipe: QueryFile, params: dict, superset: str | None = None,
          superset_params: dict | None = None, pointers: bool = True, pairs: list[Pair] | None = None) -> CheckReport:
    """Every rule above over the recipe's pairs; `pointers=False` skips reading the bytes."""
    if pairs is None:
        pairs = recipe_pairs(conn, recipe, params)
    superset = superset or narrows(recipe)
    rep = CheckReport(pairs=len(pairs), superset=superset)
    rep.issues = structure(conn, pairs, superset, superset_params if superset_params is not None else params)
    if pointers:
        for p in pairs:
            if p.uid and p.location is not None:
                _, issue = verify(p)
                rep.verified += issue is None
                if issue:
                    rep.issues.append(issue)
    return rep
