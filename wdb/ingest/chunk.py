"""Read one chunk of an archive (a byte range) and yield row batches with their resume points."""
from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Iterator

from ..inputs import open_at
from ..warc.reader import ArchiveProblem, ArchiveReader, Record
from .extract_record import Batch, Settings, process_record

BATCH_RECORDS = 300
BATCH_TEXT = 4 << 20
MAX_RESTARTS = 1000  # reader restarts after an unexpected error, per chunk

WARC_TYPES = ("warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion",
              "continuation")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}:")
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\ufffd]")


@dataclass
class Chunk:
    archive_id: int
    location: str
    is_url: bool
    start: int
    end: int | None
    pos: int
    skip: int
    gz: bool | None = None  # None: detect from the first bytes (only valid at offset 0)
    skip_offsets: set[int] = field(default_factory=set)  # records that crashed a worker
    attempts: int = 0

    @property
    def key(self) -> tuple[int, int]:
        return self.archive_id, self.start


@dataclass
class Progress:
    batch: Batch
    resume: tuple[int, int]
    bytes_read: int  # absolute position reached in the file
    final: bool


def _fault(url: str) -> None:
    """Fault injection for the supervisor's tests: WDB_FAULT=segfault:<substr> or hang:<substr>."""
    spec = os.environ.get("WDB_FAULT")
    if not spec:
        return
    what, _, sub = spec.partition(":")
    if sub and sub in url:
        if what == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif what == "hang":
            time.sleep(3600)


def _near(a: str, b: str) -> bool:
    """Edit distance of at most 1 (a damaged byte: changed, dropped or added)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    if len(a) > len(b):
        a, b = b, a
    return any(b[:i] + b[i + 1:] == a for i in range(len(b)))


def check_record(rec: Record, problems: list) -> bool:
    """Validate the WARC-Type and WARC-Target-URI of a record, repairing a damaged header where one
    reading is clear.  Adds problem rows; returns False if the record cannot be used."""
    h = rec.headers
    url = h.get("warc-target-uri")
    if url is None:
        keys = [k for k in h if k.startswith("warc-") and _near(k, "warc-target-uri")]
        if len(keys) == 1:
            url = h["warc-target-uri"] = h.pop(keys[0])
            problems.append((rec.offset, url.strip().strip("<>") or None, "record",
                             f"damaged header name {keys[0]!r} read as WARC-Target-URI"))
    rtype = h.get("warc-type")
    where = url.strip().strip("<>") if url else None
    if rec.fmt != "warc":
        pass  # ARC records: the reader sets the type
    elif rtype is None:
        keys = [k for k in h if _near(k, "warc-type")]
        ct = h.get("content-type", "").replace(" ", "").lower()
        guess = h.pop(keys[0]).strip().lower() if len(keys) == 1 else \
            "response" if "msgtype=response" in ct else "request" if "msgtype=request" in ct else None
        if guess is None:
            problems.append((rec.offset, where, "archive", "WARC record without WARC-Type; skipped"))
            return False
        h["warc-type"] = rtype = guess
        problems.append((rec.offset, where, "record", f"WARC record without WARC-Type; read as {guess!r}"))
    elif rtype not in WARC_TYPES:
        near = [t for t in WARC_TYPES if _near(rtype.lower(), t)]
        if len(near) != 1:
            problems.append((rec.offset, where, "archive", f"unknown WARC-Type {rtype[:40]!r}; record skipped"))
            return False
        h["warc-type"] = near[0]
        problems.append((rec.offset, where, "record", f"damaged WARC-Type {rtype[:40]!r} read as {near[0]!r}"))
        rtype = near[0]
    if rtype not in ("response", "resource") or not url:
        return True
    target = url.strip().strip("<>")
    mt = _SCHEME.match(target)
    scheme = mt.group()[:-1].lower() if mt else None
    if scheme in ("http", "https"):
        if _BAD_URL_CHARS.search(target):
            problems.append((rec.offset, target[:2000], "record", "WARC-Target-URI holds spaces, control "
                             "characters or undecodable bytes; used as it is"))
        return True
    # dns:, urn:, whois: and the like are skipped without a word; a scheme one byte away from
    # http(s), or none at all, is a damaged web URL
    if scheme is None or _near(scheme, "http") or _near(scheme, "https"):
        problems.append((rec.offset, target[:2000] or None, "archive",
                         f"{rtype} record with a damaged WARC-Target-URI scheme; skipped"))
        return False
    return True


def _reader_items(chunk: Chunk, s: Settings, state: dict):
    """The reader's items; an unexpected reader error costs a problem row and a restart just past
    the last good position, never the chunk."""
    pos, skip, gz = chunk.pos, chunk.skip, chunk.gz
    restarts = 0
    while True:
        f = open_at(chunk.location, chunk.is_url, pos)
        try:
            reader = ArchiveReader(f, start=pos, end=chunk.end, skip=skip, max_block=s.max_record_bytes, gz=gz)
            state["reader"] = reader
            it = iter(reader)
            while True:
                try:
                    item = next(it)
                except StopIteration:
                    return
                except Exception as e:  # noqa: BLE001 -- hostile bytes never stop the chunk
                    restarts += 1
                    at = reader.member_start if reader.gz else reader.plain_next
                    yield ArchiveProblem(at, f"reader error {type(e).__name__}: {e}; "
                                             "reading resumed after this offset")
                    if restarts > MAX_RESTARTS:
                        yield ArchiveProblem(at, f"over {MAX_RESTARTS} reader errors; rest of chunk skipped")
                        return
                    pos, skip, gz = at + 1, 0, reader.gz
                    break
                yield item
        finally:
            f.close()


def iter_chunk(chunk: Chunk, s: Settings, beat=None) -> Iterator[Progress]:
    """Records whose member starts in [chunk.pos, chunk.end), from the resume point on."""
    state: dict = {}
    batch = Batch()
    faults = bool(os.environ.get("WDB_FAULT"))
    for item in _reader_items(chunk, s, state):
        reader = state["reader"]
        if isinstance(item, ArchiveProblem):
            batch.problems.append((item.offset, None, "archive" if item.lossy else "padding", item.message))
            continue
        if not check_record(item, batch.problems):
            batch.records += 1
            continue
        if beat is not None:
            beat[0].value = item.offset
            beat[1].value = time.monotonic()
        if item.offset in chunk.skip_offsets:
            batch.records += 1
        else:
            url = item.headers.get("warc-target-uri", "")
            if faults and item.rec_type == "response":
                _fault(url)
            try:
                process_record(item, batch, s)
            except Exception as e:  # noqa: BLE001 -- one bad record never stops the file
                batch.problems.append((item.offset, url or None, "extract_error",
                                       f"{type(e).__name__}: {e}"))
        if len(batch.pages) + len(batch.archived_media) >= BATCH_RECORDS or batch.text_bytes >= BATCH_TEXT:
            yield Progress(batch, reader.resume, reader.raw.pos, False)
            batch = Batch()
    if beat is not None:
        beat[0].value = -1
    reader = state.get("reader")
    yield Progress(batch, reader.resume if reader else (chunk.pos, chunk.skip),
                   reader.raw.pos if reader else chunk.pos, True)
