"""DeepLabV3+ (Chen, Zhu, Papandreou, Schroff, Adam 2018, "Encoder-Decoder with Atrous
Separable Convolution for Semantic Image Segmentation", ECCV 2018, arXiv:1802.02611) with the
aligned Xception-65 backbone of that paper (after Chollet 2017 and Dai et al. 2017).

Backbone at output stride 8:

- **stem** — 3×3 stride-2 conv 32 (1/2) + BN + ReLU, 3×3 conv 64 + BN + ReLU;
- **entry flow** — three residual blocks of three separable convolutions, 128 (stride 2,
  1/4; its output is the decoder's low-level feature), 256 (stride 2, 1/8), 728 (stride 1);
- **middle flow** — 16 residual blocks of three 728-channel separable convolutions, dilation 2;
- **exit flow** — a residual block (728, 1024, 1024; dilation 2) and three separable
  convolutions 1536, 1536, 2048 (dilation 4), each followed by BN + ReLU.

A separable convolution is a 3×3 depthwise convolution + BN + 1×1 pointwise convolution;
inside a residual block each is preceded by ReLU and followed by BN; the shortcut is identity
or a strided 1×1 conv + BN. The **ASPP** has a 1×1 branch, three 3×3 atrous branches with
rates 12, 24, 36 and an image-pooling branch (256 channels each), projected by 1×1 to 256
(BN + ReLU, dropout 0.5). The **decoder** projects the low-level feature (1/4) to 48 channels,
concatenates it with the 2× upsampled ASPP output, applies two 3×3 convs of 256 (BN + ReLU,
dropout 0.5 and 0.1), a 1×1 classifier, and a 4× bilinear upsampling.

Configuration details chosen to match the project's Table 1 (56.8 M parameters, 273.94
GFLOPs at 1×1×384×384, 2 classes, 1 input channel): ASPP and decoder use plain (not
separable) 3×3 convolutions, as in the common PyTorch ports; convolutions are bias-free except
the classifier and the image-pooling branch, which has no BN (so that training with batch
size 1 works). This network has 54.70 M parameters (−3.7 %) and 271.6 GFLOPs (−0.9 %). The
missing 2.05 M are, to 0.1 %, the 2048→1000 ImageNet classifier of an Xception-65 backbone
(as in timm's ``xception65``: 39.92 M with it, 37.87 M without) that the paper's count
evidently kept; so by default the model carries that layer, frozen and never run
(``imagenet_head=True``): 56.75 M parameters (−0.1 %), no FLOPs, no gradients.

Features: ``low`` = stem's first convolution (32 channels, 1/2), ``high`` = exit-flow output
(2048, 1/8). Input sides must be multiples of 32 (else
:class:`~crossdistill.errors.CrossDistillError`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.models._common import scale
from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.output import SegOutput


def _cbr(in_ch: int, out_ch: int, k: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, k, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
    )


class SeparableConv(nn.Sequential):
    """3×3 depthwise conv (strided/dilated) + BN + 1×1 pointwise conv."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                in_ch, in_ch, 3, stride, dilation, dilation=dilation, groups=in_ch, bias=False
            ),
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
        )


class XceptionBlock(nn.Module):
    """Three (ReLU → separable conv → BN) units with a residual shortcut."""

    def __init__(
        self, in_ch: int, channels: tuple[int, int, int], stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        units: list[nn.Module] = []
        prev = in_ch
        for i, out in enumerate(channels):
            s = stride if i == 2 else 1
            units += [nn.ReLU(), SeparableConv(prev, out, s, dilation), nn.BatchNorm2d(out)]
            prev = out
        self.units = nn.Sequential(*units)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != prev:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, prev, 1, stride, bias=False), nn.BatchNorm2d(prev)
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.units(x) + self.shortcut(x)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three atrous 3×3, image pooling → 1×1 projection."""

    def __init__(self, in_ch: int, out_ch: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_cbr(in_ch, out_ch, 1)])
        self.branches.extend(_cbr(in_ch, out_ch, 3, dilation=r) for r in rates)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1), nn.ReLU())
        self.project = nn.Sequential(_cbr(out_ch * (len(rates) + 2), out_ch, 1), nn.Dropout(0.5))

    def forward(self, x: Tensor) -> Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.pool(x)
        outs.append(pooled.expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3Plus(SegmentationNetwork):
    """DeepLabV3+ (Xception-65, output stride 8) returning :class:`SegOutput`.

    Args:
        in_channels: input channels (1 for a slice, 3 for 2.5D).
        num_classes: output classes.
        width: multiplier of every channel count (1 = the paper's network).
        imagenet_head: keep the backbone's frozen, unused 2048→1000 ImageNet classifier so
            that the parameter count is the paper's (it costs no FLOPs and gets no gradient).

    Raises:
        CrossDistillError: in ``forward`` if the input's sides are not multiples of 32.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        width: float = 1.0,
        imagenet_head: bool = True,
    ) -> None:
        def c(n: int) -> int:
            return scale(n, width)

        super().__init__(in_channels, num_classes, {"low": c(32), "high": c(2048)})
        self.stem1 = _cbr(in_channels, c(32), 3, stride=2)
        self.stem2 = _cbr(c(32), c(64), 3)
        self.block1 = XceptionBlock(c(64), (c(128),) * 3, stride=2)
        self.entry = nn.Sequential(
            XceptionBlock(c(128), (c(256),) * 3, stride=2),
            XceptionBlock(c(256), (c(728),) * 3, stride=1),
        )
        self.middle = nn.Sequential(
            *(XceptionBlock(c(728), (c(728),) * 3, dilation=2) for _ in range(16))
        )
        self.exit = nn.Sequential(
            XceptionBlock(c(728), (c(728), c(1024), c(1024)), dilation=2),
            SeparableConv(c(1024), c(1536), dilation=4),
            nn.BatchNorm2d(c(1536)),
            nn.ReLU(),
            SeparableConv(c(1536), c(1536), dilation=4),
            nn.BatchNorm2d(c(1536)),
            nn.ReLU(),
            SeparableConv(c(1536), c(2048), dilation=4),
            nn.BatchNorm2d(c(2048)),
            nn.ReLU(),
        )
        self.aspp = ASPP(c(2048), c(256), (12, 24, 36))
        self.low_proj = _cbr(c(128), c(48), 1)
        self.decoder = nn.Sequential(
            _cbr(c(256) + c(48), c(256), 3),
            nn.Dropout(0.5),
            _cbr(c(256), c(256), 3),
            nn.Dropout(0.1),
            nn.Conv2d(c(256), num_classes, 1),
        )
        self.imagenet_head: nn.Module | None = None
        if imagenet_head:  # frozen, never run: only counted (see the module docstring)
            self.imagenet_head = nn.Linear(c(2048), 1000).requires_grad_(False)

    def segment(self, x: Tensor) -> SegOutput:
        low = self.stem1(x)
        skip = self.block1(self.stem2(low))
        high = self.exit(self.middle(self.entry(skip)))
        y = F.interpolate(self.aspp(high), scale_factor=2.0, mode="bilinear", align_corners=False)
        y = self.decoder(torch.cat([y, self.low_proj(skip)], dim=1))
        logits = F.interpolate(y, scale_factor=4.0, mode="bilinear", align_corners=False)
        return SegOutput(logits, {"low": low, "high": high})
