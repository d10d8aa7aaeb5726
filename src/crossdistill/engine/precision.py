"""Numeric precision and memory layout of a training run: autocast, grad scaling, channels-last,
``torch.compile`` (config keys ``train.precision``, ``train.channels_last``, ``train.compile``).

* ``fp32``: no autocast, plain ``loss.backward(); optimizer.step()`` — the reference path.
* ``bf16``: ``torch.autocast(device, bfloat16)``; bf16 has fp32's exponent range, so no
  gradient scaling is needed.
* ``fp16``: ``torch.autocast(device, float16)`` with ``torch.amp.GradScaler``: the loss is
  multiplied by a scale ``s`` before backward, gradients are unscaled before the step, a step
  whose gradients hold inf/NaN is skipped and ``s`` halves; after 2000 clean steps ``s``
  doubles. The scaler's state is saved with the training state, so a resumed run goes on
  with the same scale.
* ``auto``: on CUDA, the precision measured fastest for the trained network
  (:data:`AUTO_CUDA_PRECISION`: fp32 for ENet, which is launch-bound and only gains casts
  from autocast), else bf16 where the GPU supports it and fp16 where not; fp32 on the CPU.

``train.compile`` compiles the networks with ``torch.compile``: ``true`` (or ``default``),
``reduce-overhead`` (CUDA graphs: the step's kernels are launched as one graph, which is
what a launch-bound student needs; the training loader drops incomplete batches, so shapes
are static) or ``max-autotune``; off by default.

The forward pass of the whole objective runs under the autocast context, so a distiller's
frozen teacher (run under ``torch.no_grad()``) uses the same precision as the student.
A loss that is already non-finite before backward is skipped by the training loop itself
(``engine.fit``); the scaler only ever sees finite losses and handles overflowing gradients.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from crossdistill.engine.objective import TrainingObjective
from crossdistill.errors import ConfigError, compile_failure

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")

#: ``auto`` on CUDA for the networks whose training step was timed in each precision
#: (BENCHMARKS.md, "GPU check", H100: ENet 381 slices/s in fp32, 331 in bf16; UNet++ 44 in
#: fp32, 54 in bf16, 88 with channels-last). Networks not listed get bf16 (fp16 without it).
AUTO_CUDA_PRECISION = {"enet": "fp32", "unetpp": "bf16"}


def device_type(device: str | torch.device) -> str:
    """``"cuda"`` for ``cuda``/``cuda:1``, ``"cpu"`` for ``cpu``."""
    return torch.device(device).type


def resolve_precision(name: str, device: str | torch.device, network: str | None = None) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for the configured ``name`` on ``device`` (module doc);
    ``auto`` on CUDA looks ``network`` (the trained network's registry name) up in
    :data:`AUTO_CUDA_PRECISION`.

    Raises:
        ConfigError: an unknown name, or bf16 asked for on a GPU without bfloat16 support.
    """
    kind = device_type(device)
    if name == "auto":
        if kind != "cuda":
            return "fp32"
        bf16 = torch.cuda.is_bf16_supported()
        measured = AUTO_CUDA_PRECISION.get(network or "")
        if measured == "fp32" or (measured == "bf16" and bf16):
            return measured
        return "bf16" if bf16 else "fp16"
    if name not in DTYPES:
        raise ConfigError("train.precision", f"expected auto, fp32, bf16 or fp16, got {name!r}")
    if name == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision", "this GPU does not support bfloat16; use fp16")
    return name


def resolve_compile(value: bool | str) -> str | None:
    """``train.compile``: ``false`` → None, ``true`` → ``default``, or one of
    :data:`COMPILE_MODES`."""
    if value is False:
        return None
    if value is True:
        return "default"
    if value not in COMPILE_MODES:
        raise ConfigError("train.compile", f"expected true, false or one of {COMPILE_MODES}")
    return str(value)


def resolve_channels_last(value: bool | str, device: str | torch.device) -> bool:
    """``train.channels_last``: ``auto`` means on for CUDA, off on the CPU."""
    return device_type(device) == "cuda" if value == "auto" else bool(value)


@dataclass
class Precision:
    """How a training step runs numerically (see the module doc).

    Args:
        name: ``fp32``, ``bf16`` or ``fp16`` (already resolved, see :func:`resolve_precision`).
        device: where the step runs.
        channels_last: convert the networks and the input batches to channels-last.
        compile: ``torch.compile`` mode for the student and the teacher, compiled in place
            (state-dict keys stay); None: not compiled.
    """

    name: str = "fp32"
    device: str = "cpu"
    channels_last: bool = False
    compile: str | None = None
    scaler: torch.amp.GradScaler | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.name not in DTYPES:
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {self.name!r}")
        if self.name == "fp16":
            self.scaler = torch.amp.GradScaler(device_type(self.device))

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for fp32."""
        return DTYPES[self.name]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context the forward pass (student, teacher, losses) runs in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type(self.device), dtype=self.dtype)

    def prepare(self, objective: TrainingObjective) -> TrainingObjective:
        """Convert ``objective`` (already on its device) to channels-last and compile its
        networks (``student``, and ``teacher`` when it has one), in place."""
        if self.channels_last:
            objective.to(memory_format=torch.channels_last)
        if self.compile:
            for module in _networks(objective):
                module.compile(mode=self.compile, dynamic=False)
        return objective

    @contextlib.contextmanager
    def compile_errors(self) -> Iterator[None]:
        """Around training: with ``compile`` set, a network that ``torch.compile`` cannot
        build on this machine ends in one ``ConfigError`` on ``train.compile`` instead of
        Inductor's traceback at the first step."""
        if not self.compile:
            yield
            return
        from torch._dynamo.exc import BackendCompilerFailed

        try:
            yield
        except BackendCompilerFailed as err:
            raise compile_failure("train.compile", "the networks", err) from None

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """The input batch in the networks' memory format."""
        if self.channels_last and images.dim() == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> bool:
        """Backward ``loss`` and step ``optimizer`` (then ``scheduler``, every iteration).

        Returns False when the grad scaler skipped the optimizer step (inf/NaN gradients at
        the current scale); the schedule still advances, as it counts iterations.
        """
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            stepped = True
        else:
            scale = self.scaler.get_scale()
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
            stepped = self.scaler.get_scale() >= scale
        if scheduler is not None:
            with warnings.catch_warnings():
                # a skipped first step makes the scheduler believe optimizer.step was never run
                warnings.filterwarnings(
                    "ignore", "Detected call of `lr_scheduler.step", UserWarning
                )
                scheduler.step()
        return stepped

    def state_dict(self) -> dict[str, Any] | None:
        """The scaler's state (JSON-able), None without a scaler."""
        return None if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`; a missing state leaves a fresh scaler."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def _networks(objective: TrainingObjective) -> Iterator[nn.Module]:
    """The student, and the teacher when it is a PyTorch network (an ONNX teacher has no
    parameters and runs in ONNX Runtime: nothing to compile)."""
    yield objective.student
    teacher = objective.teacher
    if teacher is not None and next(teacher.parameters(), None) is not None:
        yield teacher
