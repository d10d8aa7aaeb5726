"""Running a grid: plan what each run needs (nothing, a resume, a fresh start), then hand
the runs to a launcher in dependency order.

A run is submitted only once every run it depends on has finished, so with ``--jobs N`` the
teachers and the students without teacher train side by side and each distilled student
starts as soon as its teacher is done. A finished run is never trained again, except when
its teacher's weights are not those it records having been distilled from (its teacher was
trained again, by this grid or an earlier call into the same folder); a run whose teacher is
trained again in this grid is itself trained again, unless it records the teacher weights it
was distilled from and the teacher comes out with them (``check``). A failed
run does not stop the grid: the runs that depend on it are left out, and all are reported.
With ``tracking.backend`` set (``--tracking mlflow``), the runs a grid trains are logged into
one experiment of the grid (:func:`grid_tracking`), each tagged with what the grid knows of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossdistill.config import RunConfig, load_config
from crossdistill.engine.run_folder import RunFolder
from crossdistill.errors import CrossDistillError
from crossdistill.reproduce.grid import RunSpec
from crossdistill.reproduce.launchers import Job, Launcher, check_launcher, make_launcher
from crossdistill.reproduce.presets import GridPreset, Scale
from crossdistill.reproduce.record import check_preset
from crossdistill.reproduce.runs import (
    CHECK,
    DONE,
    RESTART,
    RESUME,
    has_checkpoint,
    recorded_teacher,
    run_state,
    spec_config,
    teacher_digest,
)
from crossdistill.summary_check import checked_summary
from crossdistill.tracking import local_store, prepare_experiment, require_backend


@dataclass(frozen=True)
class PlannedRun:
    """A run with its configuration and what it needs: ``done``, ``resume``, ``restart``,
    ``new`` or ``check`` (and why)."""

    spec: RunSpec
    config: RunConfig
    state: str
    why: str = ""


@dataclass
class GridOutcome:
    """What running a grid did."""

    reused: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_run: list[str] = field(default_factory=list)  # after a failed teacher, or max_runs


def plan_runs(
    runs: tuple[RunSpec, ...],
    base: RunConfig,
    runs_dir: Path,
    scales: dict[str, Scale],
    overrides: list[str] | tuple[str, ...] = (),
    tracking: dict[str, Any] | None = None,
) -> list[PlannedRun]:
    """Each run's configuration and state, in the order of ``runs`` (teachers first);
    ``tracking``: the grid's tracking section (:func:`grid_tracking`).

    A finished teacher without its checkpoint (a grid restored from its summaries) stays
    finished unless a run still to train needs it; then it is trained again. A finished
    student of a teacher trained again is checked once the teacher is done (``check``: kept
    when the teacher has the weights it was distilled from); without that record, or when
    it was interrupted, it is trained again. A finished student whose finished teacher now
    holds other weights than those its summary records (the teacher was trained again by an
    earlier call) is trained again, so that every arm of a (target, seed) is distilled from
    the same teacher; one without the record, or whose teacher's checkpoint is missing, is
    kept (nothing to compare)."""
    configs = [spec_config(s, base, runs_dir, scales, overrides, tracking) for s in runs]
    found = {spec.id: run_state(cfg) for spec, cfg in zip(runs, configs, strict=True)}
    needed = {d for spec in runs if found[spec.id][0] != DONE for d in spec.depends}
    planned: list[PlannedRun] = []
    states: dict[str, str] = {}
    digests: dict[str, str | None] = {}  # teacher path → its weights digest now
    for spec, cfg in zip(runs, configs, strict=True):
        state, why = found[spec.id]
        if state == DONE and spec.id in needed and not has_checkpoint(cfg):
            state, why = RESTART, "its checkpoint is missing and a run to train needs it"
        teachers_done = all(states[d] == DONE for d in spec.depends)
        if state == DONE and teachers_done and _distilled_from_other_weights(cfg, digests):
            state, why = RESTART, "its teacher now holds other weights than it was distilled from"
        if state in (DONE, RESUME) and any(states[d] != DONE for d in spec.depends):
            if state == DONE and recorded_teacher(_summary(cfg)) is not None:
                state, why = CHECK, "its teacher is trained again; kept if to the same weights"
            else:
                state, why = RESTART, "its teacher is trained again"
        states[spec.id] = state
        planned.append(PlannedRun(spec, cfg, state, why))
    return planned


def _distilled_from_other_weights(cfg: RunConfig, digests: dict[str, str | None]) -> bool:
    """Whether the finished run records teacher weights (``teacher_weights_sha256``) other
    than those its teacher's checkpoint holds now; ``False`` when either is unknown.
    ``digests`` caches each teacher's digest by path."""
    recorded = recorded_teacher(_summary(cfg))  # None for a run without teacher
    if recorded is None:
        return False
    key = str(cfg.distill.teacher)
    if key not in digests:
        digests[key] = teacher_digest(cfg)
    return digests[key] is not None and digests[key] != recorded


def _summary(cfg: RunConfig) -> dict | None:
    """The summary of a run already found finished (no second state check)."""
    try:
        return RunFolder.of(cfg).read_summary()
    except (OSError, ValueError):
        return None


def describe(planned: list[PlannedRun]) -> str:
    """One line per run: state, id, dependencies (``--dry-run``)."""
    lines = []
    for p in planned:
        after = f"  after {', '.join(p.spec.depends)}" if p.spec.depends else ""
        why = f" ({p.why})" if p.why else ""
        lines.append(f"{p.state:<8} {p.spec.id}{why}{after}")
    return "\n".join(lines)


def run_grid(
    planned: list[PlannedRun],
    launcher: Launcher,
    echo: Callable[[str], None] = print,
    max_runs: int | None = None,
    on_trained: Callable[[str], None] | None = None,
) -> GridOutcome:
    """Execute the planned runs that are not done; at most ``max_runs`` are started.
    ``on_trained(run_id)`` is called as each run finishes training (so that a caller can
    record progress that outlives a killed grid)."""
    outcome = GridOutcome(reused=[p.spec.id for p in planned if p.state == DONE])
    finished = set(outcome.reused)
    waiting = [
        Job(
            p.spec.id,
            p.config.model_dump(mode="json"),
            p.state == RESUME,
            p.spec.depends,
            keep_if_same_teacher=p.state == CHECK,
        )
        for p in planned
        if p.state != DONE
    ]
    why = {p.spec.id: p.why for p in planned}
    total, started = len(waiting), 0
    running: dict[Any, Job] = {}
    while True:
        for job in list(waiting):
            if any(d in outcome.failed or d in outcome.not_run for d in job.depends):
                waiting.remove(job)
                outcome.not_run.append(job.id)
                continue
            if len(running) >= launcher.slots or (max_runs is not None and started >= max_runs):
                break
            if all(d in finished for d in job.depends):
                waiting.remove(job)
                started += 1
                verb = "resume" if job.resume else "check" if job.keep_if_same_teacher else "train"
                note = f" ({why[job.id]})" if why[job.id] else ""
                echo(f"[{started}/{total}] {verb} {job.id}{note}")
                running[launcher.submit(job)] = job
        if not running:
            break
        for handle, result in launcher.wait(list(running)):
            job = running.pop(handle)
            if result.error is not None:
                outcome.failed[job.id] = result.error
                echo(f"failed {job.id}: {result.error}")
                continue
            finished.add(job.id)
            if result.kept:
                outcome.reused.append(job.id)
                echo(f"kept   {job.id}: its teacher came out with the same weights")
                continue
            outcome.trained.append(job.id)
            dice = result.summary["dice"]
            echo(
                f"done   {job.id}: Dice {dice['mean']:.3f} ± {dice['std']:.3f} "
                f"({result.seconds:.0f} s)"
            )
            if on_trained is not None:
                on_trained(job.id)
    outcome.not_run += [job.id for job in waiting]
    return outcome


def check_grid_call(
    preset: GridPreset,
    overrides: Sequence[str],
    launcher: str,
    jobs: int | None,
    launcher_options: Mapping[str, Any] | None,
    out: Path,
) -> dict[str, Any]:
    """Fail before any work on a bad ``--set``, launcher option, a tracker whose package is
    missing or a grid folder of another preset; returns the launcher options that were given
    (``None`` values dropped)."""
    require_backend(load_config(preset.config, list(overrides)).tracking.backend)
    given = {k: v for k, v in (launcher_options or {}).items() if v is not None}
    check_launcher(launcher, jobs, **given)
    check_preset(out, preset.name)
    return given


def grid_tracking(
    preset: GridPreset,
    overrides: Sequence[str],
    out: Path,
    experiment: str,
    tags: Mapping[str, str],
    prepare: bool = True,
) -> dict[str, Any] | None:
    """The tracking section of every run of a grid writing into ``out``, or ``None`` when
    the overrides leave tracking off: the store ``tracking.uri`` (default
    ``sqlite:///OUT/mlflow.db``), the experiment ``tracking.experiment`` (default
    ``experiment``, one per grid), tags ``grid`` (``out``) and ``tags`` under those given.
    ``prepare``: create the experiment now, once for all runs; if that fails (one warning
    line), the grid's runs are not tracked."""
    section = load_config(preset.config, list(overrides)).tracking
    if section.backend == "none":
        return None
    uri = section.uri or local_store(out)
    name = section.experiment or experiment
    if prepare and not prepare_experiment(uri, name):
        return {"backend": "none"}
    merged = {"grid": str(out), **tags, **section.tags}
    return {"backend": section.backend, "uri": uri, "experiment": name, "tags": merged}


def launch(
    planned: list[PlannedRun],
    launcher: str,
    jobs: int | None,
    launcher_options: dict[str, Any],
    echo: Callable[[str], None] = print,
    max_runs: int | None = None,
    on_trained: Callable[[str], None] | None = None,
) -> GridOutcome:
    """:func:`run_grid` on the launcher called ``launcher`` (closed afterwards), then
    :func:`log_reused`."""
    with make_launcher(launcher, jobs, **launcher_options) as runner:
        if runner.description:
            echo(runner.description)
        outcome = run_grid(planned, runner, echo, max_runs, on_trained)
    log_reused(planned, outcome.reused, echo)
    return outcome


def log_reused(
    planned: list[PlannedRun], reused: Sequence[str], echo: Callable[[str], None] = print
) -> int:
    """Log to the grid's tracker the ``reused`` runs that it does not hold yet (trained
    untracked, or tracked elsewhere), so that the experiment holds the whole grid; returns
    how many were logged. Nothing happens when tracking is off."""
    tracked = [p for p in planned if p.config.tracking.backend != "none" and p.spec.id in reused]
    if not tracked:
        return 0
    from crossdistill.log_finished import log_finished_run  # torch: only when tracking is on

    logged = sum(log_finished_run(p.config) for p in tracked)
    if logged:
        section = tracked[0].config.tracking
        echo(f"logged {logged} reused run(s) to {section.experiment} at {section.uri}")
    return logged


def report_outcome(
    outcome: GridOutcome, files: list[Path], runs_dir: Path, echo: Callable[[str], None]
) -> None:
    """Print what a grid did and the files written; raise if runs failed (after the
    report of what finished has been written)."""
    echo(
        f"{len(outcome.reused)} runs reused, {len(outcome.trained)} trained, "
        f"{len(outcome.failed)} failed, {len(outcome.not_run)} left to run"
    )
    for file in files:
        echo(f"wrote {file}")
    if outcome.failed:
        failed = "; ".join(f"{run} ({why})" for run, why in outcome.failed.items())
        raise CrossDistillError(
            f"{len(outcome.failed)} run(s) failed: {failed}; see error.log in each run folder "
            f"under {runs_dir}"
        )


def load_summaries(runs_dir: Path, ids: list[str] | tuple[str, ...]) -> dict[str, dict]:
    """``summary.json`` of every run of ``ids`` that has one (one that is not JSON is taken as
    unfinished).

    Raises:
        InputError: a summary without what its readers read (:func:`checked_summary`).
    """
    summaries = {}
    for run_id in ids:
        folder = RunFolder(runs_dir / run_id)
        if folder.finished():
            try:
                summary = folder.read_summary()
            except ValueError:
                continue
            summaries[run_id] = checked_summary(folder.summary, summary)
    return summaries
