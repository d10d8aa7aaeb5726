"""The distiller: frozen teacher + student + configured KD terms (paper eq. 8).

    L = L_seg + Σ_k λ_k · L_k            (paper preset: λ_LM = 0.2, λ_KM = 0.9, λ_AA = 0.9)

``L_seg`` (``crossdistill.losses.segmentation_loss``, weight 1) is always included; the KD
terms come from a mapping ``name -> {"weight": λ, **options}`` (see ``distill.terms`` and
``distill.presets``). The teacher is frozen (``requires_grad_(False)``), kept in eval mode
whatever ``train()`` is called with (its BatchNorm statistics never move) and run under
``torch.no_grad()``. The adapters belong to the terms, which are submodules of the
distiller, so they are saved and trained together with the student. ``state_dict()`` holds
the teacher as well (so that ``.to()`` moves it); a student checkpoint is
``distiller.student`` plus ``distiller.kd_terms``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from crossdistill.distill.controls import teacher_output
from crossdistill.distill.terms import DistillTerm, GateKey, build_distill_term
from crossdistill.engine.objective import SEG, StepOutput
from crossdistill.errors import ConfigError
from crossdistill.losses.segmentation import segmentation_loss
from crossdistill.models.output import SegOutput
from crossdistill.models.taps import LOGITS


class Distiller(nn.Module):
    """Teacher–student distillation with configurable terms.

    Args:
        teacher: the trained teacher returning ``SegOutput``; may be None only without KD
            terms (the "w/o" baseline).
        student: the student returning ``SegOutput``.
        terms: ``{name: {"weight": λ, **options}}``; None or {} = segmentation loss only.
        key_prefix: config path of ``terms`` used in error messages.

    Raises:
        ConfigError: an unknown term, option or feature, or a bad value.
    """

    def __init__(
        self,
        teacher: nn.Module | None,
        student: nn.Module,
        terms: Mapping[str, Mapping[str, Any] | None] | None = None,
        *,
        key_prefix: str = "terms",
    ) -> None:
        super().__init__()
        terms = dict(terms or {})
        if SEG in terms:
            raise ConfigError(f"{key_prefix}.{SEG}", "the segmentation loss is always included")
        if terms and teacher is None:
            raise ConfigError(key_prefix, "distillation terms need a teacher")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
        self.kd_terms = nn.ModuleDict(
            {
                name: build_distill_term(name, opts, student, teacher, key_prefix=key_prefix)
                for name, opts in terms.items()
            }
        )

    @property
    def term_weights(self) -> dict[str, float]:
        """``{"seg": 1.0, name: λ, ...}``."""
        weights = {SEG: 1.0}
        weights.update({name: term.wiring.weight for name, term in self._terms()})
        return weights

    def _terms(self) -> Iterator[tuple[str, DistillTerm]]:
        for name, term in self.kd_terms.items():
            assert isinstance(term, DistillTerm)
            yield name, term

    def train(self, mode: bool = True) -> Distiller:
        """Set the student and adapters to ``mode``; the teacher always stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    #: the engine's sampler may draw batches freely (no site-balanced episodes needed)
    balanced_sites = False

    @property
    def auxiliary(self) -> nn.Module:
        """What is trained and checkpointed beside the student: the terms' adapters."""
        return self.kd_terms

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The student's parameters, then the terms' (adapters, adaptive AAM weights)."""
        yield from self.student.parameters()
        yield from self.kd_terms.parameters()

    @torch.no_grad()
    def teacher_forward(self, images: Tensor, masks: Tensor | None = None) -> SegOutput:
        """The teacher's output on ``images`` (eval mode, no gradient); a control teacher
        built from the labels (``distill.controls``) also gets ``masks``."""
        if self.teacher is None:
            raise RuntimeError("this distiller has no teacher")
        self.teacher.eval()
        return teacher_output(self.teacher, images, masks)

    def teacher_taps(self) -> list[str]:
        """``"logits"`` and every feature tap the KD terms read from the teacher; empty
        without a teacher or terms (what the teacher-output cache stores)."""
        if self.teacher is None or not len(self.kd_terms):
            return []
        features = {term.wiring.teacher_tap for _, term in self._terms()} - {LOGITS}
        return [LOGITS, *sorted(features)]

    def forward(
        self,
        images: Tensor,
        masks: Tensor,
        *,
        sites: Sequence[str] | None = None,
        teacher_outputs: SegOutput | None = None,
    ) -> StepOutput:
        """Loss terms of one batch.

        Args:
            images: ``(N, C, H, W)`` student input (the teacher sees the same images).
            masks: ``(N, H, W)`` or ``(N, 1, H, W)`` ground-truth labels.
            sites: the site of each image; unused here (the training objectives of
                ``crossdistill.dg`` share this signature and need them).
            teacher_outputs: precomputed teacher ``SegOutput`` for these images (e.g. from a
                cache); it is detached. If None the teacher is run when a term needs it.
        """
        student_out: SegOutput = self.student(images)
        seg = segmentation_loss(student_out.logits, masks)
        raw: dict[str, Tensor] = {SEG: seg}
        weighted: dict[str, Tensor] = {SEG: seg}
        if len(self.kd_terms):
            if teacher_outputs is None:
                teacher_outputs = self.teacher_forward(images, masks)
            teacher_outputs = SegOutput(
                teacher_outputs.logits.detach(),
                {k: v.detach() for k, v in teacher_outputs.features.items()},
            )
            gate_cache: dict[GateKey, Tensor | None] = {}
            for name, term in self._terms():
                value = term(student_out, teacher_outputs, masks, gate_cache)
                raw[name] = value
                weighted[name] = term.weighted(value)
        return StepOutput.from_terms(
            raw,
            weighted,
            student_out.logits,
            None if teacher_outputs is None else teacher_outputs.logits,
        )
