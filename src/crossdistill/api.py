"""The Python API behind the command line: one function per command that trains or evaluates.

``train(config)`` trains a teacher or a plain student; with ``config.distill.teacher`` set
(or a preset other than ``none``) the same call distils a student. Every run writes into
its folder ``config.output / config.name`` (``engine.run_folder.RunFolder``): the resolved
configuration, metrics, checkpoints, evaluation, summary and figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crossdistill.config import RunConfig
from crossdistill.data.cache import Cache
from crossdistill.engine.loading import checkpoint_path, load_model
from crossdistill.engine.run_folder import RunFolder, write_json
from crossdistill.engine.run_lock import exclusive_run
from crossdistill.run_inputs import open_run_inputs

if TYPE_CHECKING:
    from crossdistill.run_summary import RunSummary

# The engine, MONAI and the evaluation are imported inside the calls, after the inputs are
# checked: a wrong path or site fails at once instead of after ~10 s of imports.


@exclusive_run  # one live run per run folder (RUN/.lock)
def train(config: RunConfig, resume: bool = False, progress: bool = True) -> RunSummary:
    """Train (or distil) the network of ``config``; returns the run's summary.

    ``resume``: continue an interrupted run from its last checkpoint (same result as an
    uninterrupted one). See :mod:`crossdistill.run` for what is built and written.
    """
    inputs = open_run_inputs(config)
    from crossdistill.run import build_run

    return build_run(config, inputs).execute(resume=resume, progress=progress)


#: the preset :func:`distill` uses when neither the call nor the configuration names one
DEFAULT_DISTILL_PRESET = "ours"


def distill(
    config: RunConfig, preset: str | None = None, resume: bool = False, progress: bool = True
) -> RunSummary:
    """Distil the student of ``config`` from ``config.distill.teacher`` with ``preset``, else
    the configuration's ``distill.preset``, else ``ours`` (the paper's method) when that is
    ``none`` (``crossdistill distill``)."""
    if preset is None:
        preset = config.distill.preset
        preset = DEFAULT_DISTILL_PRESET if preset == "none" else preset
    chosen = config.model_copy(
        update={"distill": config.distill.model_copy(update={"preset": preset})}
    )
    return train(chosen, resume=resume, progress=progress)


def evaluate(
    checkpoint: str | Path,
    cache_dir: str | Path,
    sites: list[str] | None,
    split: str = "test",
    out: str | Path | None = None,
) -> dict:
    """Evaluate a run folder or checkpoint on ``sites`` of a cache; writes ``evaluation.json``
    (and an overlay PNG) into ``out`` (default: the run folder, or beside the checkpoint)."""
    model, meta = load_model(checkpoint)
    cache = Cache(cache_dir)
    from crossdistill.eval.evaluate import evaluate_model
    from crossdistill.eval.figures import plot_overlay

    channels = int(meta["model"]["in_channels"])
    folders = cache.resolve_sites(sites)
    result = evaluate_model(model, cache, folders, split, channels)
    result["checkpoint"] = str(checkpoint_path(checkpoint))
    target = (
        Path(out)
        if out
        else (Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent)
    )
    target.mkdir(parents=True, exist_ok=True)
    write_json(RunFolder(target).evaluation, result)
    plot_overlay(model, cache, folders, split, channels, RunFolder(target).overlay)
    return result
