"""wdb's archive reader against warcio (an independent reader) on every real corpus archive."""
import pytest
from warcio.archiveiterator import ArchiveIterator

from conftest import WARC
from wdb.warc.reader import ArchiveProblem, ArchiveReader, read_record_at

FILES = sorted(p for p in WARC.rglob("*") if p.name.endswith((".warc", ".warc.gz", ".arc", ".arc.gz")))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_offsets_types_and_uris_equal_warcio(path):
    with open(path, "rb") as f:
        ours = [r for r in ArchiveReader(f) if not isinstance(r, ArchiveProblem)]
    theirs = []
    with open(path, "rb") as f:
        it = ArchiveIterator(f, arc2warc=True)
        for r in it:
            r.raw_stream.read()
            theirs.append((it.get_record_offset(), r.rec_headers.get_header("WARC-Type"),
                           r.rec_headers.get_header("WARC-Target-URI")))
    assert [(r.offset, r.rec_type) for r in ours] == [(o, t) for o, t, _ in theirs]
    for r, (_, _, uri) in zip(ours, theirs, strict=True):
        if r.rec_type in ("response", "resource", "request") and uri:
            assert r.headers.get("warc-target-uri").strip("<>") == uri  # WARC 1.1 drafts bracket it
    # every pointer re-reads the same record with a new reader
    for r in ours[:30]:
        if r.length or not path.name.endswith(".gz"):
            again = read_record_at(str(path), r.offset, r.inner)
            assert again.block == r.block and again.headers == r.headers
