"""Pixel gating of KD terms by the teacher's reliability ("beyond the paper", DESIGN §5).

Both gates give an ``(N, H, W)`` bool mask at the logits' resolution; a gated term only sees
the pixels where the mask is True (AAM: pairs whose two pixels are both valid; LM: the mean
runs over valid pixels).

* confidence gating, ``min_confidence = τ``: ``max_c softmax(z_T)_c ≥ τ``;
* ground-truth gating, ``gt_gate = True``: ``argmax_c z_T = y`` (the student's own label).

Both may be combined (logical and). Off (None) by default, as in the paper.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def pixel_gate(
    teacher_logits: Tensor,
    target: Tensor | None = None,
    *,
    min_confidence: float | None = None,
    gt_gate: bool = False,
) -> Tensor | None:
    """The ``(N, H, W)`` mask of pixels where the teacher may teach, or None if ungated.

    Args:
        teacher_logits: ``(N, K, H, W)`` teacher scores.
        target: ``(N, H, W)`` or ``(N, 1, H, W)`` ground-truth labels (needed by ``gt_gate``).
        min_confidence: τ, keep pixels whose teacher max-probability is ≥ τ.
        gt_gate: keep pixels where the teacher's argmax equals the ground truth.
    """
    mask: Tensor | None = None
    if min_confidence is not None:
        confidence = torch.softmax(teacher_logits.float(), dim=1).amax(dim=1)
        mask = confidence >= min_confidence
    if gt_gate:
        if target is None:
            raise ValueError("gt_gate needs the ground-truth masks")
        labels = target.reshape(teacher_logits.shape[:1] + teacher_logits.shape[2:])
        agree = teacher_logits.argmax(dim=1) == labels.long()
        mask = agree if mask is None else mask & agree
    return mask
