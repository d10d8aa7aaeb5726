"""A finished run logged to its tracker after the fact (docs/design.md §7, "Tracking").

A grid or the demo reuses the runs it finds finished; with ``--tracking mlflow`` these runs,
trained untracked (or logged to another store), would be missing from the experiment that is
meant to hold the whole grid. :func:`log_finished_run` logs such a run from its folder
exactly as the run would have logged itself: the configuration and KD terms as params, its
tags, every ``metrics.jsonl`` epoch, the final metrics of ``summary.json`` and
``evaluation.json``, and its files. The run's ``tracking.json`` then names the MLflow run,
so the next call finds it logged and leaves it alone.
"""

from __future__ import annotations

import json

from crossdistill.config import RunConfig
from crossdistill.engine.run_folder import RunFolder, read_metrics
from crossdistill.run import kd_terms
from crossdistill.tracking import MlflowTracker, final_metrics, open_tracker


def log_finished_run(config: RunConfig) -> bool:
    """Log the finished run of ``config`` to ``config.tracking`` unless that store already
    holds it as finished; True when it logged something. Tracking off, or a folder without
    its summary and evaluation: nothing is done (False). Like every tracker call, it never
    raises on the tracker's side: a failure is one warning line."""
    if config.tracking.backend == "none":
        return False
    folder = RunFolder.of(config)
    try:
        summary = folder.read_summary()
        evaluation = json.loads(folder.evaluation.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    tracker = open_tracker(config, kd_terms(config))
    if not isinstance(tracker, MlflowTracker):
        return False
    files = [folder.curves, folder.overlay, folder.evaluation, folder.summary, folder.config]
    return tracker.log_finished(
        read_metrics(folder.metrics), final_metrics(summary, evaluation), files
    )
