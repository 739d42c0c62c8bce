"""Command-line interface: thin shells around library calls (no torch imported here).

This module holds the group, the error handling and the ingest-side commands; stages.py, curate.py,
recipe.py, export.py, cluster.py, sd.py and browse.py add the rest (listed in PIPELINE order)."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from ..errors import BadParameter, DiskFull, Interrupted, NoInputs, WdbError
from ..ingest.extract_record import Settings

EXIT_POLICY = """\b
Exit codes:
  0  every archive was read to its end (record-level problems are counted, not fatal)
  1  some archive ended partial or failed (records were lost: see the problems table)
  2  usage error (bad option, no input found)
  3  disk full (committed work is kept; free space and run again to resume)
  130 interrupted (SIGINT/SIGTERM; committed work is kept; run again to resume)"""

EXIT_DISK_FULL = 3
EXIT_INTERRUPTED = 130


PIPELINE = ("migrate", "ingest", "merge", "status", "show", "index", "stats", "fetch", "spans", "score", "report",
            "signals", "dedup", "recipe", "optout", "check", "export", "sd", "query", "serve")


class PipelineGroup(click.Group):
    """Lists commands in the order of the pipeline (then any other, in the order defined)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        known = [c for c in PIPELINE if c in self.commands]
        return known + [c for c in self.commands if c not in known]


@contextmanager
def errors():
    """WdbError -> one line and an exit code (usage 2, disk full 3, interrupted 130, else 1); SIGTERM
    stops a command as SIGINT does. Anything else is a bug and keeps its traceback."""
    from ..stage import interruptible

    try:
        with interruptible():
            yield
    except (NoInputs, BadParameter) as e:
        raise click.UsageError(str(e)) from e
    except DiskFull as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(EXIT_DISK_FULL)
    except (Interrupted, KeyboardInterrupt) as e:
        click.echo(f"Error: {e if isinstance(e, Interrupted) else 'interrupted'}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except WdbError as e:
        raise click.ClickException(str(e)) from e


class ParamCommand(click.Command):
    """A command whose parameter options (`-p`, and recipe diff's `-a`/`-b`) take either spelling,
    `-p NAME=VALUE` or `-p NAME VALUE`, whichever the option itself parses: the other is rewritten
    before click reads the arguments. A NAME never holds "=", so the rewrite is unambiguous; a value
    after NAME may start with "-" (a negative number), not with "--"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        pairs, singles = set(), set()
        for o in self.params:
            if not isinstance(o, click.Option) or not o.multiple:
                continue
            if o.nargs == 2:
                pairs.update(o.opts)
            elif o.metavar == "NAME=VALUE":
                singles.update(o.opts)
        out, i = [], 0
        while i < len(args):
            a = args[i]
            if a == "--":
                out.extend(args[i:])
                break
            nxt = args[i + 1] if i + 1 < len(args) else None
            if a in pairs and nxt is not None and "=" in nxt and not nxt.startswith("-"):
                name, _, value = nxt.partition("=")
                out += [a, name, value]
                i += 2
            elif (a in singles and nxt is not None and "=" not in nxt and not nxt.startswith("-")
                  and i + 2 < len(args) and not args[i + 2].startswith("--")):
                out += [a, f"{nxt}={args[i + 2]}"]
                i += 3
            else:
                out.append(a)
                i += 1
        return super().parse_args(ctx, out)


def name_values(items, flag: str = "-p") -> dict[str, str]:
    """`NAME=VALUE` options (recipe parameters) as a dict; a usage error for anything else."""
    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq or not k.strip():
            raise click.UsageError(f"{flag} takes NAME=VALUE, got {item!r}")
        out[k.strip()] = v
    return out


def _open(db_path: str):
    from ..db import open_db

    with errors():
        return open_db(db_path)


@click.group(cls=PipelineGroup)
@click.version_option()
def cli() -> None:
    """wdb: web archives to multimodal training data in one SQLite database.

    The commands, in pipeline order: migrate, ingest (merge, status, show for cluster runs), index,
    stats, fetch, spans, score, report, signals, dedup, recipe, optout, check, export, sd, query,
    serve. Every command takes the database path first (recipe list/show and sd's subcommands aside).
    """


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False))
def migrate(db_path: str) -> None:
    """Create the database or bring its schema up to date.

    Example:

    \b
        wdb migrate wdb.db
    """
    from ..db import connect, migrate as run_migrations

    with errors():
        applied = run_migrations(connect(db_path))
    click.echo(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}", err=True)


@cli.command(epilog=EXIT_POLICY)
@click.argument("db_path", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--workers", "-w", type=int, default=None, help="Parser processes (default: all cores; 0: in-process).")
@click.option("--base-url", default="https://data.commoncrawl.org/", show_default=True,
              help="Prefix for the lines of a warc.paths(.gz) file.")
@click.option("--limit", type=int, default=None, help="Read at most this many archives from the inputs.")
@click.option("--context-words", type=int, default=Settings.context_words, show_default=True, help="Words of context each side of a media item.")
@click.option("--max-page-bytes", type=int, default=Settings.max_page_bytes, show_default=True, help="Cap on a decoded HTML payload.")
@click.option("--max-record-bytes", type=int, default=Settings.max_record_bytes, show_default=True, help="Cap on a record block read into memory.")
@click.option("--record-timeout", type=float, default=300.0, show_default=True, help="Seconds before a worker stuck on one record is replaced.")
@click.option("--chunk-mb", type=int, default=8, show_default=True, help="Split local .gz archives into ranges of this size for parallel reading.")
@click.option("--fts", is_flag=True, help="Also build the URL and full-text indexes at the end (else `wdb index` or `wdb serve` does).")
@click.option("--silent", is_flag=True, help="No progress bar, no problem lines, no summary.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine's worker pool; ray: one Ray task per archive chunk, each writing a shard "
                   "database that this process merges.")
@click.option("--address", default=None, help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray).")
@click.option("--shard-dir", type=click.Path(file_okay=False), default=None,
              help="Where Ray tasks write their shards: a folder every node can write (default: <db>.wdb/shards).")
@click.option("--task-timeout", type=float, default=3600.0, show_default=True,
              help="Seconds before a Ray task is cancelled and its chunk recorded as failed.")
def ingest(db_path, inputs, workers, base_url, limit, context_words, max_page_bytes, max_record_bytes,
           record_timeout, chunk_mb, fts, silent, executor, address, shard_dir, task_timeout) -> None:
    """Read WARC/ARC archives (files, directories, globs, http(s) URLs, warc.paths.gz) into DB_PATH.

    An archive already ingested (same URL, or same size and first 64 KiB for a local file) is
    skipped; an interrupted run resumes where its last transaction ended.

    Example:

    \b
        wdb ingest wdb.db crawl/*.warc.gz https://host/path/file.warc.gz
        wdb ingest wdb.db warc.paths.gz --limit 2
        wdb ingest wdb.db CC-MAIN-2024-22:100 --executor ray --shard-dir /shared/shards
    """
    from ..ingest import ingest as run_ingest
    from ..ingest.extract_record import Settings

    conn = _open(db_path)
    settings = Settings(context_words=context_words, max_page_bytes=max_page_bytes,
                        max_record_bytes=max_record_bytes)
    with errors():
        result = run_ingest(conn, list(inputs), workers=workers, base_url=base_url, limit=limit,
                            settings=settings, chunk_bytes=chunk_mb << 20, progress=not silent,
                            quiet=silent, record_timeout=record_timeout, fts=fts, executor=executor,
                            address=address, shard_dir=shard_dir, task_timeout=task_timeout)
    if not silent:
        click.echo(result.summary(), err=True)
        if result.indexed is None and result.counts["pages"]:
            click.echo(f"wdb: URL and full-text indexes are built by `wdb index {db_path}` (or `wdb serve`)", err=True)
    sys.exit(0 if result.ok else 1)


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
def index(db_path: str) -> None:
    """Build the indexes ingest leaves out: URL lookups, and full-text search over page text and
    media alt/title/figcaption.

    Incremental: only rows added since the last update are indexed; `wdb serve` runs it first.

    Example:

    \b
        wdb index wdb.db
    """
    from ..db.indexes import update_indexes
    from ..stage import stage_run

    conn = _open(db_path)
    with errors(), stage_run(conn, "index", {}) as run:
        added = update_indexes(conn)
        run.counts.update(pages=added["pages"], media=added["media"], created=len(added["created"]))
    made = f"; created {', '.join(added['created'])}" if added["created"] else ""
    click.echo(f"full-text indexed {added['pages']} pages, {added['media']} media items{made}")


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def stats(db_path: str, as_json: bool) -> None:
    """Counts of archives, pages, media items, archived media, matches and problems.

    Example:

    \b
        wdb stats wdb.db --json
    """
    from ..db.stats import stats as get_stats

    counts = get_stats(_open(db_path))
    if as_json:
        click.echo(json.dumps(counts, indent=2))
    else:
        width = max(map(len, counts))
        for k, v in counts.items():
            click.echo(f"{k:<{width}}  {v:>10,}")


# the other commands register themselves on `cli` in pipeline order
from . import stages, curate, browse  # noqa: E402,F401
from . import recipe  # noqa: E402,F401  (recipe list/show/count/diff, optout)
from . import cluster  # noqa: E402,F401  -- merge, status, show
from .browse import query, serve  # noqa: E402,F401
from .curate import dedup, signals  # noqa: E402,F401
from .stages import fetch, report, score, spans  # noqa: E402,F401
from .export import check_cmd, export_cmd  # noqa: E402,F401
from . import sd as _sd_commands  # noqa: E402,F401
