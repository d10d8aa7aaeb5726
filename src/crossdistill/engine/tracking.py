"""The tracking hook: what the engine tells an experiment tracker, and the default that
tells nobody (docs/design.md §7, "Tracking").

The engine calls a :class:`Tracker` and never knows which one it is (the MLflow one lives
above it, in :mod:`crossdistill.tracking`), so no tracking package is imported here. Calls,
on rank 0 only (the other ranks hold a :class:`NullTracker`):

1. ``start(epoch)`` — once training is about to begin; ``epoch`` is the number of epochs
   already done (more than 0 when the run resumes);
2. ``log_epoch(record)`` — after every epoch, the object written to ``metrics.jsonl``;
3. ``log_final(metrics, artifacts)`` — after the evaluation and the figures;
4. ``end(status)`` — ``FINISHED``, or ``FAILED`` / ``KILLED`` when the run stopped early.

A tracker must never raise: a run does not fail because its tracker cannot report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    """Reports one run somewhere besides its folder (module docstring)."""

    def start(self, epoch: int) -> None:
        """Training begins after ``epoch`` finished epochs (0 for a new run)."""

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        """One epoch's ``metrics.jsonl`` object (``epoch`` numbers it, from 1)."""

    def log_final(self, metrics: Mapping[str, float], artifacts: Sequence[Path]) -> None:
        """The run's final metrics and the files worth keeping with it."""

    def end(self, status: str) -> None:
        """The run is over: ``FINISHED``, ``FAILED`` or ``KILLED``."""


class NullTracker:
    """The default: reports nothing."""

    def start(self, epoch: int) -> None:
        pass

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        pass

    def log_final(self, metrics: Mapping[str, float], artifacts: Sequence[Path]) -> None:
        pass

    def end(self, status: str) -> None:
        pass


NULL_TRACKER = NullTracker()
