"""From finished runs to the comparison's numbers: per arm, target and seed the student's
Dice, and the paired differences with their intervals (:mod:`.stats`).

Two metrics are kept apart:

* ``val`` — the best mean 3-D Dice on the *source* sites' validation cases during training
  (what checkpoint selection saw): the one to choose presets and settings by;
* ``test`` — the mean 3-D Dice on the target site's test cases: looked at once, for the report.

Comparisons: every distilled arm against w/o (does the method help?), and every method
against each of its controls, ``X − X@control`` (is the trained teacher the cause?).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crossdistill.compare.arms import NONE, Arm
from crossdistill.compare.stats import Difference, compare_arms

METRICS = ("val", "test")


@dataclass(frozen=True)
class Comparison:
    """``a − b`` on one metric, per target and pooled."""

    a: str  # arm labels
    b: str
    metric: str
    per_target: dict[str, Difference]
    pooled: Difference | None

    @property
    def kind(self) -> str:
        """``vs w/o``, ``vs control`` or ``vs another arm``."""
        if self.b == "w/o":
            return "vs w/o"
        return "vs control" if self.b.startswith(f"{self.a}@") else "vs another arm"


def run_values(summary: Mapping) -> dict[str, float | None]:
    """The metrics of one finished run's ``summary.json``."""
    val = summary.get("val_dice")
    return {"val": None if val is None else float(val), "test": float(summary["dice"]["mean"])}


def arm_values(
    summaries: Mapping[tuple[Arm, str, int], Mapping], metric: str
) -> dict[str, dict[str, dict[int, float]]]:
    """``{arm label: {target: {seed: value}}}`` of ``metric`` over the finished runs."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for (arm, target, seed), summary in summaries.items():
        value = run_values(summary)[metric]
        if value is not None:
            out.setdefault(arm.label, {}).setdefault(target, {})[seed] = value
    return out


def comparisons(
    arms: tuple[Arm, ...],
    summaries: Mapping[tuple[Arm, str, int], Mapping],
    seed: int = 0,
    versus: Sequence[tuple[str, str]] = (),
) -> list[Comparison]:
    """Every arm against w/o, then every method against each of its controls, then the
    ``versus`` pairs of arm labels (``("recommended", "kmm+lm")``), per metric."""
    pairs = [(arm.label, "w/o") for arm in arms if arm.method != NONE]
    pairs += [
        (Arm(arm.method, terms=arm.terms).label, arm.label)
        for arm in arms
        if arm.control is not None
    ]
    pairs += [pair for pair in versus if pair not in pairs]
    out = []
    for metric in METRICS:
        values = arm_values(summaries, metric)
        for a, b in pairs:
            if a in values and b in values:
                per_target, pooled = compare_arms(values[a], values[b], seed=seed)
                out.append(Comparison(a, b, metric, per_target, pooled))
    return out


def reliability(summaries: Mapping[tuple[Arm, str, int], Mapping]) -> dict[str, dict[str, float]]:
    """Mean over seeds of the teacher's Dice on the student's training images, per arm label
    and target (distilled arms only)."""
    acc: dict[str, dict[str, list[float]]] = {}
    for (arm, target, _), summary in summaries.items():
        value = (summary.get("teacher_reliability") or {}).get("dice", {}).get("mean")
        if value is not None:
            acc.setdefault(arm.label, {}).setdefault(target, []).append(float(value))
    return {
        label: {t: sum(v) / len(v) for t, v in targets.items()} for label, targets in acc.items()
    }
