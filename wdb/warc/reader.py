"""Read WARC and ARC records from gzip or plain files, with exact offsets and resynchronisation.

Neither warcio nor FastWARC survives a corrupt gzip member (both stop the file), and both read a
truncated record silently.  This reader inflates gzip members itself (zlib-ng, C speed), so it knows
where every member starts and ends, flags short records (bytes read < Content-Length), and after a
corrupt member scans for the next member that inflates to a record header.  Inside a member (or
a plain file) a record whose declared length disagrees with the bytes that follow it is cut at the
next record header, so one wrong Content-Length never swallows the records after it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from .stream import (MAX_HEADER_BYTES, PADDING, _ARC_LINE, _Member, _parse_headers, _Raw, find_member, is_gzip,
                     looks_like_record)


_LENGTH = re.compile(rb"[ \t]*\d{1,18}[ \t]*")
# the next record header (group 1), searched for only when a record's length disagrees with what
# follows it or a header does not parse: inside a block a header must follow the newline that ends
# a record; after damage a WARC header may follow anything
_NEXT_WARC = re.compile(rb"\n(WARC/\d\.\d{1,2}\r?\n)")
_SYNC_WARC = re.compile(rb"(WARC/\d\.\d{1,2}\r?\n)")
_NEXT_ARC = re.compile(rb"[\n\x00]([A-Za-z][A-Za-z0-9+.-]{0,15}:[^ \r\n]{1,8192} [^ \r\n]{1,64} \d{8,14} "
                       rb"[^ \r\n]{0,256} \d{1,18}[ \t\r]*\n)")
# the first record of a file that does not start with one (junk before it)
_FIRST = re.compile(rb"WARC/\d\.\d{1,2}\r?\n|filedesc://[^ \r\n]{1,8192} [^ \r\n]{1,64} \d{8,14} ")
FIRST_RECORD_LIMIT = 16 << 20  # bytes searched for the first record of a file that starts with junk


@dataclass
class Record:
    """One archive record: headers, block (capped) and where it lives in the file."""

    offset: int  # absolute offset of the gzip member (or of the record in a plain file)
    length: int  # compressed member length (or record length in a plain file)
    inner: int  # offset of the record inside the inflated member (0 for one record per member)
    fmt: str  # "warc" or "arc"
    headers: dict[str, str]
    block: bytes  # first max_block bytes of the block
    block_len: int  # bytes actually present in the file
    declared_len: int  # Content-Length / ARC length
    problems: list[str] = field(default_factory=list)
    fix: "ArchiveProblem | None" = None  # the reader's report on a length it had to correct

    @property
    def rec_type(self) -> str:
        return self.headers.get("warc-type", "response")

    @property
    def short(self) -> bool:
        return self.block_len < self.declared_len

    @property
    def capped(self) -> bool:
        return len(self.block) < self.block_len


class ArchiveProblem:
    """A problem that is reported and skipped (the rest of the file is still read).

    lossy: bytes that may have held records were skipped (the archive ends 'partial'); False for
    padding (NUL bytes, blank lines) and records read in full despite a damaged field.
    """

    def __init__(self, offset: int | None, message: str, lossy: bool = True):
        self.offset = offset
        self.message = message
        self.lossy = lossy

    def __str__(self) -> str:
        return f"@{self.offset}: {self.message}"


class ArchiveReader:
    """Iterate records of one archive stream from `start`, resuming after `skip` records.

    Yields Record objects and ArchiveProblem instances (problems are yielded, never raised, so a
    bad record never stops the file).  `end` bounds the offsets at which new members may start.
    """

    def __init__(self, f: BinaryIO, start: int = 0, end: int | None = None, skip: int = 0,
                 max_block: int = 8 << 20, gz: bool | None = None):
        self.raw = _Raw(f, start)
        self.start = start
        self.end = end
        self.skip = skip
        self.max_block = max_block
        self.member_start = start
        self.in_member = 0  # records already produced from the current member
        self.plain_next = start  # plain files: offset just after the last record
        self.fmt: str | None = None  # "warc" or "arc", from the first record read
        # a reader that starts inside a file must be told whether the file is gzip (a file with
        # junk before its first member is told it is not: a gzip member where it starts says it is)
        self.gz = gz or is_gzip(self.raw.peek(3))

    # position to resume from after the last yielded record: (member offset, records to skip)
    @property
    def resume(self) -> tuple[int, int]:
        if not self.gz:
            return self.plain_next, 0
        return self.member_start, self.in_member

    def _first(self) -> Iterator[ArchiveProblem]:
        """Find the first record of a stream that does not start with one (junk before it)."""
        raw = self.raw
        head = raw.peek(4096)
        body = head.lstrip(PADDING)
        if not body and len(head) < 4096:
            return  # empty, or padding only
        if body and (is_gzip(body) or looks_like_record(body)):
            pad = len(head) - len(body)
            if pad:
                raw.i += pad
                yield ArchiveProblem(raw.pos - pad, f"{pad} bytes of padding skipped before the first record",
                                     lossy=False)
            if is_gzip(body):
                self.gz = True
            return
        bad = raw.pos
        plain = raw.search(_FIRST, FIRST_RECORD_LIMIT)
        self._rewind_to(bad)
        member = find_member(raw, FIRST_RECORD_LIMIT)
        if member < 0 and plain < 0:
            self._rewind_to(bad)
            yield ArchiveProblem(bad, "no WARC/ARC record in the first "
                                 f"{FIRST_RECORD_LIMIT >> 20} MiB; file skipped")
            raw.i, raw.buf, raw.eof = 0, b"", True
            return
        at = member if member >= 0 and (plain < 0 or member < plain) else plain
        self.gz = at == member
        self._rewind_to(bad)
        padding = at - bad <= 1 << 20 and not raw.peek(at - bad).strip(PADDING)
        self._rewind_to(at)
        yield ArchiveProblem(bad, f"{at - bad} bytes of {'padding' if padding else 'garbage'} skipped before the "
                                  "first record", lossy=not padding)

    def __iter__(self) -> Iterator[Record | ArchiveProblem]:
        raw = self.raw
        if self.gz and self.start > 0:
            if find_member(raw) < 0:
                return
        elif not self.gz and not self.skip:
            yield from self._first()
        while True:
            if self.end is not None and raw.pos >= self.end:
                return
            if not raw.peek(1):
                return
            if self.gz and not is_gzip(raw.peek(3)):
                bad = raw.pos
                base = raw.base
                found = find_member(raw) >= 0
                # the skipped bytes, where they are still buffered: padding loses nothing
                skipped = (raw.buf[bad - base:raw.pos - base] if found else raw.buf[bad - base:]) \
                    if raw.base == base else b"x"
                padding = not skipped.strip(PADDING)
                if not found:
                    yield ArchiveProblem(bad, "padding after the last gzip member" if padding else
                                         "no gzip member after this offset; rest of file skipped", lossy=not padding)
                    return
                yield ArchiveProblem(bad, f"{raw.pos - bad} bytes of {'padding' if padding else 'garbage'} "
                                          "skipped before next gzip member", lossy=not padding)
                continue
            member = _Member(raw, self.gz)
            self.member_start = member.start
            self.in_member = 0
            skip, self.skip = self.skip, 0
            yield from self._records(member, skip)
            if member.error or (member.truncated and self.gz):
                msg = member.error or "truncated gzip member (file ends inside it)"
                yield ArchiveProblem(member.start, msg)
                if member.error:
                    # resynchronise at the next member after the corrupt one's start
                    self._rewind_to(member.start + 1)
                    if find_member(raw) < 0:
                        return
            if not self.gz:
                return

    def _rewind_to(self, pos: int) -> bool:
        raw = self.raw
        if raw.base <= pos <= raw.base + len(raw.buf):
            raw.i = pos - raw.base
            return True
        try:
            raw.f.seek(pos)
        except (AttributeError, OSError, ValueError):
            raw.i = len(raw.buf)  # stream: cannot go back; scan on from here
            return False
        raw.buf, raw.i, raw.base, raw.eof = b"", 0, pos, False
        return True

    def _records(self, m: _Member, skip: int) -> Iterator[Record | ArchiveProblem]:
        while True:
            line = m.readline()
            while line in (b"\r\n", b"\n"):
                line = m.readline()
            inner = m.produced - len(line)
            if not line:
                return
            if line.startswith(b"WARC/"):
                rec = self._warc(m, inner, line)
            else:
                rec = self._arc(m, inner, line)
            if isinstance(rec, ArchiveProblem):
                yield rec
                if not m.resync(_NEXT_ARC if self.fmt == "arc" else _SYNC_WARC):
                    return
                continue
            # consume the record separator so that a member's end can be seen
            while m.peek(1) in (b"\r", b"\n"):
                m.read(1)
            if self.gz and inner == 0 and m.at_end():
                rec.length = self.raw.pos - m.start
            self.plain_next = m.start + m.produced
            fix, rec.fix = rec.fix, None
            if skip:
                skip -= 1
                self.in_member += 1
                continue
            self.in_member += 1
            if fix is not None:
                yield fix
            yield rec

    def _block(self, m: _Member, n: int, headers: dict) -> tuple[bytes, int]:
        cap = min(n, self.max_block)
        block = m.read(cap)
        got = len(block)
        if got == cap and n > cap:
            got += m.skip(n - cap)
        return block, got

    def _follows(self, m: _Member) -> bool:
        """True if what follows the block is the end of the stream or a record header."""
        head = m.peek(32)  # the separator and the next header's first bytes (no 4 KiB copy a record)
        nxt = head.lstrip(b"\r\n")
        if nxt.startswith(b"WARC/") or not head:
            return True
        if not nxt or self.fmt == "arc":
            nxt = m.peek(4096).lstrip(b"\r\n")
            if not nxt:
                return True
        if self.fmt == "arc":
            return bool(_ARC_LINE.match(nxt.split(b"\n", 1)[0].rstrip(b"\r")))
        return False

    def _checked(self, m: _Member, inner: int, block: bytes, got: int, n: int):
        """Check a block against what follows it; cut it at the next header if it ran over one.

        Returns (block, got, problem or None).  Only a record whose length disagrees with the
        bytes after it pays for a search.
        """
        follows = self._follows(m)
        if got == n and follows:
            return block, got, None
        rx = _NEXT_ARC if self.fmt == "arc" else _NEXT_WARC
        sync = _NEXT_ARC if self.fmt == "arc" else _SYNC_WARC
        at = m.start + inner if not self.gz else m.start
        where = "" if not self.gz else f" (record at +{inner} in the member)"
        if got == len(block):  # the whole block is in memory
            mt = rx.search(block)
            if mt:
                j = mt.start(1)
                m.unread(block[j:])
                cut = block[:j]
                for sep in (b"\r\n\r\n", b"\n\n", b"\r\n", b"\n"):
                    if cut.endswith(sep):
                        cut = cut[:-len(sep)]
                        break
                return cut, len(cut), ArchiveProblem(
                    at, f"declared length {n} runs over the next record header {j} bytes into the block; "
                        f"record cut there and reading resumed at that header{where}")
        elif self._reposition(m, m.produced - (got - len(block))):
            # the block was capped: look for a header in the bytes skipped past the cap
            begin = m.produced - len(block)
            if m.resync(rx):
                j = m.produced - begin
                if j <= n:
                    return block, j, ArchiveProblem(
                        at, f"declared length {n} runs over the next record header {j} bytes into the block; "
                            f"record cut there and reading resumed at that header{where}")
                return block, got, ArchiveProblem(
                    at, f"{j - n} bytes after the record's declared length {n} skipped up to the next "
                        f"record header{where}")
            if got == n:
                return block, got, ArchiveProblem(
                    at, f"the bytes after the record are not a record (cut or garbage){where}")
        if got < n:
            if self.gz:
                return block, got, None  # the member ends early: flagged short; a truncated member is reported
            return block, got, ArchiveProblem(at, f"file ends inside the record: {got} of {n} declared bytes")
        before = m.produced
        found = m.resync(sync)
        skipped = m.produced - before
        what = "padding" if m.padding else "bytes"
        if found:
            return block, got, ArchiveProblem(
                at, f"{skipped} {what} after the record's declared length {n} skipped up to the next "
                    f"record header{where}", lossy=not m.padding)
        return block, got, ArchiveProblem(
            at, f"{skipped} {what} after the last record are not a record (cut or garbage){where}",
            lossy=not m.padding)

    def _reposition(self, m: _Member, rel: int) -> bool:
        """Move m back to `rel` bytes from its start (re-inflating a gzip member); False for streams."""
        if not self.gz:
            if not self._rewind_to(m.start + rel):
                return False
            m.out, m.o, m.done, m.produced = b"", 0, False, rel
            return True
        if not self._rewind_to(m.start):
            return False
        m.__init__(self.raw, True)
        return m.skip(rel) == rel

    def _warc(self, m: _Member, inner: int, first: bytes):
        lines = []
        size = 0
        while True:
            line = m.readline()
            if not line:
                break
            size += len(line)
            if line in (b"\r\n", b"\n"):
                break
            if size > MAX_HEADER_BYTES:
                return ArchiveProblem(m.start + (0 if self.gz else inner), f"WARC header over {MAX_HEADER_BYTES} bytes")
            lines.append(line.rstrip(b"\r\n"))
        headers = _parse_headers(lines)
        if self.fmt is None:
            self.fmt = "warc"
        cl = headers.get("content-length", "")
        if not _LENGTH.fullmatch(cl.encode("latin-1", "replace")):
            return ArchiveProblem(m.start + (0 if self.gz else inner),
                                  f"WARC record without a valid Content-Length ({cl[:40]!r})")
        n = int(cl)
        problems: list[str] = []
        block, got = self._block(m, n, headers)
        block, got, fix = self._checked(m, inner, block, got, n)
        rec = Record(m.start, 0, inner, "warc", headers, block, got, n, problems)
        rec.fix = fix
        if not self.gz:
            rec.offset, rec.inner, rec.length = m.start + inner, 0, m.produced - inner
        if got < n:
            problems.append(f"short record: {got} of {n} declared bytes")
        return rec

    def _arc(self, m: _Member, inner: int, first: bytes):
        line = first.rstrip(b"\r\n")
        at = m.start + (0 if self.gz else inner)
        if line.startswith(b"filedesc://"):
            parts = line.split(b" ")
            if not _LENGTH.fullmatch(parts[-1]):
                return ArchiveProblem(at, "bad ARC file header")
            n = int(parts[-1])
            got = m.skip(n)
            self.fmt = "arc"
            rec = Record(m.start, 0, inner, "arc", {"warc-type": "warcinfo"}, b"", got, n)
            if not self.gz:
                rec.offset, rec.inner, rec.length = at, 0, m.produced - inner
            return rec
        mt = _ARC_LINE.match(line)
        if not mt:
            snippet = line[:40].decode("latin-1")
            return ArchiveProblem(at, f"not a WARC/ARC record header: {snippet!r}")
        if self.fmt is None:
            self.fmt = "arc"
        url, ip, date, mime, n = mt.groups()
        n = int(n)
        headers = {
            "warc-type": "response",
            "warc-target-uri": url.decode("utf-8", "replace"),
            "warc-date": _arc_date(date.decode("latin-1")),
            "warc-ip-address": ip.decode("latin-1"),
            "content-type": "application/http; msgtype=response",
            "arc-mime": mime.decode("latin-1"),
        }
        problems: list[str] = []
        block, got = self._block(m, n, headers)
        block, got, fix = self._checked(m, inner, block, got, n)
        rec = Record(m.start, 0, inner, "arc", headers, block, got, n, problems)
        rec.fix = fix
        if not self.gz:
            rec.offset, rec.inner, rec.length = m.start + inner, 0, m.produced - inner
        if got < n:
            problems.append(f"short record: {got} of {n} declared bytes")
        return rec


def _arc_date(d: str) -> str:
    d = d.ljust(14, "0")
    return f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}Z"


def read_record(f: BinaryIO, offset: int, inner: int = 0, max_block: int = 64 << 20) -> Record:
    """Read the record at a pointer from a stream positioned at offset, with a NEW reader."""
    rdr = ArchiveReader(f, offset, max_block=max_block)  # its stream says whether it is gzip
    raw, gz = rdr.raw, rdr.gz
    m = _Member(raw, gz)
    if inner:
        m.skip(inner)
    line = m.readline()
    while line in (b"\r\n", b"\n"):
        line = m.readline()
    rec = rdr._warc(m, inner, line) if line.startswith(b"WARC/") else rdr._arc(m, inner, line)
    if isinstance(rec, ArchiveProblem) or rec is None:
        raise ValueError(f"no record at offset {offset}: {rec}")
    return rec


def read_record_at(path: str, offset: int, inner: int = 0, max_block: int = 64 << 20) -> Record:
    """Re-read one record from a pointer (file, offset, inner)."""
    with open(path, "rb") as f:
        f.seek(offset)
        return read_record(f, offset, inner, max_block)
