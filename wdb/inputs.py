"""Expand inputs (files, directories, globs, URLs, Common Crawl paths files) and open them."""
from __future__ import annotations

import glob
import gzip
import hashlib
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import NoInputs

ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
PATHS_SUFFIXES = (".paths", ".paths.gz")
DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
HTTP_TIMEOUT = 60
HEAD_BYTES = 65536  # the part of a local file hashed for its identity
# a Common Crawl snapshot, optionally one segment of it and a slice of its paths:
# CC-MAIN-2024-22, CC-MAIN-2024-22:100 (the first 100), CC-MAIN-2024-22:100-200,
# CC-MAIN-2024-22/segments/1715971057216.39 (one segment), CC-MAIN-2024-22/segments/SEG:10
CRAWL_ID = re.compile(r"^(CC-MAIN-\d{4}-\d{2})(?:/segments/([A-Za-z0-9._-]+))?(?::(\d+)(?:-(\d+))?)?$")


@dataclass
class Source:
    location: str  # absolute path or URL
    is_url: bool

    @property
    def name(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1]


def is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def _archive_name(p: str) -> bool:
    return p.lower().endswith(ARCHIVE_SUFFIXES)


def expand(inputs: list[str], base_url: str = DEFAULT_BASE_URL, limit: int | None = None) -> list[Source]:
    """Turn command-line inputs into an ordered, de-duplicated list of archive sources."""
    out: list[Source] = []
    seen = set()

    def add(src: Source) -> None:
        if src.location not in seen:
            seen.add(src.location)
            out.append(src)

    for inp in inputs:
        m = CRAWL_ID.match(inp)
        if m:
            for line in crawl_paths(inp, base_url):
                add(_path_source(base_url, line))
            continue
        if is_url(inp):
            if inp.lower().endswith(PATHS_SUFFIXES):
                for line in _read_lines_url(inp):
                    add(Source(_join(base_url, line), True))
            else:
                add(Source(inp, True))
            continue
        paths = sorted(glob.glob(inp, recursive=True)) if glob.has_magic(inp) else [inp]
        for p in paths:
            path = Path(p)
            if path.is_dir():
                for f in sorted(path.rglob("*")):
                    if f.is_file() and _archive_name(f.name):
                        add(Source(str(f.resolve()), False))
            elif p.lower().endswith(PATHS_SUFFIXES) and path.is_file():
                opener = gzip.open if p.endswith(".gz") else open
                with opener(p, "rt") as fh:
                    for line in fh:
                        if line.strip():
                            add(_path_source(base_url, line.strip()))
            elif path.exists():
                add(Source(str(path.resolve()), False))
            else:
                raise NoInputs(f"no such file: {p}")
    if limit is not None:
        out = out[:limit]
    if not out:
        raise NoInputs("no WARC/ARC files found in the inputs (.warc, .warc.gz, .arc, .arc.gz)")
    return out


def crawl_paths(crawl: str, base_url: str = DEFAULT_BASE_URL) -> list[str]:
    """The WARC paths of a crawl id (see CRAWL_ID), read from `crawl-data/<id>/warc.paths.gz` under
    base_url (Common Crawl's server, a mirror's URL, or a local mirror folder)."""
    m = CRAWL_ID.match(crawl)
    if not m:
        raise NoInputs(f"not a crawl id: {crawl} (CC-MAIN-YYYY-WW, /segments/SEG, :N or :A-B)")
    cid, segment, a, b = m.groups()
    rel = f"crawl-data/{cid}/warc.paths.gz"
    if is_url(base_url):
        try:
            lines = _read_lines_url(_join(base_url, rel))
        except OSError as e:
            raise NoInputs(f"{crawl}: cannot read {_join(base_url, rel)}: {e}") from e
    else:
        p = Path(base_url) / rel
        if not p.is_file():
            raise NoInputs(f"{crawl}: no {p} (give --base-url a Common Crawl mirror)")
        with gzip.open(p, "rt") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    if segment:
        lines = [ln for ln in lines if f"/segments/{segment}/" in ln]
    if a is not None:
        lines = lines[:int(a)] if b is None else lines[int(a):int(b)]
    if not lines:
        raise NoInputs(f"{crawl}: no WARC paths selected")
    return lines


def _path_source(base_url: str, rel: str) -> Source:
    if is_url(base_url):
        return Source(_join(base_url, rel), True)
    return Source(str((Path(base_url) / rel).resolve()), False)


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel.lstrip("/")


def _read_lines_url(url: str) -> list[str]:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
        data = r.read(256 << 20)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [ln.strip() for ln in data.decode().splitlines() if ln.strip()]


def identity(src: Source) -> tuple[str, int | None, str | None, str | None]:
    """(identity, size, compression, head). How "already ingested" is decided: a URL by itself; a
    local file by size + the sha256 of its first 64 KiB (`head`).

    A local file keeps its identity when moved or renamed (its new path is recorded); a file that
    grew at the same path (a crawler still writing it, a truncated copy completed) is recognised by
    its old bytes being a prefix of the new ones (wdb/ingest/store.py).
    """
    if src.is_url:
        return src.location, None, None, None
    size = os.path.getsize(src.location)
    with open(src.location, "rb") as f:
        head = f.read(HEAD_BYTES)
    compression = "gzip" if head[:3] == b"\x1f\x8b\x08" else "none"
    digest = hashlib.sha256(head).hexdigest()
    return f"sha256-head64k:{digest}:size:{size}", size, compression, digest


def open_at(src_location: str, url: bool, pos: int):
    """Binary stream positioned at pos (HTTP Range for URLs, falling back to reading past)."""
    if not url:
        f = open(src_location, "rb")
        f.seek(pos)
        return f
    req = urllib.request.Request(src_location, headers={"Range": f"bytes={pos}-"} if pos else {})
    r = urllib.request.urlopen(req, timeout=HTTP_TIMEOUT)
    if pos and r.status != 206:
        left = pos
        while left:
            got = r.read(min(left, 1 << 20))
            if not got:
                break
            left -= len(got)
    return r
