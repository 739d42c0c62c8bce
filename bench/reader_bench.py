"""Read every record of the corpus's WARC files with wdb's reader, warcio and (if installed)
FastWARC; print CPU seconds (mean of 5).

    python bench/reader_bench.py          # pip install fastwarc for the third column
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FILES = sorted(p for p in (ROOT.parent / "shared" / "corpus" / "warc").rglob("*")
               if p.name.endswith((".warc", ".warc.gz")))


def wdb_reader() -> int:
    from wdb.warc.reader import ArchiveReader

    n = 0
    for p in FILES:
        with open(p, "rb") as f:
            n += sum(1 for _ in ArchiveReader(f))
    return n


def warcio_reader() -> int:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    for p in FILES:
        with open(p, "rb") as f:
            for r in ArchiveIterator(f):
                r.raw_stream.read()
                n += 1
    return n


def fastwarc_reader() -> int:
    from fastwarc.warc import ArchiveIterator

    n = 0
    for p in FILES:
        with open(p, "rb") as f:
            for r in ArchiveIterator(f, strict_mode=False):
                r.reader.read()
                n += 1
    return n


if __name__ == "__main__":
    for fn in (wdb_reader, warcio_reader, fastwarc_reader):
        try:
            fn()
        except ImportError:
            print(f"{fn.__name__:16s} not installed")
            continue
        t = time.process_time()
        for _ in range(5):
            n = fn()
        print(f"{fn.__name__:16s} {n} records  {(time.process_time() - t) / 5:.3f} CPU s")
