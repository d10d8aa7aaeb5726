"""ESPNet (Mehta, Rastegari, Caspi, Shapiro, Hajishirzi 2018, "ESPNet: Efficient Spatial
Pyramid of Dilated Convolutions for Semantic Segmentation", ECCV 2018, arXiv:1803.06815).

The **ESP module** reduces its input with a 1×1 convolution to ``n = out/5`` channels (a
strided 3×3 one when downsampling), runs ``K = 5`` parallel 3×3 convolutions with dilations
1, 2, 4, 8, 16, adds them hierarchically (hierarchical feature fusion: branch ``k`` gets the sum
of branches 2..k), concatenates (the dilation-1 branch takes the remainder ``out - 4n``), adds
the input when shapes agree, then BN + PReLU. Blocks with fewer than 5 output channels use
``K = out`` branches (only in the 2-class decoder and at tiny widths).

Full ESPNet with decoder, α₂ = p = 2, α₃ = q = 3:

- **level 1** — 3×3 stride-2 conv 16 + BN + PReLU (1/2), concatenated with the input image
  average-pooled to 1/2, BN + PReLU;
- **level 2** — a downsampling ESP module to 64 (1/4), p ESP modules, concatenated with the
  downsampler's output and the image at 1/4 (128 + C), BN + PReLU;
- **level 3** — a downsampling ESP module to 128 (1/8), q ESP modules, concatenated with the
  downsampler's output (256), BN + PReLU;
- **decoder** — 1×1 conv of level 3 to the classes, BN, 2× deconvolution; concatenated with a
  1×1 projection of level 2 to the classes, BN + PReLU, an ESP module (no residual), 2×
  deconvolution, BN + PReLU; concatenated with level 1, 3×3 conv + BN (the authors' has a PReLU
  after it: see below), and a final 2× deconvolution. Deconvolutions are 2×2, stride 2; the
  final one has a bias, the others none.

Convolutions have no bias; BN uses eps 1e-3; PReLU has one slope per channel (as in the
authors' code). The project's Table 1 lists this network (p=2, q=3, with the decoder) at 0.183 M
parameters and 1.27 GFLOPs at 1×1×384×384, 2 classes, 1 input channel. Measured: 0.1827 M
parameters (−0.2 %) and 1.203 GFLOPs (−5.3 %; the rest is BN/PReLU element-wise work that
FlopCounterMode does not count).

**One deviation: the classifier head.** In the authors' decoder the last 3×3 convolution is
followed by BN + PReLU on its ``num_classes`` channels and a bias-free 2× deconvolution. With
2 classes the foreground-minus-background logit is then ``d = Σ_c w_c · y_c`` over two PReLU
outputs. Once both PReLU slopes turn negative, ``y_c ≥ 0`` everywhere; if both ``w_c`` are
negative too, ``d ≤ 0`` at every pixel (foreground probability at most ½, an empty argmax) and
the gradient no longer leads out: the network sets ``y = 0`` on the prostate, where ``d`` is
then at its largest, 0. ESPNet at width ½ fell into this state at two of the first three
seeds of the study preset (validation Dice 0 from epoch 5 to 48, training loss still
falling). A bias on the deconvolution alone did not close it: a distilled run then settled
with the bias's foreground-minus-background at −0.21 (probability ≤ 0.45). Here the last
convolution is followed by BN only, so ``d`` is affine in outputs of either sign, and the
deconvolution has a bias; the parameter count is the authors' (two PReLU slopes out, two
biases in). Checkpoints written before this (up to 2026-12-06) do not load (their tensors do
not fit the network).

Features: ``low`` = level-1 convolution output (16 channels, 1/2), ``high`` = level-3
concatenation (256, 1/8). Input sides must be multiples of 32 (else
:class:`~crossdistill.errors.CrossDistillError`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.models._common import scale
from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.output import SegOutput

_EPS = 1e-3


def _br(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels, eps=_EPS), nn.PReLU(channels))


def _cbr(in_ch: int, out_ch: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, k, stride, (k - 1) // 2, bias=False), *_br(out_ch)
    )


class ESPModule(nn.Module):
    """Reduce → split → dilated 3×3 pyramid → hierarchical fusion → merge (see module doc)."""

    def __init__(self, in_ch: int, out_ch: int, down: bool = False, residual: bool = True) -> None:
        super().__init__()
        k = min(5, out_ch)
        n = out_ch // k
        n1 = out_ch - (k - 1) * n
        self.reduce = (
            nn.Conv2d(in_ch, n, 3, 2, 1, bias=False) if down else nn.Conv2d(in_ch, n, 1, bias=False)
        )
        widths = [n1] + [n] * (k - 1)
        self.branches = nn.ModuleList(
            nn.Conv2d(n, w, 3, padding=2**i, dilation=2**i, bias=False)
            for i, w in enumerate(widths)
        )
        self.residual = residual and not down and in_ch == out_ch
        self.post = _br(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        r = self.reduce(x)
        outs = [self.branches[0](r)]
        acc: Tensor | None = None
        for branch in self.branches[1:]:
            acc = branch(r) if acc is None else acc + branch(r)
            outs.append(acc)
        y = torch.cat(outs, dim=1)
        if self.residual:
            y = x + y
        return self.post(y)


def _avg_down(x: Tensor, times: int) -> Tensor:
    for _ in range(times):
        x = F.avg_pool2d(x, 3, stride=2, padding=1)
    return x


class ESPNet(SegmentationNetwork):
    """ESPNet (p=2, q=3, with decoder) returning :class:`SegOutput`.

    Args:
        in_channels: input channels (1 for a slice, 3 for 2.5D).
        num_classes: output classes.
        width: multiplier of every channel count (1 = the paper's network).
        p: ESP modules at level 2.
        q: ESP modules at level 3.

    Raises:
        CrossDistillError: in ``forward`` if the input's sides are not multiples of 32.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        width: float = 1.0,
        p: int = 2,
        q: int = 3,
    ) -> None:
        c16, c64, c128 = scale(16, width), scale(64, width), scale(128, width)
        cls, cin = num_classes, in_channels
        super().__init__(in_channels, num_classes, {"low": c16, "high": 2 * c128})
        self.level1 = _cbr(cin, c16, 3, stride=2)
        self.br1 = _br(c16 + cin)
        self.down2 = ESPModule(c16 + cin, c64, down=True)
        self.level2 = nn.Sequential(*(ESPModule(c64, c64) for _ in range(p)))
        self.br2 = _br(2 * c64 + cin)
        self.down3 = ESPModule(2 * c64 + cin, c128, down=True)
        self.level3 = nn.Sequential(*(ESPModule(c128, c128) for _ in range(q)))
        self.br3 = _br(2 * c128)
        # decoder
        self.classify3 = nn.Sequential(
            nn.Conv2d(2 * c128, cls, 1, bias=False), nn.BatchNorm2d(cls, eps=_EPS)
        )
        self.up3 = nn.ConvTranspose2d(cls, cls, 2, stride=2, bias=False)
        self.project2 = nn.Conv2d(2 * c64 + cin, cls, 1, bias=False)
        self.fuse2 = nn.Sequential(_br(2 * cls), ESPModule(2 * cls, cls, residual=False))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(cls, cls, 2, stride=2, bias=False), *_br(cls))
        self.fuse1 = nn.Sequential(  # no PReLU before the classifier: module doc
            nn.Conv2d(c16 + cin + cls, cls, 3, 1, 1, bias=False), nn.BatchNorm2d(cls, eps=_EPS)
        )
        self.up1 = nn.ConvTranspose2d(cls, cls, 2, stride=2, bias=True)  # module doc

    def segment(self, x: Tensor) -> SegOutput:
        x2, x4 = _avg_down(x, 1), _avg_down(x, 2)
        low = self.level1(x)
        l1 = self.br1(torch.cat([low, x2], dim=1))
        d2 = self.down2(l1)
        l2 = self.br2(torch.cat([self.level2(d2), d2, x4], dim=1))
        d3 = self.down3(l2)
        high = self.br3(torch.cat([d3, self.level3(d3)], dim=1))
        y = self.up3(self.classify3(high))
        y = self.up2(self.fuse2(torch.cat([self.project2(l2), y], dim=1)))
        y = self.fuse1(torch.cat([y, l1], dim=1))
        return SegOutput(self.up1(y), {"low": low, "high": high})
