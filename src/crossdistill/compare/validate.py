"""What a comparison's report reads from ``compare.plan.json``, a file that may have been
edited, cut short or forged: a plan without it fails with one line naming the file, never a
traceback from deep inside the report (each run's ``summary.json``:
:func:`crossdistill.summary_check.checked_summary`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crossdistill.summary_check import number

ROLES = ("student", "teacher")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text: {value!r}")
    return value


def check_plan(plan: Any) -> None:
    """Raise ``ValueError`` or ``KeyError`` unless ``plan`` holds what a report reads besides
    its options: ``preset``, ``data``, each role's ``name``, ``width`` and ``epochs``, the
    ``configs`` mapping, the ``versus`` pairs and each invocation's ``command``, ``date``,
    ``machine`` and ``wall_s`` (and, where recorded, its ``last_run_s``, ``student``,
    ``teacher`` and ``targets``)."""
    if not isinstance(plan, Mapping):
        raise ValueError("not a JSON object")
    _text(plan["preset"], "preset")
    _text(plan["data"], "data")
    for role in ROLES:
        model = plan["models"][role]
        _text(model["name"], f"models.{role}.name")
        number(model["width"], f"models.{role}.width")
        number(model["epochs"], f"models.{role}.epochs")
    if not isinstance(plan.get("configs", {}), Mapping):
        raise ValueError("configs is not a mapping")
    for pair in plan.get("versus", []):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"versus holds {pair!r}, not a pair")
        for side in pair:
            _text(side, "versus")
    for invocation in plan.get("invocations", []):
        for key in ("command", "date", "machine"):
            _text(invocation[key], f"invocations.{key}")
        if invocation["wall_s"] is not None:
            number(invocation["wall_s"], "invocations.wall_s")
        if invocation.get("last_run_s") is not None:  # recorded since 2026-12-06
            number(invocation["last_run_s"], "invocations.last_run_s")
        if "targets" in invocation:  # recorded since 2026-12-06
            _text(invocation["student"], "invocations.student")
            _text(invocation["teacher"], "invocations.teacher")
            if not isinstance(invocation["targets"], list):
                raise ValueError("invocations.targets is not a list")
            for target in invocation["targets"]:
                _text(target, "invocations.targets")
