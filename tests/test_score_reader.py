"""wdb score's pointer reader (PointerReader): the one-pread fast path returns exactly what
read_verified returns, on real COCO photos in gzip and plain WARC records, and hands every record it
does not cover (encoded bodies, chunked bodies, inner offsets, a wrong sha256) to read_verified."""
import gzip
import hashlib
import os

import pytest

from conftest import CORPUS
from wdb.errors import PointerMismatch
from wdb.score.inputs import PointerReader
from wdb.warc.payload import read_verified
from wdb.warc.write import HTTP_RESPONSE, gz, warc_record

COCO = CORPUS / "coco-mini" / "val2017"


@pytest.fixture
def archive(tmp_path):
    photos = sorted(COCO.glob("*.jpg"))[:12]
    if len(photos) < 12:
        pytest.skip("coco-mini missing")
    path = tmp_path / "a.warc.gz"
    plain = tmp_path / "b.warc"
    ptrs, plain_ptrs = [], []
    with open(path, "wb") as f, open(plain, "wb") as p:
        for i, ph in enumerate(photos):
            body = ph.read_bytes()
            if i == 3:  # stored gzip-encoded, header kept: read_verified decodes it
                block = (b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Encoding: gzip\r\n\r\n"
                         + gzip.compress(body))
            elif i == 4:  # chunked
                block = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode()
                         + body + b"\r\n0\r\n\r\n")
            elif i == 5:  # a resource record: the block is the payload
                block = None
            else:
                block = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n" + body
            rec = (warc_record("resource", f"http://x/{i}.jpg", body, "image/jpeg") if block is None
                   else warc_record("response", f"http://x/{i}.jpg", block, HTTP_RESPONSE))
            member = gz(rec, 1)
            ptrs.append((str(path), f.tell(), len(member), 0, hashlib.sha256(body).hexdigest()))
            f.write(member)
            plain_ptrs.append((str(plain), p.tell(), len(rec), 0, hashlib.sha256(body).hexdigest()))
            p.write(rec)
    return ptrs, plain_ptrs


def test_fast_reads_equal_read_verified(archive):
    ptrs, plain_ptrs = archive
    r = PointerReader()
    for ptr in ptrs + plain_ptrs:
        assert r.read(*ptr) == read_verified(*ptr)
    # 2 x 12 records: the gzip-encoded and chunked bodies (2 in each file) go the slow way
    assert (r.fast, r.slow) == (20, 4)
    assert len(r.files) == 2  # each archive opened once


def test_mismatch_inner_and_fork(archive):
    ptrs, _ = archive
    r = PointerReader()
    loc, off, length, inner, sha = ptrs[0]
    with pytest.raises(PointerMismatch):
        r.read(loc, off, length, inner, "0" * 64)
    assert r.slow == 1  # the fast bytes did not match: read_verified decided
    with pytest.raises(PointerMismatch):  # a pointer into the wrong record
        r.read(loc, ptrs[1][1], ptrs[1][2], 0, sha)
    assert r.read(loc, off, None, 0, sha) == read_verified(loc, off, None, 0, sha)  # no length: slow path
    assert r.slow == 3
    pid = os.fork()
    if pid == 0:  # a forked worker opens its own descriptors
        ok = r.read(*ptrs[2]) == read_verified(*ptrs[2]) and r.pid == os.getpid()
        os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0


def test_token_cache_equals_the_tokenizer(monkeypatch):
    import json

    import torch

    open_clip = pytest.importorskip("open_clip")
    from wdb.score.inputs import Collate

    caps = CORPUS / "coco-mini" / "annotations" / "captions_val2017.json"
    if not caps.is_file():
        pytest.skip("coco-mini missing")
    texts = list(dict.fromkeys(a["caption"] for a in json.loads(caps.read_text())["annotations"]))[:60]
    tok = open_clip.get_tokenizer("ViT-B-32")
    monkeypatch.setattr(Collate, "CACHE", 16)  # evictions within and across batches
    c = Collate([], [tok])
    for start in (0, 10, 40, 5, 0):
        part = texts[start:start + 20]
        assert torch.equal(c._tokens(0, tok, part), tok(part))
        assert len(c.cache[0]) <= 16
