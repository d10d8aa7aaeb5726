"""What every reader of a finished run's ``summary.json`` relies on (grids, reports,
comparisons), checked where it is read: a summary edited by hand or forged fails with one line
naming the file instead of a ``KeyError`` deep inside a report. The keys themselves are
:class:`crossdistill.run_summary.RunSummary`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crossdistill.errors import InputError


def number(value: Any, what: str) -> float:
    """``value`` as a float; ``ValueError`` naming ``what`` unless it is an int or float (a
    bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number: {value!r}")
    return float(value)


def checked_summary(path: Path, summary: Any) -> dict:
    """``summary`` (read from ``path``) if it holds what the readers read: a number at
    ``dice.mean``, and numbers wherever ``val_dice``, ``seconds``, ``epochs``,
    ``model.width``, ``teacher_model.width`` and ``teacher_reliability.dice.mean`` are given.

    Raises:
        InputError: naming ``path`` and what is missing.
    """
    try:
        if not isinstance(summary, Mapping):
            raise ValueError("not a JSON object")
        number(summary["dice"]["mean"], "dice.mean")
        for key in ("val_dice", "seconds", "epochs"):
            if summary.get(key) is not None:
                number(summary[key], key)
        for key in ("model", "teacher_model"):
            if summary.get(key) is not None:
                number(summary[key]["width"], f"{key}.width")
        if summary.get("teacher_reliability") is not None:
            reliability = summary["teacher_reliability"]["dice"]["mean"]
            number(reliability, "teacher_reliability.dice.mean")
    except (KeyError, TypeError, ValueError) as err:
        reason = f"no {err}" if isinstance(err, KeyError) else str(err)
        raise InputError(path, f"not a run summary the reports can read ({reason})") from None
    return dict(summary)
