"""Skipping optimizer steps whose loss is not finite, without a trace in the network.

A forward pass in training mode already changes the network before any optimizer step:
BatchNorm folds the batch's mean and variance into its running statistics. A batch that
makes the loss NaN (a corrupt slice, an overflow) would leave NaN there, and every later
evaluation would be NaN too. So :class:`NonFiniteGuard` copies the buffers of the modules
in training mode before the forward pass and puts them back when the loss is not finite;
the optimizer is not stepped. Consecutive bad steps are counted across epochs (the count
lives in the run's ``state`` and so in its checkpoints); at ``limit`` the run stops with a
:class:`CrossDistillError`.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from crossdistill.errors import CrossDistillError


class NonFiniteGuard:
    """Guards the steps of one epoch; ``state["bad_streak"]`` carries the count on."""

    def __init__(self, modules: list[nn.Module], state: dict, limit: int) -> None:
        self.buffers = [
            b
            for module in modules
            for m in module.modules()
            if m.training
            for b in m.buffers(recurse=False)
        ]
        self.state = state
        self.limit = limit
        self._saved: list[torch.Tensor] = []

    def before_forward(self) -> None:
        """Remember the buffers the forward pass may change."""
        self._saved = [b.detach().clone() for b in self.buffers]

    def accept(self, loss: torch.Tensor, step: int) -> bool:
        """True for a finite ``loss``; else undo the forward pass's changes, warn, and
        return False (the caller skips the step).

        Raises:
            CrossDistillError: the loss was non-finite ``limit`` steps in a row.
        """
        if bool(torch.isfinite(loss)):
            self.state["bad_streak"] = 0
            return True
        with torch.no_grad():
            for buffer, saved in zip(self.buffers, self._saved, strict=True):
                buffer.copy_(saved)
        streak = self.state["bad_streak"] = self.state.get("bad_streak", 0) + 1
        warnings.warn(f"non-finite loss at step {step}; step skipped", stacklevel=2)
        if streak >= self.limit:
            raise CrossDistillError(
                f"the loss was non-finite for {streak} consecutive steps; stopped "
                "(the last checkpoint is kept)"
            )
        return False
