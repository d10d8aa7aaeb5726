"""The ``crossdistill`` application, its entry point, and the options and helpers that its
command modules share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crossdistill.errors import CrossDistillError
from crossdistill.monai_without_mlflow import hide_mlflow_from_monai

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


def split_names(values: list[str] | None, option: str) -> list[str] | None:
    """The names of a repeatable, comma-separated option; ``None`` when it was not given.

    Raises:
        CrossDistillError: the option was given but names nothing (``--targets ''``), which
            would otherwise read as "all".
    """
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise CrossDistillError(f"{option}: names nothing; leave it out for the default")
    return names


def echo(message: str) -> None:
    """Print a line of a command's output."""
    typer.echo(message)


ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML run configuration.")]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: key.sub=value (repeat).")
]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")]
TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking",
        help="Also log to an experiment tracker: mlflow (tracking.backend; the store is "
        "tracking.uri, default sqlite:///OUTPUT/mlflow.db). Needs crossdistill[mlflow].",
    ),
]


def tracking_overrides(tracking: str | None) -> list[str]:
    """The ``--set`` overrides that ``--tracking BACKEND`` stands for."""
    return [] if tracking is None else [f"tracking.backend={tracking}"]


def main() -> None:
    """Console entry point (also ``python -m crossdistill``, what torchrun launches): run the
    app, turning user errors (and the system's: a full disk, a read-only folder) into one line
    and exit 2."""
    hide_mlflow_from_monai()  # this process never uses MONAI's MLflow handler
    try:
        app(prog_name="crossdistill")
    except CrossDistillError as err:
        typer.echo(f"crossdistill: error: {err}", err=True)
        sys.exit(2)
    except OSError as err:  # the machine's, not the code's: a full disk, a read-only folder
        if err.errno is None:
            raise
        where = f"{err.filename}: " if err.filename else ""
        typer.echo(f"crossdistill: error: {where}{err.strerror}", err=True)
        sys.exit(2)
