"""What the domain-generalisation objectives share: option checks, a step counter, a base."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from crossdistill.models.output import SegOutput
from crossdistill.models.taps import tap_channels


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


class StudentWithHeads(nn.Module):
    """Base of an objective that trains ``student`` together with auxiliary ``heads``.

    Subclasses set ``self.student`` and ``self.heads`` (an ``nn.ModuleDict``); the heads are
    trained and checkpointed beside the student (``auxiliary``) and dropped at deployment.
    """

    student: nn.Module
    heads: nn.ModuleDict
    #: these methods learn without a teacher (``TrainingObjective.teacher``)
    teacher: nn.Module | None = None

    @property
    def auxiliary(self) -> nn.Module:
        """The heads (checkpointed with the student, for ``--resume``)."""
        return self.heads

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.student.parameters()
        yield from self.heads.parameters()

    def teacher_taps(self) -> list[str]:
        """None: a domain-generalisation method reads no teacher."""
        return []

    def teacher_forward(self, images: Tensor, masks: Tensor) -> SegOutput:
        raise RuntimeError(f"{type(self).__name__} has no teacher")
