"""Case-level train / val / test splits, per site and seeded.

Every method of every run reads the same ``splits.json``, so slices never leak across
splits and results stay comparable.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """``(train, val, test)`` counts for ``n`` cases.

    test = max(1, round(n·test_fraction)); val = round(n·val_fraction), at least 1 when
    ``n ≥ 3`` and ``val_fraction > 0``; train gets the rest and at least one case.
    A single case goes to test (there is nothing to train on at that site).
    """
    if n <= 0:
        return 0, 0, 0
    if n == 1:
        return 0, 0, 1
    test = min(max(1, round(n * test_fraction)), n - 1)
    val = round(n * val_fraction)
    if val_fraction > 0 and n >= 3:
        val = max(val, 1)
    val = min(val, n - test - 1)
    return n - test - val, val, test


def make_splits(
    cases: Mapping[str, Sequence[str]],
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> dict[str, dict[str, list[str]]]:
    """Shuffle each site's case ids with a generator seeded by (seed, site) and cut them.

    The result for a site depends only on its own case ids, the seed and the fractions.
    Returns ``{site: {"train": [...], "val": [...], "test": [...]}}`` (ids sorted).
    """
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("fractions must satisfy 0 ≤ val, 0 < test and val + test < 1")
    out: dict[str, dict[str, list[str]]] = {}
    for site, ids in cases.items():
        ordered = sorted(ids)
        rng = np.random.default_rng([seed, zlib.crc32(site.encode())])
        order = [ordered[i] for i in rng.permutation(len(ordered))]
        n_train, n_val, _ = split_counts(len(order), val_fraction, test_fraction)
        parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
        out[site] = {name: sorted(part) for name, part in zip(SPLITS, parts, strict=True)}
    return out
