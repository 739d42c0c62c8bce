"""A recipe's pairs with the pointers to their image bytes, and the manifest hash of the pairs.

Pairs come from `wdb.recipes.select` (the one way to read a recipe) and bytes from the view
`media_bytes` (an archive's record first, then a `wdb fetch` download), read back with
`read_verified` (sha256 checked). The hash covers (media_id, text, image sha256) of every pair in
order, so a changed caption, image or selection is a different training set.
"""
from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from dataclasses import dataclass

from .. import recipes
from ..warc.payload import read_verified
from .models import SdError

MAX_IMAGE_BYTES = 32 << 20
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Pair:
    media_id: int
    text: str
    location: str
    offset: int
    length: int | None
    inner: int
    sha256: str | None


@dataclass
class Pairs:
    recipe: str
    recipe_sha256: str
    params: dict
    pairs: list[Pair]
    no_bytes: int  # pairs of the recipe whose image has no bytes in the database (left out)
    sha256: str


def recipe_pairs(conn: sqlite3.Connection, recipe: str, params: dict | None = None, limit: int | None = None) -> Pairs:
    rq = recipes.find(recipe)
    cols, rows = recipes.select(conn, rq, dict(params or {}))
    i_mid, i_text = cols.index("media_id"), cols.index("text")
    selected = [(r[i_mid], r[i_text]) for r in rows]
    out, missing = [], 0
    h = hashlib.sha256()
    for mid, text in selected:
        if limit is not None and len(out) >= limit:
            break
        if not text or not str(text).strip():
            missing += 1
            continue
        ptr = conn.execute("SELECT location, \"offset\", length, inner, sha256 FROM media_bytes WHERE media_id = ? "
                           "AND kind = 'image' ORDER BY source = 'archive' DESC LIMIT 1", (mid,)).fetchone()
        if ptr is None:
            missing += 1
            continue
        p = Pair(mid, str(text), *ptr)
        out.append(p)
        h.update(json.dumps([p.media_id, p.text, p.sha256]).encode() + b"\n")
    if not out:
        raise SdError(f"recipe {rq.name} selects no pair with image bytes in the database "
                      f"({len(selected)} pairs, {missing} without bytes): run `wdb fetch` first")
    sql_sha = hashlib.sha256(rq.sql.encode()).hexdigest()
    return Pairs(recipe, sql_sha, dict(params or {}), out, missing, h.hexdigest())


def load_image(p: Pair):
    """The pair's image as RGB, bytes checked against their sha256 (PointerMismatch otherwise)."""
    from PIL import Image

    body = read_verified(p.location, p.offset, p.length, p.inner, p.sha256, cap=MAX_IMAGE_BYTES)
    im = Image.open(io.BytesIO(body))
    if im.width * im.height > MAX_PIXELS:
        raise ValueError(f"image of {im.width}x{im.height} pixels is over the cap")
    return im.convert("RGB")
