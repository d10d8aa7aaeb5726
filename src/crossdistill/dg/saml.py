"""SAML: shape-aware meta-learning (Liu, Dou, Yu & Heng, MICCAI 2020), no teacher.

Each step is an episode. The batch (drawn site-balanced, so it holds several source sites) is
split by site: ``meta_test_sites`` randomly chosen sites form the meta-test group b, the
others the meta-train group a. With θ the student's parameters::

    θ' = θ − α·∇_θ L_seg(a; θ)                   (inner step; first order: ∇ is a constant)
    L  = L_seg(a; θ) + L_seg(b; θ') + λ_c·L_compact(b; θ') + λ_s·L_smooth(a; θ, b; θ')

``L_compact`` and ``L_smooth`` are in :mod:`crossdistill.losses.shape`; the smoothness
embeddings read the student's ``feature`` tap (the decoder's ``low`` features by default)
through a small MLP head trained with the student. Defaults are the original's (its released
code): α = 1e-4, λ_c = 1 on the compactness with its length weight 0.01, λ_s = 5e-3, one
meta-test site per episode. Because the inner gradient is detached, ``L.backward()`` gives θ
the first-order meta-gradient ∇L_seg(a; θ) + ∇_θ' L_meta(b; θ').

Not reproduced: the original clips each parameter's gradient to norm 10 and trains the
embedding head with its own Adam (lr 1e-3); here the run's optimizer and schedule train
everything. ``shape_warmup_steps`` (this project's addition, default 0 = the original
schedule) ramps λ_c and λ_s linearly from 0 over the first steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from crossdistill.dg.common import StepCounter, StudentWithHeads, check_non_negative, feature_width
from crossdistill.engine.objective import SEG, StepOutput
from crossdistill.errors import ConfigError
from crossdistill.losses.segmentation import segmentation_loss
from crossdistill.losses.shape import SmoothnessLoss, compactness_loss
from crossdistill.models.output import SegOutput
from crossdistill.models.taps import read_tap


def split_episode(
    sites: Sequence[str], meta_test_sites: int, generator: torch.Generator | None = None
) -> tuple[list[int], list[int], list[str]]:
    """``(meta_train_idx, meta_test_idx, meta_test_site_names)`` of one batch.

    The meta-test sites are ``meta_test_sites`` distinct sites drawn at random among those
    present; every other site's items are meta-train. The groups never share a site.

    Raises:
        ValueError: fewer than ``meta_test_sites + 1`` distinct sites in the batch.
    """
    present = sorted(set(sites))
    if len(present) < meta_test_sites + 1:
        raise ValueError(
            f"an episode needs at least {meta_test_sites + 1} sites in the batch, got "
            f"{len(present)} ({', '.join(present)}); train on more sites or a larger batch"
        )
    order = torch.randperm(len(present), generator=generator).tolist()
    test = {present[i] for i in order[:meta_test_sites]}
    train_idx = [i for i, s in enumerate(sites) if s not in test]
    test_idx = [i for i, s in enumerate(sites) if s in test]
    return train_idx, test_idx, sorted(test)


class SAML(StudentWithHeads):
    """Shape-aware meta-learning objective for ``student`` (module doc).

    Args:
        student: the network (returns ``SegOutput``).
        inner_lr: α of the inner step.
        compact_weight: λ_c.
        smooth_weight: λ_s.
        meta_test_sites: sites held out as meta-test in each episode.
        feature: the tap the smoothness embeddings read.
        embed_dim, margin: of the smoothness head (:class:`SmoothnessLoss`).
        shape_warmup_steps: steps over which λ_c and λ_s ramp up from 0 (module doc).
    """

    balanced_sites = True

    def __init__(
        self,
        student: nn.Module,
        inner_lr: float = 1e-4,
        compact_weight: float = 1.0,
        smooth_weight: float = 5e-3,
        meta_test_sites: int = 1,
        feature: str = "low",
        embed_dim: int = 32,
        margin: float = 1.0,
        shape_warmup_steps: int = 0,
    ) -> None:
        super().__init__()
        check_non_negative(
            inner_lr=inner_lr, compact_weight=compact_weight, smooth_weight=smooth_weight
        )
        if meta_test_sites < 1:
            raise ValueError(f"meta_test_sites must be >= 1, got {meta_test_sites}")
        if shape_warmup_steps < 0:
            raise ValueError(f"shape_warmup_steps must be >= 0, got {shape_warmup_steps}")
        channels = feature_width(student, feature)
        self.student = student
        self.heads = nn.ModuleDict(
            {"smoothness": SmoothnessLoss(channels, embed_dim, margin), "steps": StepCounter()}
        )
        self.shape_warmup_steps = int(shape_warmup_steps)
        self.inner_lr = float(inner_lr)
        self.weights = {"compact": float(compact_weight), "smooth": float(smooth_weight)}
        self.meta_test_sites = int(meta_test_sites)
        self.feature = feature

    def forward(
        self,
        images: Tensor,
        masks: Tensor,
        *,
        sites: Sequence[str] | None = None,
        teacher_outputs: SegOutput | None = None,
    ) -> StepOutput:
        """One episode's loss (module doc); ``sites`` gives each image's site."""
        if sites is None:
            raise ConfigError("train.method", "SAML needs each image's site (site-aware batches)")
        if masks.dim() == 4:
            masks = masks[:, 0]
        tr, te, _ = split_episode(list(sites), self.meta_test_sites)
        out_a = self.student(images[tr])
        seg_a = segmentation_loss(out_a.logits, masks[tr])
        params = dict(self.student.named_parameters())
        grads = torch.autograd.grad(
            seg_a, list(params.values()), retain_graph=True, allow_unused=True
        )
        fast = {
            name: p if g is None else p - self.inner_lr * g.detach()
            for (name, p), g in zip(params.items(), grads, strict=True)
        }
        out_b = functional_call(self.student, fast, (images[te],), strict=False)
        seg_b = segmentation_loss(out_b.logits, masks[te])
        compact = compactness_loss(1 - torch.softmax(out_b.logits.float(), dim=1)[:, 0])
        smooth = self.heads["smoothness"](
            read_tap(out_a, self.feature), masks[tr], read_tap(out_b, self.feature), masks[te]
        )
        raw = {SEG: seg_a, "meta_seg": seg_b, "compact": compact, "smooth": smooth}
        steps = self.heads["steps"]
        ramp = steps.ramp(self.shape_warmup_steps)
        if self.training:
            steps.tick()
        weighted = {
            SEG: seg_a,
            "meta_seg": seg_b,
            "compact": ramp * self.weights["compact"] * compact,
            "smooth": ramp * self.weights["smooth"] * smooth,
        }
        logits = torch.empty(
            (images.shape[0], *out_a.logits.shape[1:]),
            dtype=out_a.logits.dtype,
            device=images.device,
        )
        logits[tr], logits[te] = out_a.logits.detach(), out_b.logits.detach()
        return StepOutput.from_terms(raw, weighted, logits)
