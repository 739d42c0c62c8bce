"""Shards: the plan (which pairs go in which shard), deterministic tar and parquet writing, and the
temporary-name-then-rename rule.

A shard's files are written as `.NAME.tmp` beside their final names and renamed when all are
complete; its `NAME_stats.json` is renamed last, so a shard is finished exactly when that file exists.
Nothing written depends on the clock, the user or the output folder (tar headers: mtime 0, uid/gid 0,
no user or group names), so a killed export that is run again gives the same files byte for byte.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from .pairs import Pair


@dataclass
class Shard:
    name: str                    # 00000000
    pairs: list[Pair]


@dataclass
class Failure:
    pair: Pair
    kind: str                    # unreadable | sha256_mismatch | no_bytes | undecodable | over_image_cap | not_in_text_flow
    message: str

    def as_json(self) -> dict:
        return {"index": self.pair.index, "uid": self.pair.uid, "media_id": self.pair.media_id, "kind": self.kind,
                "message": self.message}


@dataclass
class Outcome:
    shard: Shard
    failures: list[Failure] = field(default_factory=list)

    @property
    def written(self) -> list[Pair]:
        bad = {f.pair.index for f in self.failures}
        return [p for p in self.shard.pairs if p.index not in bad]


def shard_name(i: int) -> str:
    return f"{i:08d}"


def plan_pairs(pairs: list[Pair], size: int) -> list[Shard]:
    """Consecutive runs of `size` pairs in the recipe's order."""
    return [Shard(shard_name(i // size), pairs[i:i + size]) for i in range(0, len(pairs), size)] or []


def plan_pages(pairs: list[Pair], size: int) -> list[Shard]:
    """Whole pages (in order of their first pair in the recipe), each page's pairs in document order,
    a shard closed once it holds `size` pairs or more (a page is never split)."""
    shards, cur = [], []
    for items in by_page(pairs):
        cur.extend(sorted(items, key=lambda p: (p.pos if p.pos is not None else p.text_len, p.seq, p.index)))
        if len(cur) >= size:
            shards.append(Shard(shard_name(len(shards)), cur))
            cur = []
    if cur:
        shards.append(Shard(shard_name(len(shards)), cur))
    return shards


def by_page(pairs: list[Pair]) -> list[list[Pair]]:
    """A shard's pairs grouped by page, pages in order."""
    pages: dict[int, list[Pair]] = {}
    for p in pairs:
        pages.setdefault(p.page_id, []).append(p)
    return list(pages.values())


def tmp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


class TarWriter:
    """A tar whose headers hold nothing but names and sizes (mtime 0, root, mode 644)."""

    def __init__(self, target):
        self.tar = tarfile.open(fileobj=target, mode="w", format=tarfile.USTAR_FORMAT) if not isinstance(
            target, (str, Path)) else tarfile.open(target, mode="w", format=tarfile.USTAR_FORMAT)

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self.tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    w = TarWriter(buf)
    for name, data in members:
        w.add(name, data)
    w.close()
    return buf.getvalue()


def write_parquet(path: Path, rows: list[dict], schema) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    pq.write_table(table, str(path), compression="zstd")


def dumps(obj) -> bytes:
    return (json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, default=str) + "\n").encode()


def commit_files(out: Path, names: list[str]) -> None:
    """Rename each `.NAME.tmp` to NAME, in order (the stats file last), each fsynced first."""
    for n in names:
        t = tmp_path(out / n)
        with open(t, "rb") as f:
            os.fsync(f.fileno())
        os.replace(t, out / n)
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
