"""The database's own fetch WARC never holds half a record, whatever stops a write."""
import errno
import os

import pytest
from warcio.archiveiterator import ArchiveIterator

from wdb.fetch.warcwrite import FetchWarc


class Torn:
    """A file that takes the first `n` bytes of the next write, then fails as a full disk does."""

    def __init__(self, f, n, exc):
        self.f, self.n, self.exc = f, n, exc

    def write(self, data):
        if self.n is not None:
            self.f.write(bytes(data[: self.n]))
            self.n = None
            raise self.exc
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_is_cut_back_and_the_archive_stays_readable(tmp_path, exc):
    w = FetchWarc(tmp_path)
    body = os.urandom(5000)
    path, off1, len1 = w.write("http://a.example/1.jpg", b"GET /1.jpg HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK",
                               [("Content-Type", "image/jpeg")], body)
    size = os.path.getsize(path)
    w.f = Torn(w.f, 700, exc)  # dies inside the response member
    with pytest.raises(type(exc)):
        w.write("http://a.example/2.jpg", b"GET /2.jpg HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK", [], body)
    assert os.path.getsize(path) == size  # nothing of the torn exchange is left
    w.f = w.f.f
    _, off3, len3 = w.write("http://a.example/3.jpg", b"GET /3.jpg HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK", [], body)
    w.flush()
    w.close()
    assert off3 > off1 and off3 + len3 == os.path.getsize(path)
    with open(path, "rb") as f:
        got = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
               for r in ArchiveIterator(f)]
    assert [(t, u) for t, u, _ in got] == [("request", "http://a.example/1.jpg"), ("response", "http://a.example/1.jpg"),
                                           ("request", "http://a.example/3.jpg"), ("response", "http://a.example/3.jpg")]
    assert got[1][2] == body and got[3][2] == body
    with open(path, "rb") as f:  # the pointers returned address whole members
        f.seek(off3)
        rec = next(iter(ArchiveIterator(f)))
        assert rec.rec_type == "response" and rec.content_stream().read() == body
