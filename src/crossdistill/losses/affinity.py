"""Adaptive Affinity Module (AAM): pairwise affinity loss guided by the teacher's labels.

After Adaptive Affinity Fields (Ke et al., 2018), paper §2.1, eqs. 1–4. Let ``F = clip(
softmax(z_S), 1e-4, 1)`` be the student's class probabilities (clipped, not renormalised) and
``y = argmax z_T`` the teacher's label map (no gradient). For a size ``s`` every pixel ``i`` is
paired with its 8 neighbours ``j = i + (dy, dx)``, ``(dy, dx) ∈ {−s, 0, s}² \\ {(0, 0)}``;
pairs leaving the image are dropped::

    W_ij  = KL(F_j ‖ F_i) = Σ_c F_j,c · (log F_j,c − log F_i,c)
    P+    = {(i, j) : y_i = y_j},   P− = {(i, j) : y_i ≠ y_j}
    L_s   = (1/|P+|)·Σ_{P+} W_ij + (1/|P−|)·Σ_{P−} max(0, m − W_ij)        (mean of ∅ := 0)
    L_AA  = Σ_s softmax(w)_s · L_s                   (w = 0 for all sizes unless given)

Each unordered pair is visited twice (i→j and j→i), with the two KL directions. With a
``valid`` pixel mask (confidence or ground-truth gating) a pair counts only when both of its
pixels are valid.

Implementation: for each of the 4 offsets of one half-plane, the pixels ``i`` and their
neighbours ``j`` are two *views* (slices) of the same probability tensor over the region where
both lie inside the image, and both directions ``W_ij`` and ``W_ji`` are computed from them.
This is the same set of pairs as padding by ``s`` and dropping padded neighbours, without the
padded copy or a validity mask; nothing of size N×C×H×W×8 is ever materialised. ``log F`` is
``max(log_softmax(z), log 1e-4)`` (one log-softmax, no separate clamp and log; the same
values and gradient as clamping the probabilities) and ``F = exp(log F)``. The pair sums run
in a custom autograd function with a hand-written backward (see ``_AffinityPairs``) that keeps
nothing per offset between forward and backward. Computation is in float32 (float64 for
float64 input) with autocast disabled, so it is safe under fp16/bf16 autocast. ``fused=True``
computes the same pair sums as one ``torch.compile``d graph instead
(:mod:`crossdistill.losses.affinity_fused`: fewer, larger kernels for the GPU).

``AffinityLoss`` wraps the function as a module; with ``adaptive=True`` the per-size logits
``w`` are a parameter trained, as in AAF, by gradient *ascent*: the weights pass through a
gradient-reversal function (identity forward, negated gradient backward), so the ordinary
descent step of the student's optimizer moves ``w`` to *increase* ``L_AA``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.losses.affinity_fused import fused_pair_losses, pair_values
from crossdistill.losses.contract import DistillLoss, float32_island
from crossdistill.losses.label_grid import majority_gate, majority_labels
from crossdistill.losses.neighbour_pairs import LOG_CLIP as _LOG_CLIP
from crossdistill.losses.neighbour_pairs import pair_slices
from crossdistill.losses.relational_affinity import relational_affinity_loss
from crossdistill.paper import AAM_MARGIN

_CHUNK_ELEMENTS = 1 << 20  # CPU: batch chunks of ~4 MiB temporaries (GPU: one chunk)


def teacher_labels(teacher_logits: Tensor) -> Tensor:
    """``argmax`` over the class axis of ``(N, K, H, W)`` → ``(N, H, W)`` long (first max wins).

    A running maximum over the K channels: on CPU, ``Tensor.argmax(1)`` on a channels-first
    tensor is a strided reduction that costs more than the whole AAM.
    """
    with torch.no_grad():
        best = teacher_logits[:, 0]
        labels = torch.zeros_like(best, dtype=torch.long)
        for c in range(1, teacher_logits.shape[1]):
            better = teacher_logits[:, c] > best
            labels.masked_fill_(better, c)
            best = torch.maximum(best, teacher_logits[:, c])
        return labels


def _chunks(n: int, per_sample: int, device: torch.device) -> list[slice]:
    """Batch slices of about ``_CHUNK_ELEMENTS`` elements (≥ 1 sample); one slice off CPU."""
    if device.type != "cpu":
        return [slice(0, n)]
    step = max(1, _CHUNK_ELEMENTS // max(per_sample, 1))
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


class _AffinityPairs(torch.autograd.Function):
    """Per-size ``L_s`` from clipped log-probabilities, with a hand-written backward.

    Forward, per offset: ``d = log F_j − log F_i``, ``W_ij = Σ_c F_j d``, ``W_ji = −Σ_c F_i d``.
    With ``g = ∂L_s/∂W`` (``1/|P+|`` on P+, ``−1/|P−|`` on P− where ``W < m``, else 0) and
    ``F = exp(log F)``, the gradient with respect to ``log F`` is accumulated in place::

        ∂/∂log F_i += g_ji · F_i · (1 − d) − g_ij · F_j
        ∂/∂log F_j += g_ij · F_j · (1 + d) − g_ji · F_i

    Nothing per offset is kept between forward and backward (only ``log F``, ``F`` and the
    labels; ``d`` and ``W`` are recomputed), no full-size zero tensor is allocated per slice as
    autograd would, and the work runs over chunks of the batch so that the temporaries stay
    small (cache-resident, no page faults for fresh allocations). First derivatives only
    (no double backward).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logp: Tensor,
        labels: Tensor,
        valid: Tensor | None,
        sizes: tuple[int, ...],
        margin: float,
    ) -> Tensor:
        p = logp.exp()
        N, K, H, W = logp.shape
        losses, counts = [], []
        for size in sizes:
            pos_sum = neg_sum = n_pos = n_neg = logp.new_zeros(())
            for rows in _chunks(N, K * H * W, logp.device):
                lab, val = labels[rows], None if valid is None else valid[rows]
                for idx_i, idx_j in pair_slices(size, H, W):
                    _, w_ij, w_ji, pos, neg = pair_values(
                        p[rows], logp[rows], lab, val, idx_i, idx_j
                    )
                    pos, neg, w_ij, w_ji = (
                        pos.flatten(),
                        neg.flatten(),
                        w_ij.flatten(),
                        w_ji.flatten(),
                    )
                    pos_sum = pos_sum + torch.dot(w_ij, pos) + torch.dot(w_ji, pos)
                    # in place: W − m clipped at 0 from above = −max(0, m − W)
                    neg_sum = (
                        neg_sum
                        - torch.dot(w_ij.sub_(margin).clamp_max_(0), neg)
                        - torch.dot(w_ji.sub_(margin).clamp_max_(0), neg)
                    )
                    n_pos = n_pos + 2 * pos.sum()
                    n_neg = n_neg + 2 * neg.sum()
            n_pos, n_neg = n_pos.clamp_min(1), n_neg.clamp_min(1)
            losses.append(pos_sum / n_pos + neg_sum / n_neg)
            counts.append((n_pos, n_neg))
        ctx.save_for_backward(logp, p, labels, valid)
        ctx.sizes, ctx.margin, ctx.counts = sizes, margin, counts
        return torch.stack(losses)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        logp, p, labels, valid = ctx.saved_tensors
        grad = torch.zeros_like(logp)
        N, K, H, W = logp.shape
        for k, size in enumerate(ctx.sizes):
            n_pos, n_neg = ctx.counts[k]
            a, b = grad_out[k] / n_pos, grad_out[k] / n_neg
            for rows in _chunks(N, K * H * W, logp.device):
                lab, val = labels[rows], None if valid is None else valid[rows]
                p_r, logp_r, grad_r = p[rows], logp[rows], grad[rows]
                for idx_i, idx_j in pair_slices(size, H, W):
                    d, w_ij, w_ji, pos, neg = pair_values(p_r, logp_r, lab, val, idx_i, idx_j)
                    pos_a, neg_b = pos.mul_(a), neg.mul_(b)
                    g_ij = torch.addcmul(pos_a, neg_b, (w_ij < ctx.margin).to(d.dtype), value=-1)
                    g_ji = torch.addcmul(pos_a, neg_b, (w_ji < ctx.margin).to(d.dtype), value=-1)
                    p_i = p_r[:, :, idx_i[0], idx_i[1]]
                    p_j = p_r[:, :, idx_j[0], idx_j[1]]
                    gp_ij, gp_ji = p_j * g_ij.unsqueeze(1), p_i * g_ji.unsqueeze(1)
                    grad_i = grad_r[:, :, idx_i[0], idx_i[1]]
                    grad_j = grad_r[:, :, idx_j[0], idx_j[1]]
                    grad_i.add_(gp_ji).sub_(gp_ij).addcmul_(gp_ji, d, value=-1)
                    grad_j.add_(gp_ij).sub_(gp_ji).addcmul_(gp_ij, d)
        return grad, None, None, None, None


def affinity_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    margin: float = AAM_MARGIN,
    sizes: Sequence[int] = (1,),
    weights: Tensor | Sequence[float] | None = None,
    *,
    valid: Tensor | None = None,
    fused: bool = False,
) -> Tensor:
    """The AAM loss ``L_AA`` (formula: module doc).

    Args:
        student_logits: ``(N, K, H, W)`` student scores (gradient flows here).
        teacher_logits: ``(N, K, H, W)`` teacher scores; only their argmax is used, detached.
            ``(N, H, W)`` integer labels are accepted as well.
        margin: ``m`` of the hinge on pairs with different teacher labels.
        sizes: neighbourhood dilations ``s`` (1 = the 8-neighbourhood).
        weights: one logit per size; combined with ``softmax(weights)``. None = equal weights.
            A tensor keeps its gradient (see ``AffinityLoss(adaptive=True)``).
        valid: optional ``(N, H, W)`` bool mask of pixels allowed to form pairs.
        fused: compute the pair sums with ``torch.compile`` (``affinity_fused``) instead of
            the eager custom autograd function; same values and gradients.

    Returns:
        A scalar tensor in the compute dtype (float32, or float64 for float64 input).
    """
    if student_logits.dim() != 4:
        raise ValueError(f"student_logits must be (N, K, H, W), got {tuple(student_logits.shape)}")
    sizes = tuple(int(s) for s in sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    if weights is not None and len(weights) != len(sizes):
        raise ValueError(f"{len(sizes)} sizes but {len(weights)} weights")
    if teacher_logits.dim() == 3:
        labels = teacher_logits.detach().long()
    else:
        labels = teacher_labels(teacher_logits.detach())
    if labels.shape != student_logits.shape[:1] + student_logits.shape[2:]:
        raise ValueError(
            f"teacher {tuple(teacher_logits.shape)} does not match student "
            f"{tuple(student_logits.shape)}"
        )
    if valid is not None:
        valid = valid.detach().reshape(labels.shape).bool()

    with float32_island(student_logits) as dtype:
        logp = torch.log_softmax(student_logits.to(dtype), dim=1).clamp_min(_LOG_CLIP)
        pairs = fused_pair_losses if fused else _AffinityPairs.apply
        losses = pairs(logp, labels, valid, sizes, float(margin))
        if weights is None:
            return losses.mean() if len(sizes) > 1 else losses[0]
        w = torch.as_tensor(weights, device=losses.device).to(dtype)
        return (torch.softmax(w, dim=0) * losses).sum()


class _GradientReversal(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by −1."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return -grad


def reverse_gradient(x: Tensor) -> Tensor:
    """``x`` unchanged, with its gradient negated (a descent step on ``x`` becomes ascent)."""
    return _GradientReversal.apply(x)


READINGS = ("probabilities", "features")
MATCHES = ("labels", "teacher")


class AffinityLoss(DistillLoss):
    """``affinity_loss`` as a module, optionally with learnable (adversarial) size weights, on
    the grid the paper's text allows (docs/design.md §2.5 and §2.8).

    Args:
        margin: hinge margin ``m``.
        sizes: neighbourhood dilations.
        adaptive: if True, ``size_logits`` (one per size, initialised to 0 = equal weights) is
            an ``nn.Parameter`` that receives the *reversed* gradient of ``L_AA``, so that the
            optimizer that minimises the student's loss maximises ``L_AA`` over the weights
            (AAF's min–max). If False the sizes are averaged with equal weights.
        on: what ``F`` is.

            * ``probabilities`` — the student's class probabilities: ``F = softmax_k(z̄)``
              with ``z̄`` the student's logits average-pooled by ``stride``
              (``z̄ = avgpool_stride(z)``; ``stride = 1`` is the full-resolution reading);
            * ``features`` — a tapped feature map ``Φ`` of the student (``(N, C, h, w)``, e.g.
              the "high" one at 1/8): ``F = softmax_c(Φ)`` over its channels, so
              ``W_ij = KL(softmax_c(Φ_j) ‖ softmax_c(Φ_i))``.

            Either way the pairs are labelled by the teacher's argmax carried to ``F``'s grid
            by majority in each cell (``label_grid``), and a pixel gate likewise.
        stride: the pooling factor of ``on: probabilities`` (1, 2, 4 or 8).
        match: ``labels`` — the hinge loss above, pairs labelled by the teacher's argmax;
            ``teacher`` — the relational reading: the student's pair affinities ``W^S_ij``
            pulled towards the teacher's own ``W^T_ij`` on the same grid (its probabilities,
            or its feature map at the same tap resized to the student's grid), by
            ``mean |W^S − W^T|`` (``relational_affinity``); ``margin`` is unused then.
        fused: the hinge's pair sums as one ``torch.compile``d graph (``affinity_fused``;
            compiled on the first call per input shape); ``match: labels`` only.
    """

    def __init__(
        self,
        margin: float = AAM_MARGIN,
        sizes: Sequence[int] = (1,),
        adaptive: bool = False,
        on: str = "probabilities",
        stride: int = 1,
        match: str = "labels",
        fused: bool = False,
    ):
        super().__init__()
        if match not in MATCHES:
            raise ValueError(f"match must be {' or '.join(MATCHES)}, got {match!r}")
        self.match = match
        if on not in READINGS:
            raise ValueError(f"on must be {' or '.join(READINGS)}, got {on!r}")
        if isinstance(stride, bool) or stride not in (1, 2, 4, 8):
            raise ValueError(f"stride must be 1, 2, 4 or 8, got {stride!r}")
        if on == "features" and stride != 1:
            raise ValueError("stride pools the probabilities; with on: features leave it at 1")
        self.on = on
        self.stride = int(stride)
        if (
            isinstance(sizes, (int, str))
            or not sizes
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)
        ):
            raise ValueError(f"sizes must be a non-empty list of positive integers, got {sizes!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
            raise ValueError(f"margin must be a number >= 0, got {margin!r}")
        if not isinstance(adaptive, bool):
            raise TypeError(f"adaptive must be true or false, got {adaptive!r}")
        if not isinstance(fused, bool):
            raise TypeError(f"fused must be true or false, got {fused!r}")
        if fused and match == "teacher":
            raise ValueError("fused applies to the labelled hinge (match: labels) only")
        self.fused = fused
        self.margin = float(margin)
        self.sizes = tuple(sizes)
        self.adaptive = adaptive
        logits = torch.zeros(len(self.sizes))
        if self.adaptive:
            self.size_logits = nn.Parameter(logits)
        else:
            self.register_buffer("size_logits", logits, persistent=False)

    def size_weights(self) -> Tensor:
        """The current ``softmax(w)`` over the sizes (no gradient)."""
        return torch.softmax(self.size_logits.detach(), dim=0)

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """``student``: logits ``(N, K, H, W)`` (``on: probabilities``) or a feature map
        ``(N, C, h, w)`` (``on: features``); ``teacher``: ``(N, K, H, W)`` scores or an
        ``(N, H, W)`` label map at the image's resolution (``match: teacher``: the teacher's
        tensor at the student's tap); ``valid``: ``(N, H, W)`` gate; ``target`` unused."""
        teacher_logits = teacher
        weights = reverse_gradient(self.size_logits) if self.adaptive else None
        if self.stride > 1:
            student = F.avg_pool2d(student, self.stride)
        grid = tuple(student.shape[-2:])
        if self.match == "teacher":
            teacher = teacher_logits
            if tuple(teacher.shape[-2:]) != grid:
                full = tuple(teacher.shape[-2:])
                if self.stride > 1 and full == tuple(s * self.stride for s in grid):
                    teacher = F.avg_pool2d(teacher, self.stride)
                else:
                    teacher = F.interpolate(
                        teacher, size=grid, mode="bilinear", align_corners=False
                    )
            if valid is not None and tuple(valid.shape[-2:]) != grid:
                valid = majority_gate(valid.detach(), grid)
            return relational_affinity_loss(student, teacher, self.sizes, weights, valid=valid)
        if tuple(teacher_logits.shape[-2:]) != grid:
            if teacher_logits.dim() == 3:
                labels = teacher_logits.long()
                classes = int(labels.max()) + 1 if labels.numel() else 1
            else:
                labels, classes = teacher_labels(teacher_logits), teacher_logits.shape[1]
            teacher_logits = majority_labels(labels, grid, max(classes, 2))
            if valid is not None:
                valid = majority_gate(valid.detach().reshape(labels.shape), grid)
        return affinity_loss(
            student, teacher_logits, self.margin, self.sizes, weights, valid=valid, fused=self.fused
        )

    def extra_repr(self) -> str:
        text = f"margin={self.margin}, sizes={self.sizes}, adaptive={self.adaptive}, on={self.on}"
        text += f", match={self.match}" if self.match != "labels" else ""
        text += ", fused=True" if self.fused else ""
        return text + (f", stride={self.stride}" if self.stride > 1 else "")
