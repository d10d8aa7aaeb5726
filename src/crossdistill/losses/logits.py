"""Logits Module (LM): pixel-averaged KL divergence between class distributions.

Paper §2.3, eq. 7. With ``p_s = softmax(z_s / T)`` and ``p_t = softmax(z_t / T)`` per pixel
(teacher detached) and ``P`` the N·H·W pixels of the batch::

    "student||teacher" (eq. 7, default):  L_LM = T²·(1/|P|)·Σ_x Σ_c p_s,c·(log p_s,c − log p_t,c)
    "teacher||student" (Hinton KD):       L_LM = T²·(1/|P|)·Σ_x Σ_c p_t,c·(log p_t,c − log p_s,c)

(T² = 1 for the default T = 1.) With a ``valid`` pixel mask (confidence or ground-truth
gating) the mean runs over the valid pixels only, and is 0 when there are none. Computed in
float32 (float64 for float64 input) with autocast disabled, from log-softmax (no log of 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from crossdistill.losses.contract import DistillLoss, float32_island

DIRECTIONS = ("student||teacher", "teacher||student")


def logits_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    direction: str = "student||teacher",
    *,
    valid: Tensor | None = None,
) -> Tensor:
    """Pixel-averaged ``KL`` between student and teacher class distributions (module doc).

    Args:
        student_logits: ``(N, K, H, W)`` (or ``(N, K)``) student scores.
        teacher_logits: same shape, teacher scores (detached here).
        temperature: softmax temperature ``T > 0``; the result is multiplied by ``T²``.
        direction: ``"student||teacher"`` = KL(p_s‖p_t) (eq. 7) or ``"teacher||student"``.
        valid: optional ``(N, H, W)`` bool mask of the pixels that count.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: unknown ``direction``, non-positive temperature or mismatched shapes.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student {tuple(student_logits.shape)} and teacher "
            f"{tuple(teacher_logits.shape)} logits differ in shape"
        )
    with float32_island(student_logits) as dtype:
        log_s = torch.log_softmax(student_logits.to(dtype) / temperature, dim=1)
        log_t = torch.log_softmax(teacher_logits.detach().to(dtype) / temperature, dim=1)
        if direction == "student||teacher":
            kl = (log_s.exp() * (log_s - log_t)).sum(1)
        else:
            kl = (log_t.exp() * (log_t - log_s)).sum(1)
        scale = float(temperature) ** 2
        if valid is None:
            return scale * kl.mean()
        mask = valid.reshape(kl.shape).to(dtype)
        return scale * (kl * mask).sum() / mask.sum().clamp_min(1)


class LogitsKL(DistillLoss):
    """``logits_kl`` as a module (no parameters), for the distiller's term registry."""

    def __init__(self, temperature: float = 1.0, direction: str = "student||teacher"):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not temperature > 0
        ):
            raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.direction = direction

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """``logits_kl`` of the two logits, over the ``valid`` pixels; ``target`` is ignored."""
        return logits_kl(student, teacher, self.temperature, self.direction, valid=valid)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, direction={self.direction!r}"
