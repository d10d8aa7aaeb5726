"""ENet (Paszke, Chaurasia, Kim, Culurciello 2016, "ENet: A Deep Neural Network Architecture
for Real-Time Semantic Segmentation", arXiv:1606.02147).

Architecture (the paper's Table 1, "standard" configuration):

- **initial block** — a 3×3 stride-2 convolution with ``16 - C_in`` filters concatenated with a
  2×2 max-pool of the input (16 channels at 1/2), then BN + PReLU;
- **stage 1** — a downsampling bottleneck 16→64 (1/4) and four regular bottlenecks;
- **stage 2** — a downsampling bottleneck 64→128 (1/8), then regular, dilated 2, asymmetric 5,
  dilated 4, regular, dilated 8, asymmetric 5, dilated 16;
- **stage 3** — stage 2 without its downsampling bottleneck;
- **stage 4** — an upsampling bottleneck 128→64 (max-unpooling with the indices of stage 2's
  pool) and two regular bottlenecks; **stage 5** — upsampling 64→16 and one regular bottleneck;
- **fullconv** — a 2×2 stride-2 transposed convolution to the classes (full resolution).

A bottleneck is 1×1 projection (2×2 stride 2 when downsampling) → main convolution
(3×3, dilated 3×3, or 5×1 then 1×5) → 1×1 expansion, each followed by BN and PReLU, spatial
dropout (0.01 in stage 1, 0.1 after), added to the main branch (identity, or max-pool + zero
channel padding when downsampling), then PReLU. An upsampling bottleneck's main branch is a
1×1 conv + BN and max-unpooling (written as a scatter so that it exports to ONNX), its
extension 1×1 → 2×2 stride-2 transposed conv → 1×1.

Configuration details chosen to match the project's Table 1 (0.353 M parameters, 2.2 GFLOPs
at 1×1×384×384, 2 classes, 1 input channel), where the paper leaves them open: the projection
reduces the bottleneck's *input* channels by 4 (as in common PyTorch ports); the upsampling
bottleneck's transposed convolution is 2×2 (a 3×3 one gives 0.362 M, +2.6 %); convolutions
have no bias except the final one; PReLU has one slope per channel; BN + PReLU separate the
5×1 and 1×5 convolutions. Measured: 0.3557 M parameters (+0.8 %); 2.204 GFLOPs in the paper's
counting convention (+0.2 %) and 2.063 GFLOPs exact (−6.2 %; see
:mod:`crossdistill.models.complexity`).

Features: ``low`` = initial block (16 channels, 1/2), ``high`` = end of stage 3 (128, 1/8).
Input sides must be multiples of 32 (else :class:`~crossdistill.errors.CrossDistillError`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.models._common import scale
from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.output import SegOutput


def _bn_prelu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels, eps=1e-3), nn.PReLU(channels)]


class InitialBlock(nn.Module):
    """3×3 stride-2 conv (``out - in`` filters) ‖ 2×2 max-pool, then BN + PReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=False
        )
        self.pool = nn.MaxPool2d(2, 2)
        self.post = nn.Sequential(*_bn_prelu(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.post(torch.cat([self.conv(x), self.pool(x)], dim=1))


class Bottleneck(nn.Module):
    """Regular, dilated, asymmetric or downsampling ENet bottleneck (see module docstring)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kind: str = "regular",
        dilation: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.down = kind == "down"
        internal = max(1, in_channels // 4)
        k, s = (2, 2) if self.down else (1, 1)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, internal, k, stride=s, bias=False)]
        layers += _bn_prelu(internal)
        if kind == "asymmetric":
            layers += [nn.Conv2d(internal, internal, (5, 1), padding=(2, 0), bias=False)]
            layers += _bn_prelu(internal)
            layers += [nn.Conv2d(internal, internal, (1, 5), padding=(0, 2), bias=False)]
        else:
            layers += [
                nn.Conv2d(internal, internal, 3, padding=dilation, dilation=dilation, bias=False)
            ]
        layers += _bn_prelu(internal)
        layers += [nn.Conv2d(internal, out_channels, 1, bias=False)]
        layers += _bn_prelu(out_channels)
        layers += [nn.Dropout2d(dropout)]
        self.ext = nn.Sequential(*layers)
        self.pad = out_channels - in_channels
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        indices = None
        main = x
        if self.down:
            main, indices = F.max_pool2d(x, 2, 2, return_indices=True)
            if self.pad > 0:
                main = F.pad(main, (0, 0, 0, 0, 0, self.pad))
        return self.act(main + self.ext(x)), indices


def max_unpool2x2(values: Tensor, indices: Tensor) -> Tensor:
    """Inverse of a 2×2 stride-2 max-pool: each value goes back to its argmax, zeros elsewhere.

    Equal to ``F.max_unpool2d(values, indices, 2)``, written as a scatter so that it also
    traces and exports to ONNX (``ScatterElements``).
    """
    n, c, h, w = values.shape
    flat = values.new_zeros(n, c, 4 * h * w).scatter(2, indices.flatten(2), values.flatten(2))
    return flat.view(n, c, 2 * h, 2 * w)


class UpsamplingBottleneck(nn.Module):
    """Main: 1×1 conv + BN + max-unpool; extension: 1×1, 3×3 stride-2 transposed, 1×1."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1) -> None:
        super().__init__()
        internal = max(1, in_channels // 4)
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels, eps=1e-3),
        )
        self.ext = nn.Sequential(
            nn.Conv2d(in_channels, internal, 1, bias=False),
            *_bn_prelu(internal),
            nn.ConvTranspose2d(internal, internal, 2, stride=2, bias=False),
            *_bn_prelu(internal),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            *_bn_prelu(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor, indices: Tensor) -> Tensor:
        main = max_unpool2x2(self.main(x), indices)
        return self.act(main + self.ext(x))


def _stage23(channels: int, dropout: float) -> list[Bottleneck]:
    spec = [
        ("regular", 1),
        ("dilated", 2),
        ("asymmetric", 1),
        ("dilated", 4),
        ("regular", 1),
        ("dilated", 8),
        ("asymmetric", 1),
        ("dilated", 16),
    ]
    return [Bottleneck(channels, channels, kind, d, dropout) for kind, d in spec]


class ENet(SegmentationNetwork):
    """ENet returning :class:`SegOutput` with ``low`` (1/2) and ``high`` (1/8) features.

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
        self.initial = InitialBlock(in_channels, c16)
        self.down1 = Bottleneck(c16, c64, "down", dropout=0.01)
        self.stage1 = nn.ModuleList(Bottleneck(c64, c64, dropout=0.01) for _ in range(4))
        self.down2 = Bottleneck(c64, c128, "down", dropout=0.1)
        self.stage2 = nn.ModuleList(_stage23(c128, 0.1))
        self.stage3 = nn.ModuleList(_stage23(c128, 0.1))
        self.up4 = UpsamplingBottleneck(c128, c64)
        self.stage4 = nn.ModuleList(Bottleneck(c64, c64) for _ in range(2))
        self.up5 = UpsamplingBottleneck(c64, c16)
        self.stage5 = nn.ModuleList([Bottleneck(c16, c16)])
        self.fullconv = nn.ConvTranspose2d(c16, num_classes, 2, stride=2)

    @staticmethod
    def _run(blocks: nn.ModuleList, x: Tensor) -> Tensor:
        for block in blocks:
            x = block(x)[0]
        return x

    def segment(self, x: Tensor) -> SegOutput:
        low = self.initial(x)
        y, idx1 = self.down1(low)
        y = self._run(self.stage1, y)
        y, idx2 = self.down2(y)
        y = self._run(self.stage2, y)
        high = self._run(self.stage3, y)
        y = self._run(self.stage4, self.up4(high, idx2))
        y = self._run(self.stage5, self.up5(y, idx1))
        return SegOutput(self.fullconv(y), {"low": low, "high": high})
