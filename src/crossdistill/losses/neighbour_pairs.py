"""What the pairwise-affinity losses (AAM's hinge, eager and fused, and its relational reading)
share: the probability clip, the half-plane offsets and the slices of a pixel and its
neighbour."""

from __future__ import annotations

import math

LOG_CLIP = math.log(1e-4)  # probabilities clipped to [1e-4, 1]
HALF_PLANE = ((0, 1), (1, -1), (1, 0), (1, 1))  # with their negatives: the 8 neighbours


def region(offset: int, length: int) -> tuple[slice, slice]:
    """Slices of pixels ``i`` and neighbours ``i + offset`` both inside ``[0, length)``."""
    if offset >= 0:
        return slice(0, length - offset), slice(offset, length)
    return slice(-offset, length), slice(0, length + offset)


Slices = tuple[slice, slice]


def pair_slices(size: int, H: int, W: int) -> list[tuple[Slices, Slices]]:
    """``((rows_i, cols_i), (rows_j, cols_j))`` for each half-plane offset ``(dy, dx)·size``
    that fits an ``H × W`` grid: pixel ``i`` at ``[rows_i, cols_i]`` and its neighbour ``j``
    at ``[rows_j, cols_j]`` (two views of one tensor); offsets that leave no pair are left out."""
    pairs = []
    for dy, dx in HALF_PLANE:
        rows_i, rows_j = region(dy * size, H)
        cols_i, cols_j = region(dx * size, W)
        if rows_i.start < rows_i.stop and cols_i.start < cols_i.stop:
            pairs.append(((rows_i, cols_i), (rows_j, cols_j)))
    return pairs
