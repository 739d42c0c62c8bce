"""`wdb dedup`: duplicate groups as rows (`dup_groups`), one representative per group (`dup_keep`).

Methods:
- url: media images with the same canonical URL (url_key), across pages and crawls; the item on
  the newest capture is kept (OBELICS' rule);
- sha256: images with byte-identical payloads;
- phash: images whose 64-bit perceptual hashes are within Hamming distance `phash_distance`
  (MMC4's 5), found by multi-index hashing (wdb.curate.near), grouped transitively;
- clip: images whose stored CLIP embeddings (one model) have cosine >= `clip_threshold`;
- repeats (always): text_signals `alt_repeats` (how many distinct image URLs carry this alt,
  case and spacing folded: COYO drops texts seen > 10 times) and image_signals `url_repeats` (on
  how many distinct page URLs this image appears: OBELICS drops images seen > 10 times); recaptures
  of one page or one image do not inflate the counts.

A method reruns only when its inputs changed (dedup_state fingerprint); then its groups for that
version are rebuilt in one transaction (derived rows only: no page, media or image is ever deleted).
For image methods the kept image of a group is the one with the most pixels, then the smallest
url_key.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from ..db import transaction
from ..errors import BadParameter
from ..stage import Result, progress_bar, stage_run
from . import near, text

METHODS = ("url", "sha256", "phash", "clip")
REPEATS_VERSION = "repeats.1"


@dataclass
class DedupSettings:
    by: tuple[str, ...] = ("url", "sha256", "phash")  # clip or clip:MODEL (clip_models id or name) adds CLIP
    phash_distance: int = 5
    phash_bands: int = 3  # 3 bands, 1 bit flipped per band (6: equal bands only)
    clip_threshold: float = 0.95
    exact_max: int = 20000  # CLIP: exact all-pairs up to this many embeddings, inverted-file cells above
    repeats: bool = True


def _state(conn, method, version) -> str | None:
    r = conn.execute("SELECT fingerprint FROM dedup_state WHERE method = ? AND version = ?", (method, version)).fetchone()
    return r[0] if r else None


def _save(conn, run, method, version, fingerprint, rows) -> None:
    """Replace this method/version's groups by `rows` [(kind, key, group_id, keep)] in one transaction."""
    groups = len({r[2] for r in rows})
    with transaction(conn):
        conn.execute("DELETE FROM dup_groups WHERE method = ? AND version = ?", (method, version))
        conn.executemany("INSERT INTO dup_groups (kind, key, method, version, group_id, keep, run_id) VALUES (?,?,?,?,?,?,?)",
                         [(k, str(key), method, version, g, keep, run.id) for k, key, g, keep in rows])
        conn.execute("INSERT OR REPLACE INTO dedup_state (method, version, fingerprint, groups, members, run_id) VALUES (?,?,?,?,?,?)",
                     (method, version, fingerprint, groups, len(rows), run.id))
    run.counts[f"{method}_groups"] = groups
    run.counts[f"{method}_members"] = len(rows)


def _fp(conn, sql, params=()) -> str:
    return ":".join(str(x) for x in conn.execute(sql, params).fetchone())


def _by_url(conn, run) -> None:
    v = "url.1"
    fp = _fp(conn, "SELECT count(*), max(id) FROM media WHERE kind = 'image'") + "/" + _fp(
        conn, "SELECT count(*), max(id) FROM pages")
    if _state(conn, "url", v) == fp:
        run.add("unchanged")
        return
    rows, cur, first = [], None, True
    for mid, key, _ in conn.execute(
            "SELECT m.id, m.url_key, p.captured_at FROM media m JOIN pages p ON p.id = m.page_id "
            "WHERE m.kind = 'image' AND m.url_key IN (SELECT url_key FROM media WHERE kind = 'image' "
            "GROUP BY url_key HAVING count(*) > 1) ORDER BY m.url_key, p.captured_at DESC, m.id DESC"):
        if key != cur:
            cur, first = key, True
        rows.append(["media", mid, key, 1 if first else 0])
        first = False
    # group id: the smallest media id of the group
    low: dict[str, int] = {}
    for r in rows:
        low[r[2]] = min(low.get(r[2], r[1]), r[1])
    _save(conn, run, "url", v, fp, [(k, mid, low[key], keep) for k, mid, key, keep in rows])


def _image_groups(conn, run, method, v, fp, keys: list[str], labels: np.ndarray, area: np.ndarray) -> None:
    """Rows for every label with two or more members; keep the largest image, then the smallest key."""
    order = np.lexsort((np.arange(len(keys)), -area, labels))  # by label, then area desc, then key order
    counts = np.bincount(labels)
    rows, prev = [], -1
    gids: dict[int, int] = {}
    for idx in order:
        lab = labels[idx]
        if counts[lab] < 2:
            continue
        gid = gids.setdefault(int(lab), len(gids) + 1)
        rows.append(("image", keys[idx], gid, 1 if lab != prev else 0))
        prev = lab
    _save(conn, run, method, v, fp, rows)


def _ok_images(conn, col: str) -> tuple[list[str], list, np.ndarray]:
    rows = conn.execute(f"SELECT url_key, {col}, coalesce(width, 0) * coalesce(height, 0) FROM images "
                        f"WHERE status = 'ok' AND {col} IS NOT NULL ORDER BY url_key").fetchall()
    return [r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows], dtype=np.int64)


def _by_sha256(conn, run) -> None:
    v = "sha256.1"
    fp = _fp(conn, "SELECT count(*), max(rowid), count(sha256) FROM images WHERE status = 'ok'")
    if _state(conn, "sha256", v) == fp:
        run.add("unchanged")
        return
    keys, shas, area = _ok_images(conn, "sha256")
    _, labels = np.unique(np.array(shas, dtype=object).astype(str), return_inverse=True) if keys else (0, np.zeros(0, int))
    _image_groups(conn, run, "sha256", v, fp, keys, labels.reshape(-1), area)


def _by_phash(conn, run, s: DedupSettings) -> None:
    v = f"phash.1:d{s.phash_distance}"
    fp = _fp(conn, "SELECT count(*), max(rowid), count(phash) FROM images WHERE status = 'ok'")
    if _state(conn, "phash", v) == fp:
        run.add("unchanged")
        return
    keys, hexes, area = _ok_images(conn, "phash")
    good = [k for k, h in enumerate(hexes) if isinstance(h, str) and 0 < len(h) <= 16
            and all(c in "0123456789abcdefABCDEF" for c in h)]
    run.counts["phash_bad"] = len(hexes) - len(good)
    keys, area = [keys[k] for k in good], area[good]
    h = near.parse_phash([hexes[k] for k in good])
    i, j = near.phash_pairs(h, s.phash_distance, max(s.phash_bands, (s.phash_distance + 2) // 2))
    labels = near.components(len(keys), i, j) if keys else np.zeros(0, int)
    _image_groups(conn, run, "phash", v, fp, keys, labels, area)


def clip_model(conn, spec: str | None) -> tuple[int, str]:
    """(id, name) of the CLIP model whose embeddings to compare: by id, by name, or the only one."""
    have = conn.execute("SELECT c.id, c.name, c.pretrained, count(*) FROM clip_models c JOIN image_embeddings e "
                        "ON e.model_id = c.id GROUP BY c.id ORDER BY c.id").fetchall()
    if not have:
        raise BadParameter("dedup --by clip: no image embeddings yet (run wdb score first)")
    if spec:
        hit = [r for r in have if str(r[0]) == spec or r[1] == spec or f"{r[1]}/{r[2]}" == spec]
    else:
        hit = have if len(have) == 1 else []
    if len(hit) != 1:
        listing = "; ".join(f"{r[0]} = {r[1]}/{r[2] or '-'} ({r[3]} embeddings)" for r in have)
        raise BadParameter(f"dedup --by clip:MODEL: name one model by id or name ({listing})")
    return hit[0][0], hit[0][1]


def _by_clip(conn, run, s: DedupSettings, spec: str | None, progress) -> None:
    mid, _ = clip_model(conn, spec)
    v = f"clip.1:m{mid}:t{s.clip_threshold:g}"
    fp = _fp(conn, "SELECT count(*), max(rowid) FROM image_embeddings WHERE model_id = ?", (mid,))
    if _state(conn, "clip", v) == fp:
        run.add("unchanged")
        return
    rows = conn.execute("SELECT e.url_key, e.embedding, coalesce(i.width, 0) * coalesce(i.height, 0) "
                        "FROM image_embeddings e LEFT JOIN images i ON i.url_key = e.url_key WHERE e.model_id = ? "
                        "ORDER BY e.url_key", (mid,)).fetchall()
    dim = max((len(r[1]) for r in rows), default=0)
    rows = [r for r in rows if len(r[1]) == dim and dim]
    keys = [r[0] for r in rows]
    area = np.array([r[2] for r in rows], dtype=np.int64)
    emb = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f2").reshape(len(rows), dim // 2) if rows else \
        np.zeros((0, 1), np.float16)
    i, j = near.clip_pairs(emb, s.clip_threshold, exact_max=s.exact_max)
    labels = near.components(len(keys), i, j) if keys else np.zeros(0, int)
    _image_groups(conn, run, "clip", v, fp, keys, labels, area)


def _repeats(conn, run) -> None:
    """alt_repeats per alt text and url_repeats per image URL: counts over the whole corpus."""
    v = REPEATS_VERSION
    fp = _fp(conn, "SELECT count(*), max(id) FROM media WHERE kind = 'image'")
    if _state(conn, "repeats", v) == fp:
        run.add("unchanged")
        return
    alts = conn.execute("SELECT id, alt, url_key FROM media WHERE kind = 'image' AND alt IS NOT NULL "
                        "AND trim(alt) != ''").fetchall()
    normed = [text.norm(a) for _, a, _ in alts]
    images: dict[str, set] = {}  # alt -> the distinct images carrying it (recaptures do not count)
    for (_, _, key), n in zip(alts, normed):
        images.setdefault(n, set()).add(key)
    count = {n: len(k) for n, k in images.items()}
    del images
    # pages showing each image URL, counted by page URL (recaptures of one page do not count)
    urls = conn.execute("SELECT m.url_key, count(DISTINCT p.url) FROM media m JOIN pages p ON p.id = m.page_id "
                        "WHERE m.kind = 'image' GROUP BY m.url_key").fetchall()
    with transaction(conn):
        conn.executemany("INSERT OR REPLACE INTO text_signals (media_id, source, signal, version, value, label, run_id, span_run) VALUES (?, 'alt', 'alt_repeats', ?, ?, NULL, ?, NULL)",
                         [(mid, v, count[n], run.id) for (mid, _, _), n in zip(alts, normed)])
        conn.executemany("INSERT OR REPLACE INTO image_signals (url_key, signal, version, value, label, run_id) VALUES (?, 'url_repeats', ?, ?, NULL, ?)",
                         [(k, v, c, run.id) for k, c in urls])
        conn.execute("INSERT OR REPLACE INTO dedup_state (method, version, fingerprint, groups, members, run_id) VALUES ('repeats', ?, ?, NULL, ?, ?)",
                     (v, fp, len(alts) + len(urls), run.id))
    run.counts["alt_repeats"] = len(alts)
    run.counts["url_repeats"] = len(urls)


def parse_by(by) -> list[tuple[str, str | None]]:
    items = by.split(",") if isinstance(by, str) else list(by)
    out = []
    for item in (x.strip() for x in items):
        if not item:
            continue
        method, _, arg = item.partition(":")
        if method not in METHODS or (arg and method != "clip"):
            raise BadParameter(f"unknown dedup method {item!r}; choose from url, sha256, phash, clip[:MODEL]")
        out.append((method, arg or None))
    return out


def dedup(conn: sqlite3.Connection, s: DedupSettings | None = None, progress: bool = True) -> Result:
    s = s or DedupSettings()
    methods = parse_by(s.by)
    if s.phash_distance < 0 or s.phash_distance > 16:
        raise BadParameter("--phash-distance must be between 0 and 16")
    if not -1.0 <= s.clip_threshold <= 1.0:
        raise BadParameter("--clip-threshold is a cosine, between -1 and 1")
    with stage_run(conn, "dedup", s) as run:
        bar = progress_bar(progress, len(methods) + s.repeats, "dedup", "method")
        try:
            for method, arg in methods:
                if method == "url":
                    _by_url(conn, run)
                elif method == "sha256":
                    _by_sha256(conn, run)
                elif method == "phash":
                    _by_phash(conn, run, s)
                else:
                    _by_clip(conn, run, s, arg, progress)
                bar.update()
            if s.repeats:
                _repeats(conn, run)
                bar.update()
        finally:
            bar.close()
    return run.result()
