"""Checks shared by the domain-generalisation objectives."""

from __future__ import annotations

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
