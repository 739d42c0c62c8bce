"""Commands for ingest at cluster scale: merge shard databases, the status of a database's ingest,
and one item shown with its WARC record re-read (wdb/cluster/)."""
from __future__ import annotations

import json
import sys

import click

from . import _open, cli, errors


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False))
@click.argument("shards", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--silent", is_flag=True, help="No line per shard, no summary.")
def merge(db_path: str, shards: tuple[str, ...], silent: bool) -> None:
    """Merge shard databases (made by `wdb ingest` elsewhere, or left by `--executor ray`) into DB_PATH.

    Each shard is merged in one transaction and recorded in `merged_shards`: merging it again, or
    after a kill, changes nothing. An archive already ingested here is left out of it.

    Example:

    \b
        wdb merge wdb.db shards/*.db
    """
    from ..cluster.merge import merge_shard
    from ..db.indexes import drop_deferred
    from ..ingest.store import owner_name
    from ..stage import stage_run

    conn = _open(db_path)
    with errors(), stage_run(conn, "merge", dict(shards=list(shards))) as run:
        drop_deferred(conn)
        for k in ("shards", "already_merged", "rows", "archives", "archives_skipped"):
            run.counts[k] = 0
        for s in shards:
            res = merge_shard(conn, s, run.id, owner_name(run.id))
            run.add("shards" if res.merged else "already_merged")
            run.add("rows", res.total)
            run.add("archives", len(res.archives))
            run.add("archives_skipped", len(res.skipped))
            if not silent:
                what = (f"{res.total} rows, {len(res.archives)} archive(s) in {res.seconds:.2f}s" if res.merged
                        else "merged before: nothing to do")
                click.echo(f"wdb: merge: {s}: {what}" + "".join(f"; {loc}: {why}" for loc, why in res.skipped),
                           err=True)
    if not silent:
        click.echo(run.result().summary(), err=True)


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def status(db_path: str, as_json: bool) -> None:
    """Where the ingest of DB_PATH stands: archives by status, shards merged (rows/s), and each run
    still going with its progress (a Ray driver's chunks done / running / failed and pages/s).

    Example:

    \b
        wdb status wdb.db
    """
    from ..cluster.status import render, status as get_status

    s = get_status(_open(db_path))
    click.echo(json.dumps(s, indent=2) if as_json else render(s))


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("item", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def show(db_path: str, item: int, as_json: bool) -> None:
    """A media item (its id) with its alt, its context and its page's WARC record, re-read through
    the page's pointer (a local file, or an HTTP Range request) and checked: record id, target URI,
    the sha256 of the page text extracted again, the record's digest, the archived bytes' sha256.

    Exit code 1 when a check fails.

    Example:

    \b
        wdb show wdb.db 42
    """
    from ..cluster.show import render, show as get_show

    with errors():
        d = get_show(_open(db_path), item)
    click.echo(json.dumps(d, indent=2, default=str) if as_json else render(d))
    sys.exit(0 if d["ok"] else 1)
