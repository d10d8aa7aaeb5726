"""``synth`` and ``prepare``: the sites on disk and their preprocessed cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossdistill.cli.app import (
    SitesOption,
    app,
    echo,
    split_names,
)


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
        sites=split_names(sites, "--sites"),
        cases_per_site=cases_per_site,
        size=size,
        slices=slices,
        seed=seed,
    )
    echo(
        f"wrote {summary['cases']} cases of {len(summary['sites'])} sites to {out} "
        f"in {summary['seconds']:.1f} s"
    )


@app.command()
def prepare(
    data_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of site folders (release layout), an nnU-Net raw or Decathlon "
            "dataset, or a folder of such datasets (one per site)."
        ),
    ],
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
    layout: Annotated[
        str | None,
        typer.Option(help="release, nnunet or decathlon (default: detected)."),
    ] = None,
    sites_from: Annotated[
        Path | None,
        typer.Option(help="CSV of case,site rows: the site of each case of a dataset."),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(help="Name or index of the T2 channel in dataset.json (default: T2)."),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="Prostate label values, e.g. 1,2 (default: every label > 0)."),
    ] = None,
) -> None:
    """Validate a multi-site folder or nnU-Net/Decathlon datasets; write the memory-mapped cache."""
    from crossdistill.data.cases import parse_labels
    from crossdistill.data.prepare import prepare as run_prepare

    result = run_prepare(
        data_dir,
        out,
        size=size,
        skip_invalid=skip_invalid,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        layout=layout,
        sites_from=sites_from,
        channel=channel,
        labels=None if labels is None else parse_labels(labels),
    )
    _report_prepare(result)


def _report_prepare(result) -> None:
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    for path, reason in result.skipped:
        typer.echo(f"skipped {path}: {reason}", err=True)
    verb = "reused" if result.reused else "wrote"
    sites = ", ".join(f"{s} ({n})" for s, n in result.sites.items())
    echo(
        f"{verb} cache {result.cache}: {sum(result.sites.values())} cases, {result.slices} slices, "
        f"{result.empty_masks} empty masks, {len(result.skipped)} skipped; sites: {sites}"
    )
