"""``evaluate_model``: the metrics asked for, per case, per site and overall."""

from __future__ import annotations

import numpy as np
import pytest

from crossdistill.data.cache import Cache
from crossdistill.eval.evaluate import evaluate_model


def _shifted(volume):  # a prediction one column off the mask: Dice < 1, finite distances
    return np.roll(np.asarray(volume.mask), 1, axis=-1)


def test_a_dice_only_evaluation_gives_the_full_evaluations_dice(engine_cache):
    cache = Cache(engine_cache)
    full = evaluate_model(None, cache, ["HK", "UCL"], "val", segment=_shifted)
    dice = evaluate_model(None, cache, ["HK", "UCL"], "val", segment=_shifted, metrics=("dice",))
    assert set(full["overall"]) == {"dice", "hd95", "asd"} and full["overall"]["hd95"]["n"] > 0
    assert set(dice["overall"]) == set(dice["site_mean"]) == {"dice"}
    assert dice["overall"]["dice"] == full["overall"]["dice"]
    assert 0 < dice["overall"]["dice"]["mean"] < 1
    for site in ("HK", "UCL"):
        cases = dice["sites"][site]["cases"]
        assert cases and all(set(values) == {"dice"} for values in cases.values())
        assert {c: v["dice"] for c, v in cases.items()} == {
            c: v["dice"] for c, v in full["sites"][site]["cases"].items()
        }
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_model(None, cache, ["HK"], "val", segment=_shifted, metrics=("iou",))
