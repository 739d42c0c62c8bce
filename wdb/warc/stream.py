"""Byte-level reading of an archive stream: a buffered raw stream (`_Raw`), one gzip member or a
plain stretch of file inflated on demand (`_Member`), and finding the next gzip member that inflates
to a record. The record grammar is in reader.py."""
from __future__ import annotations

import re
from typing import BinaryIO

from .inflate import zlib

GZIP_MAGIC = b"\x1f\x8b\x08"
RAW_CHUNK = 1 << 16
MAX_HEADER_BYTES = 1 << 16
_ARC_LINE = re.compile(rb"^(\S+) (\S+) (\d{8,14}) (\S*) (\d{1,18})\s*$")
PADDING = b"\r\n\t \x00"


class _Raw:
    """Buffered reader over a binary stream that knows absolute positions."""

    def __init__(self, f: BinaryIO, start: int):
        self.f = f
        self.buf = b""
        self.i = 0
        self.base = start  # absolute offset of buf[0]
        self.eof = False

    @property
    def pos(self) -> int:
        return self.base + self.i

    def fill(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(RAW_CHUNK)
        if not data:
            self.eof = True
            return False
        self.base += self.i
        self.buf = self.buf[self.i:] + data
        self.i = 0
        return True

    def peek(self, n: int) -> bytes:
        while len(self.buf) - self.i < n and self.fill():
            pass
        return self.buf[self.i:self.i + n]

    def search(self, rx: re.Pattern, limit: int, overlap: int = 8448) -> int:
        """Advance to the next match of rx (absolute pos) or -1 after `limit` bytes/EOF."""
        scanned = 0
        while True:
            mt = rx.search(self.buf, self.i)
            if mt:
                self.i = mt.start()
                return self.pos
            keep = max(len(self.buf) - overlap, self.i)
            scanned += keep - self.i
            self.i = keep
            if scanned > limit or not self.fill():
                return -1

    def find(self, needle: bytes, limit: int) -> int:
        """Advance to the next occurrence of needle (absolute pos) or -1 after `limit` bytes/EOF."""
        scanned = 0
        while True:
            j = self.buf.find(needle, self.i)
            if j >= 0:
                self.i = j
                return self.pos
            keep = max(len(self.buf) - len(needle) + 1, self.i)
            scanned += keep - self.i
            self.i = keep
            if scanned > limit or not self.fill():
                return -1


class _Member:
    """File-like view of one gzip member, inflated on demand (or of a plain file)."""

    def __init__(self, raw: _Raw, gz: bool):
        self.raw = raw
        self.gz = gz
        self.start = raw.pos
        self.d = zlib.decompressobj(31) if gz else None
        self.out = b""
        self.o = 0
        self.done = False
        self.produced = 0  # inflated bytes handed out so far (== position inside the member)
        self.error: str | None = None
        self.truncated = False
        self.padding = True  # what the last resync skipped was only padding

    def _more(self, want: int) -> bool:
        if self.done:
            return False
        raw = self.raw
        if not self.gz:
            if raw.i >= len(raw.buf) and not raw.fill():
                self.done = True
                return False
            chunk = raw.buf[raw.i:]
            raw.i = len(raw.buf)
            self.out = self.out[self.o:] + chunk
            self.o = 0
            return True
        while True:
            if raw.i >= len(raw.buf) and not raw.fill():
                self.done = True
                self.truncated = True
                return False
            data = memoryview(raw.buf)[raw.i:]
            try:
                got = self.d.decompress(data, max(want, RAW_CHUNK))
            except zlib.error as e:
                self.done = True
                self.error = f"corrupt gzip member: {e}"
                return False
            if self.d.eof:  # unconsumed_tail is stale once the member has ended
                raw.i += len(data) - len(self.d.unused_data)
                self.done = True
            else:
                raw.i += len(data) - len(self.d.unconsumed_tail)
            if got:
                self.out = self.out[self.o:] + got
                self.o = 0
                return True
            if self.done:
                return False

    def readline(self, limit: int = MAX_HEADER_BYTES) -> bytes:
        while True:
            j = self.out.find(b"\n", self.o, self.o + limit)
            if j >= 0:
                line = self.out[self.o:j + 1]
                self.o = j + 1
                self.produced += len(line)
                return line
            if len(self.out) - self.o >= limit or not self._more(RAW_CHUNK):
                line = self.out[self.o:self.o + limit]
                self.o += len(line)
                self.produced += len(line)
                return line

    def read(self, n: int) -> bytes:
        while len(self.out) - self.o < n and self._more(n - (len(self.out) - self.o)):
            pass
        data = self.out[self.o:self.o + n]
        self.o += len(data)
        self.produced += len(data)
        return data

    def skip(self, n: int, sink=None) -> int:
        """Discard up to n bytes (feeding them to sink.update if given); return bytes skipped."""
        left = n
        while left > 0:
            if self.o >= len(self.out) and not self._more(min(left, 1 << 20)):
                break
            take = self.out[self.o:self.o + left]
            if sink is not None:
                sink.update(take)
            self.o += len(take)
            left -= len(take)
        self.produced += n - left
        return n - left

    def peek(self, n: int) -> bytes:
        while len(self.out) - self.o < n and self._more(n):
            pass
        return self.out[self.o:self.o + n]

    def resync(self, rx: re.Pattern, overlap: int = 8448) -> bool:
        """Skip to the next record header (rx's group 1); False at the end.  self.padding tells
        whether the bytes skipped were only padding (NUL bytes, blank lines)."""
        start = max(self.o - 1, 0)  # the newline that ended the last line read may precede a header
        self.padding = True
        while True:
            mt = rx.search(self.out, start)
            if mt:
                j = max(mt.start(1), self.o)
                if self.padding and self.out[self.o:j].strip(PADDING):
                    self.padding = False
                self.produced += j - self.o
                self.o = j
                return True
            keep = max(len(self.out) - overlap, self.o)
            if self.padding and self.out[self.o:keep].strip(PADDING):
                self.padding = False
            self.produced += keep - self.o
            self.o = keep
            if not self._more(RAW_CHUNK):
                if self.padding and self.out[self.o:].strip(PADDING):
                    self.padding = False
                self.produced += len(self.out) - self.o
                self.out, self.o = b"", 0
                return False
            start = self.o

    def unread(self, data: bytes) -> None:
        """Put bytes just read back in front of the stream."""
        self.out = data + self.out[self.o:]
        self.o = 0
        self.produced -= len(data)

    def at_end(self) -> bool:
        if self.o < len(self.out):
            return False
        return not self._more(1)


def _parse_headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for line in lines:
        if line[:1] in (b" ", b"\t") and last:
            headers[last] += " " + line.strip().decode("utf-8", "replace")
            continue
        k, sep, v = line.partition(b":")
        if not sep:
            continue
        last = k.strip().decode("latin-1").lower()
        headers[last] = v.strip().decode("utf-8", "replace")
    return headers


def looks_like_record(head: bytes) -> bool:
    """True if bytes start like a WARC record or an ARC record line."""
    if head.startswith(b"WARC/"):
        return True
    line = head.split(b"\n", 1)[0]
    return bool(_ARC_LINE.match(line.rstrip(b"\r"))) or line.startswith(b"filedesc://")


def _inflates_to_record(raw: _Raw) -> bool:
    head = raw.peek(4096)
    try:
        d = zlib.decompressobj(31)
        out = d.decompress(head, 512)
    except zlib.error:
        return False
    return looks_like_record(out.lstrip(b"\r\n"))


def find_member(raw: _Raw, limit: int = 1 << 62) -> int:
    """Move raw to the next gzip member that inflates to a record header; return its offset or -1."""
    while True:
        pos = raw.find(GZIP_MAGIC, limit)
        if pos < 0:
            return -1
        if _inflates_to_record(raw):
            return pos
        raw.i += 1


def is_gzip(head: bytes) -> bool:
    return head[:3] == GZIP_MAGIC
