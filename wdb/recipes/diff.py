"""`wdb recipe diff A B`: how many pairs each recipe keeps, their overlap, and for the pairs one keeps
and the other drops, which of the other's rules drops them.

A pair is (media_id, text_source). For a pair that A keeps and B drops, B is run with all its rules
turned off (its candidates) and with each rule alone: the pair is either not a candidate of B (B pairs
the image with another text, or not at all) or fails some of B's rules. Its reason is the first
failing rule in B's file order, so the reason counts add up to the pairs dropped; `fails` counts
every failing rule (a pair may fail several).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from urllib.parse import urlencode

from ..db.query import QueryFile
from . import rules, run, select, variant, with_defaults, wrapped

NOT_CANDIDATE = "not a candidate"  # B's SQL without its rules does not produce the pair
OTHER_TEXT = "another text"        # ... but pairs the image with another text source


def _keys_of(cols: list[str], rows) -> set[tuple[int, str]]:
    i, j = cols.index("media_id"), cols.index("text_source")
    return {(r[i], r[j]) for r in rows}


def _keys(conn, recipe: QueryFile, params: dict) -> set[tuple[int, str]]:
    """The pairs of a variant of a recipe (rules turned off: `variant`)."""
    return _keys_of(*run(conn, recipe, params))


def _kept(conn, recipe: QueryFile, params: dict) -> set[tuple[int, str]]:
    """The pairs the recipe keeps, its parameters and columns checked (select), in one run."""
    return _keys_of(*select(conn, recipe, params))


@dataclass
class Side:
    name: str
    kept: int
    only: int                      # kept here, dropped by the other
    reasons: dict[str, int] = field(default_factory=dict)  # why the OTHER recipe drops them (first failing rule)
    fails: dict[str, int] = field(default_factory=dict)    # every failing rule of the other recipe
    examples: dict[str, list[int]] = field(default_factory=dict)  # a few media ids per reason


@dataclass
class Diff:
    a: Side
    b: Side
    both: int
    urls: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"a": self.a.__dict__, "b": self.b.__dict__, "both": self.both, "urls": self.urls}

    def lines(self) -> list[str]:
        out = [f"{self.a.name}: {self.a.kept:,} pairs; {self.b.name}: {self.b.kept:,} pairs; both: {self.both:,}"]
        for s, o in ((self.a, self.b), (self.b, self.a)):
            out.append(f"kept by {s.name} only: {s.only:,}; {o.name} drops them by")
            for r, n in s.reasons.items():
                extra = f" (fails it: {s.fails[r]:,})" if s.fails.get(r, n) != n else ""
                out.append(f"  {r:<20} {n:>8,}{extra}")
            if s.name in self.urls:
                out.append(f"  examples: {self.urls[s.name]}")
        return out


def _explain(conn, dropped: set, other: QueryFile, params: dict, examples: int,
             base: set | None = None) -> tuple[dict, dict, dict]:
    names = [r.name for r in rules(other)]
    if base is None:
        base = _keys(conn, variant(other, set(names)), params)
    by_media: dict[int, set[str]] = {}
    for mid, src in base:
        by_media.setdefault(mid, set()).add(src)
    passing = {n: _keys(conn, variant(other, set(names) - {n}), params) for n in names}
    reasons = {n: 0 for n in names}
    fails = {n: 0 for n in names}
    reasons[OTHER_TEXT] = reasons[NOT_CANDIDATE] = 0
    ex: dict[str, list[int]] = {}
    for key in sorted(dropped):
        if key not in base:
            why = OTHER_TEXT if key[0] in by_media else NOT_CANDIDATE
        else:
            failed = [n for n in names if key not in passing[n]]
            for n in failed:
                fails[n] += 1
            why = failed[0] if failed else "together"  # each rule alone keeps it: impossible for ANDed rules
        reasons[why] = reasons.get(why, 0) + 1
        if len(ex.setdefault(why, [])) < examples:
            ex[why].append(key[0])
    return ({k: v for k, v in reasons.items() if v}, {k: v for k, v in fails.items() if v}, ex)


def _renamed(q: QueryFile, prefix: str) -> str:
    from . import _COMMENT_OR_STRING
    from ..db.query import _PARAM

    parts = _COMMENT_OR_STRING.split(wrapped(q).sql)
    for i in range(0, len(parts), 2):
        parts[i] = _PARAM.sub(lambda m: f":{prefix}{m[1]}", parts[i])
    return "".join(parts)


def example_url(base_url: str, db_name: str, a: QueryFile, pa: dict, b: QueryFile, pb: dict, limit: int = 50) -> str:
    """A Datasette SQL page listing pairs that A keeps and B drops (media ids link to media pages)."""
    sql = (f"SELECT a.* FROM (\n{_renamed(a, 'a_')}\n) a\nWHERE NOT EXISTS (SELECT 1 FROM (\n{_renamed(b, 'b_')}\n) b "
           f"WHERE b.media_id = a.media_id AND b.text_source = a.text_source)\nLIMIT {int(limit)}")
    args = {"sql": sql}
    args.update({f"a_{k}": v for k, v in with_defaults(a, pa).items() if k in a.params})
    args.update({f"b_{k}": v for k, v in with_defaults(b, pb).items() if k in b.params})
    return f"{base_url.rstrip('/')}/{db_name}?{urlencode(args)}"


def diff(conn: sqlite3.Connection, a: QueryFile, b: QueryFile, pa: dict | None = None, pb: dict | None = None,
         examples: int = 5, base_url: str | None = None, db_name: str = "wdb") -> Diff:
    pa, pb = pa or {}, pb or {}
    ka, kb = _kept(conn, a, pa), _kept(conn, b, pb)
    ra, fa, ea = _explain(conn, ka - kb, b, pb, examples)
    rb, fb, eb = _explain(conn, kb - ka, a, pa, examples)
    label_a = a.name if a.name != b.name else f"{a.name} (A)"
    label_b = b.name if a.name != b.name else f"{b.name} (B)"
    d = Diff(Side(label_a, len(ka), len(ka - kb), ra, fa, ea), Side(label_b, len(kb), len(kb - ka), rb, fb, eb),
             len(ka & kb))
    if base_url:
        d.urls[label_a] = example_url(base_url, db_name, a, pa, b, pb)
        d.urls[label_b] = example_url(base_url, db_name, b, pb, a, pa)
    return d



def explain(conn: sqlite3.Connection, recipe: QueryFile, params: dict | None = None) -> dict:
    """Why a recipe keeps what it keeps: its candidates (all rules off), how many each rule drops
    (`fails`: every failing rule; `first`: the first failing rule in file order, adding up to
    candidates - kept) and the pairs kept."""
    params = params or {}
    kept = _kept(conn, recipe, params)
    listed = rules(recipe)
    base = _keys(conn, variant(recipe, {r.name for r in listed}), params)
    reasons, fails, _ = _explain(conn, base - kept, recipe, params, 0, base)
    return {"recipe": recipe.name, "candidates": len(base), "kept": len(kept),
            "rules": [{"rule": r.name, "about": r.about, "fails": fails.get(r.name, 0), "first": reasons.get(r.name, 0)}
                      for r in listed]}
