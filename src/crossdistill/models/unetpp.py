"""UNet++ / NestedUNet (Zhou, Rahman Siddiquee, Tajbakhsh, Liang 2018, "UNet++: A Nested U-Net
Architecture for Medical Image Segmentation", DLMIA/ML-CDS 2018, arXiv:1807.10165).

Architecture: an encoder of five VGG-style blocks ``X^{i,0}`` with 64, 128, 256, 512, 1024
filters (2×2 max-pool between levels), and dense nested skip pathways: node ``X^{i,j}``
(``j ≥ 1``) is a VGG block applied to the concatenation of all previous nodes of its level
``X^{i,0..j-1}`` and the 2× bilinear upsampling of ``X^{i+1,j-1}``; it has the filters of
level ``i``. A VGG block is (3×3 conv + BN + ReLU) × 2, convolutions with bias. The logits are
a 1×1 convolution of ``X^{0,4}`` (no deep supervision).

This is the textbook network (as in the authors' NestedUNet code): measured at 2 classes,
1 input channel, 36.63 M parameters (paper 36.6 M, +0.1 %) and 619.9 GFLOPs at 1×1×384×384
(FlopCounterMode, 2 per multiply-accumulate; paper 621.38 G, −0.2 %).

Features: ``low`` = ``X^{1,0}`` (128 channels, 1/2), ``high`` = ``X^{3,0}`` (512, 1/8).
Input sides must be multiples of 32 (else :class:`~crossdistill.errors.CrossDistillError`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.models._common import scale
from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.output import SegOutput


class VGGBlock(nn.Sequential):
    """(3×3 conv + BN + ReLU) × 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class UNetPlusPlus(SegmentationNetwork):
    """UNet++ returning :class:`SegOutput` with ``low`` (1/2) and ``high`` (1/8) features.

    Args:
        in_channels: input channels (1 for a slice, 3 for 2.5D).
        num_classes: output classes.
        width: multiplier of every channel count (1 = the paper's network).

    Raises:
        CrossDistillError: in ``forward`` if the input's sides are not multiples of 32.
    """

    depth = 5

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: float = 1.0) -> None:
        f = [scale(c, width) for c in (64, 128, 256, 512, 1024)]
        super().__init__(in_channels, num_classes, {"low": f[1], "high": f[3]})
        # nodes[i][j] is X^{i,j}
        self.nodes = nn.ModuleList()
        for i in range(self.depth):
            level = nn.ModuleList([VGGBlock(in_channels if i == 0 else f[i - 1], f[i])])
            for j in range(1, self.depth - i):
                level.append(VGGBlock(f[i] * j + f[i + 1], f[i]))
            self.nodes.append(level)
        self.head = nn.Conv2d(f[0], num_classes, 1)

    def segment(self, x: Tensor) -> SegOutput:
        grid: list[list[Tensor]] = [[] for _ in range(self.depth)]
        for d in range(self.depth):  # the d-th backbone node, then the diagonal it completes
            prev = x if d == 0 else F.max_pool2d(grid[d - 1][0], 2)
            grid[d].append(self.nodes[d][0](prev))
            for j in range(1, d + 1):
                i = d - j
                inputs = [*grid[i], _up(grid[i + 1][j - 1])]
                grid[i].append(self.nodes[i][j](torch.cat(inputs, dim=1)))
        features = {"low": grid[1][0], "high": grid[3][0]}
        return SegOutput(self.head(grid[0][-1]), features)
