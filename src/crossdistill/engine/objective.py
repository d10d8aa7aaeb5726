"""What the training loop trains, and what one step gives back.

The loop (:func:`crossdistill.engine.fit.fit`) asks an objective only what
:class:`TrainingObjective` declares, so the distiller (``crossdistill.distill.Distiller``:
teacher + KD terms) and the domain-generalisation methods (``crossdistill.dg``: SAML, DRDG)
are trained, checkpointed, cached and resumed by the same code, and the engine imports
neither of them (docs/design.md §8).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

from crossdistill.models.output import SegOutput

#: the key of the segmentation loss in :attr:`StepOutput.terms` (weight 1, always first)
SEG = "seg"


@dataclass
class StepOutput:
    """What one training step computes.

    Attributes:
        total: ``Σ terms`` — the scalar to backpropagate.
        terms: weighted terms, ``"seg"`` first (weight 1), then each further term as ``λ·L``.
        raw: the same keys, unweighted.
        logits: the student's logits, for metrics.
        teacher_logits: the teacher's logits (detached) when a term needed them.
    """

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    raw: dict[str, Tensor] = field(default_factory=dict)
    logits: Tensor | None = None
    teacher_logits: Tensor | None = None

    @classmethod
    def from_terms(
        cls,
        raw: dict[str, Tensor],
        weighted: dict[str, Tensor],
        logits: Tensor | None = None,
        teacher_logits: Tensor | None = None,
    ) -> StepOutput:
        """The output whose ``total`` is the float32 sum of the ``weighted`` terms."""
        total = torch.stack([v.float() for v in weighted.values()]).sum()
        return cls(total, weighted, raw, logits, teacher_logits)

    def detached(self) -> dict[str, float]:
        """Flat ``{"total", "seg", "aam", ..., "raw/aam", ...}`` floats for logging."""
        out = {"total": float(self.total.detach())}
        out.update({k: float(v.detach()) for k, v in self.terms.items()})
        out.update({f"raw/{k}": float(v.detach()) for k, v in self.raw.items()})
        return out


class TrainingObjective(Protocol):
    """A module that computes one step's loss for ``student``.

    Attributes:
        student: the network being trained (what checkpoints and evaluation use).
        teacher: a frozen network the objective reads, or None. The engine shards it under
            torchrun, puts it in the run's precision and may cache its outputs.
        balanced_sites: batches must cover the training sites evenly (episodic methods).
        auxiliary: modules trained and checkpointed beside the student (KD adapters, DG heads).
    """

    student: nn.Module
    teacher: nn.Module | None
    balanced_sites: bool

    @property
    def auxiliary(self) -> nn.Module: ...

    def trainable_parameters(self) -> Iterator[nn.Parameter]: ...

    def teacher_taps(self) -> list[str]:
        """The teacher's outputs the objective reads (``"logits"`` first, then feature taps);
        empty when it reads none. The teacher-output cache stores exactly these."""
        ...

    def teacher_forward(self, images: Tensor, masks: Tensor) -> SegOutput:
        """The teacher's output on ``images`` (eval mode, no gradient); ``masks`` are there
        for a teacher made from the labels (a control)."""
        ...

    def train(self, mode: bool = True) -> TrainingObjective: ...

    def to(self, device: str) -> TrainingObjective: ...

    def __call__(
        self,
        images: Tensor,
        masks: Tensor,
        *,
        sites: Sequence[str] | None = None,
        teacher_outputs: SegOutput | None = None,
    ) -> StepOutput: ...
