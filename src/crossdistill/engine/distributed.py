"""Data-parallel training over several processes launched by ``torchrun``: the process group,
the ranks, and how rank 0 and the others take turns.

Launch (one process per GPU; on a CPU-only machine the processes talk over gloo)::

    torchrun --nproc-per-node N -m crossdistill train   --config C.yaml [--set ...] [--resume]
    torchrun --nproc-per-node N -m crossdistill distill --config C.yaml [--set ...] [--resume]

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` (called by ``api.train``; call it yourself before using ``engine.fit``
directly) joins the group they describe: NCCL on CUDA, gloo on the CPU. Without them (or
with ``WORLD_SIZE=1``) every helper here is the identity of one process.

With W processes and ``train.batch_size = B`` (always the GLOBAL batch):

* each rank loads B/W items of every global batch of one process and the shares are
  gathered (:mod:`crossdistill.engine.global_batch`);
* the objective computes the loss of the whole global batch on every rank while the
  networks run on the rank's rows only, and DDP averages the gradients
  (:mod:`crossdistill.engine.sharding`); so W processes train the weights of one process
  with the same global batch, up to float rounding;
* only rank 0 writes (run folder, config, metrics, checkpoints, evaluation, summary, figures)
  and validates; the others wait for it (:func:`on_main`), for at most :data:`WAIT_FOR_MAIN`.
  Every rank draws the same random numbers, so all resume from rank 0's checkpoint.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from crossdistill.errors import ConfigError

T = TypeVar("T")

#: how long a rank waits in a collective (e.g. for rank 0's validation or final evaluation)
WAIT_FOR_MAIN = timedelta(hours=2)


def launched_processes() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    """True in a process of a group of two or more."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 in one process)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes training together (1 in one process)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, the only process that writes files."""
    return rank() == 0


def init_from_env(device: str) -> str:
    """Join the process group that torchrun describes (once per process); this rank's device.

    ``device`` is the run's resolved device: ``cuda`` becomes ``cuda:LOCAL_RANK`` (one GPU per
    process, NCCL), ``cpu`` stays (gloo). Outside torchrun, ``device`` is returned unchanged.

    Raises:
        ConfigError: a fixed GPU index (``cuda:1``) was asked for under torchrun.
    """
    if launched_processes() <= 1:
        return device
    cuda = device.startswith("cuda")
    if device not in ("cpu", "cuda"):
        raise ConfigError(
            "device",
            f"'{device}': under torchrun each process takes the GPU of its "
            "LOCAL_RANK; use cuda, auto or cpu",
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=WAIT_FOR_MAIN)
        atexit.register(shutdown)
    return f"cuda:{local_rank}" if cuda else device


def shutdown() -> None:
    """Leave the process group (registered to run at exit by :func:`init_from_env`)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _GatherRows(torch.autograd.Function):
    """Every rank's ``x`` concatenated along dimension 0, in rank order.

    Backward: this rank's rows of the output gradient summed over the ranks (one
    all-reduce), the gradient of the gathered tensor with respect to this rank's part.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.rows = slice(rank() * x.shape[0], (rank() + 1) * x.shape[0])
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        return total[ctx.rows]


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every rank concatenated along dimension 0 (the same shape on every rank), with
    gradient; ``x`` itself in one process."""
    return _GatherRows.apply(x) if is_distributed() else x


def on_main(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on rank 0 only; every rank returns rank 0's result.

    The other ranks wait for it. Rank 0's torch RNG state is sent along, so a random draw
    inside ``fn`` cannot make the ranks' random streams differ.
    """
    if not is_distributed():
        return fn(*args)
    payload: list[Any] = [None]
    if is_main():
        payload = [(fn(*args), _rng_states())]
    dist.broadcast_object_list(payload, src=0)
    result, states = payload[0]
    _set_rng_states(states)
    return result


def main_first(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on rank 0, then on the other ranks once rank 0 is done (e.g. rank 0
    builds a cache entry, the others then open it)."""
    if not is_distributed():
        return fn(*args)
    if is_main():
        result = fn(*args)
        dist.barrier()
        return result
    dist.barrier()
    return fn(*args)


def share_from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (the others pass anything, e.g. None)."""
    if not is_distributed():
        return value
    payload = [value]
    dist.broadcast_object_list(payload, src=0)
    return payload[0]


def mean_over_ranks(tensors: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """Each tensor averaged over the ranks (``None`` stays ``None``)."""
    if not is_distributed():
        return list(tensors)
    out: list[torch.Tensor | None] = []
    for tensor in tensors:
        if tensor is not None:
            tensor = tensor.detach().clone()
            dist.all_reduce(tensor)
            tensor /= world_size()
        out.append(tensor)
    return out


def _rng_states() -> dict[str, torch.Tensor]:
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def _set_rng_states(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["cpu"])
    if "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"])
