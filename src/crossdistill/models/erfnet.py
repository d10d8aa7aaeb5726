"""ERFNet (Romera, Álvarez, Bergasa, Arroyo 2018, "ERFNet: Efficient Residual Factorized
ConvNet for Real-Time Semantic Segmentation", IEEE T-ITS 19(1)).

Architecture (the paper's Table I):

- **encoder** — downsampler 16 (1/2), downsampler 64 (1/4), 5 × non-bottleneck-1D (64),
  downsampler 128 (1/8), 2 × non-bottleneck-1D (128) with dilations 2, 4, 8, 16;
- **decoder** — deconvolution 64 (1/4), 2 × non-bottleneck-1D (64), deconvolution 16 (1/2),
  2 × non-bottleneck-1D (16), a 2×2 stride-2 deconvolution to the classes.

The downsampler concatenates a 3×3 stride-2 convolution (``out - in`` filters) with a 2×2
max-pool of its input, then BN + ReLU. The non-bottleneck-1D block is
3×1 → ReLU → 1×3 → BN → ReLU → 3×1 (dilated) → ReLU → 1×3 (dilated) → BN → dropout, added to
its input, then ReLU; convolutions carry biases, as in the authors' code. Dropout is 0.03 in
the 64-channel encoder blocks, 0.3 in the 128-channel ones, 0 in the decoder. The upsampler is
a 3×3 stride-2 transposed convolution + BN + ReLU.

This is the textbook network; measured at 2 classes, 1 input channel: 2.0629 M parameters
(paper 2.06 M, +0.1 %) and, at 1×1×384×384, 16.43 GFLOPs in the paper's counting convention
(paper 16.56 G, −0.8 %) or 14.87 GFLOPs exact (−10.2 %): the paper's profiler counted the
three transposed convolutions at their output resolution (see
:mod:`crossdistill.models.complexity`).

Features: ``low`` = first downsampler (16 channels, 1/2), ``high`` = encoder output (128, 1/8).
Input sides must be multiples of 32 (else :class:`~crossdistill.errors.CrossDistillError`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.models._common import scale
from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.output import SegOutput


class Downsampler(nn.Module):
    """3×3 stride-2 conv (``out - in`` filters) ‖ 2×2 max-pool, then BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class NonBottleneck1D(nn.Module):
    """Residual block of two factorised (3×1, 1×3) convolution pairs, the second dilated."""

    def __init__(self, channels: int, dropout: float, dilation: int = 1) -> None:
        super().__init__()
        c, d = channels, dilation
        self.conv3x1_1 = nn.Conv2d(c, c, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(c, c, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(c, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(c, c, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.conv1x3_2 = nn.Conv2d(c, c, (1, 3), padding=(0, d), dilation=(1, d))
        self.bn2 = nn.BatchNorm2d(c, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv3x1_1(x))
        y = F.relu(self.bn1(self.conv1x3_1(y)))
        y = F.relu(self.conv3x1_2(y))
        y = self.dropout(self.bn2(self.conv1x3_2(y)))
        return F.relu(y + x)


def _upsampler(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
        nn.BatchNorm2d(out_channels, eps=1e-3),
        nn.ReLU(),
    )


class ERFNet(SegmentationNetwork):
    """ERFNet returning :class:`SegOutput` with ``low`` (1/2) and ``high`` (1/8) features.

    Args:
        in_channels: input channels (1 for a slice, 3 for 2.5D).
        num_classes: output classes.
        width: multiplier of every channel count (1 = the paper's network).

    Raises:
        CrossDistillError: in ``forward`` if the input's sides are not multiples of 32.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: float = 1.0) -> None:
        c16 = max(scale(16, width), in_channels + 1)
        c64, c128 = scale(64, width), scale(128, width)
        super().__init__(in_channels, num_classes, {"low": c16, "high": c128})
        self.down1 = Downsampler(in_channels, c16)
        self.encoder = nn.Sequential(
            Downsampler(c16, c64),
            *(NonBottleneck1D(c64, 0.03) for _ in range(5)),
            Downsampler(c64, c128),
            *(NonBottleneck1D(c128, 0.3, d) for d in (2, 4, 8, 16, 2, 4, 8, 16)),
        )
        self.decoder = nn.Sequential(
            _upsampler(c128, c64),
            NonBottleneck1D(c64, 0.0),
            NonBottleneck1D(c64, 0.0),
            _upsampler(c64, c16),
            NonBottleneck1D(c16, 0.0),
            NonBottleneck1D(c16, 0.0),
            nn.ConvTranspose2d(c16, num_classes, 2, stride=2),
        )

    def segment(self, x: Tensor) -> SegOutput:
        low = self.down1(x)
        high = self.encoder(low)
        return SegOutput(self.decoder(high), {"low": low, "high": high})
