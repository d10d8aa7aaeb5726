"""One configured distillation term: tap + loss module (with its adapter) + weight + gating.

A term's configuration is ``{"loss": name, "weight": λ, "feature": tap, **gating, **options}``:

* ``loss`` — the registered loss (default: the term's own name), so that one loss can serve
  several terms, e.g. ``at_low: {loss: at, feature: low}`` and ``at_high: {loss: at}``;
* ``weight`` — λ (default: the registry's, i.e. the paper's value for lm/kmm/aam);
* ``feature`` — the tap both networks are read at (``"logits"`` or a feature name; default:
  the registry's, ``"high"`` for kmm);
* gating (gateable terms only, i.e. lm and aam): ``min_confidence`` (τ), ``gt_gate`` and
  ``min_teacher_dice`` (see ``crossdistill.distill.gating``);
* ``balance_steps`` — loss balancing: with ``B > 0`` the term is divided by its mean raw value
  over its first ``B`` training steps (a running mean while they last), so every balanced
  term starts at λ whatever its scale: ``λ · L / mean(L_1..L_B)``;
* ``warmup_steps`` — a linear ramp of λ: ``λ · min(1, t / W)`` at training step t = 1, 2, …;
* everything else is handed to the loss's registry entry, which rejects unknown options.

The step counter and the initial magnitude are buffers of the term, so they are saved in
checkpoints and a resumed run goes on with the same effective weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from crossdistill.distill.gating import pixel_gate
from crossdistill.errors import ConfigError
from crossdistill.losses.registry import build_term, get_term
from crossdistill.models.output import SegOutput
from crossdistill.models.taps import LOGITS, check_tap, read_tap, tap_channels

GATE_OPTIONS = ("min_confidence", "gt_gate", "min_teacher_dice")
SCHEDULE_OPTIONS = ("balance_steps", "warmup_steps")

GateKey = tuple[float | None, bool, float | None]


@dataclass(frozen=True)
class TermWiring:
    """What the distiller does around a loss: its weight and schedule, tap and pixel gate."""

    weight: float
    feature: str
    min_confidence: float | None = None
    gt_gate: bool = False
    min_teacher_dice: float | None = None
    balance_steps: int = 0
    warmup_steps: int = 0
    teacher_feature: str | None = None  # None: the teacher is read at ``feature`` too

    @property
    def teacher_tap(self) -> str:
        """Where the teacher is read."""
        return self.teacher_feature or self.feature

    @property
    def gate_key(self) -> GateKey:
        return (self.min_confidence, self.gt_gate, self.min_teacher_dice)

    @property
    def gated(self) -> bool:
        return self.gate_key != (None, False, None)


def _weight(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"a weight is a finite number, got {value!r}")
    if value < 0:
        raise ConfigError(key, f"a weight is >= 0, got {value!r}")
    return float(value)


def _fraction(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(key, f"a threshold in [0, 1] or null, got {value!r}")
    return float(value)


def _steps(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(key, f"a number of steps >= 0, got {value!r}")
    return value


class DistillTerm(nn.Module):
    """A loss module wired to taps, a weight and an optional pixel gate.

    ``forward`` returns the *unweighted* value; ``wiring.weight`` is applied by the distiller.
    """

    def __init__(
        self,
        name: str,
        loss: nn.Module,
        wiring: TermWiring,
        gateable: bool,
    ):
        super().__init__()
        self.name = name
        self.loss = loss
        self.wiring = wiring
        self.gateable = gateable
        if wiring.balance_steps or wiring.warmup_steps:
            self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        if wiring.balance_steps:
            self.register_buffer("initial", torch.zeros((), dtype=torch.float64))

    def weighted(self, value: Tensor) -> Tensor:
        """``λ_eff · value`` (module doc); advances the step counter in training mode."""
        w = self.wiring
        weight = torch.as_tensor(w.weight, dtype=value.dtype, device=value.device)
        if not (w.balance_steps or w.warmup_steps):
            return weight * value
        step = int(self.steps)
        if w.warmup_steps:
            weight = weight * min(1.0, (step + 1) / w.warmup_steps)
        if w.balance_steps:
            if self.training and step < w.balance_steps and bool(torch.isfinite(value)):
                self.initial.mul_(step / (step + 1)).add_(value.detach().double() / (step + 1))
            weight = weight / self.initial.clamp_min(1e-12).to(value.dtype)
        if self.training:
            self.steps.add_(1)
        return weight * value

    def forward(
        self,
        student: SegOutput,
        teacher: SegOutput,
        target: Tensor | None = None,
        gate_cache: dict[GateKey, Tensor | None] | None = None,
    ) -> Tensor:
        """The unweighted loss between the two networks' taps; ``teacher`` is detached (the
        distiller's job), ``target`` the ground-truth labels (region terms, the GT gate)."""
        s = read_tap(student, self.wiring.feature)
        t = read_tap(teacher, self.wiring.teacher_tap)
        valid = None
        if self.wiring.gated:
            gate_key = self.wiring.gate_key
            if gate_cache is not None and gate_key in gate_cache:
                valid = gate_cache[gate_key]
            else:
                valid = pixel_gate(
                    teacher.logits,
                    target,
                    min_confidence=self.wiring.min_confidence,
                    gt_gate=self.wiring.gt_gate,
                    min_teacher_dice=self.wiring.min_teacher_dice,
                )
                if gate_cache is not None:
                    gate_cache[gate_key] = valid
        return self.loss(s, t, target=target, valid=valid)

    def extra_repr(self) -> str:
        w = self.wiring
        text = f"name={self.name!r}, weight={w.weight}, feature={w.feature!r}"
        if w.gated:
            text += f", min_confidence={w.min_confidence}, gt_gate={w.gt_gate}"
            text += f", min_teacher_dice={w.min_teacher_dice}"
        if w.balance_steps or w.warmup_steps:
            text += f", balance_steps={w.balance_steps}, warmup_steps={w.warmup_steps}"
        return text


def _taps(spec: Any, options: Mapping[str, Any], feature: str | None, key: str) -> tuple[str, str]:
    """(student tap, teacher tap) of a term: its spec's ``taps`` given its options, else
    ``feature`` (default: the spec's) for both; a clash is a ``ConfigError`` at ``key.feature``."""
    if spec.taps is None:
        tap = feature if feature is not None else spec.default_feature
        return tap, tap
    try:
        return spec.taps(options, feature)
    except ValueError as err:
        raise ConfigError(f"{key}.feature", str(err).removeprefix("feature: ")) from None


def reads_teacher_logits(name: str, options: Mapping[str, Any] | None) -> bool:
    """Whether the term configured as ``name: options`` reads the teacher's logits: where its
    teacher tap is ``logits`` (LM; AAM, whose teacher labels its pairs, unless ``match:
    teacher`` on features), or through a pixel gate, which the teacher's logits decide. A term
    that does not sees the teacher's features only. Options are not checked here.

    Raises:
        ConfigError: an unknown term, or taps that clash (named).
    """
    rest = dict(options or {})
    key = f"distill.terms.{name}"
    spec = get_term(rest.pop("loss", name), key=key)
    _, teacher_tap = _taps(spec, rest, rest.pop("feature", None), key)
    gated = rest.get("gt_gate") is True or any(
        rest.get(option) is not None for option in ("min_confidence", "min_teacher_dice")
    )  # as TermWiring.gated: a threshold of 0 is a gate too
    return teacher_tap == LOGITS or gated


def build_distill_term(
    name: str,
    options: Mapping[str, Any] | None,
    student: nn.Module,
    teacher: nn.Module,
    *,
    key_prefix: str = "terms",
) -> DistillTerm:
    """Parse one term's configuration and build it (adapters sized from ``feature_channels``).

    Raises:
        ConfigError: unknown term or option, or a bad value; the message names the key.
    """
    key = f"{key_prefix}.{name}" if key_prefix else name
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ConfigError(key, f"expected a mapping of options, got {options!r}")
    rest = dict(options)
    loss_name = rest.pop("loss", name)
    spec = get_term(loss_name, key=f"{key}.loss" if loss_name != name else key)
    weight = _weight(rest.pop("weight", spec.default_weight), f"{key}.weight")
    feature, teacher_tap = _taps(spec, rest, rest.pop("feature", None), key)
    check_tap(student, feature, role="student", key=f"{key}.feature")
    check_tap(teacher, teacher_tap, role="teacher", key=f"{key}.feature")
    gates: dict[str, Any] = {}
    for option in GATE_OPTIONS:
        if option in rest:
            if not spec.gateable:
                raise ConfigError(f"{key}.{option}", f"'{loss_name}' does not support pixel gating")
            gates[option] = rest.pop(option)
    min_confidence = _fraction(gates.get("min_confidence"), f"{key}.min_confidence")
    min_teacher_dice = _fraction(gates.get("min_teacher_dice"), f"{key}.min_teacher_dice")
    gt_gate = gates.get("gt_gate", False)
    if not isinstance(gt_gate, bool):
        raise ConfigError(f"{key}.gt_gate", f"expected true or false, got {gt_gate!r}")
    schedule = {o: _steps(rest.pop(o, 0), f"{key}.{o}") for o in SCHEDULE_OPTIONS}
    loss = build_term(
        loss_name,
        rest,
        tap_channels(student, feature),
        tap_channels(teacher, feature),
        key=key,
    )
    wiring = TermWiring(
        weight,
        feature,
        min_confidence,
        gt_gate,
        min_teacher_dice,
        **schedule,
        teacher_feature=None if teacher_tap == feature else teacher_tap,
    )
    return DistillTerm(name, loss, wiring, spec.gateable)
