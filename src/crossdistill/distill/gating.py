"""Pixel gating of KD terms by the teacher's reliability ("beyond the paper", docs/design.md §2.7).

Both gates give an ``(N, H, W)`` bool mask at the logits' resolution; a gated term only sees
the pixels where the mask is True (AAM: pairs whose two pixels are both valid; LM: the mean
runs over valid pixels).

* confidence gating, ``min_confidence = τ``: ``max_c softmax(z_T)_c ≥ τ``;
* ground-truth gating, ``gt_gate = True``: ``argmax_c z_T = y`` (the student's own label);
* per-image teacher-Dice gating, ``min_teacher_dice = d``: every pixel of the images where
  the teacher's 2-D foreground Dice against the ground truth, ``2|T∩Y| / (|T| + |Y|)``, is
  ``≥ d`` (an image with neither teacher nor ground-truth foreground scores 1): a 0/1 weight
  per image by how well the teacher does there.

They may be combined (logical and). Off (None / False) by default, as in the paper.
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
    min_teacher_dice: float | None = None,
) -> Tensor | None:
    """The ``(N, H, W)`` mask of pixels where the teacher may teach, or None if ungated.

    Args:
        teacher_logits: ``(N, K, H, W)`` teacher scores.
        target: ``(N, H, W)`` or ``(N, 1, H, W)`` ground-truth labels (needed by ``gt_gate``).
        min_confidence: τ, keep pixels whose teacher max-probability is ≥ τ.
        gt_gate: keep pixels where the teacher's argmax equals the ground truth.
        min_teacher_dice: keep the images where the teacher's foreground Dice is ≥ this.
    """
    mask: Tensor | None = None
    if (gt_gate or min_teacher_dice is not None) and target is None:
        raise ValueError("gt_gate and min_teacher_dice need the ground-truth masks")
    if min_confidence is not None:
        confidence = torch.softmax(teacher_logits.float(), dim=1).amax(dim=1)
        mask = confidence >= min_confidence
    if gt_gate:
        labels = target.reshape(teacher_logits.shape[:1] + teacher_logits.shape[2:])
        agree = teacher_logits.argmax(dim=1) == labels.long()
        mask = agree if mask is None else mask & agree
    if min_teacher_dice is not None:
        good = teacher_image_dice(teacher_logits, target) >= min_teacher_dice
        keep = good[:, None, None].expand(teacher_logits.shape[:1] + teacher_logits.shape[2:])
        mask = keep if mask is None else mask & keep
    return mask


@torch.no_grad()
def teacher_image_dice(teacher_logits: Tensor, target: Tensor) -> Tensor:
    """``(N,)`` foreground Dice of the teacher's argmax against ``target``, per image
    (foreground = any class but 0; 1 where both are empty)."""
    labels = target.reshape(teacher_logits.shape[:1] + teacher_logits.shape[2:])
    pred, truth = teacher_logits.argmax(dim=1) > 0, labels > 0
    inter = (pred & truth).flatten(1).sum(1).float()
    total = (pred.flatten(1).sum(1) + truth.flatten(1).sum(1)).float()
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
