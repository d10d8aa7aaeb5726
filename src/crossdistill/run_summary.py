"""A run's summary (``summary.json``): its typed keys and how they are computed.

The summary is what grids, reports and comparisons read of a finished run; its presence marks
the run finished (``engine.run_folder``). It stays a JSON object, so :class:`RunSummary` is a
``TypedDict``: readers index it as before, and a type checker knows its keys.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import torch
from torch import nn

from crossdistill.data.cache import Cache
from crossdistill.engine.cached_teacher import TeacherCachedDataset
from crossdistill.engine.fit import FitResult
from crossdistill.eval.evaluate import evaluate_model
from crossdistill.eval.postprocess import largest_component

if TYPE_CHECKING:
    from crossdistill.run import Run


class DiceStats(TypedDict):
    mean: float
    std: float
    n: int


class RunSummary(TypedDict, total=False):
    """``summary.json``. Always present: ``name`` … ``precision``; with a teacher also
    ``teacher``, ``teacher_weights_sha256`` (``engine.loading.network_sha256``: a grid keeps
    the run when its teacher is trained again to the same weights), ``teacher_model``,
    ``teacher_reliability`` (and ``control`` for a control teacher); with
    ``distill.teacher_cache`` also ``teacher_cache``."""

    name: str
    role: str
    protocol: str
    target: str | None
    model: dict[str, Any]  # name, width, in_channels, num_classes
    train_sites: list[str]
    eval_sites: list[str]
    method: str
    preset: str
    terms: dict[str, dict[str, Any]]
    epochs: int
    best_epoch: int
    val_dice: float | None  # best validation Dice (None without validation cases)
    loss_terms: dict[str, dict[str, float]]  # {"start": {...}, "end": {...}}
    skipped_steps: int
    dice: DiceStats  # test Dice over the evaluation sites' cases
    per_case_dice: dict[str, float]  # "SITE/CASE" -> Dice
    seconds: float  # wall time, with the loop's time in earlier attempts of a resumed run
    precision: dict[str, Any]  # {"autocast": ..., "channels_last": ...}
    teacher_cache: dict[str, Any]
    teacher: str
    teacher_weights_sha256: str
    teacher_model: dict[str, Any]
    control: dict[str, Any]
    teacher_reliability: dict[str, Any]


def summarise(run: Run, result: FitResult, evaluation: dict, has_val: bool) -> RunSummary:
    """The keys every run's summary has (the teacher's are added by the run)."""
    config = run.config
    return RunSummary(
        name=config.name,
        role=config.role,
        protocol=config.protocol,
        target=config.target,
        model=run.spec,
        train_sites=run.train_sites,
        eval_sites=run.eval_sites,
        method=config.train.method,
        preset=config.distill.preset,
        terms=run.terms,
        epochs=result.epochs,
        best_epoch=result.best_epoch,
        val_dice=result.best_val_dice if has_val else None,
        loss_terms={"start": result.start_terms, "end": result.end_terms},
        skipped_steps=result.bad_steps,
        dice=evaluation["overall"]["dice"],
        per_case_dice={
            f"{site}/{case}": m["dice"]
            for site, record in evaluation["sites"].items()
            for case, m in record["cases"].items()
        },
        seconds=round(time.perf_counter() - run.started + result.earlier_seconds, 2),
        precision={"autocast": run.precision, "channels_last": run.channels_last},
    )


def teacher_reliability(
    teacher: nn.Module, cache: Cache, sites: list[str], channels: int, stored=None
) -> dict:
    """The teacher's Dice on the student's training images (where it teaches).

    ``stored``: the training dataset; when it carries the teacher-output cache the stored
    logits are evaluated (same values within float16 rounding, no teacher run), and a
    control teacher built from the labels is given each volume's mask.
    """
    logits_of = None
    if isinstance(stored, TeacherCachedDataset):

        def logits_of(volume):
            return stored.case_logits(volume.case.site, volume.case.case_id)

    elif getattr(teacher, "needs_masks", False):

        def logits_of(volume):
            return teacher.smoothed_logits(torch.from_numpy(np.asarray(volume.mask)))

    def segment(volume):  # as segment_slices does with the teacher's own logits
        foreground = logits_of(volume).float().argmax(1) > 0
        return largest_component(foreground.numpy().astype(np.uint8))

    result = evaluate_model(
        teacher,
        cache,
        sites,
        "train",
        channels,
        segment=segment if logits_of else None,
        metrics=("dice",),
    )
    return {
        "dice": result["overall"]["dice"],
        "per_site": {site: record["dice"]["mean"] for site, record in result["sites"].items()},
    }
