"""Kernel Matrix Module (KMM): match the batch Gram matrices of student and teacher features.

Paper §2.2, eqs. 5–6. The student feature goes through a 1×1 convolution to the teacher's
channel count (the adapter, trained with the student; no bias) and, if the spatial sizes
differ, is resized bilinearly (``align_corners=False``) to the teacher's. With ``Z_S``, ``Z_T``
the n×(C·H·W) matrices of the flattened features of the n samples of the batch::

    K_S = Z_S · Z_Sᵀ,   K_T = Z_T · Z_Tᵀ            (n × n; the teacher is detached)       (5)

``normalize=True`` (default; as in similarity-preserving KD, Tung & Mori 2019) first divides
each row of K_S and of K_T by its L2 norm, then::

    L_KM = (1/n) · Σ_ab (K_S − K_T)²_ab + (1/n²) · Σ_ab |K_S − K_T|_ab

``normalize=False`` is the paper's eq. 6 literally, on the raw Gram matrices::

    L_KM = (1/n) · Σ_ab (K_S − K_T)²_ab + ‖K_S − K_T‖_L1,    ‖A‖_L1 = Σ_ab |A_ab|

(eq. 6 writes ``(1/n)·Σ_{i=0}^{n} (K_S − K_T)²``, read as the sum over the n rows of the
squared entries, i.e. over all n² entries, and the L1 term with no factor in front; the
entry-wise L1 norm is used, not the induced matrix 1-norm). The raw Gram entries grow with
C·H·W and the feature scale (≈1e11 at initialisation for real networks), which is why the
default normalises.

The Gram matrices are computed in float32 (float64 for float64 input) with autocast
disabled: a fp16 Gram matrix would overflow.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.losses.contract import DistillLoss, float32_island, reject_gate


class KernelMatrixLoss(DistillLoss):
    """``L_KM`` between an adapted student feature and a teacher feature (module doc).

    Args:
        student_channels: channels of the student feature.
        teacher_channels: channels of the teacher feature (the adapter's output).
        normalize: L2-normalise the rows of both Gram matrices (default) or use eq. 6 as is.
    """

    def __init__(self, student_channels: int, teacher_channels: int, normalize: bool = True):
        super().__init__()
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be true or false, got {normalize!r}")
        self.adapter = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False)
        self.normalize = normalize

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """Scalar ``L_KM`` for ``(n, C_S, h, w)`` student and ``(n, C_T, H, W)`` teacher
        features; ``target`` is ignored."""
        reject_gate(valid, "kmm")
        student_feature, teacher_feature = student, teacher
        if student_feature.shape[0] != teacher_feature.shape[0]:
            raise ValueError(
                f"batch sizes differ: student {tuple(student_feature.shape)}, "
                f"teacher {tuple(teacher_feature.shape)}"
            )
        s = self.adapter(student_feature)
        if s.shape[-2:] != teacher_feature.shape[-2:]:
            s = F.interpolate(s, size=teacher_feature.shape[-2:], mode="bilinear")
        with float32_island(s) as dtype:
            k_s = gram_matrix(s.to(dtype))
            k_t = gram_matrix(teacher_feature.detach().to(dtype))
            if self.normalize:
                k_s, k_t = F.normalize(k_s, dim=1), F.normalize(k_t, dim=1)
            diff = k_s - k_t
            n = diff.shape[0]
            l1 = diff.abs().sum()
            return diff.square().sum() / n + (l1 / n**2 if self.normalize else l1)

    def extra_repr(self) -> str:
        return f"normalize={self.normalize}"


def gram_matrix(feature: Tensor) -> Tensor:
    """``Z·Zᵀ`` of the per-sample flattened ``(n, ...)`` feature: an ``(n, n)`` matrix."""
    z = feature.reshape(feature.shape[0], -1)
    return z @ z.T
