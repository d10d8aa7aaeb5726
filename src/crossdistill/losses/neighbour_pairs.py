"""What both pairwise-affinity losses (AAM's hinge, its relational reading) share: the
probability clip, the half-plane offsets and the slices of a pixel and its neighbour."""

from __future__ import annotations

import math

LOG_CLIP = math.log(1e-4)  # probabilities clipped to [1e-4, 1]
HALF_PLANE = ((0, 1), (1, -1), (1, 0), (1, 1))  # with their negatives: the 8 neighbours


def region(offset: int, length: int) -> tuple[slice, slice]:
    """Slices of pixels ``i`` and neighbours ``i + offset`` both inside ``[0, length)``."""
    if offset >= 0:
        return slice(0, length - offset), slice(offset, length)
    return slice(-offset, length), slice(0, length + offset)
