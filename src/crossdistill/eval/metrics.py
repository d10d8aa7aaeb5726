"""Per-case 3-D metrics: Dice, HD95 and ASD (mm).

Distances come from MONAI (``compute_hausdorff_distance``, ``compute_average_surface_distance``)
with the voxel spacing, so they are in millimetres. Conventions for empty masks: Dice is 1
when prediction and ground truth are both empty and 0 when only one is; the distances are
``nan`` unless both masks are non-empty.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

METRICS = ("dice", "hd95", "asd")


def dice_3d(pred: np.ndarray, truth: np.ndarray) -> float:
    """``2|P ∩ G| / (|P| + |G|)`` over the whole volume; 1 when both are empty."""
    p, g = pred.astype(bool), truth.astype(bool)
    total = int(p.sum()) + int(g.sum())
    return 1.0 if total == 0 else 2.0 * int((p & g).sum()) / total


def _one_hot(mask: np.ndarray) -> torch.Tensor:
    m = torch.from_numpy(mask.astype(bool))
    return torch.stack([~m, m])[None].float()


def surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]
) -> tuple[float, float]:
    """``(HD95, ASD)`` in mm between two binary volumes; ``nan`` when either is empty.

    HD95 is the 95th percentile of the symmetric surface distances; ASD is the symmetric
    average surface distance.
    """
    if not pred.any() or not truth.any():
        return math.nan, math.nan
    p, g = _one_hot(pred), _one_hot(truth)
    with warnings.catch_warnings():  # MONAI's own deprecation notices, not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        hd95 = compute_hausdorff_distance(p, g, percentile=95, spacing=list(spacing))
        asd = compute_average_surface_distance(p, g, symmetric=True, spacing=list(spacing))
    return float(hd95.item()), float(asd.item())


def case_metrics(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], names: Sequence[str] = METRICS
) -> dict[str, float]:
    """The metrics ``names`` of one case, of Dice, HD95 (mm) and ASD (mm). The surface
    distances cost far more than Dice (a distance transform of both surfaces): they are
    computed only when asked for, so a per-epoch validation that reads Dice asks for Dice.

    Raises:
        ValueError: a name that is not in :data:`METRICS`.
    """
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
    values = {}
    if "dice" in names:
        values["dice"] = dice_3d(pred, truth)
    if "hd95" in names or "asd" in names:
        values["hd95"], values["asd"] = surface_distances(pred, truth, spacing)
    return {name: values[name] for name in names}


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean and (population) standard deviation, ignoring ``nan``; ``n`` counts the finite."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(np.mean(finite)), "std": float(np.std(finite)), "n": len(finite)}
