"""Small helpers shared by the networks of the zoo: channel scaling and the input check."""

from __future__ import annotations

import torch
from torch import Tensor

from crossdistill.errors import CrossDistillError

#: Every network downsamples by at most 32, so input sides must be multiples of this.
SIDE_MULTIPLE = 32


def scale(channels: int, width: float, minimum: int = 4) -> int:
    """``channels * width`` rounded, at least ``minimum``; exactly ``channels`` at ``width=1``."""
    if width <= 0:
        raise CrossDistillError(f"width must be positive, got {width}")
    if width == 1.0:
        return channels
    return max(minimum, round(channels * width))


def _exporting() -> bool:
    return bool(
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_exporting()
    )


def check_input(x: Tensor, in_channels: int, multiple: int = SIDE_MULTIPLE) -> None:
    """Raise :class:`CrossDistillError` unless ``x`` is ``(N, in_channels, H, W)`` with
    ``H`` and ``W`` multiples of ``multiple``.

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
