"""Commands of export: export, check."""
from __future__ import annotations

import json
import sys

import click

from . import ParamCommand, _open, cli, errors, name_values

from ..export.formats import FORMATS


@cli.command("export", cls=ParamCommand)
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("recipe")
@click.argument("out", type=click.Path(file_okay=False), required=False)
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="webdataset", show_default=True)
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A recipe parameter (NAME=VALUE or NAME VALUE).")
@click.option("--shard-size", default=10_000, show_default=True, help="Pairs per shard (page formats: whole pages).")
@click.option("--resize", type=int, default=None, help="Shorter side to this many pixels, keeping the ratio "
              "(img2dataset keep_ratio; only images larger than that).")
@click.option("--max-images", type=int, default=5, show_default=True, help="interleaved: images per document (0: no cap).")
@click.option("--images", type=click.Choice(("url", "embed")), default="url", show_default=True,
              help="interleaved: images as URLs or embedded bytes.")
@click.option("--superset", default=None, help="A recipe (or export:ID) whose pairs must include these.")
@click.option("--superset-param", multiple=True, metavar="NAME=VALUE", help="A parameter of the superset recipe.")
@click.option("--first-of-duplicates", is_flag=True, help="Keep the first pair of each uid instead of refusing.")
@click.option("--no-verify", is_flag=True, help="Metadata formats: do not read each pointer to verify its sha256.")
@click.option("--silent", is_flag=True, help="No progress bar, no summary.")
def export_cmd(db_path, recipe, out, fmt, params, shard_size, resize, max_images, images, superset,
               superset_param, first_of_duplicates, no_verify, silent) -> None:
    """Write a recipe's pairs into OUT in a format trainers read, from the WARC pointers.

    OUT defaults to the database's side folder, `<db>.wdb/exports/RECIPE-FORMAT/`.

    Formats: webdataset (img2dataset's layout, open_clip reads it), parquet (DataComp's pool
    columns), uids (DataComp's sorted u8,u8 subset file), img2dataset (url/caption/sha256), interleaved
    (OBELICS documents), tar-in-tar (a tar per page), txt-media-txt (a row per page). Checks first
    (`wdb check`); resumable: run it again after a kill and finished shards are kept. OUT ends with
    manifest.json.

    Example:

    \b
        wdb export wdb.db datacomp_basic out/ --format webdataset
        wdb export wdb.db my_recipe.sql out-uids/ --format uids -p min_score=0.3
    """
    from ..export import ExportSettings, export

    s = ExportSettings(format=fmt, shard_size=shard_size, resize=resize, max_images=max_images or None, images=images,
                       verify=not no_verify, superset=superset, first_of_duplicates=first_of_duplicates)
    conn = _open(db_path)
    if out is None:
        from pathlib import Path

        from ..db import side_dir

        out = str(side_dir(conn, "exports") / f"{Path(recipe).stem}-{fmt}")
    with errors():
        res = export(conn, recipe, name_values(params), out, s,
                     superset_params=name_values(superset_param, "--superset-param") if superset_param else None,
                     progress=not silent)
    if not silent:
        click.echo(res.summary(), err=True)
        click.echo(f"wdb: shards and manifest.json in {out}", err=True)


@cli.command("check", cls=ParamCommand)
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("recipe")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A recipe parameter (NAME=VALUE or NAME VALUE).")
@click.option("--superset", default=None, help="A recipe (or export:ID) whose pairs must include these.")
@click.option("--superset-param", multiple=True, metavar="NAME=VALUE", help="A parameter of the superset recipe.")
@click.option("--no-verify", is_flag=True, help="Do not read the bytes of each pointer.")
@click.option("--limit", default=20, show_default=True, help="Problems listed (all are counted).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def check_cmd(db_path, recipe, params, superset, superset_param, no_verify, limit, as_json) -> None:
    """Check a recipe's pairs: no duplicate uids, every offset inside its page text, every pointer's
    sha256, subset of a superset (--superset, or the recipe's `-- narrows:` header). Exit 1 on any problem.

    Example:

    \b
        wdb check wdb.db datacomp_basic
        wdb check wdb.db strict.sql --superset datacomp_basic
    """
    from ..export import check
    from ..recipes import find

    conn = _open(db_path)
    with errors():
        rep = check(conn, find(recipe), name_values(params), superset=superset,
                    superset_params=name_values(superset_param, "--superset-param") if superset_param else None,
                    pointers=not no_verify)
    if as_json:
        click.echo(json.dumps({"pairs": rep.pairs, "verified": rep.verified, "superset": rep.superset,
                               "counts": rep.counts, "issues": [vars(i) for i in rep.issues[:limit]]}, indent=2))
    else:
        click.echo(rep.summary())
        for i in rep.issues[:limit]:
            click.echo(i.line())
    sys.exit(0 if rep.ok else 1)
