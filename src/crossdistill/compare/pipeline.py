"""``crossdistill compare``: does method X make student S better at target k than training
S alone, and is that the teacher's doing?

The arms (:mod:`.arms`) become runs of the reproduction grid, planned and launched by its
runner (finished runs are skipped, interrupted ones resume, one teacher per target and seed
serves every distilled arm); the finished runs' summaries become paired differences with
confidence intervals (:mod:`.results`, :mod:`.stats`), written by :mod:`.report`.
Everything goes into ``OUT``: ``OUT/runs/<site>/seed<N>/<run>``, ``OUT/compare.plan.json``
(what was asked, the configuration digest of every run, each invocation's date and wall time)
and ``OUT/compare.*``. With ``--tracking mlflow`` the runs trained are also logged to the
experiment ``<OUT name>`` (default store ``OUT/mlflow.db``), tagged ``table`` (``compare``),
``target``, ``method`` (the arm), ``seed``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from crossdistill.atomic import write_text_atomic
from crossdistill.compare.arms import (
    Arm,
    CompareOptions,
    check_options,
    compare_runs,
    parse_arms,
)
from crossdistill.compare.header import report_header
from crossdistill.compare.report import write_report
from crossdistill.compare.results import METRICS
from crossdistill.compare.validate import check_plan
from crossdistill.config import load_config
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.models.registry import canonical_name
from crossdistill.reproduce.data import grid_cache
from crossdistill.reproduce.grid import ordered_runs
from crossdistill.reproduce.pipeline import grid_sites
from crossdistill.reproduce.presets import get_preset
from crossdistill.reproduce.record import RUNS
from crossdistill.reproduce.runner import (
    check_grid_call,
    describe,
    grid_tracking,
    launch,
    load_summaries,
    plan_runs,
    report_outcome,
)
from crossdistill.reproduce.runs import config_digest, holds_config
from crossdistill.reproduce.term_check import check_planned_terms

PLAN = "compare.plan.json"


def machine() -> str:
    """This machine in one line: CPU (or GPU), cores, torch."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}"


def compare(
    targets: Sequence[str] | None,
    student: str = "enet",
    teacher: str = "deeplabv3plus",
    methods: Sequence[str] = ("none", "ours", "recommended"),
    controls: Sequence[str] = (),
    seeds: int = 5,
    protocol: str = "cross-site",
    preset: str | None = None,
    data: str | Path | None = None,
    out: str | Path | None = None,
    jobs: int | None = None,
    launcher: str = "local",
    launcher_options: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    max_runs: int | None = None,
    dry_run: bool = False,
    metrics: Sequence[str] = METRICS,
    versus: Sequence[str] = (),
    command: str | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Train what the comparison still needs and write its report; returns ``{"out",
    "files", "reused", "trained", "failed", "not_run"}``.

    ``preset`` defaults to ``paper`` when ``data`` is given, else ``study`` (its own
    synthetic phantom); ``seeds`` runs seeds ``0 … seeds−1``, paired across arms; ``metrics``
    (``val``, ``test``) are the ones reported; ``versus`` adds comparisons between two arms,
    each ``"A:B"`` (``"recommended:kmm+lm"``: A − B). The other options are ``reproduce``'s.

    Raises:
        CrossDistillError: a bad option (named), or runs that failed (after the others
            finished and the report of what finished was written).
    """
    start = time.perf_counter()
    grid_preset = get_preset(preset or ("paper" if data is not None else "study"))
    out = Path(out or f"runs/compare-{grid_preset.name}").absolute()
    arms = parse_arms(methods, controls)
    if seeds < 1 or (max_runs is not None and max_runs < 0):
        raise CrossDistillError("--seeds must be ≥ 1 and --max-runs ≥ 0")
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise CrossDistillError(f"--metric: '{','.join(bad)}'; use val, test or both")
    models = {"student": canonical_name(student), "teacher": canonical_name(teacher)}
    for role, name in models.items():
        if name not in grid_preset.scales:
            raise CrossDistillError(
                f"--{role}: '{name}' has no scale in the {grid_preset.name} preset"
            )
    pairs = parse_versus(versus, arms)
    seed_list = tuple(range(seeds))
    check_options(CompareOptions(("?",), seed_list, *models.values(), arms, protocol))
    launcher_options = check_grid_call(
        grid_preset, overrides, launcher, jobs, launcher_options, out
    )
    previous = read_plan(out) if (out / PLAN).is_file() else None
    if previous is not None and previous["preset"] != grid_preset.name:
        raise CrossDistillError(
            f"--out: {out} holds a comparison of the '{previous['preset']}' preset; "
            f"use another folder for the '{grid_preset.name}' preset"
        )
    echo(f"compare, {grid_preset.name} preset → {out}")
    data_path = Path(data) if data is not None else None
    grid_data = grid_cache(data_path, out, grid_preset, echo, make=not dry_run)
    cache = grid_data.cache
    options = CompareOptions(
        grid_sites(targets, grid_data),
        seed_list,
        *models.values(),
        arms,
        protocol,
        tuple(overrides),
    )
    runs = compare_runs(options)
    base = load_config(grid_preset.config, [f"data.cache={cache}"])
    tracking = grid_tracking(
        grid_preset, overrides, out, out.name, {"table": "compare"}, not dry_run
    )
    planned = plan_runs(
        ordered_runs(runs.values()),
        base,
        out / RUNS,
        grid_preset.scales,
        list(overrides),
        tracking,
    )
    check_planned_terms(planned)  # a bad term option stops the grid before any run
    if dry_run:
        echo(describe(planned))
        return {"out": out, "files": [], "planned": [(p.spec.id, p.state) for p in planned]}
    scales = {role: grid_preset.scales[name] for role, name in models.items()}
    plan = {
        "preset": grid_preset.name,
        "data": str(cache),
        "options": _options_json(options),
        "models": {
            role: {"name": name, "width": scales[role].width, "epochs": scales[role].epochs}
            for role, name in models.items()
        },
        "overrides": list(overrides),
        "versus": [list(pair) for pair in pairs],
        "configs": {p.spec.id: config_digest(p.config) for p in planned},
        "invocations": (previous or {}).get("invocations", []),
    }
    invocation = {
        "command": command or "crossdistill.compare (Python API)",
        "machine": machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": None,  # stays None if this invocation is killed
        "last_run_s": None,  # when its latest run finished: a killed one's lower bound
        "trained": 0,
        # what it ran, so that a report of other runs in the same folder leaves it out
        "student": options.student,
        "teacher": options.teacher,
        "targets": list(options.targets),
    }
    plan["invocations"].append(invocation)
    _write_plan(out, plan)

    def record_progress(run_id: str) -> None:
        invocation["last_run_s"] = round(time.perf_counter() - start, 1)
        invocation["trained"] += 1
        _write_plan(out, plan)

    outcome = launch(planned, launcher, jobs, launcher_options, echo, max_runs, record_progress)
    invocation.update(wall_s=round(time.perf_counter() - start, 1), trained=len(outcome.trained))
    _write_plan(out, plan)
    files = write_comparison(out, plan, metrics)
    report_outcome(outcome, files, out / RUNS, echo)
    return {"out": out, "files": files, **asdict(outcome)}


def parse_versus(versus: Sequence[str], arms: tuple[Arm, ...]) -> list[tuple[str, str]]:
    """``["A:B", ...]`` → label pairs; each side must be an arm (``none`` is w/o)."""
    labels = {a.label for a in arms}
    pairs = []
    for text in versus:
        sides = [part.strip().lower() for part in text.split(":")]
        sides = ["w/o" if side in ("none", "w/o") else side for side in sides]
        if len(sides) != 2 or any(side not in labels for side in sides) or sides[0] == sides[1]:
            raise CrossDistillError(
                f"--versus: '{text}' is not A:B with two different arms of --methods "
                f"({', '.join(sorted(labels))})"
            )
        pairs.append((sides[0], sides[1]))
    return pairs


def _options_json(o: CompareOptions) -> dict:
    """The options as the plan keeps them (the overrides are the plan's own entry)."""
    options = {k: v for k, v in asdict(o).items() if k != "overrides"}
    return {**options, "arms": [a.label if a.method != "none" else "none" for a in o.arms]}


def _write_plan(out: Path, plan: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / PLAN, json.dumps(plan, indent=1))


def read_plan(out: Path) -> dict:
    """``OUT/compare.plan.json`` with its options as :class:`CompareOptions`."""
    path = Path(out) / PLAN
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        check_plan(plan)
        o = plan["options"]
        plan["options"] = CompareOptions(
            tuple(o["targets"]),
            tuple(o["seeds"]),
            o["student"],
            o["teacher"],
            parse_arms(o["arms"]),
            o["protocol"],
            tuple(plan.get("overrides", [])),
        )
    except (OSError, ValueError, KeyError, TypeError, CrossDistillError) as err:
        reason = f"no key {err}" if isinstance(err, KeyError) else str(err)
        raise InputError(path, f"not a comparison plan ({reason})") from None
    return plan


def write_comparison(
    out: Path,
    plan: dict,
    metrics: Sequence[str] = METRICS,
    arms: Sequence[str] | None = None,
    to: Path | None = None,
    versus: Sequence[str] | None = None,
) -> list[Path]:
    """The report of the finished runs of ``plan`` whose configuration is the one it asked
    for; runs still missing are named in the header.

    ``arms``: report only these arms of the plan (labels, e.g. ``ours[aam.stride=8]``; w/o is
    always kept, and ``--versus`` pairs only when both sides are kept); ``to``: write the
    report there instead of ``out`` (the runs stay in ``out``). One folder of runs can so
    serve several studies. ``versus``: the ``A:B`` pairs to compare (as ``--versus`` writes
    them) instead of the plan's.

    Raises:
        CrossDistillError: an arm of ``arms`` that the plan does not have; a pair of
            ``versus`` whose sides are not two reported arms.
    """
    o: CompareOptions = plan["options"]
    if not isinstance(o, CompareOptions):
        plan = {**plan, "options": read_plan(out)["options"]}
        o = plan["options"]
    if arms is not None:
        o = _only_arms(o, arms)
        kept = {a.label for a in o.arms}
        versus = [pair for pair in plan.get("versus", []) if set(pair) <= kept]
        plan = {**plan, "options": o, "versus": versus}
    if versus is not None:
        plan = {**plan, "versus": [list(pair) for pair in parse_versus(versus, o.arms)]}
    runs = compare_runs(o)
    runs_dir = Path(out) / RUNS
    stored = load_summaries(runs_dir, [spec.id for spec in runs.values()])
    wanted = plan.get("configs", {})
    summaries: dict[tuple[Arm, str, int], dict] = {}
    for key, spec in runs.items():
        if spec.id in stored and (
            spec.id not in wanted or holds_config(runs_dir / spec.id, wanted[spec.id])
        ):
            summaries[key] = stored[spec.id]
    dest = Path(to) if to is not None else Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    return write_report(
        dest,
        o.arms,
        summaries,
        report_header(plan, summaries, len(runs), {runs[k].id: v for k, v in summaries.items()}),
        tuple(metrics),
        {key: spec.id for key, spec in runs.items()},
        {key: runs_dir / runs[key].id for key in summaries},
        tuple(tuple(pair) for pair in plan.get("versus", [])),
        o.targets,
    )


def _only_arms(o: CompareOptions, texts: Sequence[str]) -> CompareOptions:
    """``o`` with the arms written in ``texts`` (as ``--methods`` writes them) and w/o only,
    in the plan's order."""
    wanted = set(parse_arms(list(texts), []))
    unknown = sorted(a.label for a in wanted - set(o.arms))
    if unknown:
        known = ", ".join(a.label for a in o.arms)
        raise CrossDistillError(f"--arms: {', '.join(unknown)} not in this comparison ({known})")
    return replace(o, arms=tuple(a for a in o.arms if a in wanted))
