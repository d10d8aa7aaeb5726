"""Relational affinity: the student's pairwise affinities matched to the teacher's own.

A reading of AAM in which the teacher's *relations* are distilled, not its labels: with
``F^S = clip(softmax(x_S), 1e-4, 1)`` and ``F^T`` likewise for the teacher (over classes, or
over the channels of a feature map, on the same grid), for every pixel ``i`` and neighbour
``j = i + (dy, dx)``, ``(dy, dx) ∈ {−s, 0, s}² \\ {(0, 0)}`` inside the image::

    W^S_ij = KL(F^S_j ‖ F^S_i),     W^T_ij = KL(F^T_j ‖ F^T_i)
    L_s    = (1/|P|) · Σ_{(i, j) ∈ P} |W^S_ij − W^T_ij|          (P: every ordered pair)
    L      = mean over the sizes s of L_s

The L1 distance keeps the teacher's few large affinities (its boundaries) from swamping the
many small ones. With a ``valid`` pixel mask a pair counts only when both pixels are valid.
Computed in float32 (float64 for float64 input) with autocast off, from shifted views of one
tensor per offset (no ``N × C × H × W × 8`` copy); the teacher gets no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from crossdistill.losses.contract import float32_island
from crossdistill.losses.neighbour_pairs import LOG_CLIP as _LOG_CLIP
from crossdistill.losses.neighbour_pairs import pair_slices


def _pair_kl(logp: Tensor, rows: tuple[slice, slice], cols: tuple[slice, slice]):
    """``(W_ij, W_ji)`` of one offset (``rows``, ``cols``: the slices of ``i`` and of ``j``):
    ``KL(F_j ‖ F_i)`` and ``KL(F_i ‖ F_j)``."""
    lp_i, lp_j = logp[:, :, rows[0], cols[0]], logp[:, :, rows[1], cols[1]]
    d = lp_j - lp_i
    return (lp_j.exp() * d).sum(1), -(lp_i.exp() * d).sum(1)


def relational_affinity_loss(
    student: Tensor,
    teacher: Tensor,
    sizes: Sequence[int] = (1,),
    weights: Tensor | None = None,
    *,
    valid: Tensor | None = None,
) -> Tensor:
    """``L`` of the module doc. ``student``, ``teacher``: ``(N, K_s, H, W)`` and
    ``(N, K_t, H, W)`` scores on the same grid (the channel counts may differ); ``weights``:
    one logit per size, combined as ``Σ softmax(weights)_s · L_s`` (None: the mean);
    ``valid``: ``(N, H, W)`` bool."""
    if student.dim() != 4 or teacher.dim() != 4:
        raise ValueError("student and teacher must be (N, C, H, W)")
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise ValueError(
            f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} are not on the "
            "same grid"
        )
    sizes = tuple(int(s) for s in sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    _, _, H, W = student.shape
    with float32_island(student) as dtype:
        log_s = torch.log_softmax(student.to(dtype), 1).clamp_min(_LOG_CLIP)
        with torch.no_grad():
            log_t = torch.log_softmax(teacher.detach().to(dtype), 1).clamp_min(_LOG_CLIP)
        losses = []
        for size in sizes:
            total, count = log_s.new_zeros(()), log_s.new_zeros(())
            for (rows_i, cols_i), (rows_j, cols_j) in pair_slices(size, H, W):
                rows, cols = (rows_i, rows_j), (cols_i, cols_j)
                s_ij, s_ji = _pair_kl(log_s, rows, cols)
                with torch.no_grad():
                    t_ij, t_ji = _pair_kl(log_t, rows, cols)
                gap = (s_ij - t_ij).abs() + (s_ji - t_ji).abs()
                if valid is None:
                    total = total + gap.sum()
                    count = count + 2 * gap.numel()
                else:
                    v = valid.bool()
                    both = (v[:, rows[0], cols[0]] & v[:, rows[1], cols[1]]).to(dtype)
                    total = total + (gap * both).sum()
                    count = count + 2 * both.sum()
            losses.append(total / count.clamp_min(1))
        stacked = torch.stack(losses)
        if weights is None:
            return stacked.mean()
        return (torch.softmax(weights.to(stacked), 0) * stacked).sum()
