"""Attention transfer (AT, Zagoruyko & Komodakis 2017) and EMKD's importance maps.

The spatial attention map of a feature ``F`` of shape ``(N, C, H, W)`` collapses the channels
(so student and teacher may have different channel counts) and is L2-normalised per sample::

    a(F)   = vec( (1/C)·Σ_c |F_c|^p ) / ‖ vec( (1/C)·Σ_c |F_c|^p ) ‖₂        (N, H·W)
    L_AT   = (1/N)·Σ_n ‖ a(F_S)_n − a(F_T)_n ‖₂²

(the squared L2 distance of the normalised maps, summed over the pixels, averaged over the
samples; the norm's denominator is clamped to ``1e-12`` as in ``F.normalize``, so an all-zero
map gives a zero vector). ``p = 2`` is AT's default; EMKD (Qin et al. 2021) uses the same map
with ``p = 4`` as its "importance map". The teacher is detached; if the spatial sizes differ
the student's map is resized bilinearly (``align_corners=False``) to the teacher's size before
the attention map is taken. Computed in float32 (float64 for float64 input) with autocast
disabled.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from crossdistill.losses.contract import DistillLoss, float32_island, reject_gate


def _check_power(power: object) -> float:
    if (
        isinstance(power, bool)
        or not isinstance(power, (int, float))
        or not math.isfinite(power)
        or not power > 0
    ):
        raise ValueError(f"power must be a finite number > 0, got {power!r}")
    return float(power)


def align_to_teacher(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """Student and teacher tensors of one tap, ready to compare.

    Both are cast to float32 (float64 if the student is float64); the teacher is detached and
    the student is resized bilinearly (``align_corners=False``) to the teacher's spatial size
    when the two differ. Channel counts may differ.

    Args:
        student: ``(N, Cs, Hs, Ws)`` student feature map or logits.
        teacher: ``(N, Ct, Ht, Wt)`` teacher feature map or logits.

    Returns:
        ``(student, teacher)`` with spatial size ``(Ht, Wt)``.

    Raises:
        ValueError: a tensor that is not 4-D, or different batch sizes.
    """
    if student.ndim != 4 or teacher.ndim != 4:
        raise ValueError(
            f"student and teacher must be (N, C, H, W), got {tuple(student.shape)} "
            f"and {tuple(teacher.shape)}"
        )
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"batch sizes differ: student {tuple(student.shape)}, teacher {tuple(teacher.shape)}"
        )
    with float32_island(student) as dtype:
        s = student.to(dtype)
        t = teacher.detach().to(dtype)
        if s.shape[-2:] != t.shape[-2:]:
            s = F.interpolate(s, size=t.shape[-2:], mode="bilinear", align_corners=False)
    return s, t


def attention_map(features: Tensor, power: float = 2.0) -> Tensor:
    """L2-normalised spatial attention map ``a(F)`` of ``(N, C, H, W)`` features (module doc).

    Args:
        features: ``(N, C, H, W)`` tensor (any floating dtype; the map is computed in it).
        power: exponent ``p > 0`` of ``|F|^p``.

    Returns:
        ``(N, H·W)`` tensor whose rows have unit L2 norm (or are zero for all-zero features).

    Raises:
        ValueError: a bad ``power`` or a tensor that is not 4-D.
    """
    power = _check_power(power)
    if features.ndim != 4:
        raise ValueError(f"features must be (N, C, H, W), got {tuple(features.shape)}")
    a = features.abs().pow(power).mean(dim=1).flatten(1)
    return F.normalize(a, p=2.0, dim=1, eps=1e-12)


def attention_loss(student: Tensor, teacher: Tensor, power: float = 2.0) -> Tensor:
    """``L_AT``: batch mean of the squared L2 distance of the attention maps (module doc).

    Args:
        student: ``(N, Cs, Hs, Ws)`` student tensor (resized to the teacher's size if needed).
        teacher: ``(N, Ct, Ht, Wt)`` teacher tensor (detached here).
        power: exponent ``p > 0`` (2 for AT, 4 for EMKD's importance maps).

    Returns:
        A scalar tensor (float32, or float64 for float64 input).

    Raises:
        ValueError: a bad ``power``, non-4-D tensors or different batch sizes.
    """
    power = _check_power(power)
    s, t = align_to_teacher(student, teacher)
    with float32_island(s):
        diff = attention_map(s, power) - attention_map(t, power)
        return diff.square().sum(dim=1).mean()


class AttentionMapLoss(DistillLoss):
    """``attention_loss`` as a module (no parameters), for the distiller's term registry.

    Args:
        power: exponent ``p > 0`` of the attention map (2: AT; 4: EMKD importance maps).
    """

    def __init__(self, power: float = 2.0):
        super().__init__()
        self.power = _check_power(power)

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """Scalar ``L_AT``; ``target`` is ignored."""
        reject_gate(valid, "at")
        return attention_loss(student, teacher, self.power)

    def extra_repr(self) -> str:
        return f"power={self.power}"
