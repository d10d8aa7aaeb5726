"""AAM's pair sums as one compiled graph (``distill.terms.aam.fused: true``).

The eager AAM (:mod:`crossdistill.losses.affinity`) runs every offset of every size as a
handful of small tensor operations, forward and backward: on a GPU its time is kernel
launches, not arithmetic. Here the same per-size loss::

    W_ij = Σ_c F_j,c (log F_j,c − log F_i,c),   W_ji = −Σ_c F_i,c (log F_j,c − log F_i,c)
    L_s  = (Σ_{P+} (W_ij + W_ji)) / |P+|  +  (Σ_{P−} relu(m − W_ij) + relu(m − W_ji)) / |P−|

(|P±| counting both orders, the mean of ∅ being 0) is written as plain tensor operations over
two views of ``log F`` per offset, autograd derives the backward, and ``torch.compile``
(``fullgraph=True``, static shapes) hands the whole forward and backward to Inductor, which
fuses them into a few kernels (Triton on CUDA, C++ on the CPU). Values and gradients equal the
eager version's within float32 rounding (only the order of the sums differs); ``relu``'s
gradient is 0 at ``W = m``, as in the eager backward.

The first call for each input shape, set of sizes, margin and gating compiles (on the CPU
with a C++ compiler: about a minute; the training loop's batches share one shape). Off by
default: the speed-up is a GPU figure (``benchmarks/losses.py --device cuda``), not yet
measured on one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from crossdistill.errors import compile_failure
from crossdistill.losses.neighbour_pairs import pair_slices

#: ``torch.compile`` backend of :func:`fused_pair_losses` (``"aot_eager"`` traces the same
#: graph and its backward without generating kernels).
COMPILE_BACKEND = "inductor"

_compiled: dict[object, Callable[..., Tensor]] = {}  # by backend


def pair_values(
    p: Tensor,
    logp: Tensor,
    labels: Tensor,
    valid: Tensor | None,
    idx_i: tuple[slice, slice],
    idx_j: tuple[slice, slice],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``d = log F_j − log F_i``, ``W_ij``, ``W_ji`` and float masks of P+ and P− for one
    offset of a batch (or a chunk of it): the terms the eager and the fused AAM both sum."""
    same = labels[:, idx_i[0], idx_i[1]] == labels[:, idx_j[0], idx_j[1]]
    if valid is None:
        pos, neg = same, ~same
    else:
        both = valid[:, idx_i[0], idx_i[1]] & valid[:, idx_j[0], idx_j[1]]
        pos, neg = same & both, both & ~same
    p_i, p_j = p[:, :, idx_i[0], idx_i[1]], p[:, :, idx_j[0], idx_j[1]]
    d = logp[:, :, idx_j[0], idx_j[1]] - logp[:, :, idx_i[0], idx_i[1]]  # log F_j − log F_i
    w_ij = (p_j * d).sum(1)  # KL(F_j ‖ F_i)
    w_ji = (p_i * d).sum(1).neg_()  # KL(F_i ‖ F_j)
    return d, w_ij, w_ji, pos.to(p.dtype), neg.to(p.dtype)


def pair_losses(
    logp: Tensor, labels: Tensor, valid: Tensor | None, sizes: tuple[int, ...], margin: float
) -> Tensor:
    """``[L_s for s in sizes]`` (module doc) from clipped log-probabilities ``logp``
    ``(N, K, H, W)``, teacher labels ``(N, H, W)`` and an optional ``(N, H, W)`` bool gate, by
    plain autograd (the function that :func:`fused_pair_losses` compiles)."""
    _, _, H, W = logp.shape
    p = logp.exp()
    losses = []
    for size in sizes:
        pos_sum = neg_sum = n_pos = n_neg = logp.new_zeros(())
        for idx_i, idx_j in pair_slices(size, H, W):
            _, w_ij, w_ji, pos, neg = pair_values(p, logp, labels, valid, idx_i, idx_j)
            pos_sum = pos_sum + ((w_ij + w_ji) * pos).sum()
            hinge = (margin - w_ij).relu() + (margin - w_ji).relu()
            neg_sum = neg_sum + (hinge * neg).sum()
            n_pos = n_pos + 2 * pos.sum()
            n_neg = n_neg + 2 * neg.sum()
        losses.append(pos_sum / n_pos.clamp_min(1) + neg_sum / n_neg.clamp_min(1))
    return torch.stack(losses)


def fused_pair_losses(
    logp: Tensor, labels: Tensor, valid: Tensor | None, sizes: tuple[int, ...], margin: float
) -> Tensor:
    """:func:`pair_losses` compiled with ``torch.compile`` (module doc); same arguments.

    Raises:
        ConfigError: the compiler could not build the graph on this machine (e.g. no C++
            compiler for the CPU, no Triton for the GPU), naming the option to turn off.
    """
    from torch._dynamo.exc import BackendCompilerFailed

    compiled = _compiled.get(COMPILE_BACKEND)
    if compiled is None:
        compiled = torch.compile(
            pair_losses, fullgraph=True, dynamic=False, backend=COMPILE_BACKEND
        )
        _compiled[COMPILE_BACKEND] = compiled
    try:
        return compiled(logp, labels, valid, tuple(sizes), float(margin))
    except BackendCompilerFailed as err:
        raise compile_failure("distill.terms.aam.fused", "the fused AAM", err) from None
