"""Post-processing: the largest 3-D connected component of a predicted mask."""

from __future__ import annotations

import numpy as np

from crossdistill.eval.postprocess import largest_component


def test_largest_component_keeps_the_big_blob():
    mask = np.zeros((10, 10, 10), np.uint8)
    mask[2:6, 2:6, 2:6] = 1
    mask[8, 8, 8] = 1  # an isolated voxel
    kept = largest_component(mask)
    assert kept.dtype == np.uint8 and kept.shape == mask.shape
    assert kept.sum() == 64 and kept[8, 8, 8] == 0
    assert largest_component(np.zeros((3, 3, 3), np.uint8)).sum() == 0


def test_diagonal_neighbours_are_connected_and_any_nonzero_is_foreground():
    """26-connectivity: voxels touching by a corner are one component."""
    mask = np.zeros((4, 4, 4), np.int64)
    mask[0, 0, 0] = mask[1, 1, 1] = 2
    mask[3, 3, 0] = 5
    expected = np.zeros((4, 4, 4), np.uint8)
    expected[0, 0, 0] = expected[1, 1, 1] = 1
    assert np.array_equal(largest_component(mask), expected)
