"""Training methods by name: the distiller and the baselines a student can be trained with.

``supervised`` is training on the pooled source sites with the segmentation loss and, when
a teacher is given, the configured KD terms (the ``Distiller``: teachers, the "w/o" student
and every distilled student); ``saml`` and ``drdg`` are the domain-generalisation baselines of the
paper's Table 4. A new method is one module that implements the engine's
``TrainingObjective`` (``crossdistill.engine.objective``) plus one entry here. The registry
sits above both ``distill`` and ``dg`` so that neither they nor the engine depend on each
other (docs/design.md §8).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from crossdistill.dg.drdg import DRDG
from crossdistill.dg.saml import SAML
from crossdistill.distill.distiller import Distiller
from crossdistill.errors import ConfigError, option_error

#: ``build(student, sites, in_channels, **options) -> objective``
MethodBuilder = Callable[..., nn.Module]

METHODS: dict[str, MethodBuilder] = {
    "supervised": lambda student, _sites, _channels, teacher=None, terms=None: Distiller(
        teacher, student, terms, key_prefix="distill.terms"
    ),
    "saml": lambda student, _sites, _channels, **options: SAML(student, **options),
    "drdg": lambda student, sites, channels, **options: DRDG(student, sites, channels, **options),
}
_OPTIONS: dict[str, type] = {"supervised": Distiller, "saml": SAML, "drdg": DRDG}
_NOT_OPTIONS = {"self", "student", "teacher", "terms", "sites", "in_channels", "key_prefix"}


def method_names() -> tuple[str, ...]:
    """Every training method's name."""
    return tuple(METHODS)


def method_options(name: str) -> dict[str, Any]:
    """The options of method ``name`` with their defaults."""
    signature = inspect.signature(_OPTIONS[name].__init__)
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.name not in _NOT_OPTIONS and p.default is not inspect.Parameter.empty
    }


def create_objective(
    name: str,
    student: nn.Module,
    sites: Sequence[str],
    in_channels: int,
    options: Mapping[str, Any] | None = None,
    *,
    teacher: nn.Module | None = None,
    terms: Mapping[str, Any] | None = None,
    key: str = "train.method_options",
) -> nn.Module:
    """Build the training objective ``name`` for ``student`` on ``sites``.

    ``teacher`` and the KD ``terms`` go to ``supervised`` (the distiller); the other methods
    train without a teacher.

    Raises:
        ConfigError: unknown method or option, a teacher given to a teacherless method, or a
            bad value (the key is named).
    """
    if name not in METHODS:
        raise ConfigError("train.method", f"unknown method {name!r}; known: {', '.join(METHODS)}")
    options = dict(options or {})
    allowed = method_options(name)
    for option in options:
        if option not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"{key}.{option}", f"unknown option of '{name}'; allowed: {known}")
    if name == "supervised":
        options = {"teacher": teacher, "terms": terms, **options}
    elif teacher is not None or terms:
        raise ConfigError("train.method", f"'{name}' trains without a teacher (no distill)")
    try:
        return METHODS[name](student, list(sites), in_channels, **options)
    except (TypeError, ValueError) as err:
        raise option_error(key, options, err) from err
