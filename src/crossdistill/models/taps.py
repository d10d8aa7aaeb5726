"""Taps: where a distillation term reads its tensors from a network's ``SegOutput``.

A tap is a name: ``"logits"`` (the ``(N, K, H, W)`` class scores) or a key of
``SegOutput.features`` (``"low"`` at 1/2, ``"high"`` at 1/8 resolution, or any other key a
network provides). Channel counts come from what the model declares, so adapters are sized
without a forward pass: a :class:`~crossdistill.models.base.SegmentationNetwork`'s
``num_classes`` and ``feature_channels``; any other module (a test stand-in, a control
teacher) is read for attributes of those names and, lacking them, declares nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from crossdistill.errors import ConfigError
from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.output import SegOutput

LOGITS = "logits"


def read_tap(output: SegOutput, name: str) -> Tensor:
    """The tensor at tap ``name`` of ``output``."""
    if name == LOGITS:
        return output.logits
    try:
        return output.features[name]
    except KeyError:
        known = ", ".join([LOGITS, *output.features]) or LOGITS
        raise KeyError(f"the network produced no feature {name!r}; it has: {known}") from None


def _declared(model: nn.Module) -> tuple[int | None, Mapping[str, int] | None]:
    """``(num_classes, feature_channels)`` that ``model`` declares; None for what it does not.

    A :class:`SegmentationNetwork` declares both; another module is read for attributes of
    those names.
    """
    if isinstance(model, SegmentationNetwork):
        return model.num_classes, model.feature_channels
    return getattr(model, "num_classes", None), getattr(model, "feature_channels", None)


def tap_channels(model: nn.Module | None, name: str) -> int | None:
    """Channels at tap ``name`` that ``model`` declares (None if it declares none)."""
    if model is None:
        return None
    classes, channels = _declared(model)
    if name == LOGITS:
        return int(classes) if classes is not None else None
    if channels is None:
        return None
    return int(channels[name]) if name in channels else None


def check_tap(model: nn.Module, name: str, *, role: str, key: str) -> None:
    """``ConfigError`` at ``key`` if ``model`` declares its features and lacks ``name``."""
    if not isinstance(name, str):
        raise ConfigError(key, f"a feature name is a string, got {name!r}")
    _, channels = _declared(model)
    if name == LOGITS or channels is None or name in channels:
        return
    known = ", ".join([LOGITS, *channels])
    raise ConfigError(key, f"the {role} has no feature {name!r}; it has: {known}")
