"""DRDG: disentangled representations for domain generalisation (after Lu et al. 2021), no teacher.

The paper compares with a method that splits an image into a site-invariant *content* code,
from which it segments, and a *style* (site) code, and ties the two together by
reconstructing the image. This module's design, on the student network itself:

* content = the student's ``feature`` tap (``low``: the decoder features at 1/2 resolution);
  the segmentation comes from the student's logits as usual, so the deployed student is
  unchanged;
* style ``z = E_s(x)``: a small strided CNN with global pooling (``style_dim`` numbers);
* reconstruction ``x̂ = D(content, z)``: content modulated by z through adaptive instance
  normalisation (``γ(z)·norm(c) + β(z)``), two 3×3 convolutions, upsampled to the input;
* the style code must tell the site (a linear classifier on z), the content code must not
  (a linear classifier on the pooled content behind a gradient-reversal layer: the
  classifier learns the site, the student learns to hide it).

Loss::

    L = L_seg + λ_rec·|x̂ − x|₁ + λ_style·CE(site | z) + λ_adv·CE(site | GRL(pool(content)))

Defaults λ_rec = 1, λ_style = 0.1, λ_adv = 0.1; the auxiliary networks (encoder, decoder,
classifiers) are trained with the student and dropped at deployment.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.dg.common import StudentWithHeads, check_non_negative, feature_width
from crossdistill.engine.objective import SEG, StepOutput
from crossdistill.errors import ConfigError
from crossdistill.losses.affinity import reverse_gradient
from crossdistill.losses.segmentation import segmentation_loss
from crossdistill.models.output import SegOutput
from crossdistill.models.taps import read_tap


class StyleEncoder(nn.Module):
    """``(N, C, H, W)`` image → ``(N, style_dim)`` style code (three stride-2 convs + pool)."""

    def __init__(self, in_channels: int, width: int, style_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((in_channels, width), (width, 2 * width), (2 * width, 2 * width)):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(2 * width, style_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).mean((2, 3)))


class StyledDecoder(nn.Module):
    """Content ``(N, Cc, h, w)`` + style ``(N, style_dim)`` → image ``(N, out, H, W)`` (AdaIN)."""

    def __init__(self, content_channels: int, style_dim: int, out_channels: int, width: int):
        super().__init__()
        self.reduce = nn.Conv2d(content_channels, width, 1)
        self.affine = nn.Linear(style_dim, 2 * width)
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1),
        )
        self.out = nn.Conv2d(width, out_channels, 3, 1, 1)

    def forward(self, content: Tensor, style: Tensor, size: Sequence[int]) -> Tensor:
        h = F.instance_norm(self.reduce(content))
        gamma, beta = self.affine(style)[:, :, None, None].chunk(2, dim=1)
        h = torch.relu(self.body(h * (1 + gamma) + beta))
        h = F.interpolate(h, size=tuple(size), mode="bilinear", align_corners=False)
        return self.out(h)


class DRDG(StudentWithHeads):
    """Content/style disentanglement objective for ``student`` (module doc).

    Args:
        student: the segmentation network (returns ``SegOutput``).
        sites: the training sites; each image's site must be one of them.
        in_channels: input channels of the images.
        feature: the student's tap used as the content code.
        style_dim, width: sizes of the auxiliary networks.
        rec_weight, style_weight, adv_weight: λ_rec, λ_style, λ_adv.
    """

    balanced_sites = False

    def __init__(
        self,
        student: nn.Module,
        sites: Sequence[str],
        in_channels: int = 1,
        feature: str = "low",
        style_dim: int = 16,
        width: int = 16,
        rec_weight: float = 1.0,
        style_weight: float = 0.1,
        adv_weight: float = 0.1,
    ) -> None:
        super().__init__()
        check_non_negative(rec_weight=rec_weight, style_weight=style_weight, adv_weight=adv_weight)
        if len(set(sites)) < 2:
            raise ValueError(f"sites: DRDG needs at least two training sites, got {list(sites)}")
        channels = feature_width(student, feature)
        self.student = student
        self.sites = sorted(set(sites))
        self.feature = feature
        self.weights = {"rec": rec_weight, "style": style_weight, "adv": adv_weight}
        self.heads = nn.ModuleDict(
            {
                "style_encoder": StyleEncoder(in_channels, width, style_dim),
                "decoder": StyledDecoder(channels, style_dim, in_channels, width),
                "site_from_style": nn.Linear(style_dim, len(self.sites)),
                "site_from_content": nn.Linear(channels, len(self.sites)),
            }
        )

    def site_labels(self, sites: Sequence[str], device: torch.device) -> Tensor:
        unknown = sorted(set(sites) - set(self.sites))
        if unknown:
            raise ConfigError("train.sites", f"DRDG was built for {self.sites}, got {unknown}")
        return torch.tensor([self.sites.index(s) for s in sites], device=device)

    def forward(
        self,
        images: Tensor,
        masks: Tensor,
        *,
        sites: Sequence[str] | None = None,
        teacher_outputs: SegOutput | None = None,
    ) -> StepOutput:
        """The step's loss (module doc); ``sites`` gives each image's site."""
        if sites is None:
            raise ConfigError("train.method", "DRDG needs each image's site")
        labels = self.site_labels(list(sites), images.device)
        out = self.student(images)
        seg = segmentation_loss(out.logits, masks)
        content = read_tap(out, self.feature)
        style = self.heads["style_encoder"](images)
        recon = self.heads["decoder"](content, style, images.shape[-2:])
        raw = {
            SEG: seg,
            "rec": F.l1_loss(recon.float(), images.float()),
            "style": F.cross_entropy(self.heads["site_from_style"](style), labels),
            "adv": F.cross_entropy(
                self.heads["site_from_content"](reverse_gradient(content.mean((2, 3)))), labels
            ),
        }
        weighted = {k: v * self.weights.get(k, 1.0) for k, v in raw.items()}
        return StepOutput.from_terms(raw, weighted, out.logits)
