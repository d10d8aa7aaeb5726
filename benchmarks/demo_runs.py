"""Shared by the benchmark scripts: the demo's data, teachers and ENet student, by name.

A *bench* is one (target, seed, scale) of the demo: ``prepare_bench`` makes (or reuses) the
demo's synthetic sites and cache, ``teacher_run`` trains (or reuses) the demo's UNet++ teacher
of a protocol, and ``student_run`` trains (or reuses) the demo's ENet student with any
distillation preset, term overrides or training method. A run is reused when finished with
the same configuration and resumed when interrupted (``crossdistill.reproduce.runs``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crossdistill.config import RunConfig, load_config
from crossdistill.demo import CACHE_SIZE, PLAN_BY_KEY, run_config
from crossdistill.engine.run_folder import RunFolder
from crossdistill.reproduce.data import synthetic_cache
from crossdistill.reproduce.runs import train_or_reuse

TEACHER_KEY = {"cross-site": "teacher", "leave-one-site-out": "loso_teacher"}


def prepare_bench(root: Path, quick: bool) -> Path:
    """The demo's synthetic sites under ``root/data`` and their cache; returns the cache."""
    result = synthetic_cache(root, CACHE_SIZE[quick], lambda _: None, montage=False, progress=False)
    return result.cache


def _base(cache: Path, runs: Path, target: str, seed: int, device: str = "cpu") -> RunConfig:
    overrides = [f"data.cache={cache}", f"output={runs}", f"seed={seed}", f"target={target}"]
    return load_config("demo", [*overrides, f"device={device}"])


def teacher_run(
    cache: Path,
    runs: Path,
    target: str,
    seed: int,
    protocol: str,
    quick: bool,
    device: str = "cpu",
) -> Path:
    """Train (or reuse) the demo's teacher of ``protocol``; returns its run folder."""
    key = TEACHER_KEY[protocol]
    base = _base(cache, runs, target, seed, device)
    train_or_reuse(run_config(base, PLAN_BY_KEY[key], runs, quick))
    return runs / key


def student_run(
    cache: Path,
    runs: Path,
    target: str,
    seed: int,
    quick: bool,
    name: str,
    protocol: str,
    *,
    preset: str = "none",
    terms: dict[str, Any] | None = None,
    teacher: Path | None = None,
    method: str = "supervised",
    train: dict[str, Any] | None = None,
    device: str = "cpu",
) -> dict:
    """Train (or reuse) the demo's ENet student as ``runs/name``; returns its summary."""
    base = _base(cache, runs, target, seed, device)
    cfg = run_config(base, PLAN_BY_KEY["student_wo"], runs, quick)
    raw = cfg.model_dump()
    raw.update({"name": name, "protocol": protocol})
    raw["train"] = {**raw["train"], "method": method, **(train or {})}
    raw["distill"] = {
        "preset": preset,
        "teacher": str(teacher) if teacher is not None else None,
        "terms": terms or {},
    }
    return train_or_reuse(RunConfig.model_validate(raw))


def epoch_metrics(run: Path) -> list[dict]:
    """The run's ``metrics.jsonl`` records."""
    return [json.loads(x) for x in RunFolder(run).metrics.read_text().splitlines()]
