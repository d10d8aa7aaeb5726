"""Control teachers: what a distillation method gives *without* the teacher's knowledge.

A gain from distillation may come from the teacher's knowledge, or merely from extra
supervision or regularisation that any teacher-shaped signal would give. The two controls
replace the trained teacher of a run and keep everything else (docs/design.md §3):

* ``untrained`` — the teacher's architecture at its initialisation: the network that
  ``torch.manual_seed(seed)`` followed by ``create_model(spec)`` builds, the same first
  step as the teacher run of that seed, in eval mode (so its weights equal the trained
  teacher's initial weights).
* ``ground-truth`` — a "teacher" that knows only the student's own labels. Its logits are the
  log of the label-smoothed one-hot mask,

      p = (1 − ε) · onehot(y) + ε / K,      logits = log p,

  so its argmax is the mask and its confidence ``max_k p = 1 − ε + ε/K`` is the trained
  teacher's mean confidence on the student's training slices (``ε`` from
  :func:`matched_epsilon`, or given). Its features are those of the ``untrained`` network:
  a feature term then matches features that carry no knowledge either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from crossdistill.data.batch_keys import BatchKeys
from crossdistill.distill.terms import reads_teacher_logits
from crossdistill.models import create_model
from crossdistill.models.output import SegOutput

UNTRAINED, GROUND_TRUTH = "untrained", "ground-truth"
CONTROLS = (UNTRAINED, GROUND_TRUTH)
#: ``ε`` is kept in [MIN_EPSILON, (K − 1)/K · MAX_SHARE]: log p stays finite and argmax = y.
MIN_EPSILON, MAX_SHARE = 1e-3, 0.99


def same_run_control(control: str | None, terms: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The control whose run ``control`` gives for a method of ``terms`` (resolved, as
    ``distill.presets.resolved_terms`` gives them): ``ground-truth`` differs from
    ``untrained`` in the logits only, so for terms that never read the teacher's logits
    (:func:`~crossdistill.distill.terms.reads_teacher_logits`, e.g. KMM alone) it trains
    exactly the ``untrained`` run, which is returned; any other ``control`` is returned as is."""
    if control == GROUND_TRUTH and not any(reads_teacher_logits(n, o) for n, o in terms.items()):
        return UNTRAINED
    return control


def untrained_network(spec: dict, seed: int) -> nn.Module:
    """The network of ``spec`` (``name``, ``in_channels``, ``num_classes``, ``width``) as
    seeded run ``seed`` initialises it, in eval mode, frozen. The caller's RNG state is kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(spec["name"], spec["in_channels"], spec["num_classes"], spec["width"])
    model.requires_grad_(False)
    return model.eval()


def matched_epsilon(confidence: float, num_classes: int) -> float:
    """``ε`` whose smoothed one-hot has maximum probability ``confidence``:
    ``1 − ε + ε/K = c  ⇒  ε = (1 − c) · K / (K − 1)``, kept in the module's bounds."""
    if not math.isfinite(confidence):
        raise ValueError(f"confidence must be finite, got {confidence}")
    k = num_classes
    eps = (1.0 - confidence) * k / (k - 1)
    return float(min(max(eps, MIN_EPSILON), MAX_SHARE * (k - 1) / k))


@torch.no_grad()
def mean_confidence(
    teacher: nn.Module, dataset, batch_size: int = 16, max_items: int = 256, device="cpu"
) -> float:
    """Mean over pixels of ``max_k softmax(teacher(x))_k`` on at most ``max_items`` evenly
    spaced items of ``dataset`` (a dataset of dicts with ``image``), in order."""
    n = len(dataset)
    if n == 0:
        raise ValueError("no items to measure the teacher's confidence on")
    step = max(1, math.ceil(n / max_items))
    subset = Subset(dataset, list(range(0, n, step)))
    total, count = 0.0, 0
    teacher.eval()
    # its own generator: measuring leaves the global RNG (the run's stream) untouched
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, generator=torch.Generator())
    for batch in loader:
        logits = teacher(batch[BatchKeys.IMAGE].to(device)).logits.float()
        top = torch.softmax(logits, dim=1).amax(dim=1)
        total += float(top.sum())
        count += top.numel()
    return total / count


class GroundTruthTeacher(nn.Module):
    """The ``ground-truth`` control (module doc): logits from the masks, features from
    ``features_from`` (an untrained network). Call it as ``teacher(images, masks)``."""

    #: the distiller and the teacher cache pass the batch's masks to such a teacher
    needs_masks = True

    def __init__(self, features_from: nn.Module, epsilon: float) -> None:
        super().__init__()
        k = int(features_from.num_classes)
        if not 0 < epsilon < (k - 1) / k:
            raise ValueError(f"epsilon must be in (0, {(k - 1) / k:.3f}), got {epsilon}")
        self.features_from = features_from
        self.epsilon = float(epsilon)
        self.num_classes = k
        self.in_channels = features_from.in_channels
        self.feature_channels = features_from.feature_channels

    def smoothed_logits(self, masks: Tensor) -> Tensor:
        """``log((1 − ε) · onehot(masks) + ε / K)`` as ``(N, K, H, W)`` float32."""
        labels = masks.long()
        if labels.dim() == 4:
            labels = labels[:, 0]
        onehot = F.one_hot(labels.clamp(0, self.num_classes - 1), self.num_classes)
        probs = (1 - self.epsilon) * onehot.permute(0, 3, 1, 2).float()
        return torch.log(probs + self.epsilon / self.num_classes)

    def forward(self, images: Tensor, masks: Tensor | None = None) -> SegOutput:
        if masks is None:
            raise ValueError("the ground-truth control teacher needs the batch's masks")
        features = self.features_from(images).features
        logits = self.smoothed_logits(masks.to(images.device))
        return SegOutput(logits, features)


def teacher_output(teacher: nn.Module, images: Tensor, masks: Tensor | None) -> SegOutput:
    """``teacher(images)``, or ``teacher(images, masks)`` for a teacher that needs masks."""
    if getattr(teacher, "needs_masks", False):
        return teacher(images, masks)
    return teacher(images)


def build_control(
    name: str,
    teacher: nn.Module,
    spec: dict,
    seed: int,
    dataset,
    epsilon: float | None = None,
    device: str = "cpu",
) -> tuple[nn.Module, dict]:
    """The control ``name`` standing in for the trained ``teacher`` (architecture ``spec``,
    trained from seed ``seed``) on the student's training ``dataset``.

    Returns ``(control_teacher, info)``; ``info`` records ``name`` and ``seed``, and for
    ``ground-truth`` the trained teacher's mean ``confidence`` (when measured) and ``epsilon``.
    """
    if name not in CONTROLS:
        raise ValueError(f"unknown control {name!r}; use {' or '.join(CONTROLS)}")
    network = untrained_network(spec, seed).to(device)
    info: dict = {"name": name, "seed": seed}
    if name == UNTRAINED:
        return network, info
    if epsilon is None:
        confidence = mean_confidence(teacher, dataset, device=device)
        epsilon = matched_epsilon(confidence, int(spec["num_classes"]))
        info["teacher_confidence"] = round(confidence, 6)
    info["epsilon"] = round(float(epsilon), 6)
    return GroundTruthTeacher(network, float(epsilon)).to(device), info
