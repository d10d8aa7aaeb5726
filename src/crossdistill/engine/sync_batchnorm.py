"""Batch normalisation over the global batch when each process holds a share of it.

With the batch split over W processes, plain BatchNorm would normalise each share with its
own statistics, so a DDP run would differ from one process. Synchronised BatchNorm computes
the statistics of the whole global batch: on CUDA, torch's ``nn.SyncBatchNorm``; on the CPU
(gloo), where torch's refuses to run, :class:`CpuSyncBatchNorm`. Each rank r computes its
count ``n_r``, mean ``μ_r`` and ``M2_r = Σ (x − μ_r)²`` per channel; one all-gather (with
gradient, :func:`~crossdistill.engine.distributed.gather_rows`) combines them (Chan et al.'s
parallel variance, as stable as two passes over the global batch)::

    n = Σ n_r     μ = Σ n_r·μ_r / n     σ² = Σ (M2_r + n_r·(μ_r − μ)²) / n
    y = γ · (x − μ) / √(σ² + ε) + β

and the running statistics move by the momentum towards ``μ`` and ``σ² · n / (n − 1)``, as
in one process with the global batch. Outside training, or outside a process group, both
layers are plain BatchNorm, and their state dicts have the same keys as ``BatchNorm2d``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from crossdistill.engine.distributed import gather_rows, is_distributed


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the global batch (module doc)."""

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        x = input if input.dtype == torch.float64 else input.float()
        dims = [0, *range(2, x.dim())]
        view = [1, -1] + [1] * (x.dim() - 2)
        mean_r = x.mean(dims)
        m2_r = ((x - mean_r.view(view)) ** 2).sum(dims)
        n_r = torch.full_like(mean_r, x.numel() / x.shape[1])
        ranks = gather_rows(torch.stack([n_r, mean_r, m2_r])[None])  # (W, 3, C)
        counts, means, m2s = ranks.unbind(1)
        n = counts.sum(0)
        mean = (counts * means).sum(0) / n
        var = (m2s + counts * (means - mean) ** 2).sum(0) / n
        y = (x - mean.view(view)) * torch.rsqrt(var + self.eps).view(view)
        if self.affine:
            y = y * self.weight.view(view) + self.bias.view(view)
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(mean.detach(), var.detach(), n.detach())
        return y.to(input.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, n: Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # cumulative moving average
            momentum = 1.0 / float(self.num_batches_tracked)
        unbiased = var * n / (n - 1).clamp(min=1)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)


def convert_sync_batchnorm(module: nn.Module, device_type: str) -> nn.Module:
    """``module`` with every 2-D BatchNorm made synchronised (same parameters and buffers).

    CUDA: ``nn.SyncBatchNorm.convert_sync_batchnorm``; CPU: :class:`CpuSyncBatchNorm`.
    Returns the converted module (a new object only if ``module`` itself is a BatchNorm).
    """
    if device_type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CpuSyncBatchNorm):
        return _cpu_sync(module)
    for name, child in module.named_children():
        converted = convert_sync_batchnorm(child, device_type)
        if converted is not child:
            setattr(module, name, converted)
    return module


def _cpu_sync(bn: _BatchNorm) -> CpuSyncBatchNorm:
    sync = CpuSyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        sync.weight, sync.bias = bn.weight, bn.bias
    sync.running_mean, sync.running_var = bn.running_mean, bn.running_var
    sync.num_batches_tracked = bn.num_batches_tracked
    sync.train(bn.training)
    return sync
