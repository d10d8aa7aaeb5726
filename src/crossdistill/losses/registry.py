"""Registry of knowledge-distillation terms, by name.

A term is a ``DistillLoss`` (``losses/contract.py``) built from options (what a YAML config
gives) and, when it owns an adapter, from the student's and teacher's channel counts at its
tap. Every term is called the same way, with the two networks' tensors at that tap::

    term(student, teacher, *, target=None, valid=None)

``target`` (the ground-truth labels) is needed by the region terms, ``valid`` (an
``(N, H, W)`` bool pixel gate) accepted by the gateable ones only.

A new method is one loss file plus one ``register_term`` call at the bottom of this file
(as AT, EMKD's region affinity and MSKD's feature filtering and region graph are).
The distiller (``crossdistill.distill``) handles what is common to all
terms: the weight, the tap (``feature``) and the pixel gating options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crossdistill.errors import ConfigError, option_error
from crossdistill.losses.affinity import AffinityLoss
from crossdistill.losses.attention import AttentionMapLoss
from crossdistill.losses.contract import DistillLoss
from crossdistill.losses.filtering import FeatureFilteringLoss
from crossdistill.losses.kernel import KernelMatrixLoss
from crossdistill.losses.logits import LogitsKL
from crossdistill.losses.regions import RegionAffinityLoss, RegionGraphLoss
from crossdistill.paper import AAM_MARGIN, LAMBDA_AAM, LAMBDA_KMM, LAMBDA_LM

#: ``build(student_channels, teacher_channels, **options) -> DistillLoss``
TermBuilder = Callable[..., DistillLoss]


@dataclass(frozen=True)
class TermSpec:
    """One registered KD term.

    Attributes:
        name: the key used in configs (``"aam"``).
        build: ``build(student_channels, teacher_channels, **options)``; the channel counts are
            those of the tap (None for ``"logits"`` or when the model does not declare them).
            A bad value raises ``ValueError``/``TypeError`` whose message starts with the
            option's name, so that the ``ConfigError`` names the option's key.
        options: every option the term accepts, with its default. Any other key is an error.
        default_weight: λ used when a config gives no ``weight`` (for LM, KMM and AAM the
            paper's, from :mod:`crossdistill.paper`).
        default_feature: default tap: ``"logits"`` or a key of ``SegOutput.features``.
        gateable: the loss accepts a pixel gate ``valid`` (confidence / ground-truth gating).
        needs_channels: the builder needs both channel counts (it owns an adapter).
        description: one line for listings.
        taps: ``(options, feature or None) -> (student tap, teacher tap)`` when the taps
            depend on the options (AAM: its ``on`` and ``match``); raises ``ValueError``
            naming a clash. None: both networks are read at ``feature``.
    """

    name: str
    build: TermBuilder
    options: Mapping[str, Any] = field(default_factory=dict)
    default_weight: float = 1.0
    default_feature: str = "logits"
    gateable: bool = False
    needs_channels: bool = False
    description: str = ""
    taps: Callable[[Mapping[str, Any], str | None], tuple[str, str]] | None = None


_REGISTRY: dict[str, TermSpec] = {}


def register_term(spec: TermSpec, *, overwrite: bool = False) -> TermSpec:
    """Add ``spec`` to the registry (``overwrite=True`` to replace an existing name)."""
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"KD term {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def available_terms() -> tuple[str, ...]:
    """Names of the registered terms, sorted."""
    return tuple(sorted(_REGISTRY))


def get_term(name: str, *, key: str | None = None) -> TermSpec:
    """The spec registered as ``name``; ``ConfigError`` naming ``key`` (default ``name``)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            key or name, f"unknown distillation term; known: {', '.join(available_terms())}"
        ) from None


def build_term(
    name: str,
    options: Mapping[str, Any] | None = None,
    student_channels: int | None = None,
    teacher_channels: int | None = None,
    *,
    key: str | None = None,
) -> DistillLoss:
    """Build the term ``name`` with ``options`` (defaults filled in).

    ``key`` is the config path of the term used in error messages (default ``name``);
    an unknown option, a bad value or missing channel counts raise ``ConfigError``.
    """
    key = key or name
    spec = get_term(name, key=key)
    options = dict(options or {})
    for option in options:
        if option not in spec.options:
            allowed = ", ".join(sorted(spec.options)) or "none"
            raise ConfigError(f"{key}.{option}", f"unknown option of '{name}'; allowed: {allowed}")
    if spec.needs_channels and (student_channels is None or teacher_channels is None):
        raise ConfigError(key, f"'{name}' needs the channel counts of its feature on both models")
    merged = {**spec.options, **options}
    try:
        return spec.build(student_channels, teacher_channels, **merged)
    except (TypeError, ValueError) as err:
        raise option_error(key, merged, err) from err


def _affinity_taps(options: Mapping[str, Any], feature: str | None) -> tuple[str, str]:
    """AAM's taps: the student's logits for ``on: probabilities``, a feature map (default
    "high") for ``on: features``; the teacher's logits label the pairs (``match: labels``),
    or the teacher is read where the student is (``match: teacher``)."""
    if options.get("on", "probabilities") == "features":
        if feature == "logits":
            raise ValueError("feature: with on: features AAM reads a feature map, not the logits")
        student = feature or "high"
    elif feature not in (None, "logits"):
        raise ValueError(f"feature: with on: probabilities AAM reads the logits, not {feature!r}")
    else:
        student = "logits"
    return student, student if options.get("match") == "teacher" else "logits"


register_term(
    TermSpec(
        name="lm",
        build=lambda _s, _t, temperature, direction: LogitsKL(temperature, direction),
        options={"temperature": 1.0, "direction": "student||teacher"},
        default_weight=LAMBDA_LM,
        gateable=True,
        description="Logits Module: pixel-averaged KL of the class distributions (eq. 7)",
    )
)
register_term(
    TermSpec(
        name="kmm",
        build=lambda s, t, normalize: KernelMatrixLoss(s, t, normalize=normalize),
        options={"normalize": True},
        default_weight=LAMBDA_KMM,
        default_feature="high",
        needs_channels=True,
        description="Kernel Matrix Module: batch Gram matrices through a 1x1 adapter (eq. 5-6)",
    )
)
register_term(
    TermSpec(
        name="aam",
        build=lambda _s, _t, margin, sizes, adaptive, on, stride, match, fused: AffinityLoss(
            margin, sizes, adaptive, on, stride, match, fused
        ),
        options={
            "margin": AAM_MARGIN,
            "sizes": (1,),
            "adaptive": False,
            "on": "probabilities",
            "stride": 1,
            "match": "labels",
            "fused": False,
        },
        default_weight=LAMBDA_AAM,
        gateable=True,
        description="Adaptive Affinity Module: teacher-labelled pairwise KL affinity (eq. 1-4)",
        taps=_affinity_taps,
    )
)
register_term(
    TermSpec(
        name="at",
        build=lambda _s, _t, power: AttentionMapLoss(power),
        options={"power": 2.0},
        default_feature="high",
        description="Attention transfer: normalised channel-mean |F|^p maps (EMKD's IMD: p=4)",
    )
)
register_term(
    TermSpec(
        name="rad",
        build=lambda _s, _t: RegionAffinityLoss(),
        default_feature="high",
        description="Region affinity (EMKD): cosine affinity of the class region prototypes",
    )
)
register_term(
    TermSpec(
        name="rgd",
        build=lambda _s, _t, order: RegionGraphLoss(order),
        options={"order": 2},
        default_feature="high",
        description="Region graph (MSKD): batch graph of region prototypes, 1st..k-th order",
    )
)
register_term(
    TermSpec(
        name="ffd",
        build=lambda _s, _t: FeatureFilteringLoss(),
        default_feature="high",
        description="Feature filtering (MSKD): attention maps inside each ground-truth region",
    )
)
