"""``crossdistill reproduce``: one of the paper's tables, trained as a resumable grid and
reported beside the paper's numbers.

Table 1 is measured directly. Tables 2–4: the data (a cache, a release folder, or the
synthetic sites of the demo preset) → the grid of runs (:mod:`.grid`) → each run's state
(:mod:`.runner`: finished runs are reused, interrupted ones resume) → the launcher trains
what is left, teachers before their students → the table and figures (:mod:`.report`).
Everything goes into ``OUT``: ``OUT/runs/<site>/seed<N>/<run>`` and ``OUT/<table>.*``. With
``--tracking mlflow`` the runs trained are also logged to the experiment ``<OUT name>/<table>``
(default store ``OUT/mlflow.db``), tagged ``table``, ``target``, ``method``, ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crossdistill.config import load_config
from crossdistill.data.sites import PAPER_FOLDERS, resolve_sites
from crossdistill.errors import CrossDistillError
from crossdistill.models.registry import STUDENTS, canonical_name
from crossdistill.reproduce.data import GridData, grid_cache
from crossdistill.reproduce.grid import GridOptions, build_grid, check_options
from crossdistill.reproduce.presets import get_preset
from crossdistill.reproduce.record import RUNS, add_invocation, table_stem
from crossdistill.reproduce.report import write_table
from crossdistill.reproduce.runner import (
    check_grid_call,
    describe,
    grid_tracking,
    launch,
    plan_runs,
    report_outcome,
)
from crossdistill.reproduce.runs import config_digest
from crossdistill.reproduce.table1 import table1_rows, write_table1
from crossdistill.reproduce.term_check import check_planned_terms


def _models(names: Sequence[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(canonical_name(n) for n in names)) if names else default


def grid_sites(names: Sequence[str] | None, data: GridData) -> tuple[str, ...]:
    """The sites ``names`` (all of the grid's data's without) in the paper's order."""
    available = list(data.sites)
    if len(available) < 2:
        raise CrossDistillError(
            f"--data: {data.cache} holds {len(available)} site; a grid needs two "
            "or more (students train on the sites other than the target)"
        )
    if names:
        return tuple(resolve_sites(names, available))
    order = {folder: i for i, folder in enumerate(PAPER_FOLDERS)}
    return tuple(sorted(available, key=lambda f: (order.get(f, len(order)), f)))


def reproduce(
    table: int,
    preset: str | None = None,
    data: str | Path | None = None,
    protocol: str = "cross-site",
    method: str = "paper",
    sites: Sequence[str] | None = None,
    students: Sequence[str] | None = None,
    teachers: Sequence[str] | None = None,
    seeds: int = 1,
    out: str | Path | None = None,
    jobs: int | None = None,
    launcher: str = "local",
    launcher_options: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    max_runs: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> dict:
    """Reproduce Table ``table``; returns ``{"out", "files", "reused", "trained", "failed",
    "not_run"}``.

    ``preset`` defaults to ``paper`` when ``data`` is given, else ``demo``; ``seeds`` runs
    seeds ``0 … seeds−1``; ``overrides`` (``key.sub=value``) apply to every run's
    configuration; ``max_runs`` stops after starting that many runs (the rest are trained by
    the next invocation); ``dry_run`` prints the plan and trains nothing. ``launcher``
    (``local`` or ``ray``) runs up to ``jobs`` runs at once (default: 1 locally, as many as
    the cluster holds on Ray); ``launcher_options`` are its options (Ray: ``address``,
    ``cpus_per_run``; ``None`` values count as not given).

    Raises:
        CrossDistillError: a bad option (named), or runs that failed (after the others
            finished and the table of what finished was written).
    """
    grid_preset = get_preset(preset or ("paper" if data is not None else "demo"))
    out = Path(out or f"runs/reproduce-{grid_preset.name}").absolute()
    echo(f"Table {table}, {grid_preset.name} preset → {out}")
    if table == 1:
        files = write_table1(out, table1_rows(latency_size=grid_preset.cache_size))
        return {"out": out, "files": files}
    if seeds < 1 or (max_runs is not None and max_runs < 0):
        raise CrossDistillError("--seeds must be ≥ 1 and --max-runs ≥ 0")
    two = table == 2
    options = GridOptions(
        table,
        (),
        tuple(range(seeds)),
        protocol,
        method,
        _models(students, STUDENTS if two else ("enet",)),
        _models(teachers, ("deeplabv3plus", "unetpp") if two else ("deeplabv3plus",)),
    )
    check_options(options)
    launcher_options = check_grid_call(
        grid_preset, overrides, launcher, jobs, launcher_options, out
    )
    data_path = Path(data) if data is not None else None
    grid_data = grid_cache(data_path, out, grid_preset, echo, make=not dry_run)
    cache = grid_data.cache
    options = GridOptions(**{**asdict(options), "sites": grid_sites(sites, grid_data)})
    grid = build_grid(options)
    base = load_config(grid_preset.config, [f"data.cache={cache}"])
    stem = table_stem(table, protocol, method)
    tracking = grid_tracking(
        grid_preset, overrides, out, f"{out.name}/{stem}", {"table": stem}, not dry_run
    )
    planned = plan_runs(grid.runs, base, out / RUNS, grid_preset.scales, list(overrides), tracking)
    check_planned_terms(planned)  # a bad term option stops the grid before any run
    if dry_run:
        echo(describe(planned))
        return {"out": out, "files": [], "planned": [(p.spec.id, p.state) for p in planned]}
    digests = {p.spec.id: config_digest(p.config) for p in planned}
    record = add_invocation(out, options, grid_preset.name, digests)
    outcome = launch(planned, launcher, jobs, launcher_options, echo, max_runs)
    files = write_table(out, record)
    report_outcome(outcome, files, out / RUNS, echo)
    return {"out": out, "files": files, **asdict(outcome)}
