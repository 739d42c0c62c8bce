"""Command-line interface: thin shells around library calls (no torch imported here)."""
from __future__ import annotations

import json
import sys

import click

from .errors import WdbError

EXIT_POLICY = """\b
Exit codes:
  0  every archive was read to its end (record-level problems are counted, not fatal)
  1  some archive ended partial or failed (records were lost: see the problems table)
  2  usage error (bad option, no input found)"""


def _open(db_path: str):
    from .db import open_db

    try:
        return open_db(db_path)
    except WdbError as e:
        raise click.ClickException(str(e)) from e


@click.group()
@click.version_option()
def cli() -> None:
    """wdb: web archives to multimodal training data in one SQLite database."""


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False))
def migrate(db_path: str) -> None:
    """Create the database or bring its schema up to date.

    Example:

    \b
        wdb migrate wdb.db
    """
    from .db import connect, migrate as run_migrations

    try:
        applied = run_migrations(connect(db_path))
    except WdbError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}", err=True)


@cli.command(epilog=EXIT_POLICY)
@click.argument("db_path", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--workers", "-w", type=int, default=None, help="Parser processes (default: all cores; 0: in-process).")
@click.option("--base-url", default="https://data.commoncrawl.org/", show_default=True,
              help="Prefix for the lines of a warc.paths(.gz) file.")
@click.option("--limit", type=int, default=None, help="Read at most this many archives from the inputs.")
@click.option("--context-words", type=int, default=256, show_default=True, help="Words of context each side of a media item.")
@click.option("--max-page-bytes", type=int, default=5 << 20, show_default=True, help="Cap on a decoded HTML payload.")
@click.option("--max-record-bytes", type=int, default=64 << 20, show_default=True, help="Cap on a record block read into memory.")
@click.option("--record-timeout", type=float, default=300.0, show_default=True, help="Seconds before a worker stuck on one record is replaced.")
@click.option("--chunk-mb", type=int, default=32, show_default=True, help="Split local .gz archives into ranges of this size for parallel reading.")
@click.option("--no-fts", is_flag=True, help="Do not index page text for full-text search.")
@click.option("--silent", is_flag=True, help="No progress bar, no problem lines, no summary.")
def ingest(db_path, inputs, workers, base_url, limit, context_words, max_page_bytes, max_record_bytes,
           record_timeout, chunk_mb, no_fts, silent) -> None:
    """Read WARC/ARC archives (files, directories, globs, http(s) URLs, warc.paths.gz) into DB_PATH.

    An archive already ingested (same URL, or same size and first 64 KiB for a local file) is
    skipped; an interrupted run resumes where its last transaction ended.

    Example:

    \b
        wdb ingest wdb.db crawl/*.warc.gz https://host/path/file.warc.gz
        wdb ingest wdb.db warc.paths.gz --limit 2
    """
    from .ingest import ingest as run_ingest
    from .ingest.extract_record import Settings

    conn = _open(db_path)
    settings = Settings(context_words=context_words, max_page_bytes=max_page_bytes,
                        max_record_bytes=max_record_bytes)
    try:
        result = run_ingest(conn, list(inputs), workers=workers, base_url=base_url, limit=limit,
                            settings=settings, chunk_bytes=chunk_mb << 20, progress=not silent,
                            quiet=silent, record_timeout=record_timeout, fts=not no_fts)
    except WdbError as e:
        raise click.UsageError(str(e)) from e
    if not silent:
        click.echo(result.summary(), err=True)
    sys.exit(0 if result.ok else 1)


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def stats(db_path: str, as_json: bool) -> None:
    """Counts of archives, pages, media items, archived media, matches and problems.

    Example:

    \b
        wdb stats wdb.db --json
    """
    from .stats import stats as get_stats

    counts = get_stats(_open(db_path))
    if as_json:
        click.echo(json.dumps(counts, indent=2))
    else:
        width = max(map(len, counts))
        for k, v in counts.items():
            click.echo(f"{k:<{width}}  {v:>10,}")


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (127.0.0.1: this machine only).")
@click.option("--port", "-p", default=8001, show_default=True, type=int, help="Port to listen on.")
def serve(db_path: str, host: str, port: int) -> None:
    """Browse the database in Datasette: media pages with thumbnails, contexts and matches.

    Read-only: arbitrary SQL cannot write, SQL time limit 1 s.

    Example:

    \b
        wdb serve wdb.db --port 8001
    """
    from .serve import serve as run_serve

    _open(db_path).close()  # apply migrations first
    click.echo(f"wdb: serving {db_path} on http://{host}:{port}/", err=True)
    run_serve(db_path, host=host, port=port)


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("name")
@click.option("-p", "--param", "params", type=(str, str), multiple=True, help="A :parameter and its value.")
@click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")
@click.option("--json", "fmt", flag_value="json", help="A JSON array of objects.")
@click.option("--nl", "fmt", flag_value="nl", default=True, help="One JSON object per line (default).")
def query(db_path: str, name: str, params, fmt: str) -> None:
    """Run a query file from queries/ (by name) or any .sql file, streaming rows to stdout.

    Example:

    \b
        wdb query wdb.db alt_pairs -p min_words 3 --csv > pairs.csv
    """
    import csv

    from . import queries

    conn = _open(db_path)
    try:
        q = queries.find(name)
        cols, rows = queries.run(conn, q, dict(params))
    except WdbError as e:
        raise click.UsageError(str(e)) from e
    out = sys.stdout
    if fmt == "csv":
        w = csv.writer(out)
        w.writerow(cols)
        for r in rows:
            w.writerow(r)
    elif fmt == "json":
        out.write("[")
        for i, r in enumerate(rows):
            out.write(("," if i else "") + "\n" + json.dumps(dict(zip(cols, r, strict=True)), ensure_ascii=False))
        out.write("\n]\n")
    else:
        for r in rows:
            out.write(json.dumps(dict(zip(cols, r, strict=True)), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    cli()
