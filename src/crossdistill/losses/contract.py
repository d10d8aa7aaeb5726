"""What every distillation loss promises: one call signature and one float32 island.

Every loss the distiller uses (the registry's terms) is a :class:`DistillLoss`::

    loss(student, teacher, *, target=None, valid=None) -> scalar Tensor

* ``student``, ``teacher``: the two networks' tensors at the term's tap (logits or a feature
  map). The distiller detaches the teacher's once, before every term; the functional forms
  (``logits_kl``, ``affinity_loss``, ...), which can be called on their own, detach it too;
* ``target``: ``(N, H, W)`` ground-truth labels. The distiller always passes them; the region
  losses (EMKD, MSKD) need them, the others ignore them;
* ``valid``: ``(N, H, W)`` bool pixel gate, for the gateable terms only (the registry's
  ``gateable``); a loss that cannot gate raises ``ValueError`` when given one.

Losses compute in a float32 island (:func:`float32_island`): autocast off, float32 (float64
for float64 input, so that ``gradcheck`` runs in double precision), whatever the training's
precision, because their sums, logs and Gram matrices overflow or lose too much in fp16.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class DistillLoss(nn.Module):
    """Base of the distillation losses: the call signature of the module doc."""

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        raise NotImplementedError


def reject_gate(valid: Tensor | None, loss: str) -> None:
    """``ValueError`` when a loss that cannot gate pixels is given a gate."""
    if valid is not None:
        raise ValueError(f"{loss} takes no pixel gate (valid); it is not a gateable term")


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 for float64 input, else float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


@contextmanager
def float32_island(x: Tensor) -> Iterator[torch.dtype]:
    """Autocast off on ``x``'s device; yields the dtype to compute in (:func:`compute_dtype`)."""
    with torch.autocast(x.device.type, enabled=False):
        yield compute_dtype(x)
