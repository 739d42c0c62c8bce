"""Commands of recipes: recipe list/show/count/diff, optout."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import BadParameter
from . import ParamCommand, _open, cli, errors, name_values


def _find(name: str):
    from .. import recipes

    with errors():
        return recipes.find(name)


@cli.group()
def recipe() -> None:
    """Named SQL recipes that cut training subsets: list, show, count, diff.

    A recipe is a built-in name (wdb recipe list) or a .sql file; opted-out pairs (wdb optout) are
    never in any recipe's pairs.
    """


@recipe.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(as_json: bool) -> None:
    """The built-in recipes with their titles, parameters and defaults.

    Example:

    \b
        wdb recipe list
    """
    from .. import recipes

    with errors():
        rows = [{"name": r.name, "title": r.title, "params": {p: r.param_type(p) for p in r.params},
                 "defaults": recipes.defaults(r), "rules": [x.name for x in recipes.rules(r)]}
                for r in recipes.builtin()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        ps = ", ".join(f"{k}={r['defaults'].get(k, '?')}" for k in r["params"])
        click.echo(f"{r['name']:<16} {r['title']}{'  (' + ps + ')' if ps else ''}")


@recipe.command()
@click.argument("name")
def show(name: str) -> None:
    """Print a recipe's SQL (a built-in name or a .sql path).

    Example:

    \b
        wdb recipe show laion2b_en
    """
    click.echo(_find(name).sql, nl=False)


@recipe.command(cls=ParamCommand)
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A recipe parameter (NAME=VALUE or NAME VALUE).")
@click.option("--rules", "by_rule", is_flag=True, help="Also how many candidates each rule drops.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def count(db_path: str, name: str, params, by_rule: bool, as_json: bool) -> None:
    """How many pairs a recipe keeps (opted-out pairs excluded); with --rules, its candidates (every
    rule off) and how many of them each rule drops (fails: all failing rules; first: the first one,
    adding up to candidates - pairs).

    Example:

    \b
        wdb recipe count wdb.db laion2b_en -p min_score=0.3 --rules
    """
    from .. import recipes
    from ..recipes.diff import explain

    q = _find(name)
    conn = _open(db_path)
    with errors():
        p = name_values(params)
        used = {k: v for k, v in recipes.with_defaults(q, p).items() if k in q.params}
        if by_rule:
            out = explain(conn, q, p)
        else:
            out = {"recipe": q.name, "kept": recipes.count(conn, q, p)}
    out = {"recipe": q.name, "params": used, "pairs": out.pop("kept"), **{k: v for k, v in out.items() if k != "recipe"}}
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"{q.name}: {out['pairs']:,} pairs" + (f" ({', '.join(f'{k}={v}' for k, v in used.items())})" if used else ""))
    if by_rule:
        click.echo(f"  candidates (every rule off): {out['candidates']:,}")
        for r in out["rules"]:
            click.echo(f"  {r['rule']:<12} drops {r['fails']:>8,} (first to drop {r['first']:,})  {r['about']}")


@recipe.command(cls=ParamCommand)
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.argument("a")
@click.argument("b")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A parameter of both recipes (NAME=VALUE or NAME VALUE).")
@click.option("-a", "a_params", multiple=True, metavar="NAME=VALUE", help="A parameter of recipe A only.")
@click.option("-b", "b_params", multiple=True, metavar="NAME=VALUE", help="A parameter of recipe B only.")
@click.option("--url", "base_url", default="http://127.0.0.1:8001", show_default=True,
              help="Where `wdb serve` answers, for the example links.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def diff(db_path: str, a: str, b: str, params, a_params, b_params, base_url: str, as_json: bool) -> None:
    """Compare two recipes: pairs each keeps, the overlap, and which rule of one drops the pairs the
    other keeps (the first failing rule; `fails` counts every failing rule), with a Datasette link to
    examples.

    Example:

    \b
        wdb recipe diff wdb.db datacomp_basic laion2b_en -b min_score=0.3
    """
    from ..recipes.diff import diff as run_diff

    qa, qb = _find(a), _find(b)
    conn = _open(db_path)
    with errors():
        common = name_values(params)
        pa = {k: v for k, v in common.items() if k in qa.params} | name_values(a_params, "-a")
        pb = {k: v for k, v in common.items() if k in qb.params} | name_values(b_params, "-b")
        unknown = [k for k in common if k not in qa.params and k not in qb.params]
        if unknown:
            raise BadParameter(f"neither recipe takes {', '.join(unknown)}")
        d = run_diff(conn, qa, qb, pa, pb, base_url=base_url, db_name=Path(db_path).stem)
    if as_json:
        click.echo(json.dumps(d.as_dict(), indent=2))
    else:
        for line in d.lines():
            click.echo(line)


@cli.command("optout")
@click.argument("db_path", type=click.Path(dir_okay=False))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (counts, rejected lines, exports).")
def optout_cmd(db_path: str, file: str, as_json: bool) -> None:
    """Opt URLs and domains out of every recipe: FILE holds one image URL, page URL or domain per
    line (# comments). Bad lines are reported one each and skipped; adding a file again adds
    nothing. Lists the exports that contained newly opted-out pairs, to be re-issued.

    Example:

    \b
        wdb optout wdb.db optout.txt
    """
    from ..recipes.optout import OptoutSettings, optout

    conn = _open(db_path)
    with errors():
        res = optout(conn, OptoutSettings(file=file))
    if as_json:
        click.echo(json.dumps({"counts": res.counts, "rejected": res.rejected, "exports": res.exports}, indent=2))
        return
    for line in res.rejected:
        click.echo(f"wdb: optout: {line}", err=True)
    click.echo(res.summary(), err=True)
    for e in res.exports:
        click.echo(f"export {e['id']} ({e['recipe']}, {e['format']}, {e['out']}): {e['pairs']:,} opted-out pairs: re-issue it")
