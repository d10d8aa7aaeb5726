"""MSKD feature-filtering distillation (FFD): region-filtered attention maps.

After MSKD (Zhao et al. 2023): the ground-truth regions act as filters on the feature maps, so
that only region-level information passes from teacher to student. The paper does not give
every detail; the choices made here:

* the per-pixel energy of a ``C``-channel feature ``F`` is AT's attention with ``p = 2``,
  ``e(x) = (1/C)·Σ_c F_c(x)²`` (so channel counts may differ);
* the filters are the soft region masks ``m_k`` of ``regions.region_masks`` at the feature
  size (the fraction of each feature cell covered by class ``k``);
* each filtered map is flattened over the pixels and L2-normalised (``ε = 1e-12`` as in
  ``F.normalize``; an all-zero filtered map gives a zero vector)::

      a_nk = vec(e_n ⊙ m_nk) / ‖vec(e_n ⊙ m_nk)‖₂

* the loss is the squared L2 distance, averaged over the present regions ``(n, k)``
  (``Σ_x m_nk(x) > 0``; absent classes are left out)::

      L_FF = mean_{(n, k) present} ‖ a_nk(F_S) − a_nk(F_T) ‖₂²

The student's map is resized bilinearly (``align_corners=False``) to the teacher's size, so
both use the same masks; the teacher is detached. Every pixel carries a label, so each image
has at least one present region. Computed in float32 (float64 for float64 input) with
autocast disabled. No parameters.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossdistill.losses.attention import align_to_teacher
from crossdistill.losses.contract import DistillLoss, float32_island, reject_gate
from crossdistill.losses.regions import check_features_and_masks, region_masks


def filtered_attention(features: Tensor, masks: Tensor) -> Tensor:
    """L2-normalised region-filtered attention maps ``a_nk`` (module doc).

    Args:
        features: ``(N, C, h, w)`` feature map.
        masks: ``(N, K, h, w)`` soft region masks at the same size.

    Returns:
        ``(N, K, h·w)`` maps, each of unit L2 norm (zero where the filtered map is zero).

    Raises:
        ValueError: batch or spatial sizes of features and masks differ.
    """
    check_features_and_masks(features, masks)
    energy = features.square().mean(dim=1, keepdim=True)  # (N, 1, h, w)
    filtered = (energy * masks.to(features.dtype)).flatten(2)  # (N, K, h·w)
    return F.normalize(filtered, p=2.0, dim=2, eps=1e-12)


def feature_filtering_loss(student: Tensor, teacher: Tensor, target: Tensor | None) -> Tensor:
    """``L_FF``: mean over present regions of the filtered-attention distance (module doc).

    Args:
        student: ``(N, Cs, Hs, Ws)`` student tensor (resized to the teacher's size if needed).
        teacher: ``(N, Ct, Ht, Wt)`` teacher tensor (detached here).
        target: ``(N, H0, W0)`` or ``(N, 1, H0, W0)`` integer ground-truth labels.

    Returns:
        A scalar tensor (a zero connected to the student's graph if no region is present).

    Raises:
        ValueError: missing or malformed ``target``, non-4-D tensors, different batch sizes.
    """
    if target is None:
        raise ValueError("target (ground-truth labels) is required by this loss, got None")
    s, t = align_to_teacher(student, teacher)
    with float32_island(s):
        masks = region_masks(target, t.shape[-2:], dtype=t.dtype)
        if masks.shape[0] != s.shape[0]:
            raise ValueError(f"target has batch size {masks.shape[0]}, the features {s.shape[0]}")
        present = masks.sum(dim=(2, 3)) > 0  # (N, K)
        if not bool(present.any()):
            return s.sum() * 0
        dist = (filtered_attention(s, masks) - filtered_attention(t, masks)).square().sum(2)
        return dist[present].mean()


class FeatureFilteringLoss(DistillLoss):
    """MSKD feature-filtering distillation ``L_FF`` as a module (no parameters; module doc)."""

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """Scalar ``L_FF``; ``target`` (ground-truth labels) is required."""
        reject_gate(valid, "ffd")
        return feature_filtering_loss(student, teacher, target)
