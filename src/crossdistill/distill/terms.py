"""One configured distillation term: tap + loss module (with its adapter) + weight + gating.

A term's configuration is ``{"weight": λ, "feature": tap, **gating, **loss options}``:

* ``weight`` — λ (default: the registry's, i.e. the paper's value for lm/kmm/aam);
* ``feature`` — the tap both networks are read at (``"logits"`` or a feature name; default:
  the registry's, ``"high"`` for kmm);
* gating (gateable terms only, i.e. lm and aam): ``min_confidence`` (τ) and ``gt_gate``
  (see ``crossdistill.distill.gating``);
* everything else is handed to the loss's registry entry, which rejects unknown options.

Later options common to all terms (loss balancing by the initial magnitude, λ warm-up) belong
here, next to ``weight``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from crossdistill.distill.gating import pixel_gate
from crossdistill.distill.taps import check_tap, read_tap, tap_channels
from crossdistill.errors import ConfigError
from crossdistill.losses.registry import build_term, get_term
from crossdistill.models.output import SegOutput

GATE_OPTIONS = ("min_confidence", "gt_gate")


@dataclass(frozen=True)
class TermWiring:
    """What the distiller does around a loss: its weight, tap and pixel gate."""

    weight: float
    feature: str
    min_confidence: float | None = None
    gt_gate: bool = False

    @property
    def gated(self) -> bool:
        return self.min_confidence is not None or self.gt_gate


def _weight(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"a weight is a finite number, got {value!r}")
    if value < 0:
        raise ConfigError(key, f"a weight is >= 0, got {value!r}")
    return float(value)


def _confidence(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(key, f"a probability threshold in [0, 1] or null, got {value!r}")
    return float(value)


class DistillTerm(nn.Module):
    """A loss module wired to taps, a weight and an optional pixel gate.

    ``forward`` returns the *unweighted* value; ``wiring.weight`` is applied by the distiller.
    """

    def __init__(self, name: str, loss: nn.Module, wiring: TermWiring, gateable: bool):
        super().__init__()
        self.name = name
        self.loss = loss
        self.wiring = wiring
        self.gateable = gateable

    def forward(
        self,
        student: SegOutput,
        teacher: SegOutput,
        target: Tensor | None = None,
        gate_cache: dict[tuple[float | None, bool], Tensor | None] | None = None,
    ) -> Tensor:
        s = read_tap(student, self.wiring.feature)
        t = read_tap(teacher, self.wiring.feature).detach()
        if not self.gateable:
            return self.loss(s, t)
        valid = None
        if self.wiring.gated:
            gate_key = (self.wiring.min_confidence, self.wiring.gt_gate)
            if gate_cache is not None and gate_key in gate_cache:
                valid = gate_cache[gate_key]
            else:
                valid = pixel_gate(
                    teacher.logits.detach(),
                    target,
                    min_confidence=self.wiring.min_confidence,
                    gt_gate=self.wiring.gt_gate,
                )
                if gate_cache is not None:
                    gate_cache[gate_key] = valid
        return self.loss(s, t, valid=valid)

    def extra_repr(self) -> str:
        w = self.wiring
        gate = f", min_confidence={w.min_confidence}, gt_gate={w.gt_gate}" if w.gated else ""
        return f"name={self.name!r}, weight={w.weight}, feature={w.feature!r}{gate}"


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
    spec = get_term(name, key=key)
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ConfigError(key, f"expected a mapping of options, got {options!r}")
    rest = dict(options)
    weight = _weight(rest.pop("weight", spec.default_weight), f"{key}.weight")
    feature = rest.pop("feature", spec.default_feature)
    check_tap(student, feature, role="student", key=f"{key}.feature")
    check_tap(teacher, feature, role="teacher", key=f"{key}.feature")
    gates: dict[str, Any] = {}
    for option in GATE_OPTIONS:
        if option in rest:
            if not spec.gateable:
                raise ConfigError(f"{key}.{option}", f"'{name}' does not support pixel gating")
            gates[option] = rest.pop(option)
    min_confidence = _confidence(gates.get("min_confidence"), f"{key}.min_confidence")
    gt_gate = gates.get("gt_gate", False)
    if not isinstance(gt_gate, bool):
        raise ConfigError(f"{key}.gt_gate", f"expected true or false, got {gt_gate!r}")
    loss = build_term(
        name,
        rest,
        tap_channels(student, feature),
        tap_channels(teacher, feature),
        key=key,
    )
    wiring = TermWiring(weight, feature, min_confidence, gt_gate)
    return DistillTerm(name, loss, wiring, spec.gateable)
