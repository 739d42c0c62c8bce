"""Read one chunk of an archive (a byte range) and yield row batches with their resume points."""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Iterator

from ..inputs import open_at
from ..warc.reader import ArchiveProblem, ArchiveReader
from .extract_record import Batch, Settings, process_record

BATCH_RECORDS = 300
BATCH_TEXT = 4 << 20


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


def iter_chunk(chunk: Chunk, s: Settings, beat=None) -> Iterator[Progress]:
    """Records whose member starts in [chunk.pos, chunk.end), from the resume point on."""
    f = open_at(chunk.location, chunk.is_url, chunk.pos)
    try:
        reader = ArchiveReader(f, start=chunk.pos, end=chunk.end, skip=chunk.skip,
                               max_block=s.max_record_bytes, gz=chunk.gz)
        batch = Batch()
        faults = bool(os.environ.get("WDB_FAULT"))
        for item in reader:
            if isinstance(item, ArchiveProblem):
                batch.problems.append((item.offset, None, "archive", item.message))
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
        yield Progress(batch, reader.resume, reader.raw.pos, True)
    finally:
        f.close()
