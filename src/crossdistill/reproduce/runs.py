"""One run of a grid: its configuration, whether it is finished, and training it once.

A run folder is *finished* when it holds ``summary.json`` and its ``config.yaml`` is the
configuration asked for (compared after validation, so a key added to the schema later with
its default does not count as a change). A folder with the same configuration and a
``checkpoints/last.safetensors`` but no summary was interrupted: it *resumes* from that
checkpoint (to the same weights on the CPU as an uninterrupted run). Anything else in the
folder is removed and the run starts again. The ``tracking`` section says where a run is
reported, not what it is: it takes no part in the comparison, so turning tracking on retrains
nothing (and a run reused as finished is not logged again).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crossdistill import api
from crossdistill.config import RunConfig, apply_overrides
from crossdistill.engine.loading import network_sha256
from crossdistill.engine.run_folder import RunFolder
from crossdistill.errors import CrossDistillError
from crossdistill.reproduce.grid import RunSpec
from crossdistill.reproduce.presets import Scale

DONE, RESUME, RESTART, NEW = "done", "resume", "restart", "new"
#: finished, but its teacher is trained again: kept if the teacher comes out with the weights it
#: was distilled from (:func:`kept_summary`), else trained again
CHECK = "check"


def run_config(
    base: RunConfig,
    *,
    name: str,
    output: Path,
    role: str,
    protocol: str,
    model: str,
    scale: Scale,
    preset: str = "none",
    teacher: Path | None = None,
    method: str = "supervised",
    control: str | None = None,
    terms: tuple[str, ...] = (),
    overrides: list[str] | tuple[str, ...] = (),
    tracking: dict[str, Any] | None = None,
    **fields: Any,
) -> RunConfig:
    """``base`` with one run's fields; ``fields`` (``target``, ``seed``) set top-level keys,
    ``terms`` (``"aam.stride=8"``) set ``distill.terms`` and ``overrides`` (``key.sub=value``)
    are applied last, but for ``tracking``, the grid's section (made from the overrides,
    :func:`spec_tracking`), which replaces the run's."""
    raw = base.model_dump()
    raw.update(fields)
    raw.update({"name": name, "output": output, "role": role, "protocol": protocol})
    raw["model"] = {**raw["model"], "name": model, "width": scale.width}
    raw["train"] = {**raw["train"], "epochs": scale.epochs, "method": method}
    if scale.lr_cycles is not None:
        raw["train"]["schedule"] = cycle_schedule(raw["train"], scale)
    raw["distill"] = {
        **raw["distill"],  # the base's settings (teacher_cache, ...) stay
        "preset": preset,
        "teacher": str(teacher) if teacher is not None else None,
        "terms": apply_overrides({}, list(terms)),
        "control": control,
    }
    if teacher is None:  # nothing to cache without a teacher
        raw["distill"]["teacher_cache"] = False
    if overrides:
        raw = apply_overrides(
            json.loads(RunConfig.model_validate(raw).model_dump_json()), list(overrides)
        )
    if tracking is not None:
        raw["tracking"] = tracking
    return RunConfig.model_validate(raw)


def cycle_schedule(train: dict[str, Any], scale: Scale) -> dict[str, Any]:
    """The cyclic schedule of ``train`` with its step size set so that the run's
    ``scale.epochs × steps_per_epoch`` iterations are ``scale.lr_cycles`` whole cycles."""
    schedule, steps = dict(train["schedule"]), train.get("steps_per_epoch")
    if schedule.get("name") != "cyclic" or not steps:
        raise CrossDistillError(
            "train.schedule: a preset with whole learning-rate cycles needs the cyclic "
            "schedule and train.steps_per_epoch"
        )
    schedule["step_size"] = max(1, scale.epochs * steps // (2 * scale.lr_cycles))
    return schedule


def spec_config(
    spec: RunSpec,
    base: RunConfig,
    runs_dir: Path,
    scales: dict[str, Scale],
    overrides: list[str] | tuple[str, ...] = (),
    tracking: dict[str, Any] | None = None,
) -> RunConfig:
    """The configuration of a grid run: folder ``runs_dir/<spec.id>``, its teacher's folder
    ``runs_dir/<teacher id>``. A student without a teacher trains on the sites other than its
    target under either protocol; its configuration says ``cross-site``. ``tracking``: the
    grid's tracking section (:func:`spec_tracking` adds the run's name and tags)."""
    folder = runs_dir / spec.id
    return run_config(
        base,
        name=folder.name,
        output=folder.parent,
        role=spec.role,
        protocol=spec.protocol or "cross-site",
        model=spec.model,
        scale=scales[spec.model],
        preset=spec.preset,
        teacher=runs_dir / spec.teacher.id if spec.teacher is not None else None,
        method=spec.method,
        control=spec.control,
        terms=spec.terms,
        overrides=overrides,
        tracking=spec_tracking(spec, tracking) if tracking is not None else None,
        target=spec.site,
        seed=spec.seed,
    )


def spec_tracking(spec: RunSpec, grid: dict[str, Any]) -> dict[str, Any]:
    """The tracking section of a grid run: the grid's (``backend``, ``uri``, ``experiment``,
    ``tags``) with the run's id as its name and tagged with what the grid knows of it:
    ``target``, ``seed``, ``method`` (:attr:`RunSpec.label`), ``run``; tags the grid was
    given win."""
    if grid.get("backend", "none") == "none":
        return grid
    tags = {"target": spec.site, "seed": spec.seed, "method": spec.label, "run": spec.id}
    return {**grid, "run_name": spec.id, "tags": {**tags, **grid.get("tags", {})}}


def run_dir(cfg: RunConfig) -> Path:
    """Where ``api.train`` writes the run."""
    return RunFolder.of(cfg).path


def stored_config(folder: Path) -> RunConfig | None:
    """The validated ``folder/config.yaml``, or ``None`` when it is missing or invalid."""
    try:
        return RunConfig.model_validate(
            yaml.safe_load(RunFolder(folder).config.read_text(encoding="utf-8"))
        )
    except (OSError, ValueError, yaml.YAMLError, ValidationError, TypeError):
        return None  # ValueError: also a file that is not UTF-8


def config_digest(cfg: RunConfig) -> str:
    """SHA-256 of the configuration's canonical JSON (validated, keys sorted), its
    ``tracking`` section left out (module docstring)."""
    text = json.dumps(cfg.model_dump(mode="json", exclude={"tracking"}), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def holds_config(folder: Path, digest: str) -> bool:
    """Whether ``folder/config.yaml`` is the configuration whose digest is ``digest``."""
    stored = stored_config(folder)
    return stored is not None and config_digest(stored) == digest


def same_config(folder: Path, cfg: RunConfig) -> bool:
    """Whether ``folder/config.yaml`` holds ``cfg``."""
    return holds_config(folder, config_digest(cfg))


def run_state(cfg: RunConfig) -> tuple[str, str]:
    """``(state, why)``: ``done``, ``resume``, ``restart`` (a folder to clear) or ``new``."""
    folder = run_dir(cfg)
    if not folder.exists():
        return NEW, ""
    if not same_config(folder, cfg):
        return RESTART, "its configuration changed"
    if RunFolder(folder).finished():
        return DONE, ""
    if RunFolder(folder).last.is_file():
        return RESUME, "interrupted"
    return RESTART, "interrupted before its first checkpoint"


def finished_summary(cfg: RunConfig) -> dict | None:
    """The run's summary if it is finished with this configuration, else ``None``."""
    if run_state(cfg)[0] != DONE:
        return None
    try:
        return RunFolder.of(cfg).read_summary()
    except (OSError, ValueError):
        return None


def has_checkpoint(cfg: RunConfig) -> bool:
    """Whether the run's folder holds a checkpoint a student could be distilled from (a grid
    restored from its committed summaries has none)."""
    folder = RunFolder.of(cfg)
    return folder.best.is_file() or folder.last.is_file()


def recorded_teacher(summary: dict | None) -> str | None:
    """The teacher weights digest a run's summary records (``teacher_weights_sha256``), or
    ``None`` (no summary, no teacher, or a summary from before the key)."""
    digest = summary.get("teacher_weights_sha256") if summary is not None else None
    return digest if isinstance(digest, str) else None


def teacher_digest(cfg: RunConfig) -> str | None:
    """The weights digest of the teacher ``cfg`` distils from as it is on disk now, or
    ``None`` (no teacher, or its checkpoint is missing or unreadable: a grid restored from
    its summaries)."""
    if cfg.distill.teacher is None:
        return None
    try:
        return network_sha256(cfg.distill.teacher)
    except CrossDistillError:
        return None


def kept_summary(cfg: RunConfig) -> dict | None:
    """The finished run's summary when its teacher now holds the very weights the run was
    distilled from (a teacher trained again to the same weights, as a seeded CPU run is);
    ``None`` when the teacher changed, is unreadable, or the run does not record it."""
    summary = finished_summary(cfg)
    recorded = recorded_teacher(summary)
    if recorded is None:
        return None
    return summary if teacher_digest(cfg) == recorded else None


def train_run(cfg: RunConfig, resume: bool, progress: bool = False) -> dict:
    """Train the run (clearing its folder first unless ``resume``); returns its summary."""
    if not resume:
        shutil.rmtree(run_dir(cfg), ignore_errors=True)
    return api.train(cfg, resume=resume, progress=progress)


def train_or_reuse(cfg: RunConfig, progress: bool = False) -> dict:
    """The run's summary: reused when finished, resumed when interrupted, else trained."""
    state, _ = run_state(cfg)
    if state == DONE:
        summary = finished_summary(cfg)
        if summary is not None:
            return summary
    return train_run(cfg, resume=state == RESUME, progress=progress)
