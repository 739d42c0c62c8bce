"""Seeded random damage to real archives: the reader never raises, and every record it yields sits
inside the file, after the one before it.  (bench/fuzz_reader.py runs the same property for
minutes, with atheris where installed.)"""
import gzip
import io
import random
import zlib

import pytest

from conftest import corpus
from wdb.warc.reader import ArchiveProblem, ArchiveReader, Record

SMALL = ["cc-whirlwind/whirlwind.warc.gz", "jwarc-tests/cc.warc.gz", "pywb-sample-archive/example.arc.gz",
         "pywb-sample-archive/example.warc.gz", "pywb-sample-archive/example-wget-1-14.warc.gz",
         "aut-tests/issue-514.warc"]
CASES = 1500


def _plain(data: bytes) -> bytes:
    out, i = [], 0
    while i < len(data):
        d = zlib.decompressobj(31)
        out.append(d.decompress(data[i:]))
        i = len(data) - len(d.unused_data) if d.eof else len(data)
    return b"".join(out)


@pytest.fixture(scope="module")
def seeds():
    out = []
    for rel in SMALL:
        data = corpus(rel).read_bytes()
        out.append(data)
        if data[:2] == b"\x1f\x8b":
            out.append(_plain(data))  # the same records uncompressed
    out.append(gzip.compress(out[-1]))  # one gzip stream holding many records
    return out


def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert junk
            b[i:i] = rng.choice([b"\n", b"\r\n", b"\x00" * rng.randint(1, 600), rng.randbytes(rng.randint(1, 300))])
        elif op == 2:  # delete a range
            del b[i:i + rng.randint(1, 2000)]
        elif op == 3:  # truncate
            del b[i:]
        elif op == 4:  # duplicate a range
            j = rng.randrange(len(b) + 1)
            b[j:j] = b[i:i + rng.randint(1, 3000)]
        elif op == 5:  # change a declared length
            k = bytes(b).find(b"Content-Length:", i)
            if k < 0:
                k = bytes(b).find(b"\n", i)
            if k >= 0:
                b[k:k + 24] = bytes(b[k:k + 16]) + str(rng.choice([0, 1, 10 ** rng.randint(1, 12), -5])).encode()
        elif op == 6:  # splice in another archive
            other = rng.choice(seeds)
            j = rng.randrange(len(other) + 1)
            b[i:i] = other[j:j + rng.randint(1, 5000)]
        elif op == 7:  # a byte that is not UTF-8 in the second field of a line (an ARC record's IP)
            k = bytes(b).find(rng.choice([b"\nhttp", b"\n"]), i)
            k = bytes(b).find(b" ", k, k + 300) if k >= 0 else -1
            if k >= 0:
                b[k + 1:k + 1] = rng.choice([b"\xbf", b"\xb3", b"\xff\xfe", b"\xc3"])
        else:  # overwrite with bytes that matter to headers
            for _ in range(rng.randint(1, 6)):
                if b:
                    b[rng.randrange(len(b))] = rng.choice(b" :\r\n\x00\xbf\xff0123456789-")
    return bytes(b)


def check(data: bytes, start: int = 0, gz=None) -> int:
    """Read every item; assert the property; return the number of records."""
    last = (-1, -1)
    n = 0
    for item in _at(data, start, gz):
        if isinstance(item, ArchiveProblem):
            assert item.offset is None or start <= item.offset <= len(data)
            assert isinstance(item.message, str)
            continue
        assert isinstance(item, Record)
        key = (item.offset, item.inner)
        assert key > last, (key, last)
        assert start <= item.offset < len(data)
        assert item.offset + item.length <= len(data)
        assert 0 <= len(item.block) <= item.block_len
        last = key
        n += 1
    return n


def _at(data: bytes, start: int, gz):
    f = io.BytesIO(data)
    f.seek(start)
    return ArchiveReader(f, start=start, max_block=1 << 16, gz=gz)


def test_mutated_real_archives_never_raise(seeds):
    rng = random.Random(20261201)
    records = 0
    for _ in range(CASES):
        data = mutate(rng, rng.choice(seeds), seeds)
        records += check(data)
        if data and rng.random() < 0.25:  # a chunk that starts inside the file, as ingest workers read
            start = rng.randrange(len(data))
            records += check(data, start, gz=data[:2] == b"\x1f\x8b")
    assert records > CASES  # the mutations leave most records readable


def test_unmutated_seeds_read_cleanly(seeds):
    for data in seeds:
        items = list(ArchiveReader(io.BytesIO(data)))
        assert items and not [i for i in items if isinstance(i, ArchiveProblem)]
        assert check(data) == len(items)
