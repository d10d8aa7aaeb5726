"""``train``, ``distill`` and ``evaluate``: one run and its per-site Dice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossdistill.cli.app import (
    ConfigOption,
    ResumeOption,
    SetOption,
    SitesOption,
    TrackingOption,
    app,
    echo,
    split_names,
    tracking_overrides,
)


def _print_summary(summary: dict) -> None:
    from crossdistill.engine.distributed import is_main

    if not is_main():  # under torchrun rank 0 reports
        return
    dice = summary["dice"]
    sites = ", ".join(summary["eval_sites"])
    line = f"{summary['name']}: Dice {dice['mean']:.3f} ± {dice['std']:.3f} on {sites}"
    if "teacher_reliability" in summary:
        reliability = summary["teacher_reliability"]["dice"]["mean"]
        line += f"; teacher Dice on the student's images {reliability:.3f}"
    echo(line)


@app.command()
def train(
    config: ConfigOption = None,
    method: Annotated[
        str | None,
        typer.Option(help="supervised (default), or a domain-generalisation baseline: saml, drdg."),
    ] = None,
    set_: SetOption = None,
    resume: ResumeOption = False,
    tracking: TrackingOption = None,
) -> None:
    """Train a teacher or a student without a teacher (plain, SAML or DRDG)."""
    from crossdistill.config import load_config

    overrides = list(set_ or []) + tracking_overrides(tracking)
    if method is not None:
        overrides.append(f"train.method={method}")
    cfg = load_config(config, overrides)  # a bad key fails before the engine is imported
    from crossdistill import api

    _print_summary(api.train(cfg, resume=resume))


@app.command()
def distill(
    config: ConfigOption = None,
    teacher: Annotated[
        Path | None, typer.Option(help="Teacher run folder, checkpoint or exported .onnx file.")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="Preset: ours, recommended, none, a Table 3 row (aam+lm, ...), kd, at, emkd, mskd."
        ),
    ] = None,
    teacher_cache: Annotated[
        bool,
        typer.Option(
            "--teacher-cache",
            help="Run the teacher once and reuse its stored outputs (distill.teacher_cache); "
            "needs data.augment=geometric or false.",
        ),
    ] = False,
    set_: SetOption = None,
    resume: ResumeOption = False,
    tracking: TrackingOption = None,
) -> None:
    """Train a student distilled from a teacher checkpoint."""
    from crossdistill.config import load_config

    overrides = list(set_ or []) + tracking_overrides(tracking)
    if teacher is not None:
        overrides.append(f"distill.teacher={teacher}")
    if teacher_cache:
        overrides.append("distill.teacher_cache=true")
    cfg = load_config(config, overrides)
    from crossdistill import api

    _print_summary(api.distill(cfg, method, resume=resume))


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Run folder or checkpoint.")],
    data: Annotated[Path, typer.Option("--data", help="Cache written by `prepare`.")],
    sites: SitesOption = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Folder for evaluation.json.")] = None,
) -> None:
    """Per-case 3-D Dice, HD95 and ASD (mm) of a network on a cache's sites."""
    from crossdistill import api

    result = api.evaluate(checkpoint, data, split_names(sites, "--sites"), split, out)
    for site, record in result["sites"].items():
        d, h = record["dice"], record["hd95"]
        dice = f"Dice {d['mean']:.3f} ± {d['std']:.3f}"
        echo(f"{site}: {dice}  HD95 {h['mean']:.2f} mm  ({d['n']} cases)")
    d = result["overall"]["dice"]
    echo(f"all: Dice {d['mean']:.3f} ± {d['std']:.3f}")
