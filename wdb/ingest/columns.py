"""The columns ingest writes, declared once: the row builders (extract_record.py) produce tuples in
exactly this order after the leading ids, and the writer's INSERTs (store.py) name these columns."""
from __future__ import annotations

# pages: id and archive_id are set by the writer, the rest comes from Batch.pages
PAGES = ("id", "archive_id", "record_id", "url", "domain", "offset", "length", "inner", "captured_at",
         "http_status", "content_type", "charset", "charset_source", "title", "lang", "text", "body_bytes", "flags",
         "regions")
# media: id and page_id by the writer; Batch.media rows are (local page, seq, kind, ...)
MEDIA = ("id", "page_id", "seq", "kind", "tag", "url", "url_key", "alt", "title", "figcaption", "width", "height",
         "pos", "ctx_start", "ctx_end", "region", "placeholder", "render_width", "render_height")
# media_urls / alt_matches: media_id by the writer; Batch rows are (local page, seq, ...)
MEDIA_URLS = ("media_id", "attr", "raw", "url", "descriptor")
ALT_MATCHES = ("media_id", "side", "start", "end", "kind", "score")
# archived_media: archive_id by the writer
ARCHIVED_MEDIA = ("archive_id", "record_id", "url", "url_key", "offset", "length", "inner", "captured_at",
                  "http_status", "mime", "bytes", "sha256", "width", "height", "flags")
PROBLEMS = ("run_id", "archive_id", "offset", "url", "kind", "message")


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
