"""The ``crossdistill`` command line: thin wiring over the Python API.

A user's mistake ends as one line on stderr (``crossdistill: error: <file or key>: <reason>``)
and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crossdistill.errors import CrossDistillError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Cross-site relational distillation for lightweight prostate-MRI segmentation.",
)

SitesOption = Annotated[
    list[str] | None,
    typer.Option("--sites", help="Sites (S4, UCL or folder name); repeat or separate with commas."),
]


def _split_names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name.strip()]


def _echo(message: str) -> None:
    typer.echo(message)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the sites into.")],
    sites: SitesOption = None,
    cases_per_site: Annotated[int, typer.Option(help="Cases per site.")] = 10,
    size: Annotated[int, typer.Option(help="In-plane matrix size (pixels).")] = 128,
    slices: Annotated[int, typer.Option(help="Slices per volume.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
) -> None:
    """Generate the multi-site prostate phantom in the release layout."""
    from crossdistill.data.synth import synthesize

    summary = synthesize(
        out,
        sites=_split_names(sites),
        cases_per_site=cases_per_site,
        size=size,
        slices=slices,
        seed=seed,
    )
    _echo(
        f"wrote {summary['cases']} cases of {len(summary['sites'])} sites to {out} "
        f"in {summary['seconds']:.1f} s"
    )


@app.command()
def prepare(
    data_dir: Annotated[Path, typer.Argument(help="Folder of site folders (release layout).")],
    out: Annotated[Path, typer.Option("--out", help="Cache folder to write.")],
    size: Annotated[int, typer.Option(help="In-plane size of the cached slices.")] = 384,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid cases instead of stopping.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the case-level splits.")] = 0,
    val_fraction: Annotated[
        float, typer.Option(help="Fraction of each site's cases for validation.")
    ] = 0.1,
    test_fraction: Annotated[
        float, typer.Option(help="Fraction of each site's cases for testing.")
    ] = 0.2,
) -> None:
    """Validate a multi-site folder and write the memory-mapped cache."""
    from crossdistill.data.prepare import prepare as run_prepare

    result = run_prepare(
        data_dir,
        out,
        size=size,
        skip_invalid=skip_invalid,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    _report_prepare(result)


def _report_prepare(result) -> None:
    for path, reason in result.skipped:
        typer.echo(f"skipped {path}: {reason}", err=True)
    verb = "reused" if result.reused else "wrote"
    sites = ", ".join(f"{s} ({n})" for s, n in result.sites.items())
    _echo(
        f"{verb} cache {result.cache}: {sum(result.sites.values())} cases, {result.slices} slices, "
        f"{result.empty_masks} empty masks, {len(result.skipped)} skipped; sites: {sites}"
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for data, cache and results.")] = Path(
        "runs/demo"
    ),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """The main job: synthetic sites → cache (training and report come with the engine)."""
    from crossdistill.data.prepare import prepare as run_prepare
    from crossdistill.data.synth import synthesize

    data = out / "data"
    if not (data / "sites.json").is_file():
        summary = synthesize(data, seed=seed)
        _echo(
            f"synthetic sites: {summary['cases']} cases written to {data} "
            f"in {summary['seconds']:.1f} s"
        )
    else:
        _echo(f"synthetic sites: reusing {data}")
    result = run_prepare(data, out / "cache", size=128, seed=seed)
    _report_prepare(result)
    _echo(f"data: {data.resolve()}\ncache: {result.cache.resolve()}")


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit 2."""
    try:
        app()
    except CrossDistillError as err:
        typer.echo(f"crossdistill: error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
