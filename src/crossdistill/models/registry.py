"""The model zoo's registry: names → constructors, and roles.

Every constructor takes ``(in_channels, num_classes, width)`` and returns a
:class:`~crossdistill.models.base.SegmentationNetwork`: its ``forward`` returns
:class:`~crossdistill.models.output.SegOutput` and it declares ``feature_channels``
(``{"low": C_low, "high": C_high}``). The paper's Table 1 is :data:`crossdistill.paper.TABLE1`.
"""

from __future__ import annotations

from collections.abc import Callable

from crossdistill.errors import CrossDistillError
from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.deeplabv3plus import DeepLabV3Plus
from crossdistill.models.enet import ENet
from crossdistill.models.erfnet import ERFNet
from crossdistill.models.espnet import ESPNet
from crossdistill.models.unetpp import UNetPlusPlus

ModelFactory = Callable[..., SegmentationNetwork]

#: name → constructor ``(in_channels, num_classes, width) -> SegmentationNetwork``.
MODELS: dict[str, ModelFactory] = {
    "enet": ENet,
    "espnet": ESPNet,
    "erfnet": ERFNet,
    "unetpp": UNetPlusPlus,
    "deeplabv3plus": DeepLabV3Plus,
}

#: The paper's roles: large teachers and lightweight students.
TEACHERS: tuple[str, ...] = ("unetpp", "deeplabv3plus")
STUDENTS: tuple[str, ...] = ("enet", "espnet", "erfnet")

_ALIASES = {
    "unet++": "unetpp",
    "nestedunet": "unetpp",
    "deeplabv3+": "deeplabv3plus",
    "deeplab": "deeplabv3plus",
}


def list_models(role: str | None = None) -> list[str]:
    """Registered model names, optionally only ``"teacher"`` or ``"student"`` ones."""
    if role is None:
        return list(MODELS)
    if role in ("teacher", "teachers"):
        return list(TEACHERS)
    if role in ("student", "students"):
        return list(STUDENTS)
    raise CrossDistillError(f"unknown model role '{role}' (known: teacher, student)")


def canonical_name(name: str) -> str:
    """The registry key of ``name`` (case-insensitive, a few aliases such as ``unet++``)."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise CrossDistillError(
            f"unknown model '{name}' (known models: {', '.join(list_models())})"
        )
    return key


def model_role(name: str) -> str:
    """``"teacher"`` or ``"student"``."""
    return "teacher" if canonical_name(name) in TEACHERS else "student"


def create_model(
    name: str, in_channels: int = 1, num_classes: int = 2, width: float = 1.0
) -> SegmentationNetwork:
    """Build a registered network.

    Args:
        name: a name from :func:`list_models` (case-insensitive; ``unet++``, ``deeplabv3+``
            are accepted too).
        in_channels: input channels (1 for a slice, 3 for 2.5D input).
        num_classes: output classes (2: background, prostate).
        width: channel multiplier; 1 is the paper's network.

    Raises:
        CrossDistillError: for an unknown name (the message lists the known ones), or for a
            non-positive ``in_channels``, ``num_classes`` or ``width``.
    """
    key = canonical_name(name)
    if in_channels < 1 or num_classes < 1:
        raise CrossDistillError(
            f"in_channels and num_classes must be ≥ 1, got {in_channels} and {num_classes}"
        )
    if not width > 0:
        raise CrossDistillError(f"width must be positive, got {width}")
    return MODELS[key](in_channels=in_channels, num_classes=num_classes, width=width)
