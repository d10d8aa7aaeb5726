"""Evaluation metrics against hand-made volumes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossdistill.eval.metrics import case_metrics, dice_3d, summarize


def _box(shape=(10, 10, 10), lo=(2, 2, 2), hi=(6, 6, 6)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 1
    return m


def test_perfect_empty_and_half_overlap():
    truth = _box()
    assert dice_3d(truth, truth) == 1.0
    assert dice_3d(np.zeros_like(truth), truth) == 0.0
    assert dice_3d(np.zeros_like(truth), np.zeros_like(truth)) == 1.0
    half = _box(lo=(2, 2, 4), hi=(6, 6, 8))  # 64 voxels each, 32 shared → 2·32/128
    assert dice_3d(half, truth) == pytest.approx(0.5)


def test_distances_in_mm():
    truth = _box()
    shifted = _box(lo=(3, 2, 2), hi=(7, 6, 6))  # one voxel along x
    m = case_metrics(shifted, truth, spacing=(2.0, 1.0, 1.0))
    assert m["dice"] == pytest.approx(2 * 48 / 128)
    assert m["hd95"] == pytest.approx(2.0)  # the shift is one 2-mm voxel
    assert 0 < m["asd"] <= 2.0
    same = case_metrics(truth, truth, spacing=(1.0, 1.0, 1.0))
    assert same["hd95"] == 0.0 and same["asd"] == 0.0
    empty = case_metrics(np.zeros_like(truth), truth, spacing=(1, 1, 1))
    assert math.isnan(empty["hd95"]) and math.isnan(empty["asd"])


def test_summarize_ignores_nan():
    s = summarize([0.5, 1.0, math.nan])
    assert s["mean"] == pytest.approx(0.75) and s["std"] == pytest.approx(0.25) and s["n"] == 2


def test_only_the_metrics_asked_for_are_computed(monkeypatch):
    truth = _box()
    shifted = _box(lo=(3, 2, 2), hi=(7, 6, 6))
    full = case_metrics(shifted, truth, spacing=(2.0, 1.0, 1.0))

    def no_distances(*_args):
        raise AssertionError("surface distances computed for a Dice-only evaluation")

    monkeypatch.setattr("crossdistill.eval.metrics.surface_distances", no_distances)
    assert case_metrics(shifted, truth, (2.0, 1.0, 1.0), names=("dice",)) == {"dice": full["dice"]}
    with pytest.raises(ValueError, match="unknown metrics \\['hd99'\\]"):
        case_metrics(shifted, truth, (1, 1, 1), names=("dice", "hd99"))
