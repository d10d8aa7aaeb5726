"""Checks shared by the domain-generalisation objectives."""

from __future__ import annotations

import torch
from torch import nn

from crossdistill.distill.taps import tap_channels


def check_non_negative(**values: float) -> None:
    """``ValueError`` naming the first option that is negative (or NaN)."""
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def feature_width(student: nn.Module, feature: str) -> int:
    """Channels of ``student`` at tap ``feature``; ``ValueError`` if it declares none."""
    channels = tap_channels(student, feature)
    if channels is None:
        raise ValueError(f"feature {feature!r}: the student declares no such feature")
    return channels


class StepCounter(nn.Module):
    """Training steps taken, as a buffer (so checkpoints keep it and a resumed run agrees)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def ramp(self, steps: int) -> float:
        """``min(1, (t + 1) / steps)`` at the current step t (1 when ``steps`` is 0)."""
        return 1.0 if steps <= 0 else min(1.0, (int(self.count) + 1) / steps)

    def tick(self) -> None:
        self.count.add_(1)
