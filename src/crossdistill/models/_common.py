"""Channel scaling shared by the networks of the zoo (the width multiplier)."""

from __future__ import annotations

from crossdistill.errors import CrossDistillError


def scale(channels: int, width: float, minimum: int = 4) -> int:
    """``channels * width`` rounded, at least ``minimum``; exactly ``channels`` at ``width=1``."""
    if width <= 0:
        raise CrossDistillError(f"width must be positive, got {width}")
    if width == 1.0:
        return channels
    return max(minimum, round(channels * width))
