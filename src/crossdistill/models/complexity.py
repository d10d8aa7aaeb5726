"""Model complexity: parameters, FLOPs and CPU/GPU latency, beside the paper's Table 1.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts 2 per
multiply-accumulate of convolutions and matrix products (element-wise work such as BN, ReLU,
bias and pooling is left out). The paper's "FLOPs" are likewise 2 × MACs: they match
FlopCounterMode within 1 % for the networks without transposed convolutions (UNet++,
DeepLabV3+). The paper's profiler, however, counted a transposed convolution at its *output*
resolution (``k² · C_in · C_out`` per output pixel, ``stride²`` times the work actually done,
as e.g. thop's convolution hook does); ERFNet, with three of them, shows it: 14.87 G counted
exactly, 16.43 G counted that way, plus 0.14 G of element-wise work = 16.57 G against the
paper's 16.56 G. So two conventions are offered:

- ``"paper"`` (default) — transposed convolutions at their output resolution: reproduces the
  paper's Table 1 (all five networks within 6 %);
- ``"exact"`` — FlopCounterMode as is, transposed convolutions at their input resolution: the
  multiply-accumulates actually performed (ERFNet 14.87 G, −10.2 % from the paper; ENet
  2.06 G, −6.2 %).

Networks built on the ``meta`` device are counted from shapes alone, without arithmetic.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from crossdistill.errors import CrossDistillError
from crossdistill.models.registry import canonical_name, create_model
from crossdistill.paper import TABLE1

FLOP_CONVENTIONS = ("paper", "exact")

aten = torch.ops.aten


def _conv_flop_at_output(
    x_shape: list[int],
    w_shape: list[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    *args: Any,
    out_shape: list[int] | None = None,
    **kwargs: Any,
) -> int:
    """FlopCounterMode formula counting every convolution at its output resolution."""
    assert out_shape is not None
    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def _input(model: nn.Module, size: int, batch: int, in_channels: int | None) -> torch.Tensor:
    channels = in_channels if in_channels is not None else getattr(model, "in_channels", 1)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.randn(batch, channels, size, size, device=device)


def count_flops(
    model: nn.Module,
    size: int = 384,
    in_channels: int | None = None,
    convention: str = "paper",
) -> int:
    """FLOPs (2 per multiply-accumulate) of one forward pass on a ``1×C×size×size`` input.

    Runs in eval mode under ``no_grad``; the model's train/eval mode is restored. A model
    built on the ``meta`` device (``with torch.device("meta"): ...``) is counted without any
    arithmetic, in well under a second even for the teachers.

    Args:
        model: the network.
        size: input height and width.
        in_channels: input channels; default the model's ``in_channels`` attribute (or 1).
        convention: ``"paper"`` or ``"exact"`` (see the module docstring).
    """
    if convention not in FLOP_CONVENTIONS:
        raise CrossDistillError(
            f"unknown FLOP convention '{convention}' (known: {', '.join(FLOP_CONVENTIONS)})"
        )
    mapping = None
    if convention == "paper":
        mapping = {aten.convolution: _conv_flop_at_output, aten._convolution: _conv_flop_at_output}
    x = _input(model, size, 1, in_channels)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(
    model: nn.Module,
    size: int = 384,
    batch: int = 1,
    warmup: int = 2,
    repeats: int = 10,
    in_channels: int | None = None,
) -> float:
    """Median wall-clock time in milliseconds of one eval-mode forward pass."""
    x = _input(model, size, batch, in_channels)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    was_training = model.training
    model.eval()
    times: list[float] = []
    try:
        with torch.inference_mode():
            for i in range(warmup + max(1, repeats)):
                sync()
                start = time.perf_counter()
                model(x)
                sync()
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1e3)
    finally:
        model.train(was_training)
    return statistics.median(times)


def _rel(value: float, reference: float) -> float:
    return value / reference - 1.0


def complexity_rows(
    size: int = 384,
    latency: bool = False,
    names: list[str] | None = None,
    convention: str = "paper",
    warmup: int = 1,
    repeats: int = 5,
) -> list[dict[str, Any]]:
    """The paper's Table 1 beside ours: one row per network at ``width=1``, 1 input channel,
    2 classes.

    Keys: ``name``, ``params_m``, ``gflops`` (at ``size``², in ``convention``),
    ``paper_params_m``, ``paper_gflops`` (at 384²), ``params_rel_diff``, ``gflops_rel_diff``
    (ours / paper - 1; FLOPs scaled to 384² when ``size`` differs), ``flops_convention`` and,
    with ``latency``, ``latency_ms`` (median of ``repeats`` batch-1 passes at ``size``²).
    """
    rows: list[dict[str, Any]] = []
    for name in names if names is not None else list(TABLE1):
        key = canonical_name(name)
        with torch.device("meta"):  # shapes only: no memory, no arithmetic
            meta_model = create_model(key)
        params = count_parameters(meta_model)
        flops = count_flops(meta_model, size, 1, convention)
        paper = TABLE1[key]
        row: dict[str, Any] = {
            "name": key,
            "params_m": params / 1e6,
            "gflops": flops / 1e9,
            "paper_params_m": paper.params_m,
            "paper_gflops": paper.gflops,
            "params_rel_diff": _rel(params / 1e6, paper.params_m),
            "gflops_rel_diff": _rel(flops / 1e9 * (384 / size) ** 2, paper.gflops),
            "flops_convention": convention,
        }
        if latency:
            row["latency_ms"] = measure_latency(create_model(key), size, 1, warmup, repeats)
        rows.append(row)
    return rows
