"""Paired statistics of `crossdistill compare` on hand-made inputs."""

from __future__ import annotations

import math

import pytest

from crossdistill.compare.arms import Arm
from crossdistill.compare.results import comparisons
from crossdistill.compare.stats import (
    BETTER,
    NO_DIFFERENCE,
    UNDECIDED,
    WORSE,
    bootstrap_interval,
    compare_arms,
    paired_t,
    pooled_bootstrap,
)


def test_a_constant_difference_has_a_zero_width_interval_at_its_value():
    a, b = [0.7, 0.5, 0.9, 0.6], [0.6, 0.4, 0.8, 0.5]
    for d in (paired_t(a, b), pooled_bootstrap(a, b, seed=3)):
        assert d.mean == pytest.approx(0.1)
        assert d.low == pytest.approx(0.1) and d.high == pytest.approx(0.1)
        assert (d.wins, d.ties, d.losses) == (4, 0, 0)
        assert d.verdict == BETTER


def test_paired_t_interval_by_hand():
    # d = (0.1, 0.2, 0.3): mean 0.2, sd 0.1, t(0.975, 2) = 4.302653
    d = paired_t([0.1, 0.2, 0.3], [0.0, 0.0, 0.0])
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert d.mean == pytest.approx(0.2)
    assert d.low == pytest.approx(0.2 - half, abs=1e-6)
    assert d.high == pytest.approx(0.2 + half, abs=1e-6)
    assert d.verdict == NO_DIFFERENCE  # every seed gains, yet 0.2 − 0.248 < 0


def test_differences_of_mixed_sign_give_an_interval_containing_zero():
    a, b = [0.5, 0.7, 0.4, 0.8, 0.6], [0.6, 0.6, 0.5, 0.7, 0.6]
    for d in (paired_t(a, b), pooled_bootstrap(a, b, seed=0)):
        assert d.low < 0 < d.high
        assert d.verdict == NO_DIFFERENCE
        assert (d.wins, d.ties, d.losses) == (2, 1, 2)


def test_a_clear_loss_is_called_worse():
    d = paired_t([0.1, 0.12, 0.09, 0.11, 0.1], [0.6, 0.65, 0.62, 0.58, 0.61])
    assert d.high < 0 and d.verdict == WORSE


def test_one_seed_gives_no_interval_and_no_verdict():
    d = paired_t([0.8], [0.5])
    assert math.isnan(d.low) and math.isnan(d.high)
    assert d.verdict == UNDECIDED


def test_pooled_bootstrap_is_reproducible_for_a_seed():
    a = [0.61, 0.72, 0.55, 0.80, 0.66, 0.70, 0.59, 0.75]
    b = [0.60, 0.65, 0.58, 0.71, 0.69, 0.62, 0.61, 0.70]
    first, again = pooled_bootstrap(a, b, seed=7), pooled_bootstrap(a, b, seed=7)
    assert (first.low, first.high) == (again.low, again.high)
    assert first.low <= first.mean <= first.high
    d = [x - y for x, y in zip(a, b, strict=True)]
    assert bootstrap_interval(d, seed=7) == bootstrap_interval(d, seed=7)
    assert bootstrap_interval(d, seed=7) != bootstrap_interval(d, seed=8)


def test_pooled_interval_is_never_narrower_than_the_t_interval():
    # three pairs: the percentile bootstrap alone would call this 'better' ([+0.000, ...])
    a, b = [0.83, 0.80, 0.82], [0.80, 0.80, 0.79]
    t, pooled = paired_t(a, b), pooled_bootstrap(a, b)
    low, high = bootstrap_interval([x - y for x, y in zip(a, b, strict=True)])
    assert pooled.low == min(low, t.low) and pooled.high == max(high, t.high)
    assert pooled.low <= t.low and pooled.high >= t.high
    assert pooled.verdict == t.verdict == NO_DIFFERENCE


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        paired_t([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="non-finite"):
        paired_t([0.1, float("nan")], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        pooled_bootstrap([], [])


def test_compare_arms_pairs_only_shared_target_seeds():
    a = {"UCL": {0: 0.7, 1: 0.8, 2: 0.9}, "HK": {0: 0.5}}
    b = {"UCL": {0: 0.6, 1: 0.7}, "BIDMC": {0: 0.1}}
    per_target, pooled = compare_arms(a, b)
    assert list(per_target) == ["UCL"] and per_target["UCL"].n == 2
    assert pooled is not None and pooled.n == 2 and pooled.mean == pytest.approx(0.1)


def test_comparisons_against_wo_and_against_each_control():
    arms = (Arm("none"), Arm("lm"), Arm("lm", "untrained"))
    summaries = {}
    for seed in range(3):
        for arm, test in ((arms[0], 0.5), (arms[1], 0.6), (arms[2], 0.55)):
            summaries[(arm, "UCL", seed)] = {"dice": {"mean": test + 0.01 * seed}, "val_dice": test}
    comps = {(c.a, c.b, c.metric): c for c in comparisons(arms, summaries)}
    assert set(comps) == {
        (a, b, m)
        for m in ("val", "test")
        for a, b in (("lm", "w/o"), ("lm@untrained", "w/o"), ("lm", "lm@untrained"))
    }
    control = comps[("lm", "lm@untrained", "test")]
    assert control.pooled.mean == pytest.approx(0.05) and control.kind == "vs control"
    assert comps[("lm", "w/o", "test")].per_target["UCL"].verdict == BETTER


def test_versus_adds_a_comparison_between_two_arms():
    from crossdistill.compare.pipeline import parse_versus
    from crossdistill.errors import CrossDistillError

    arms = (Arm("none"), Arm("recommended"), Arm("kmm+lm"))
    assert parse_versus(["recommended:kmm+lm", "none:kmm+lm"], arms) == [
        ("recommended", "kmm+lm"),
        ("w/o", "kmm+lm"),
    ]
    for bad in ("recommended", "recommended:ours", "lm:lm"):
        with pytest.raises(CrossDistillError, match="--versus"):
            parse_versus([bad], arms)
    summaries = {
        (arm, "UCL", seed): {"dice": {"mean": base + 0.01 * seed}, "val_dice": base}
        for seed in range(3)
        for arm, base in zip(arms, (0.5, 0.7, 0.6), strict=True)
    }
    comps = comparisons(arms, summaries, versus=[("recommended", "kmm+lm")])
    extra = [c for c in comps if (c.a, c.b, c.metric) == ("recommended", "kmm+lm", "test")]
    assert extra and extra[0].pooled.mean == pytest.approx(0.1)
    assert extra[0].kind == "vs another arm"


def test_fewer_than_five_pairs_is_a_provisional_verdict():
    four = paired_t([0.7, 0.5, 0.9, 0.6], [0.6, 0.4, 0.8, 0.5])
    five = paired_t([0.7, 0.5, 0.9, 0.6, 0.8], [0.6, 0.4, 0.8, 0.5, 0.7])
    assert four.verdict == five.verdict == BETTER
    assert four.provisional and not five.provisional
    assert four.as_dict()["provisional"] is True


def test_one_target_pools_to_its_own_interval():
    per_target, pooled = compare_arms(
        {"UCL": {0: 0.7, 1: 0.8, 2: 0.9}}, {"UCL": {0: 0.6, 1: 0.6, 2: 0.9}}
    )
    assert pooled == per_target["UCL"] and pooled.method == "t"
