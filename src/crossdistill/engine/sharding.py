"""The networks of a training step, run on each rank's rows of the global batch.

Under torchrun every rank holds the global batch (:func:`distributed.gather_batch`) and calls
the training objective on it, as one process would. :func:`shard_objective` makes that cost
1/W of the network work per rank:

* the student and the teacher get a forward pre-hook that keeps only the rank's rows
  ``[r·N/W, (r+1)·N/W)`` of the input and a forward hook that all-gathers the outputs (logits
  and features, with gradient: :func:`distributed.gather_rows`), so the loss is the one of
  the global batch on every rank;
* the student's BatchNorm layers are synchronised (:mod:`engine.sync_batchnorm`): their
  statistics are those of the global batch;
* the student's dropout draws the mask of the global batch and applies the rank's rows
  (:class:`GlobalBatchDropout`): every rank draws the same random numbers as one process, so
  the torch RNG stream is the same on all ranks and rank 0's checkpoint resumes every rank;
* the objective is wrapped in ``DistributedDataParallel``, which averages the ranks'
  gradients. Every rank computes the same global-batch loss ``L``; for the outputs ``y_r`` of
  rank r's rows the gather's backward sums ``∂L/∂y_r`` over the ranks, ``W·∂L/∂y_r``, so the
  average ``(1/W)·Σ_r W·(∂L/∂y_r)(∂y_r/∂θ) = ∂L/∂θ`` is the gradient of one process.

Episodic objectives (``balanced_sites``, SAML) split the batch by site and differentiate the
student inside the step; they run in one process only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from crossdistill.engine import distributed
from crossdistill.engine.objective import TrainingObjective
from crossdistill.engine.sync_batchnorm import convert_sync_batchnorm
from crossdistill.errors import ConfigError


class RowShard:
    """Hooks that run ``module`` on this rank's rows and all-gather its output (module doc).

    Active only while :attr:`active` is set (during a training step); ``rows`` holds
    ``(global_rows, start, stop)`` of the current call, for :class:`GlobalBatchDropout`.
    """

    def __init__(self, module: nn.Module, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self.active = False
        self.rows: tuple[int, int, int] | None = None
        module.register_forward_pre_hook(self._take_rows)
        module.register_forward_hook(self._gather)

    def _take_rows(self, _module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not self.active:
            return None
        x = args[0]
        n = x.shape[0]
        if n % self.world:
            raise RuntimeError(f"a batch of {n} cannot be split evenly over {self.world} ranks")
        share = n // self.world
        self.rows = (n, self.rank * share, (self.rank + 1) * share)
        return (x[self.rows[1] : self.rows[2]], *args[1:])

    def _gather(self, _module: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
        if not self.active:
            return None
        self.rows = None
        return _map_tensors(distributed.gather_rows, output)


class GlobalBatchDropout(nn.Module):
    """``nn.Dropout`` / ``nn.Dropout2d`` that draws the mask of the global batch.

    Within an active :class:`RowShard` call the mask is drawn for all ``global_rows`` rows (as
    one process does: ``bernoulli(1 − p)`` over the input's shape, or ``(N, C, 1, 1)`` per
    channel) and the rank's rows are applied, scaled by ``1/(1 − p)``. Elsewhere it is the
    original layer.
    """

    def __init__(self, original: nn.Module, shard: RowShard) -> None:
        super().__init__()
        self.original = original
        self.p = float(original.p)
        self.per_channel = isinstance(original, nn.Dropout2d)
        self.shard = shard

    def forward(self, x: Tensor) -> Tensor:
        rows = self.shard.rows
        if not self.training or rows is None or self.p == 0 or x.numel() == 0:
            return self.original(x)
        if self.p == 1:
            return x * torch.zeros((), dtype=x.dtype, device=x.device)
        n, start, stop = rows
        shape = (n, x.shape[1], *[1] * (x.dim() - 2)) if self.per_channel else (n, *x.shape[1:])
        layout = (
            torch.channels_last
            if x.dim() == 4
            and not self.per_channel
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        noise = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=layout)
        noise.bernoulli_(1 - self.p).div_(1 - self.p)
        return x * noise[start:stop]


class ShardedStep:
    """``step(images, masks, sites=...)``: the objective's output for the global batch, with
    the networks run on this rank's rows and the gradients averaged by DDP (module doc)."""

    def __init__(self, objective: TrainingObjective, device: str) -> None:
        check_shardable(objective)
        rank, world = distributed.rank(), distributed.world_size()
        device_type = torch.device(device).type
        convert_sync_batchnorm(objective.student, device_type)
        self.shards = [RowShard(objective.student, rank, world)]
        _replace_dropout(objective.student, self.shards[0])
        if objective.teacher is not None:
            self.shards.append(RowShard(objective.teacher, rank, world))
        self.model = DistributedDataParallel(
            objective,
            device_ids=[torch.device(device).index or 0] if device_type == "cuda" else None,
            forward_sync_buffers=False,  # sync BN keeps the running statistics equal on all ranks
        )

    def __call__(self, images: Tensor, masks: Tensor, **kwargs: Any) -> Any:
        for shard in self.shards:
            shard.active = True
        try:
            return self.model(images, masks, **kwargs)
        finally:
            for shard in self.shards:
                shard.active = False
                shard.rows = None


def check_shardable(objective: TrainingObjective) -> None:
    """Under torchrun, ``ConfigError`` for an objective that must see the batch in one process
    (an episodic method: site-balanced batches split by site, SAML)."""
    if distributed.is_distributed() and objective.balanced_sites:
        raise ConfigError(
            "train.method",
            "an episodic method (site-balanced batches, SAML) runs in one process only; "
            "launch it without torchrun",
        )


def shard_objective(objective: TrainingObjective, device: str) -> Callable[..., Any]:
    """What the training loop calls for one step: ``objective`` itself in one process, a
    :class:`ShardedStep` under torchrun (call after moving ``objective`` to ``device``)."""
    if not distributed.is_distributed():
        return objective
    return ShardedStep(objective, device)


def _replace_dropout(module: nn.Module, shard: RowShard) -> None:
    for name, child in module.named_children():
        if isinstance(child, (nn.Dropout, nn.Dropout2d)):
            setattr(module, name, GlobalBatchDropout(child, shard))
        else:
            _replace_dropout(child, shard)


def _map_tensors(fn: Callable[[Tensor], Tensor], value: Any) -> Any:
    """``value`` with ``fn`` applied to every tensor in it (tuples, named tuples, dicts, lists)."""
    if torch.is_tensor(value):
        return fn(value)
    if isinstance(value, dict):
        return {key: _map_tensors(fn, item) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_map_tensors(fn, item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(fn, item) for item in value)
    return value
