"""`wdb sd prompts|train|generate|eval|report`: the text-to-image loop."""
from __future__ import annotations

import json
import sys

import click

from ..sd.settings import EvalSettings
from ..sd.generate import GenerateSettings
from ..sd.prompts import PromptSettings
from ..sd.report import ReportSettings
from ..sd.train import TrainSettings
from . import ParamCommand, PipelineGroup, _open, cli, errors


def _finish(res, silent: bool = False) -> None:
    if not silent:
        click.echo(res.summary(), err=True)
    sys.exit(0 if res.ok else 1)


@cli.group(cls=PipelineGroup)
def sd() -> None:
    """Stable Diffusion on a recipe: prompt sets, fine-tuning, generation, evaluation, report.

    Every generated image, score and rating is a row tied to its model, recipe and prompt.
    """


@sd.command("prompts")
@click.argument("db_path", type=click.Path(dir_okay=False))
@click.option("--name", default=PromptSettings.name, show_default=True, help="Name of the prompt set.")
@click.option("--import", "source", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A CSV (group,level,prompt,kind[,elements]) or JSON lines file instead of the generator.")
@click.option("--groups", default=PromptSettings.groups, show_default=True, help="Generator: groups per kind.")
@click.option("--seed", default=PromptSettings.seed, show_default=True, help="Generator: seed.")
def sd_prompts(db_path, name, source, groups, seed) -> None:
    """Make a prompt set: sensible and nonsensical groups of 5 ever more detailed prompts, or import one.

    A second run with the same name adds nothing.

    Example:

    \b
        wdb sd prompts wdb.db
        wdb sd prompts wdb.db --name mine --import prompts.csv
    """
    from ..sd.prompts import make_prompt_set

    conn = _open(db_path)
    with errors():
        res = make_prompt_set(conn, PromptSettings(name=name, source=source, groups=groups, seed=seed))
    _finish(res)


@sd.command("train", cls=ParamCommand)
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--recipe", required=True, help="Recipe name (built in) or a .sql path.")
@click.option("-p", "--param", "params", type=(str, str), multiple=True, help="A recipe :parameter and its value (NAME VALUE or NAME=VALUE).")
@click.option("--base", default=TrainSettings.base, show_default=True,
              help="Base model: a Hugging Face id or a local save_pretrained folder.")
@click.option("--mode", type=click.Choice(["lora", "full"]), default=TrainSettings.mode, show_default=True)
@click.option("--resolution", default=TrainSettings.resolution, show_default=True)
@click.option("--steps", default=TrainSettings.steps, show_default=True)
@click.option("--batch-size", default=TrainSettings.batch_size, show_default=True)
@click.option("--grad-accum", default=TrainSettings.grad_accum, show_default=True)
@click.option("--lr", default=TrainSettings.lr, show_default=True)
@click.option("--lr-warmup", default=TrainSettings.lr_warmup, show_default=True, help="Linear warm-up steps.")
@click.option("--rank", default=TrainSettings.rank, show_default=True, help="LoRA rank.")
@click.option("--seed", default=TrainSettings.seed, show_default=True)
@click.option("--precision", type=click.Choice(["auto", "no", "fp16", "bf16"]), default=TrainSettings.precision,
              show_default=True, help="Mixed precision (GPU only); auto: bf16 where the GPU has it.")
@click.option("--random-flip", is_flag=True)
@click.option("--limit", type=int, default=None, help="At most this many pairs.")
@click.option("--workers", default=TrainSettings.workers, show_default=True, help="Image-reading processes.")
@click.option("--log-every", default=TrainSettings.log_every, show_default=True, help="Steps per loss write.")
@click.option("--device", default=TrainSettings.device, show_default=True)
def sd_train(db_path, recipe, params, base, mode, resolution, steps, batch_size, grad_accum, lr, lr_warmup, rank,
             seed, precision, random_flip, limit, workers, log_every, device) -> None:
    """Fine-tune Stable Diffusion (LoRA or the full UNet) on a recipe's pairs; an sd_runs row holds
    every parameter, the recipe, the hash of its pairs and the loss per step.

    Example:

    \b
        wdb sd train wdb.db --recipe datacomp_basic --base stable-diffusion-v1-5/stable-diffusion-v1-5
    """
    from ..sd.train import train

    conn = _open(db_path)
    s = TrainSettings(recipe=recipe, base=base, recipe_params=dict(params), mode=mode, resolution=resolution,
                      steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr, lr_warmup=lr_warmup,
                      rank=rank, seed=seed, precision=precision, random_flip=random_flip, limit=limit,
                      workers=workers, log_every=log_every, device=device)
    with errors():
        res = train(conn, s)
    click.echo(res.counts.get("sd_run_id"))
    _finish(res)


@sd.command("generate")
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--model", default=GenerateSettings.model, show_default=True, help="base, or an sd run id.")
@click.option("--base", default=None, help="Base model (default: that of the run, or the newest run's).")
@click.option("--prompts", default=GenerateSettings.prompts, show_default=True, help="Prompt set name.")
@click.option("--images", default=GenerateSettings.images, show_default=True, help="Images (seeds) per prompt.")
@click.option("--seed", default=GenerateSettings.seed, show_default=True, help="First seed.")
@click.option("--steps", default=GenerateSettings.steps, show_default=True, help="Denoising steps.")
@click.option("--guidance", default=GenerateSettings.guidance, show_default=True)
@click.option("--width", type=int, default=None)
@click.option("--height", type=int, default=None)
@click.option("--chunk", default=GenerateSettings.chunk, show_default=True, help="Prompts per batch and commit.")
@click.option("--kind", "kinds", multiple=True, help="Only prompts of this kind (sensible, nonsensical).")
@click.option("--limit", type=int, default=None, help="At most this many prompts.")
@click.option("--precision", type=click.Choice(["auto", "no", "fp16", "bf16"]), default=GenerateSettings.precision,
              show_default=True)
@click.option("--device", default=GenerateSettings.device, show_default=True)
def sd_generate(db_path, model, base, prompts, images, seed, steps, guidance, width, height, chunk, kinds, limit,
                precision, device) -> None:
    """Generate images for a prompt set into the database's own WARC; a re-run generates only what is missing.

    Example:

    \b
        wdb sd generate wdb.db --model base --base stable-diffusion-v1-5/stable-diffusion-v1-5
        wdb sd generate wdb.db --model 1
    """
    from ..sd.generate import generate

    conn = _open(db_path)
    s = GenerateSettings(prompts=prompts, model=model, base=base, images=images, seed=seed, steps=steps,
                         guidance=guidance, width=width, height=height, chunk=chunk, kinds=tuple(kinds),
                         limit=limit, precision=precision, device=device)
    with errors():
        res = generate(conn, s)
    _finish(res)


@sd.command("eval", cls=ParamCommand)
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--model", default=EvalSettings.model, show_default=True, help="open_clip model name (or local-dir:).")
@click.option("--pretrained", default=EvalSettings.pretrained, show_default=True, help="open_clip pretrained tag or file.")
@click.option("--batch-size", default=EvalSettings.batch_size, show_default=True)
@click.option("--reference", default=None, help="A recipe whose images are the reference of a Fréchet distance.")
@click.option("-p", "--param", "params", type=(str, str), multiple=True, help="A reference recipe :parameter (NAME VALUE or NAME=VALUE).")
@click.option("--limit", type=int, default=None, help="At most this many images.")
@click.option("--device", default=EvalSettings.device, show_default=True)
def sd_eval(db_path, model, pretrained, batch_size, reference, params, limit, device) -> None:
    """CLIP score, compliance, group rank, complexity and diversity of the generated images (and a
    Fréchet distance in CLIP space against --reference); only what is not scored yet.

    Example:

    \b
        wdb sd eval wdb.db --reference datacomp_basic
    """
    from ..sd.evaluate import evaluate

    conn = _open(db_path)
    s = EvalSettings(model=model, pretrained=pretrained, batch_size=batch_size, reference=reference,
                     reference_params=dict(params) or None, limit=limit, device=device)
    with errors():
        res = evaluate(conn, s)
    _finish(res)


@sd.command("report")
@click.argument("db_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--prompts", default=ReportSettings.prompts, show_default=True, help="Prompt set name.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for report.json, the plots and grids/ (default: <db>.wdb/sd/report-<run>/).")
@click.option("--clip-model-id", type=int, default=None, help="clip_models row (default: the newest used by eval).")
@click.option("--no-grids", is_flag=True, help="Leave out the image grid per prompt group.")
def sd_report(db_path, prompts, out, clip_model_id, no_grids) -> None:
    """Base vs fine-tuned per prompt kind and level, as JSON and PNG plots, and an image grid per group.

    Example:

    \b
        wdb sd report wdb.db --out report/
    """
    from ..sd.report import report

    conn = _open(db_path)
    with errors():
        res = report(conn, ReportSettings(prompts=prompts, out=out, clip_model_id=clip_model_id, grids=not no_grids))
    click.echo(json.dumps({"out": res.counts.get("out")}))
    _finish(res)
