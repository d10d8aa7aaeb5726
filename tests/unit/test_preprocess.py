"""Volume ↔ slice transforms: display orientation, resizing back to the original grid."""

from __future__ import annotations

import numpy as np

from crossdistill.data.preprocess import (
    from_display_slices,
    mask_to_network,
    network_to_volume,
    normalize_intensity,
    to_display_slices,
)


def test_display_orientation_round_trip():
    volume = np.arange(4 * 3 * 2).reshape(4, 3, 2)  # (X, Y, Z) in RAS+
    slices = to_display_slices(volume)
    assert slices.shape == (2, 3, 4)
    # row 0 is the most anterior (largest y), column 0 the patient's right (largest x)
    assert slices[1, 0, 0] == volume[3, 2, 1]
    assert np.array_equal(from_display_slices(slices), volume)


def test_network_slices_map_back_to_the_original_grid():
    mask = np.zeros((40, 30, 5), np.uint8)
    mask[10:30, 8:20, 1:4] = 1
    slices = mask_to_network(mask, 64)
    assert slices.shape == (5, 64, 64)
    back = network_to_volume(slices.astype(np.float32), mask.shape) >= 0.5
    assert back.shape == mask.shape
    assert (back == mask.astype(bool)).mean() > 0.98


def test_normalize_intensity_is_z_scored_and_clipped():
    x = np.random.default_rng(0).normal(100, 10, (20, 20, 4))
    x[0, 0, 0] = 1e6  # an outlier is clipped to the 99.5th percentile
    z = normalize_intensity(x)
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4 and z.max() < 5
