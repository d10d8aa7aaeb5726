"""``demo``, ``reproduce``, ``compare`` and ``report``: grids of runs and their reports."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from crossdistill.cli.app import (
    SetOption,
    SitesOption,
    TrackingOption,
    app,
    echo,
    split_names,
    tracking_overrides,
)
from crossdistill.errors import CrossDistillError


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for data, cache and results.")] = Path(
        "runs/demo"
    ),
    target: Annotated[str, typer.Option(help="Target site (S4, UCL, ...).")] = "S4",
    quick: Annotated[bool, typer.Option("--quick", help="A smaller, faster run.")] = False,
    seed: Annotated[int, typer.Option(help="Training seed (data and splits stay fixed).")] = 0,
    set_: SetOption = None,
    tracking: TrackingOption = None,
) -> None:
    """The main job: synthetic sites → teachers → students w/o and w/ distillation → report."""
    from crossdistill.demo import run_demo

    overrides = list(set_ or []) + tracking_overrides(tracking)
    run_demo(out, target=target, quick=quick, seed=seed, echo=echo, overrides=overrides)


ModelsOption = Annotated[
    list[str] | None, typer.Option(help="Networks; repeat or separate with commas.")
]
# the options of a grid of runs (reproduce, compare)
JobsOption = Annotated[
    int | None,
    typer.Option(help="Runs trained at once; default 1 locally, on Ray what the cluster holds."),
]
LauncherOption = Annotated[
    str, typer.Option(help="local (processes on this machine) or ray (a Ray cluster).")
]
AddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster: auto or HOST:PORT; default: a local Ray started here."),
]
CpusPerRunOption = Annotated[
    int | None, typer.Option(help="Ray: CPUs (torch threads) per run; default 1.")
]
MaxRunsOption = Annotated[
    int | None, typer.Option(help="Start at most N runs now; the next call goes on.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print each run's state; train nothing.")
]


def _grid_call(jobs, launcher, address, cpus_per_run, set_, max_runs, dry_run, tracking) -> dict:
    """The keyword arguments that ``reproduce`` and ``compare`` share."""
    return {
        "jobs": jobs,
        "launcher": launcher,
        "launcher_options": {"address": address, "cpus_per_run": cpus_per_run},
        "overrides": list(set_ or []) + tracking_overrides(tracking),
        "max_runs": max_runs,
        "dry_run": dry_run,
        "echo": echo,
    }


@app.command()
def reproduce(
    table: Annotated[int, typer.Option("--table", help="The paper's table: 1, 2, 3 or 4.")],
    preset: Annotated[
        str | None,
        typer.Option(
            help="paper (GPU, real data) or demo (CPU, synthetic sites); default: "
            "paper with --data, else demo."
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="A prepared cache or a folder of sites.")
    ] = None,
    protocol: Annotated[str, typer.Option(help="cross-site or leave-one-site-out.")] = "cross-site",
    method: Annotated[
        str, typer.Option(help="paper (the paper's preset) or recommended (this project's).")
    ] = "paper",
    sites: SitesOption = None,
    students: ModelsOption = None,
    teachers: ModelsOption = None,
    seeds: Annotated[int, typer.Option(help="Seeds 0 … N-1 per site.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Grid folder (runs, tables, figures).")] = None,
    jobs: JobsOption = None,
    launcher: LauncherOption = "local",
    address: AddressOption = None,
    cpus_per_run: CpusPerRunOption = None,
    set_: SetOption = None,
    max_runs: MaxRunsOption = None,
    dry_run: DryRunOption = False,
    tracking: TrackingOption = None,
) -> None:
    """The paper's tables as resumable grids of runs, reported beside the paper's numbers."""
    from crossdistill.reproduce import reproduce as run_reproduce

    run_reproduce(
        table,
        preset=preset,
        data=data,
        protocol=protocol,
        method=method,
        sites=split_names(sites, "--sites"),
        students=split_names(students, "--students"),
        teachers=split_names(teachers, "--teachers"),
        seeds=seeds,
        out=out,
        **_grid_call(jobs, launcher, address, cpus_per_run, set_, max_runs, dry_run, tracking),
    )


@app.command()
def compare(
    targets: Annotated[
        list[str] | None,
        typer.Option("--targets", help="Target sites (S4, UCL or folder); default all sites."),
    ] = None,
    student: Annotated[str, typer.Option(help="The student network.")] = "enet",
    teacher: Annotated[str, typer.Option(help="The teacher network.")] = "deeplabv3plus",
    methods: Annotated[
        str,
        typer.Option(
            help="Arms, comma-separated: distillation presets (ours, recommended, kmm+lm, ...), "
            "each optionally with term options, ours[aam.stride=8], and @untrained or "
            "@ground-truth; w/o (none) is always included."
        ),
    ] = "none,ours,recommended",
    controls: Annotated[
        str | None,
        typer.Option(help="Controls applied to every method: untrained, ground-truth."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Paired seeds 0 … N-1 (5 or more for a claim).")] = 5,
    protocol: Annotated[str, typer.Option(help="cross-site or leave-one-site-out.")] = "cross-site",
    preset: Annotated[
        str | None,
        typer.Option(help="study (CPU, default without --data), demo, or paper (default with it)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="A prepared cache or a folder of sites.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Comparison folder (runs and report).")] = None,
    jobs: JobsOption = None,
    launcher: LauncherOption = "local",
    address: AddressOption = None,
    cpus_per_run: CpusPerRunOption = None,
    metric: Annotated[
        str, typer.Option(help="Reported: val (for choosing), test, or both.")
    ] = "both",
    versus: Annotated[
        str | None,
        typer.Option(help="Also compare two arms, A:B (A − B), comma-separated pairs."),
    ] = None,
    set_: SetOption = None,
    max_runs: MaxRunsOption = None,
    dry_run: DryRunOption = False,
    tracking: TrackingOption = None,
) -> None:
    """Paired seeds, controls and 95 % CIs: does a method beat w/o, and is it the teacher?"""
    from crossdistill.compare import compare as run_compare
    from crossdistill.compare.arms import split_methods

    run_compare(
        split_names(targets, "--targets"),
        student=student,
        teacher=teacher,
        methods=split_methods(methods),
        controls=split_names([controls], "--controls") if controls is not None else [],
        seeds=seeds,
        protocol=protocol,
        preset=preset,
        data=data,
        out=out,
        metrics=("val", "test") if metric == "both" else (metric,),
        versus=split_methods(versus) if versus else (),
        command="crossdistill " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **_grid_call(jobs, launcher, address, cpus_per_run, set_, max_runs, dry_run, tracking),
    )


@app.command()
def report(
    path: Annotated[
        Path,
        typer.Argument(help="A run folder, or a `reproduce --out` or `compare --out` folder."),
    ],
    arms: Annotated[
        str | None,
        typer.Option(help="compare folders: report only these arms (comma-separated; w/o kept)."),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option(help="compare folders: write the report here instead of into PATH."),
    ] = None,
    versus: Annotated[
        str | None,
        typer.Option(
            help="compare folders: compare these A:B pairs (comma-separated) instead of the "
            "last `compare`'s --versus."
        ),
    ] = None,
) -> None:
    """Rebuild tables and figures from stored results (no training)."""
    from crossdistill.compare.pipeline import PLAN

    if (path / PLAN).is_file():  # a `compare --out` folder
        from crossdistill.compare import read_plan, write_comparison
        from crossdistill.compare.arms import split_methods

        chosen = split_methods(arms) if arms else None
        pairs = split_methods(versus) if versus is not None else None
        for file in write_comparison(path, read_plan(path), arms=chosen, to=to, versus=pairs):
            echo(f"wrote {file}")
        return
    if arms or to or versus is not None:
        raise CrossDistillError("--arms, --to and --versus apply to a `compare --out` folder only")
    from crossdistill.reproduce import report as run_report

    run_report(path, echo=echo)
