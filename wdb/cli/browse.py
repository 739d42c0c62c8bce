"""Commands that read: query, serve."""
from __future__ import annotations

import json
import sqlite3
import sys

import click

from ..errors import WdbError
from . import ParamCommand, _open, cli, errors


@cli.command(cls=ParamCommand)
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("name")
@click.option("-p", "--param", "params", type=(str, str), multiple=True, help="A :parameter and its value (NAME VALUE or NAME=VALUE).")
@click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")
@click.option("--json", "fmt", flag_value="json", help="A JSON array of objects.")
@click.option("--nl", "fmt", flag_value="nl", default=True, help="One JSON object per line (default).")
def query(db_path: str, name: str, params, fmt: str) -> None:
    """Run a query file from wdb/db/queries/ (by name) or any .sql file, streaming rows to stdout.

    The per-page figures the canned queries read are brought up to date first (pages added since
    the last `wdb index`); the query itself runs read-only.

    Example:

    \b
        wdb query wdb.db alt_pairs -p min_words 3 --csv > pairs.csv
    """
    from ..db import query as queries

    conn = _open(db_path)
    with errors():
        from ..db.indexes import update_figures

        update_figures(conn)  # the per-page figures the canned queries read: only pages added since
        try:
            q = queries.find(name)
        except queries.UnknownQuery as e:
            raise click.UsageError(str(e)) from e
        try:
            cols, rows = queries.run(conn, q, dict(params))
            _write_rows(sys.stdout, fmt, cols, rows)
        except sqlite3.Error as e:
            raise WdbError(f"query {q.name}: {e}") from e


def _write_rows(out, fmt: str, cols: list[str], rows) -> None:
    import csv

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


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (127.0.0.1: this machine only).")
@click.option("--port", "-p", default=8001, show_default=True, type=int, help="Port to listen on.")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Another Host name to answer (only this machine's names and the bound host are, by default).")
@click.option("--ratings", is_flag=True,
              help="Let the ratings page (/-/wdb/ratings) write sd_ratings rows: for a Datasette actor, or with "
                   "the token printed at start (WDB_RATINGS_TOKEN sets it).")
def serve(db_path: str, host: str, port: int, allow_hosts, ratings: bool) -> None:
    """Browse the database in Datasette: media pages with thumbnails, contexts and matches.

    Read-only: arbitrary SQL cannot write, SQL time limit 1 s. With --ratings, the ratings page
    (/-/wdb/ratings) writes sd_ratings rows, and nothing else.

    Example:

    \b
        wdb serve wdb.db --port 8001
    """
    from ..db.indexes import update_indexes
    from ..serve import serve as run_serve

    conn = _open(db_path)  # applies migrations first
    with errors():
        added = update_indexes(conn)
    conn.close()
    if added["pages"] or added["media"] or added["created"]:
        click.echo(f"wdb: full-text indexed {added['pages']} pages, {added['media']} media items", err=True)
    click.echo(f"wdb: serving {db_path} on http://{host}:{port}/", err=True)
    token = None
    if ratings:
        import os
        import secrets

        token = os.environ.get("WDB_RATINGS_TOKEN") or secrets.token_urlsafe(24)
        click.echo(f"wdb: ratings open at http://{host}:{port}/-/wdb/ratings?token={token}", err=True)
    run_serve(db_path, host=host, port=port, extra_hosts=allow_hosts, ratings_token=token)
