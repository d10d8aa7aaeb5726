"""The arms of a comparison and the grid of runs they need.

An *arm* is one way of training the student: ``none`` (w/o, no teacher), a distillation
preset (``ours``, ``recommended``, ``kmm+lm``, ...), or a preset with a control teacher in
place of the trained one (``recommended@untrained``, ``recommended@ground-truth``, see
:mod:`crossdistill.distill.controls`). For every target site and seed, each arm is one run of
the reproduction grid (:mod:`crossdistill.reproduce.grid`): the same run ids, one trained
teacher per (target, seed) shared by every distilled arm, resume and skip-finished included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from crossdistill.config import apply_overrides
from crossdistill.distill.controls import CONTROLS, same_run_control
from crossdistill.distill.presets import preset_terms, resolved_terms
from crossdistill.errors import ConfigError, CrossDistillError
from crossdistill.reproduce.grid import PROTOCOLS, RunSpec, student_run, teacher_run

NONE = "none"


@dataclass(frozen=True)
class Arm:
    """``method`` (a distillation preset, or ``none``) with its term options changed by
    ``terms`` (``"aam.stride=8"``) and an optional ``control``."""

    method: str
    control: str | None = None
    terms: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``w/o``, ``recommended``, ``ours[aam.stride=8]`` or ``recommended@untrained``."""
        if self.method == NONE:
            return "w/o"
        text = self.method + (f"[{','.join(self.terms)}]" if self.terms else "")
        return f"{text}@{self.control}" if self.control else text


#: METHOD[TERMS]@CONTROL; TERMS runs to the last "]", so a value may be a list ("[1,2,3]").
_ARM = re.compile(r"^(?P<method>[^\[\]@]+)(\[(?P<terms>.*)\])?(@(?P<control>[^\[\]@]+))?$")


def _bracket_depths(text: str) -> list[int]:
    """How many ``[`` are open after each character of ``text``."""
    depths, depth = [], 0
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        depths.append(depth)
    return depths


def split_methods(text: str, separators: str = ",") -> list[str]:
    """``--methods``: split on the ``separators`` outside ``[...]`` (at any depth), so that
    ``ours[aam.sizes=[1,2,3],aam.adaptive=true],kmm`` is two methods; empty parts dropped."""
    parts, current = [], ""
    for char, depth in zip(text, _bracket_depths(text), strict=True):
        if char in separators and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p.strip() for p in [*parts, current] if p.strip()]


def _terms(text: str, method: str, options: str) -> tuple[str, ...]:
    known = preset_terms(method)
    terms = []
    for item in split_methods(options, ",;"):
        key, sep, _ = item.partition("=")
        term, dot, option = key.strip().partition(".")
        if not sep or not dot or not option:
            raise CrossDistillError(f"--methods: '{text}': write term options as TERM.OPTION=VALUE")
        if term not in known:
            raise CrossDistillError(
                f"--methods: '{text}': '{term}' is not a term of '{method}' "
                f"(its terms: {', '.join(known) or 'none'})"
            )
        terms.append(item.replace(" ", ""))
    return tuple(terms)


def _balanced(text: str) -> bool:
    depths = _bracket_depths(text)
    return not depths or (min(depths) >= 0 and depths[-1] == 0)


def _arm(text: str) -> Arm:
    match = _ARM.match(text.strip().lower())
    if match is None or not _balanced(text):
        raise CrossDistillError(f"--methods: cannot read '{text}' (METHOD[TERM.OPTION=V]@CONTROL)")
    method = match["method"].strip()
    if "+" in method:  # one name per set of terms: lm+kmm is kmm+lm
        method = "+".join(sorted(part.strip() for part in method.split("+")))
    try:
        preset_terms(method)
    except ConfigError:
        raise CrossDistillError(
            f"--methods: unknown method '{method}' (a distillation preset: none, ours, "
            "recommended, a Table 3 row such as kmm+lm, kd, at, emkd, mskd)"
        ) from None
    control = (match["control"] or "").strip() or None
    if control is not None and control not in CONTROLS:
        raise CrossDistillError(
            f"--methods: unknown control '{control}' in '{text}'; use {' or '.join(CONTROLS)}"
        )
    if method == NONE and (control is not None or match["terms"]):
        raise CrossDistillError(f"--methods: '{text}': w/o has no teacher and no terms")
    return Arm(method, control, _terms(text, method, match["terms"] or ""))


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
    arms += [Arm(a.method, c.strip().lower(), a.terms) for a in plain for c in controls]
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
    overrides: tuple[str, ...] = ()  # --set, over every run: they may change the terms


def check_options(o: CompareOptions) -> None:
    """Raise :class:`CrossDistillError` naming the option that cannot make a comparison."""
    if o.protocol not in PROTOCOLS:
        raise CrossDistillError(f"--protocol: '{o.protocol}'; use {' or '.join(PROTOCOLS)}")
    if not o.seeds:
        raise CrossDistillError("--seeds: give at least one")
    if not o.targets:
        raise CrossDistillError("--targets: give at least one target site")


def run_control(o: CompareOptions, arm: Arm) -> str | None:
    """The control of the run that ``arm`` trains: ``arm.control``, but ``untrained`` for a
    ``ground-truth`` arm whose terms never read the teacher's logits (the two controls then
    give the same teacher: :func:`~crossdistill.distill.controls.same_run_control`), so that
    the run is trained once and both arms report it. An override of ``--set`` under
    ``distill`` but ``distill.terms`` keeps every control its own run."""
    if arm.control is None or any(
        text.strip().startswith("distill.") and not text.strip().startswith("distill.terms.")
        for text in o.overrides
    ):
        return arm.control
    raw = apply_overrides({}, [*(f"distill.terms.{t}" for t in arm.terms), *o.overrides])
    changes = raw.get("distill", {}).get("terms", {})
    if not isinstance(changes, dict) or any(
        not isinstance(v, dict | None) for v in changes.values()
    ):
        return arm.control  # not terms: the run's configuration names the mistake
    return same_run_control(arm.control, resolved_terms(arm.method, changes))


def shared_runs(o: CompareOptions) -> dict[str, str]:
    """``{arm label: label of the arm whose runs it reports}`` for the arms of ``o`` whose
    control trains another control's run (:func:`run_control`)."""
    shared = {}
    for arm in o.arms:
        control = run_control(o, arm)
        if control != arm.control:
            shared[arm.label] = Arm(arm.method, control, arm.terms).label
    return shared


def arm_run(o: CompareOptions, arm: Arm, target: str, seed: int) -> RunSpec:
    """The run of ``arm`` for ``target`` and ``seed``."""
    if arm.method == NONE:
        return student_run(o.student, target, seed, o.protocol)
    teacher = teacher_run(o.teacher, target, seed, o.protocol)
    return student_run(
        o.student,
        target,
        seed,
        o.protocol,
        arm.method,
        teacher,
        control=run_control(o, arm),
        terms=arm.terms,
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
