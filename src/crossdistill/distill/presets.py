"""Method presets: the KD-term configurations of the paper's experiments and baselines.

* ``ours`` — the paper's full method (eq. 8, λ = 0.2 / 0.9 / 0.9, margin 3, KMM on the
  "high" features; the numbers are read from :mod:`crossdistill.paper`); ``none`` — the
  "w/o" baseline (segmentation loss only);
* ``lm`` … ``aam+kmm+lm`` — the rows of the ablation (Table 3), each with the paper's weights
  for the terms it has; names made of "+"-joined terms are accepted in any order;
* the distillation baselines of Table 4:

  - ``kd`` (Hinton et al. 2015): KL(p_t‖p_s) of the logits softened at T = 4, × T², λ = 0.5;
  - ``at`` (Zagoruyko & Komodakis 2017): attention maps (p = 2) on the low and high features,
    β = 0.5 each. The original uses β = 1000 on ½·(pixel mean of the squared difference);
    the ``at`` loss here sums over pixels, so the original's weight on its 32×32 maps is
    1000 / (2·1024) ≈ 0.5;
  - ``emkd`` (Qin et al. 2021): prediction maps (KL at T = 4, λ = 0.1), importance maps (the
    attention loss with p = 4, λ = 0.9) and region affinity (λ = 0.9), the last two on the
    low and high features;
  - ``mskd`` (Zhao et al. 2023): feature filtering and region graph distillation on the low
    and high features, λ = 1 each (the paper does not state its weights);

* ``recommended`` — this project's recipe (docs/distillation-study.md): the paper's KMM
  (λ = 0.9) and LM (λ = 0.2) without AAM, LM gated to the pixels where the teacher's label
  equals the student's ground truth. Chosen on the synthetic sites' validation splits: every
  variant that kept AAM (gated, balanced or warmed up) collapsed like the paper preset.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from crossdistill.errors import ConfigError
from crossdistill.paper import AAM_MARGIN, LAMBDA_AAM, LAMBDA_KMM, LAMBDA_LM

_PAPER_TERMS: dict[str, dict[str, Any]] = {
    "aam": {"weight": LAMBDA_AAM, "margin": AAM_MARGIN},
    "kmm": {"weight": LAMBDA_KMM, "feature": "high"},
    "lm": {"weight": LAMBDA_LM},
}

_ABLATION = ("lm", "aam", "kmm", "kmm+lm", "aam+lm", "aam+kmm", "aam+kmm+lm")


def _on_low_and_high(prefix: str, options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{prefix}_{tap}": {**options, "feature": tap} for tap in ("low", "high")}


_SOFT_KL = {"loss": "lm", "temperature": 4.0, "direction": "teacher||student"}

BASELINES: dict[str, dict[str, dict[str, Any]]] = {
    "kd": {"kd": {**_SOFT_KL, "weight": 0.5}},
    "at": _on_low_and_high("at", {"loss": "at", "power": 2.0, "weight": 0.5}),
    "emkd": {
        "pmd": {**_SOFT_KL, "weight": 0.1},
        **_on_low_and_high("imd", {"loss": "at", "power": 4.0, "weight": 0.9}),
        **_on_low_and_high("rad", {"loss": "rad", "weight": 0.9}),
    },
    "mskd": {
        **_on_low_and_high("ffd", {"loss": "ffd", "weight": 1.0}),
        **_on_low_and_high("rgd", {"loss": "rgd", "weight": 1.0}),
    },
}
"""Term configurations of the distillation baselines (module doc)."""

RECOMMENDED: dict[str, dict[str, Any]] = {
    "kmm": dict(_PAPER_TERMS["kmm"]),
    "lm": {**_PAPER_TERMS["lm"], "gt_gate": True},
}
"""Term configuration of the ``recommended`` preset (module doc)."""

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "none": {},
    "ours": {t: _PAPER_TERMS[t] for t in ("aam", "kmm", "lm")},
    **{name: {t: _PAPER_TERMS[t] for t in name.split("+")} for name in _ABLATION},
    **BASELINES,
    "recommended": RECOMMENDED,
}


def resolved_terms(
    preset: str, changes: Mapping[str, Mapping[str, Any] | None] | None = None
) -> dict[str, dict[str, Any]]:
    """The terms of ``preset`` with ``changes`` (a config's ``distill.terms``) merged over
    them, option by option; a term whose weight is 0 is dropped.

    Raises:
        ConfigError: unknown preset.
    """
    terms = preset_terms(preset)
    for name, options in (changes or {}).items():
        terms[name] = {**terms.get(name, {}), **(options or {})}
    return {name: opts for name, opts in terms.items() if opts.get("weight", 1.0) != 0}


def preset_names() -> tuple[str, ...]:
    """Every preset name."""
    return tuple(PRESETS)


def preset_terms(name: str) -> dict[str, dict[str, Any]]:
    """The ``terms`` mapping of preset ``name`` (a fresh copy, safe to modify).

    Raises:
        ConfigError: unknown preset; the message lists the known names.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if isinstance(key, str) and key not in PRESETS and "+" in key:
        key = "+".join(sorted(part.strip() for part in key.split("+")))
    if key not in PRESETS:
        raise ConfigError("distill.preset", f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[key])
