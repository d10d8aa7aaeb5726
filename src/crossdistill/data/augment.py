"""Training-time augmentation of one slice, reproducible from ``(seed, epoch, index)``.

Geometric: rotation ±15°, isotropic scale 0.85–1.15, translation ±5 % and a left–right
flip with probability 0.5, applied to image (bilinear) and mask (nearest) alike.
Intensity: ``x·a + b`` with a ∈ [0.9, 1.1], b ∈ [−0.1, 0.1] (the images are z-scored).

The geometric part is one affine map ``θ`` (2×3) in normalised coordinates
(``F.affine_grid``, ``align_corners=False``), so the same ``θ`` moves any map that covers
the same field of view, whatever its resolution: :func:`warp_maps` applies it to cached
teacher logits (full resolution) and features (1/2, 1/8) exactly as to the image.

Modes (``data.augment``): ``True`` = geometric + intensity, ``"geometric"`` = geometric only
(the draws are the same, so the geometry of item ``i`` does not depend on the mode),
``False`` = none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

AugmentMode = bool | Literal["geometric"]
GEOMETRIC = "geometric"


@dataclass(frozen=True)
class AugmentDraw:
    """One item's augmentation: ``theta (2, 3)`` float32, then ``x·gain + offset``."""

    theta: torch.Tensor
    gain: float
    offset: float


def check_mode(mode: AugmentMode) -> AugmentMode:
    """``mode`` if it is True, False or ``"geometric"``; else ``ValueError``."""
    if mode is True or mode is False or mode == GEOMETRIC:
        return mode
    raise ValueError(f"augment must be true, false or '{GEOMETRIC}', got {mode!r}")


def draw_augmentation(rng: np.random.Generator) -> AugmentDraw:
    """Draw one item's geometric map and intensity change from ``rng``."""
    angle = math.radians(rng.uniform(-15.0, 15.0))
    scale = rng.uniform(0.85, 1.15)
    tx, ty = rng.uniform(-0.05, 0.05, size=2)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-0.1, 0.1)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[flip * cos, -sin, tx], [flip * sin, cos, ty]], dtype=torch.float32)
    return AugmentDraw(theta, float(gain), float(offset))


def warp_maps(
    maps: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear", padding: str = "border"
) -> torch.Tensor:
    """``maps (N, C, H, W)`` float resampled through ``theta (N, 2, 3)`` (one map per item)."""
    grid = F.affine_grid(theta.to(maps.device, maps.dtype), list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid, mode=mode, padding_mode=padding, align_corners=False)


def augment_slice(
    image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, intensity: bool = True
) -> tuple[torch.Tensor, torch.Tensor, AugmentDraw]:
    """Augment ``image (C, H, W)`` float and ``mask (H, W)`` integer with draws from ``rng``.

    Returns the augmented image and mask and the draw (whose ``theta`` moves any other map
    of the slice the same way); ``intensity=False`` leaves the intensities alone.
    """
    draw = draw_augmentation(rng)
    theta = draw.theta[None]
    warped = warp_maps(image[None].float(), theta)
    labels = warp_maps(mask[None, None].float(), theta, mode="nearest", padding="zeros")
    if intensity:
        warped = warped * draw.gain + draw.offset
    return warped[0], labels[0, 0].to(mask.dtype), draw
