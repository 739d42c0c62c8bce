"""Prompt sets: the thesis's design (groups of five progressively more detailed prompts, sensible
and nonsensical) generated reproducibly from the word lists in words.py, or imported from a file.

Level 1 is the bare subject ("computer"); each level adds one part: an attribute, a place, an
action, a detail ("a shiny computer in an office displaying code running a simulation, in warm
evening light"). A nonsensical group takes its parts from other categories ("a leafy computer on a
ski slope eating grass, under two moons"). Each prompt keeps its parts as `elements`, which
`wdb sd eval` scores one by one (compliance).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..db import now, transaction
from ..errors import WdbError
from ..stage import Result, stage_run
from .words import CATEGORIES, DETAILS, IMPOSSIBLE_DETAILS, STOP_WORDS

LEVELS = 5
MAX_IMPORT_BYTES = 16 << 20
MAX_PROMPT_CHARS = 2000


class PromptSetError(WdbError):
    """A prompt set that cannot be made or imported as asked."""


@dataclass(frozen=True)
class Prompt:
    kind: str
    grp: int
    level: int
    prompt: str
    elements: tuple[str, ...]


@dataclass
class PromptSettings:
    name: str = "thesis"
    source: str | None = None  # a CSV / JSON lines file to import; None: the generator
    groups: int = 100
    seed: int = 0


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _compose(subject: str, parts: list[str], level: int) -> tuple[str, tuple[str, ...]]:
    """The prompt of one level from the subject and (attribute, place, action, detail)."""
    attr, place, action, detail = parts
    if level == 1:
        return subject, (subject,)
    text = f"{_article(attr)} {attr} {subject}"
    if level >= 3:
        text += f" {place}"
    if level >= 4:
        text += f" {action}"
    if level >= 5:
        text += f", {detail}"
    return text[0].upper() + text[1:] if level == 5 else text, (subject, *parts[: level - 1])


def generate(groups: int = 100, seed: int = 0) -> list[Prompt]:
    """Both sets, `groups` groups of LEVELS prompts each; the same seed gives the same prompts."""
    subjects = [(cat, s) for cat, d in CATEGORIES.items() for s in d["subjects"]]
    if not 1 <= groups <= len(subjects):
        raise PromptSetError(f"groups must be between 1 and {len(subjects)} (one subject each)")
    rng = random.Random(seed)
    chosen = rng.sample(subjects, groups)
    cats = list(CATEGORIES)
    out: list[Prompt] = []
    for g, (cat, subject) in enumerate(chosen, 1):
        own = CATEGORIES[cat]
        sensible = [rng.choice(own["attributes"]), rng.choice(own["places"]), rng.choice(own["actions"]),
                    rng.choice(DETAILS)]
        # nonsensical: each part from another category (a different one per part), never one of the
        # subject's own category ("in a kitchen" is a place of food and of people alike)
        others = rng.sample([c for c in cats if c != cat], 3)
        odd = [rng.choice([x for x in CATEGORIES[o][part] if x not in own[part]])
               for o, part in zip(others, ("attributes", "places", "actions"), strict=True)]
        odd.append(rng.choice(IMPOSSIBLE_DETAILS))
        for kind, parts in (("sensible", sensible), ("nonsensical", odd)):
            for level in range(1, LEVELS + 1):
                text, elements = _compose(subject, parts, level)
                out.append(Prompt(kind, g, level, text, elements))
    return out


def content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", text.lower()) if w not in STOP_WORDS]


def complexity(text: str) -> tuple[int, int]:
    """Prompt-side complexity: (words, distinct content words)."""
    return len(text.split()), len(set(content_words(text)))


def _elements_of(value, prompt: str) -> tuple[str, ...]:
    if value in (None, ""):
        # parts of an imported prompt without its own: the phrases between commas, else content words
        phrases = [p.strip() for p in prompt.split(",") if p.strip()]
        return tuple(phrases if len(phrases) > 1 else content_words(prompt) or [prompt])
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(";")
        except json.JSONDecodeError as e:
            raise PromptSetError(f"elements {value[:60]!r} is not a JSON list") from e
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PromptSetError("elements must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def read_file(path: str | Path) -> list[Prompt]:
    """Prompts from a CSV (header group,level,prompt,kind[,elements]) or JSON lines file with those keys."""
    p = Path(path)
    if not p.is_file():
        raise PromptSetError(f"{path}: no such file")
    if p.stat().st_size > MAX_IMPORT_BYTES:
        raise PromptSetError(f"{path}: over {MAX_IMPORT_BYTES >> 20} MB")
    text = p.read_bytes().decode("utf-8-sig", errors="replace")
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise PromptSetError(f"{path}:{n}: not JSON ({e.msg})") from e
    else:
        reader = csv.DictReader(io.StringIO(text))
        rows = [(n + 2, r) for n, r in enumerate(reader)]
    out, seen = [], set()
    for n, r in rows:
        if not isinstance(r, dict):
            raise PromptSetError(f"{path}:{n}: expected an object with group, level, prompt, kind")
        try:
            grp, level = int(r.get("group")), int(r.get("level"))
        except (TypeError, ValueError):
            raise PromptSetError(f"{path}:{n}: group and level must be integers") from None
        prompt, kind = str(r.get("prompt") or "").strip(), str(r.get("kind") or "").strip()
        if not prompt or not kind or len(prompt) > MAX_PROMPT_CHARS:
            raise PromptSetError(f"{path}:{n}: prompt and kind are required (a prompt of at most "
                                 f"{MAX_PROMPT_CHARS} characters)")
        if (kind, grp, level) in seen:
            raise PromptSetError(f"{path}:{n}: a second prompt for kind {kind}, group {grp}, level {level}")
        seen.add((kind, grp, level))
        try:
            out.append(Prompt(kind, grp, level, prompt, _elements_of(r.get("elements"), prompt)))
        except PromptSetError as e:
            raise PromptSetError(f"{path}:{n}: {e}") from None
    if not out:
        raise PromptSetError(f"{path}: no prompts")
    return out


def store_set(conn: sqlite3.Connection, name: str, source: str, params: dict, prompts: list[Prompt],
              run_id: int | None) -> tuple[int, int]:
    """(set id, prompts added). A set of that name already stored is left as it is (0 added)."""
    with transaction(conn):
        row = conn.execute("SELECT id FROM sd_prompt_sets WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0], 0
        set_id = conn.execute("INSERT INTO sd_prompt_sets (name, source, params, run_id, created) VALUES (?,?,?,?,?)",
                              (name, source, json.dumps(params, sort_keys=True), run_id, now())).lastrowid
        conn.executemany(
            "INSERT INTO sd_prompts (set_id, kind, grp, level, prompt, elements, words, content_words) "
            "VALUES (?,?,?,?,?,?,?,?)",
            [(set_id, p.kind, p.grp, p.level, p.prompt, json.dumps(list(p.elements)), *complexity(p.prompt))
             for p in prompts])
    return set_id, len(prompts)


def make_prompt_set(conn: sqlite3.Connection, s: PromptSettings) -> Result:
    """Generate (or import) the set `s.name`; a second run with the same name adds nothing."""
    with stage_run(conn, "sd prompts", s) as run:
        if s.source:
            prompts = read_file(s.source)
            params = {"sha256": hashlib.sha256(Path(s.source).read_bytes()).hexdigest()}
            source = str(Path(s.source).resolve())
        else:
            prompts = generate(s.groups, s.seed)
            params, source = {"groups": s.groups, "seed": s.seed, "levels": LEVELS}, "generator"
        set_id, added = store_set(conn, s.name, source, params, prompts, run.id)
        run.counts.update(set_id=set_id, prompts=added)
    return run.result()


def prompt_set_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM sd_prompt_sets WHERE name = ?", (name,)).fetchone()
    if row is None:
        names = ", ".join(n for (n,) in conn.execute("SELECT name FROM sd_prompt_sets ORDER BY name")) or "none yet"
        raise PromptSetError(f"no prompt set named {name!r} (stored: {names}); make one with `wdb sd prompts`")
    return row[0]
