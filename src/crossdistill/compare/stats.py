"""Paired-seed statistics of a comparison (docs/design.md §3).

Two arms are *paired* when they share the target site, the data, the split and the seed: the
only thing that differs is the method. For one target the differences ``d_s = A_s − B_s`` over
seeds ``s`` are summarised by

    mean  d̄ = (1/n) Σ_s d_s
    95 % CI  d̄ ± t_{0.975, n−1} · sd(d) / √n        (Student's t, sd with n − 1)

Pooled over targets, the differences of all (target, seed) pairs are resampled with
replacement (percentile bootstrap, ``scipy.stats.bootstrap``, 10 000 resamples, a fixed seed)
and the 2.5–97.5 % percentiles of the resampled means are taken. With few pairs that
interval is too narrow (three pairs have only ten distinct resampled means; its coverage
stays below 95 % up to a few dozen pairs), so the pooled CI reported is the union of it and
the Student-t interval of the same pairs: neither alone can call a difference.

A comparison is called **better** only where the CI's lower end is above 0, **worse** where
its upper end is below 0, and **no detectable difference** otherwise; with one seed there is
no interval and nothing is called either way. A verdict over fewer than
:data:`MIN_PAIRS_FOR_CLAIM` pairs is *provisional* (docs/design.md §3: a claim needs five
paired seeds), and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 10_000
MIN_PAIRS_FOR_CLAIM = 5
BETTER, WORSE, NO_DIFFERENCE, UNDECIDED = (
    "better",
    "worse",
    "no detectable difference",
    "one seed: no interval",
)


@dataclass(frozen=True)
class Difference:
    """A paired difference ``A − B`` and its 95 % CI.

    ``n`` pairs; ``wins``/``ties``/``losses`` count the pairs where ``A`` is above, equal to
    or below ``B``; ``low``/``high`` are ``nan`` when there is no interval (``n < 2``).
    """

    mean: float
    low: float
    high: float
    n: int
    wins: int
    ties: int
    losses: int
    method: str  # "t" or "bootstrap"

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, ``no detectable difference``, or no interval."""
        if math.isnan(self.low) or math.isnan(self.high):
            return UNDECIDED
        if self.low > 0:
            return BETTER
        if self.high < 0:
            return WORSE
        return NO_DIFFERENCE

    @property
    def provisional(self) -> bool:
        """Fewer pairs than a claim needs (:data:`MIN_PAIRS_FOR_CLAIM`)."""
        return self.n < MIN_PAIRS_FOR_CLAIM

    def as_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict, "provisional": self.provisional}


def _checked(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_.shape != b_.shape or a_.ndim != 1:
        raise ValueError(f"paired samples need equal 1-D shapes, got {a_.shape} and {b_.shape}")
    if a_.size == 0:
        raise ValueError("paired samples are empty")
    if not (np.isfinite(a_).all() and np.isfinite(b_).all()):
        raise ValueError("paired samples hold a non-finite value")
    return a_ - b_


def _counts(d: np.ndarray) -> tuple[int, int, int]:
    return int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum())


def paired_t(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Difference:
    """Mean of ``a − b`` with the Student-t CI of a paired design (module doc)."""
    d = _checked(a, b)
    n, mean = d.size, float(d.mean())
    if n < 2:
        low = high = math.nan
    else:
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
        low, high = mean - half, mean + half
    return Difference(mean, low, high, n, *_counts(d), method="t")


def bootstrap_interval(
    d: Sequence[float], seed: int = 0, level: float = LEVEL, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """The percentile-bootstrap CI of the mean of ``d`` (``scipy.stats.bootstrap``, the
    generator seeded with ``seed``)."""
    result = stats.bootstrap(
        (np.asarray(d, dtype=float),),
        np.mean,
        confidence_level=level,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def pooled_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    seed: int = 0,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
) -> Difference:
    """Mean of ``a − b`` over all pairs with the union of the percentile-bootstrap CI over
    the pairs and their Student-t CI (module doc); reproducible for a given ``seed``."""
    d = _checked(a, b)
    mean = float(d.mean())
    t = paired_t(a, b, level)
    if d.size < 2:
        low = high = math.nan
    elif float(d.min()) == float(d.max()):  # every resample is the same mean
        low = high = mean
    else:
        boot_low, boot_high = bootstrap_interval(d, seed, level, resamples)
        low, high = min(boot_low, t.low), max(boot_high, t.high)
    return Difference(mean, low, high, int(d.size), *_counts(d), method="bootstrap ∪ t")


def compare_arms(
    a: Mapping[str, Mapping[int, float]],
    b: Mapping[str, Mapping[int, float]],
    seed: int = 0,
) -> tuple[dict[str, Difference], Difference | None]:
    """Per target and pooled differences of two arms given as ``{target: {seed: value}}``.

    Only the (target, seed) pairs present in both arms count. Returns ``(per_target,
    pooled)``; ``pooled`` is None when no pair is shared, and is the one target's own
    (Student-t) difference when the pairs come from one target: pooling one target adds
    nothing.
    """
    per_target: dict[str, Difference] = {}
    all_a: list[float] = []
    all_b: list[float] = []
    for target in a:
        seeds = sorted(set(a[target]) & set(b.get(target, {})))
        if not seeds:
            continue
        xa, xb = [a[target][s] for s in seeds], [b[target][s] for s in seeds]
        per_target[target] = paired_t(xa, xb)
        all_a += xa
        all_b += xb
    if len(per_target) == 1:
        return per_target, next(iter(per_target.values()))
    pooled = pooled_bootstrap(all_a, all_b, seed=seed) if all_a else None
    return per_target, pooled
