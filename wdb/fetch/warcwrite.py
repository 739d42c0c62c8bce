"""wdb's own WARC files for downloaded images: request + response records, one gzip member each,
so downloaded bytes are addressed like archived ones (file, offset, length)."""
from __future__ import annotations

from ..warc.write import HTTP_REQUEST, HTTP_RESPONSE, OwnWarc, gz, warc_date, warc_record


class FetchWarc(OwnWarc):
    """Appends to fetch-NNNNN.warc.gz in the database's own side folder (`<db>.wdb/fetch/`, from
    wdb.db.side_dir); a new file past 1 GiB."""

    prefix = "fetch"

    def write(self, url: str, request: bytes, status_line: str, headers: list[tuple[str, str]],
              body: bytes) -> tuple[str, int, int]:
        """Write the exchange whole (request and response, or nothing); (path, offset, length) of the
        response record."""
        date = warc_date()
        keep = [(k, v) for k, v in headers if k.lower() not in ("transfer-encoding", "content-encoding", "content-length")]
        head = status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in keep) + f"Content-Length: {len(body)}\r\n\r\n"
        req = gz(warc_record("request", url, request, HTTP_REQUEST, date))
        member = gz(warc_record("response", url, head.encode("latin-1", "replace") + body, HTTP_RESPONSE, date))
        start = self.append(req + member)
        return str(self.path), start + len(req), len(member)
