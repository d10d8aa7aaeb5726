"""Shape losses of shape-aware meta-learning (SAML, Liu et al., MICCAI 2020).

**Compactness** (isoperimetric quotient of the soft foreground ``p``, summed over images)::

    P = Σ_{i,j ≥ 1} sqrt((p[i,j] − p[i−1,j])² + (p[i,j] − p[i,j−1])² + ε)     (ε = 1e-8)
    A = Σ p
    L_compact = Σ_images (w·P)² / (4π·A)          w = 0.01, the original's length weight

For a binary disc ``P²/(4πA) ≈ 1``; ragged or scattered shapes score more. The length weight
w is part of the original's definition and makes the term 10⁴× smaller than the bare
quotient: used at weight 1 without it (this project's first reading of the paper), the
quotient's pull collapsed every demo student to an empty map (test Dice 0.01–0.03, three
seeds), while SAML without the term reached 0.62 (BENCHMARKS.md).

**Smoothness** (contour vs background-ring embeddings across two groups of sites)::

    C = dilate(M) − erode(M)            the contour band of the ground-truth foreground M
    B = dilate(M, 2r+1) − dilate(M)     a background ring just outside it
    e_C, e_B = normalise(head(masked mean of the features over C, resp. B))
    L_smooth = max(0, ‖e_C^a − e_C^b‖² − ‖e_C^a − e_B^b‖² + m)
             + max(0, ‖e_C^b − e_C^a‖² − ‖e_C^b − e_B^a‖² + m)

with groups a (meta-train sites) and b (meta-test sites): the contour of one group is pulled
towards the other group's contour and pushed from its background. Embeddings are
L2-normalised, so squared distances lie in [0, 4]; the margin is m = 1 (the original margin of
10 applies to unnormalised embeddings, which a head could scale at will).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-8
LENGTH_WEIGHT = 0.01  # the original's weight on the contour length


def compactness_loss(foreground: Tensor, length_weight: float = LENGTH_WEIGHT) -> Tensor:
    """``Σ_n (w·P_n)² / (4π·A_n)`` of ``foreground (N, H, W)`` probabilities (module doc)."""
    if foreground.dim() != 3:
        raise ValueError(f"foreground must be (N, H, W), got {tuple(foreground.shape)}")
    p = foreground
    di = p[:, 1:, 1:] - p[:, :-1, 1:]
    dj = p[:, 1:, 1:] - p[:, 1:, :-1]
    perimeter = length_weight * torch.sqrt(di**2 + dj**2 + EPS).sum((1, 2))
    area = p.sum((1, 2)).clamp_min(EPS)
    return (perimeter**2 / (4 * math.pi * area)).sum()


def contour_and_ring(mask: Tensor, radius: int = 1) -> tuple[Tensor, Tensor]:
    """``(contour, ring)`` float ``(N, H, W)`` bands of the binary ``mask (N, H, W)``.

    The contour is dilate − erode with a ``(2·radius+1)²`` square; the ring is the band of
    the same width just outside the dilated mask.
    """
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    m = mask.float()[:, None]
    k = 2 * radius + 1
    dilated = F.max_pool2d(m, k, 1, radius)
    eroded = -F.max_pool2d(-m, k, 1, radius)
    outer = F.max_pool2d(dilated, k, 1, radius)
    return (dilated - eroded)[:, 0], (outer - dilated)[:, 0]


def _band_mean(features: Tensor, band: Tensor) -> Tensor | None:
    """Mean feature vector ``(C,)`` over ``band (N, H, W)`` weights; None if the band is empty."""
    weight = band.sum()
    if float(weight) <= 0:
        return None
    return (features * band[:, None]).sum((0, 2, 3)) / weight


class SmoothnessLoss(nn.Module):
    """Triplet loss on contour / background-ring embeddings of two site groups (module doc).

    Args:
        channels: channels of the features it reads.
        embed_dim: size of the embedding.
        margin: triplet margin on squared distances of normalised embeddings.
        radius: half-width of the contour band and of the ring, in feature pixels.
    """

    def __init__(
        self, channels: int, embed_dim: int = 32, margin: float = 1.0, radius: int = 1
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.head = nn.Sequential(
            nn.Linear(channels, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.margin = float(margin)
        self.radius = int(radius)

    def embed(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor] | None:
        """Normalised ``(e_C, e_B)`` of one group, None without a contour or ring there."""
        mask = _at_size(mask, features.shape[-2:])
        contour, ring = contour_and_ring(mask, self.radius)
        means = _band_mean(features, contour), _band_mean(features, ring)
        if means[0] is None or means[1] is None:
            return None
        return tuple(F.normalize(self.head(v), dim=0) for v in means)  # type: ignore[return-value]

    def forward(self, feats_a: Tensor, mask_a: Tensor, feats_b: Tensor, mask_b: Tensor) -> Tensor:
        """The symmetric triplet loss between groups a and b (0 if either has no contour)."""
        a, b = self.embed(feats_a, mask_a), self.embed(feats_b, mask_b)
        zero = (feats_a.sum() + feats_b.sum()) * 0.0
        if a is None or b is None:
            return zero
        loss = zero
        for (c1, _), (c2, b2) in ((a, b), (b, a)):
            pos, neg = (c1 - c2).pow(2).sum(), (c1 - b2).pow(2).sum()
            loss = loss + torch.relu(pos - neg + self.margin)
        return loss


def _at_size(mask: Tensor, size: torch.Size) -> Tensor:
    """Binary foreground ``(N, h, w)`` of label map ``mask`` at the feature size (nearest)."""
    fg = (mask > 0).float()
    if fg.shape[-2:] != size:
        fg = F.interpolate(fg[:, None], size=tuple(size), mode="nearest")[:, 0]
    return fg
