"""The base class of every network in the zoo: what it declares and how its input is checked.

A :class:`SegmentationNetwork` declares, from construction on, its ``in_channels``,
``num_classes`` and ``feature_channels`` (the channels of each feature tap, so that
distillation adapters are sized without a forward pass). Its ``forward`` checks the input's
shape and then runs the network's own :meth:`~SegmentationNetwork.segment`.

The class holds no parameters or buffers: a subclass's ``state_dict`` is that of its own
layers only.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from crossdistill.errors import CrossDistillError
from crossdistill.models.output import SegOutput

#: Every network downsamples by at most 32, so input sides must be multiples of this.
SIDE_MULTIPLE = 32


def _exporting() -> bool:
    return bool(
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_exporting()
    )


def check_input(x: Tensor, in_channels: int, multiple: int = SIDE_MULTIPLE) -> None:
    """Raise :class:`CrossDistillError` unless ``x`` is ``(N, in_channels, H, W)`` with
    ``H`` and ``W`` positive multiples of ``multiple``.

    Only shapes are inspected, never values, and the check is skipped while tracing or
    exporting so that the networks stay ONNX-exportable.
    """
    if _exporting():
        return
    if x.dim() != 4:
        raise CrossDistillError(f"expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    _, c, h, w = (int(s) for s in x.shape)
    if c != in_channels:
        raise CrossDistillError(f"expected {in_channels} input channel(s), got {c}")
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise CrossDistillError(
            f"input height and width must be positive multiples of {multiple}, got {h}x{w}"
        )


class SegmentationNetwork(nn.Module, metaclass=ABCMeta):
    """A network of the zoo: ``(N, in_channels, H, W)`` → :class:`SegOutput`.

    A subclass passes its three declarations to ``__init__`` before it builds any layer and
    implements :meth:`segment`; callers call the module (``forward``), which checks the input
    first.

    Args:
        in_channels: input channels (1 for a slice, 3 for 2.5D).
        num_classes: output classes, the channels of ``SegOutput.logits``.
        feature_channels: channels of each key of ``SegOutput.features`` (at least
            ``"low"`` and ``"high"``).

    Attributes:
        side_multiple: the input's height and width must be positive multiples of this.
    """

    side_multiple: ClassVar[int] = SIDE_MULTIPLE

    def __init__(
        self, in_channels: int, num_classes: int, feature_channels: Mapping[str, int]
    ) -> None:
        super().__init__()
        self.in_channels: int = in_channels
        self.num_classes: int = num_classes
        self.feature_channels: dict[str, int] = dict(feature_channels)

    def forward(self, x: Tensor) -> SegOutput:
        """Check ``x`` (:func:`check_input`), then :meth:`segment` it.

        Raises:
            CrossDistillError: if ``x`` is not 4-D, has other than ``in_channels`` channels,
                or has sides that are not positive multiples of :attr:`side_multiple`.
        """
        check_input(x, self.in_channels, self.side_multiple)
        return self.segment(x)

    @abstractmethod
    def segment(self, x: Tensor) -> SegOutput:
        """The network proper, on an input that :meth:`forward` has checked."""
