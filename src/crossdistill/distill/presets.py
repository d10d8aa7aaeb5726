"""Method presets: the KD-term configurations of the paper's experiments.

``ours`` is the paper's full method (eq. 8, λ = 0.2 / 0.9 / 0.9, margin 3, KMM on the "high"
features); ``none`` is the "w/o" baseline (segmentation loss only); ``lm`` … ``aam+kmm+lm`` are
the rows of the ablation (Table 3), each with the paper's weights for the terms it has.
Names made of "+"-joined terms are accepted in any order (``lm+aam`` = ``aam+lm``).
"""

from __future__ import annotations

import copy
from typing import Any

from crossdistill.errors import ConfigError

_PAPER_TERMS: dict[str, dict[str, Any]] = {
    "aam": {"weight": 0.9, "margin": 3.0},
    "kmm": {"weight": 0.9, "feature": "high"},
    "lm": {"weight": 0.2},
}

_ABLATION = ("lm", "aam", "kmm", "kmm+lm", "aam+lm", "aam+kmm", "aam+kmm+lm")

PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "ours": ("aam", "kmm", "lm"),
    **{name: tuple(name.split("+")) for name in _ABLATION},
}


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
        raise ConfigError("method", f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return {term: copy.deepcopy(_PAPER_TERMS[term]) for term in PRESETS[key]}
