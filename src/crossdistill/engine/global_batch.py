"""Each global batch of one process, split among the ranks and put back together.

Every rank iterates the sampler of one process (the same generator, seeded by ``(seed,
epoch)``) and loads only its rows ``[r·B/W, (r+1)·B/W)`` of each global batch of ``B``
items (:class:`GlobalBatchShard`), so the ranks load disjoint shares and a step sees exactly
the items of one process's step. Augmentation is seeded per item by ``(seed, epoch, index)``
(``data.dataset``), so an item looks the same whichever rank loads it. :func:`gather_batch`
then gives every rank the whole global batch in the order of one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from crossdistill.engine import distributed
from crossdistill.errors import ConfigError


def local_batch_size(batch_size: int) -> int:
    """Items each rank loads per step: the global ``batch_size`` over the processes.

    Raises:
        ConfigError: ``batch_size`` is not a multiple of the number of processes.
    """
    size = distributed.world_size()
    if batch_size % size:
        raise ConfigError(
            "train.batch_size",
            f"{batch_size} is the global batch and must be divisible by the {size} processes",
        )
    return batch_size // size


class GlobalBatchShard(Sampler[int]):
    """Rank ``rank``'s rows of every global batch that ``sampler`` yields.

    ``sampler`` yields global batches of ``batch_size`` consecutive indices (as it does for
    one process); this yields indices ``[rank·b, (rank+1)·b)`` of each, ``b = batch_size /
    world``. An incomplete last batch is dropped (as ``drop_last=True`` does).
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, rank: int, world: int) -> None:
        if world < 1 or not 0 <= rank < world or batch_size % world:
            raise ValueError(f"cannot split batches of {batch_size} as rank {rank} of {world}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.rows = slice(rank * batch_size // world, (rank + 1) * batch_size // world)

    def __len__(self) -> int:
        share = self.rows.stop - self.rows.start
        return len(self.sampler) // self.batch_size * share  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        indices = iter(self.sampler)
        while len(batch := list(islice(indices, self.batch_size))) == self.batch_size:
            yield from batch[self.rows]


def shard_sampler(sampler: Sampler[int], batch_size: int) -> Sampler[int]:
    """``sampler`` in one process, else this rank's :class:`GlobalBatchShard` of it."""
    if not distributed.is_distributed():
        return sampler
    return GlobalBatchShard(sampler, batch_size, distributed.rank(), distributed.world_size())


def gather_batch(batch: dict[str, Any], device: str) -> dict[str, Any]:
    """The global batch from every rank's share, in rank order (the order of one process).

    Tensors (also in nested dicts, e.g. cached teacher maps) are moved to ``device`` and
    concatenated along dimension 0; lists (sites, case ids) are concatenated. In one process
    the batch is returned as it is.
    """
    if not distributed.is_distributed():
        return batch
    lists: dict[tuple[str, ...], list[Any]] = {}
    gathered = _gather_tensors(batch, device, lists, ())
    if lists:
        shares: list[Any] = [None] * distributed.world_size()
        dist.all_gather_object(shares, lists)
        for path in lists:
            node = gathered
            *parents, leaf = path
            for part in parents:
                node = node[part]
            node[leaf] = [item for share in shares for item in share[path]]
    return gathered


def _gather_tensors(
    batch: dict[str, Any], device: str, lists: dict[tuple[str, ...], list[Any]], path: tuple
) -> dict[str, Any]:
    """``batch`` with its tensors gathered; the other values are collected in ``lists`` under
    their key path, for one object gather."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            out[key] = _gather_tensors(value, device, lists, (*path, key))
        elif torch.is_tensor(value):
            with torch.no_grad():
                out[key] = distributed.gather_rows(value.to(device))
        else:
            lists[(*path, key)] = list(value)
            out[key] = None
    return out
