"""Optimizer and per-iteration learning-rate schedule from the run configuration.

Paper preset: Adam, ``CyclicLR`` stepped every iteration between ``base_lr = 1e-6`` and
``max_lr = 1e-2`` with ``step_size = 2000`` iterations per half cycle, ``triangular2``
(the amplitude halves every cycle) and ``cycle_momentum=False`` (Adam has no momentum
parameter to cycle).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import CyclicLR, LambdaLR, LRScheduler

from crossdistill.config import OptimizerConfig, ScheduleConfig


def make_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig
) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum 0.9) over ``params``."""
    params = [p for p in params if p.requires_grad]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig) -> LRScheduler:
    """The per-iteration schedule; call ``step()`` after every optimizer step."""
    if cfg.name == "constant":
        return LambdaLR(optimizer, lambda _: 1.0)
    return CyclicLR(
        optimizer,
        base_lr=cfg.base_lr,
        max_lr=cfg.max_lr,
        step_size_up=cfg.step_size,
        mode=cfg.mode,
        gamma=0.9999,
        cycle_momentum=False,
    )
