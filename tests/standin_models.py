"""Tiny stand-in networks following the model contract (``SegOutput``, ``feature_channels``).

Used by the loss and distiller tests instead of the real networks: a few convolutions with
BatchNorm, ``features["low"]`` at 1/2 and ``features["high"]`` at 1/8 of the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.models.output import SegOutput


class TinySegNet(nn.Module):
    """``(N, in_channels, H, W)`` → ``SegOutput``; H and W divisible by 8."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, low: int = 4, high: int = 8):
        super().__init__()
        self.num_classes = num_classes
        self.feature_channels = {"low": low, "high": high}
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, low, 3, stride=2, padding=1),
            nn.BatchNorm2d(low),
            nn.ReLU(),
        )
        self.down = nn.Sequential(
            nn.Conv2d(low, high, 3, stride=4, padding=1),
            nn.BatchNorm2d(high),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(high + low, num_classes, 1)

    def forward(self, x: Tensor) -> SegOutput:
        low = self.stem(x)
        high = self.down(low)
        up = F.interpolate(high, size=low.shape[-2:], mode="bilinear")
        logits = self.head(torch.cat([up, low], 1))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear")
        return SegOutput(logits, {"low": low, "high": high})


class FixedLogitsNet(nn.Module):
    """Ignores its input's values and returns learnable fixed logits ``(1, K, H, W)`` per sample.

    For hand-computed distiller tests: the logits are exactly what the test writes down.
    """

    def __init__(self, logits: Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits.clone().unsqueeze(0) if logits.dim() == 3 else logits)
        self.num_classes = self.logits.shape[1]
        self.feature_channels = {"low": self.num_classes, "high": self.num_classes}

    def forward(self, x: Tensor) -> SegOutput:
        logits = self.logits.expand(x.shape[0], -1, -1, -1)
        return SegOutput(logits, {"low": logits, "high": logits})
