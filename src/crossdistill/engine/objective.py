"""What the training loop trains: a student plus the loss that drives it.

The loop (:func:`crossdistill.engine.fit.fit`) needs only this interface, so a distiller
(``crossdistill.distill.Distiller``: teacher + KD terms) and a domain-generalisation method
(``crossdistill.dg``: SAML, DRDG) are trained, checkpointed and resumed by the same code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from torch import Tensor, nn

from crossdistill.distill.distiller import DistillOutput


class TrainingObjective(Protocol):
    """A module that computes one step's loss for ``student``.

    Attributes:
        student: the network being trained (what checkpoints and evaluation use).
        auxiliary: modules trained and checkpointed beside it (KD adapters, DG heads).
        balanced_sites: batches must cover the training sites evenly (episodic methods).
    """

    student: nn.Module
    balanced_sites: bool

    @property
    def auxiliary(self) -> nn.Module: ...

    def trainable_parameters(self) -> Iterator[nn.Parameter]: ...

    def train(self, mode: bool = True) -> TrainingObjective: ...

    def to(self, device: str) -> TrainingObjective: ...

    def __call__(
        self, images: Tensor, masks: Tensor, *, sites: Sequence[str] | None = None
    ) -> DistillOutput: ...
