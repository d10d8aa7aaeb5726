"""Volume ↔ network-slice transforms, shared by ``prepare`` (training) and ``predict``.

A canonical RAS+ volume ``(X, Y, Z)`` becomes ``(Z, size, size)`` axial slices in display
orientation (row 0 anterior, column 0 the patient's right, as radiologists view them),
resized in-plane to ``size × size``. Intensities are clipped to the volume's
[0.5, 99.5] percentiles and z-scored per volume.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CLIP_PERCENTILES = (0.5, 99.5)


def normalize_intensity(volume: np.ndarray) -> np.ndarray:
    """``(clip(x, p0.5, p99.5) − μ) / σ`` with μ, σ of the clipped volume (σ ≥ 1e-6)."""
    x = np.asarray(volume, dtype=np.float32)
    lo, hi = np.percentile(x, CLIP_PERCENTILES)
    x = np.clip(x, lo, hi)
    std = float(x.std())
    return ((x - float(x.mean())) / max(std, 1e-6)).astype(np.float32)


def to_display_slices(volume: np.ndarray) -> np.ndarray:
    """``(X, Y, Z)`` RAS+ → ``(Z, Y, X)`` with rows anterior→posterior, columns right→left."""
    return np.ascontiguousarray(np.flip(volume, (0, 1)).transpose(2, 1, 0))


def from_display_slices(slices: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_display_slices`: ``(Z, Y, X)`` → ``(X, Y, Z)``."""
    return np.ascontiguousarray(np.flip(slices.transpose(2, 1, 0), (0, 1)))


def resize_slices(slices: np.ndarray, shape: tuple[int, int], mode: str = "image") -> np.ndarray:
    """Resize ``(Z, H, W)`` slices in-plane to ``shape``.

    ``mode="image"``: bilinear with antialiasing, float32. ``mode="mask"``: a binary mask
    resized the same way and thresholded at 0.5 (smoother than nearest), uint8.
    ``mode="prob"``: like image, for probability maps (no antialias when upsampling).
    """
    x = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))[:, None]
    if tuple(x.shape[-2:]) != tuple(shape):
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=True)
    out = x[:, 0].numpy()
    if mode == "mask":
        return (out >= 0.5).astype(np.uint8)
    return out.astype(np.float32)


def volume_to_network(image: np.ndarray, size: int) -> np.ndarray:
    """Canonical image volume → normalised ``(Z, size, size)`` float32 slices."""
    return resize_slices(to_display_slices(normalize_intensity(image)), (size, size))


def mask_to_network(mask: np.ndarray, size: int) -> np.ndarray:
    """Canonical binary mask ``(X, Y, Z)`` → ``(Z, size, size)`` uint8 slices."""
    return resize_slices(to_display_slices(mask), (size, size), mode="mask")


def network_to_volume(slices: np.ndarray, shape_xyz: tuple[int, int, int]) -> np.ndarray:
    """``(Z, size, size)`` float maps (e.g. probabilities) → ``(X, Y, Z)`` on the original grid."""
    x, y, _ = shape_xyz
    return from_display_slices(resize_slices(slices, (y, x), mode="prob"))


def stack_neighbours(volume: np.ndarray, index: int, channels: int) -> np.ndarray:
    """Slices ``index − c//2 … index + c//2`` of ``(Z, H, W)`` as ``(c, H, W)`` (2.5D input).

    Indices outside the volume are clamped to the first or last slice (edge replication).
    """
    if channels % 2 != 1:
        raise ValueError(f"channels must be odd, got {channels}")
    half = channels // 2
    last = volume.shape[0] - 1
    picks = [min(max(index + k, 0), last) for k in range(-half, half + 1)]
    return np.stack([np.asarray(volume[p], dtype=np.float32) for p in picks])
