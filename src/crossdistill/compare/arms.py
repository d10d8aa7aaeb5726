"""The arms of a comparison and the grid of runs they need.

An *arm* is one way of training the student: ``none`` (w/o, no teacher), a distillation
preset (``ours``, ``recommended``, ``kmm+lm``, ...), or a preset with a control teacher in
place of the trained one (``recommended@untrained``, ``recommended@ground-truth``, see
:mod:`crossdistill.distill.controls`). For every target site and seed, each arm is one run of
the reproduction grid (:mod:`crossdistill.reproduce.grid`): the same run ids, one trained
teacher per (target, seed) shared by every distilled arm, resume and skip-finished included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crossdistill.distill.controls import CONTROLS
from crossdistill.distill.presets import preset_terms
from crossdistill.errors import ConfigError, CrossDistillError
from crossdistill.reproduce.grid import PROTOCOLS, RunSpec, student_run, teacher_run

NONE = "none"


@dataclass(frozen=True)
class Arm:
    """``method`` (a distillation preset, or ``none``) with an optional ``control``."""

    method: str
    control: str | None = None

    @property
    def label(self) -> str:
        """``w/o``, ``recommended`` or ``recommended@untrained``."""
        if self.method == NONE:
            return "w/o"
        return f"{self.method}@{self.control}" if self.control else self.method


def _arm(text: str) -> Arm:
    method, _, control = text.strip().lower().partition("@")
    method = method.strip()
    try:
        preset_terms(method)
    except ConfigError:
        raise CrossDistillError(
            f"--methods: unknown method '{method}' (a distillation preset: none, ours, "
            "recommended, a Table 3 row such as kmm+lm, kd, at, emkd, mskd)"
        ) from None
    control = control.strip() or None
    if control is not None and control not in CONTROLS:
        raise CrossDistillError(
            f"--methods: unknown control '{control}' in '{text}'; use {' or '.join(CONTROLS)}"
        )
    if method == NONE and control is not None:
        raise CrossDistillError(f"--methods: '{text}': w/o has no teacher to replace")
    return Arm(method, control)


def parse_arms(methods: Sequence[str], controls: Sequence[str] = ()) -> tuple[Arm, ...]:
    """The arms of ``--methods`` (each ``METHOD`` or ``METHOD@CONTROL``) with every control of
    ``--controls`` applied to every distilled method; ``none`` (w/o) always comes first."""
    arms = [_arm(m) for m in methods if m.strip()]
    for control in controls:
        if control.strip().lower() not in CONTROLS:
            raise CrossDistillError(
                f"--controls: unknown control '{control}'; use {' or '.join(CONTROLS)}"
            )
    plain = [a for a in arms if a.control is None and a.method != NONE]
    arms += [Arm(a.method, c.strip().lower()) for a in plain for c in controls]
    unique = dict.fromkeys([Arm(NONE), *arms])
    if len(unique) < 2:
        raise CrossDistillError("--methods: give at least one method besides none (w/o)")
    return tuple(unique)


@dataclass(frozen=True)
class CompareOptions:
    """What ``crossdistill compare`` was asked for (site folders already resolved)."""

    targets: tuple[str, ...]
    seeds: tuple[int, ...]
    student: str
    teacher: str
    arms: tuple[Arm, ...]
    protocol: str = "cross-site"


def check_options(o: CompareOptions) -> None:
    """Raise :class:`CrossDistillError` naming the option that cannot make a comparison."""
    if o.protocol not in PROTOCOLS:
        raise CrossDistillError(f"--protocol: '{o.protocol}'; use {' or '.join(PROTOCOLS)}")
    if not o.seeds:
        raise CrossDistillError("--seeds: give at least one")
    if not o.targets:
        raise CrossDistillError("--targets: give at least one target site")


def arm_run(o: CompareOptions, arm: Arm, target: str, seed: int) -> RunSpec:
    """The run of ``arm`` for ``target`` and ``seed``."""
    if arm.method == NONE:
        return student_run(o.student, target, seed, o.protocol)
    teacher = teacher_run(o.teacher, target, seed, o.protocol)
    return student_run(
        o.student, target, seed, o.protocol, arm.method, teacher, control=arm.control
    )


def compare_runs(o: CompareOptions) -> dict[tuple[Arm, str, int], RunSpec]:
    """Every (arm, target, seed) of the comparison and its run."""
    check_options(o)
    return {
        (arm, target, seed): arm_run(o, arm, target, seed)
        for target in o.targets
        for seed in o.seeds
        for arm in o.arms
    }
