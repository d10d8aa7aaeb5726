"""The value every network in the zoo returns."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class SegOutput(NamedTuple):
    """Output of a segmentation network.

    Attributes:
        logits: ``(N, num_classes, H, W)``, at the input's resolution.
        features: intermediate maps for distillation; at least ``"low"`` at 1/2 and
            ``"high"`` at 1/8 of the input's resolution, ``(N, C, H/s, W/s)``.
    """

    logits: Tensor
    features: dict[str, Tensor]
