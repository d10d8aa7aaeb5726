"""Training-time augmentation of one slice, reproducible from ``(seed, epoch, index)``.

Geometric: rotation ±15°, isotropic scale 0.85–1.15, translation ±5 % and a left–right
flip with probability 0.5, applied to image (bilinear) and mask (nearest) alike.
Intensity: ``x·a + b`` with a ∈ [0.9, 1.1], b ∈ [−0.1, 0.1] (the images are z-scored).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def augment_slice(
    image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment ``image (C, H, W)`` float and ``mask (H, W)`` integer with draws from ``rng``."""
    angle = math.radians(rng.uniform(-15.0, 15.0))
    scale = rng.uniform(0.85, 1.15)
    tx, ty = rng.uniform(-0.05, 0.05, size=2)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-0.1, 0.1)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[flip * cos, -sin, tx], [flip * sin, cos, ty]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, [1, image.shape[0], *image.shape[-2:]], align_corners=False)
    warped = F.grid_sample(
        image[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    labels = F.grid_sample(
        mask[None, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return warped[0] * gain + offset, labels[0, 0].to(mask.dtype)
