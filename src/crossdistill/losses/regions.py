"""Region prototypes: EMKD's region-affinity (RAD) and MSKD's region-graph (RGD) distillation.

Both methods summarise a feature map by one prototype per ground-truth region (class) and
distil the relations between the prototypes, so student and teacher may have different
channel counts. With the labels ``y`` of shape ``(N, H0, W0)`` and ``K = max(y) + 1`` classes
(at least 2), the soft region masks at the feature size ``(h, w)`` are::

    m_k = area_resize( 1[y = k] )           (N, K, h, w), each entry ∈ [0, 1]

the fraction of each feature cell covered by class ``k`` (area averaging when the feature map
is smaller than the labels, exact when ``H0, W0`` are multiples of ``h, w``; nearest-neighbour
when it is larger in either dimension). The prototype of class ``k`` in image ``n`` is the
masked average of the ``C``-channel feature ``F``::

    p_nk = Σ_x m_nk(x)·F_n(x) / Σ_x m_nk(x),      present_nk = Σ_x m_nk(x) > 0

(an absent class gives a zero prototype and ``present = False``). The student's map is first
resized bilinearly (``align_corners=False``) to the teacher's size, so that both use the same
masks and the same present regions; the teacher is detached. Cosine similarities use
``cos(u, v) = u·v / (max(‖u‖, ε)·max(‖v‖, ε))`` with ``ε = 1e-12`` (``F.normalize``).

**RAD** (EMKD, Qin et al. 2021): per image ``n`` with present classes ``P_n``,
``S(i, j) = cos(p_ni, p_nj)`` for ``i, j ∈ P_n`` and::

    L_RAD = mean_{n : |P_n| ≥ 2}  (1/|P_n|²)·Σ_{i, j ∈ P_n} (S_S(i, j) − S_T(i, j))²

(the diagonal, 1 on both sides for non-zero prototypes, is included in the mean). Images with
fewer than two present classes have no relation and are left out; if none has two the loss
is a zero connected to the student's graph.

**RGD** (MSKD, Zhao et al. 2023). The paper does not give every detail; the choices made here:

* one graph for the whole batch: its ``M`` nodes are the prototypes of all present regions of
  all images (so regions of different images are related too — with a batch of single-class
  images RGD is still defined where RAD is 0);
* first-order edges: the cosine-similarity adjacency ``A(i, j) = cos(p_i, p_j)`` (M × M);
* higher-order relations: the row-stochastic transition matrix ``T = softmax(A / τ)`` (row-wise,
  ``τ = 0.1``) and its powers ``T^k``, the k-hop random-walk probabilities;
* the loss is the mean squared difference of each, summed over the orders::

      L_RGD = mean((A_S − A_T)²) + Σ_{k=2..order} mean((T_S^k − T_T^k)²)

  (``order = 1``: the adjacency term only), and a zero connected to the graph when ``M < 2``.

Computed in float32 (float64 for float64 input) with autocast disabled. No parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from crossdistill.losses.attention import align_to_teacher
from crossdistill.losses.contract import DistillLoss, float32_island, reject_gate

#: temperature of the row softmax that turns RGD's adjacency into a transition matrix
GRAPH_TEMPERATURE = 0.1


def _as_labels(target: Tensor | None, batch: int | None = None) -> Tensor:
    """``(N, H0, W0)`` integer labels from ``(N, H0, W0)`` or ``(N, 1, H0, W0)``."""
    if target is None:
        raise ValueError("target (ground-truth labels) is required by this loss, got None")
    if target.ndim == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim != 3:
        raise ValueError(f"target must be (N, H, W) or (N, 1, H, W), got {tuple(target.shape)}")
    if target.dtype.is_floating_point or target.dtype.is_complex:
        raise ValueError(f"target must hold integer labels, got dtype {target.dtype}")
    if batch is not None and target.shape[0] != batch:
        raise ValueError(f"target has batch size {target.shape[0]}, the features {batch}")
    return target


def region_masks(
    target: Tensor, size: tuple[int, int] | torch.Size, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Soft masks of the ground-truth classes at a feature size (module doc).

    Args:
        target: ``(N, H0, W0)`` or ``(N, 1, H0, W0)`` integer labels ``>= 0``.
        size: the feature size ``(h, w)``.
        dtype: floating dtype of the masks.

    Returns:
        ``(N, K, h, w)`` masks, ``K = max(int(target.max()) + 1, 2)``; entry ``(n, k, i, j)``
        is the fraction of feature cell ``(i, j)`` covered by class ``k`` (area averaging when
        ``(h, w)`` is not larger than the labels; nearest neighbour otherwise). The masks of a
        cell sum to 1.

    Raises:
        ValueError: a target that is not integer, not ``(N, [1,] H0, W0)``, or negative.
    """
    target = _as_labels(target)
    h, w = (int(v) for v in size)
    if target.numel() and int(target.min()) < 0:
        raise ValueError(f"target labels must be >= 0, got {int(target.min())}")
    K = max(int(target.max()) + 1 if target.numel() else 0, 2)
    classes = torch.arange(K, device=target.device).view(1, K, 1, 1)
    with torch.no_grad():
        one_hot = (target.unsqueeze(1) == classes).to(dtype)
        H0, W0 = target.shape[-2:]
        if (h, w) == (H0, W0):
            return one_hot
        if h <= H0 and w <= W0:
            return F.interpolate(one_hot, size=(h, w), mode="area")
        return F.interpolate(one_hot, size=(h, w), mode="nearest")


def check_features_and_masks(features: Tensor, masks: Tensor) -> None:
    """``ValueError`` unless ``features (N, C, h, w)`` and ``masks (N, K, h, w)`` agree."""
    if (
        features.ndim != 4
        or masks.ndim != 4
        or features.shape[0] != masks.shape[0]
        or features.shape[-2:] != masks.shape[-2:]
    ):
        raise ValueError(
            f"features {tuple(features.shape)} and masks {tuple(masks.shape)} must be "
            "(N, C, h, w) and (N, K, h, w)"
        )


def region_prototypes(features: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Masked-average prototype of each region (module doc).

    Args:
        features: ``(N, C, h, w)`` feature map.
        masks: ``(N, K, h, w)`` soft region masks (``region_masks``) at the same size.

    Returns:
        ``(protos, present)``: ``(N, K, C)`` prototypes ``Σ_x m_k(x)·F(x) / Σ_x m_k(x)`` (zero
        for an absent region) and the ``(N, K)`` bool mask ``Σ_x m_k(x) > 0``.

    Raises:
        ValueError: batch or spatial sizes of features and masks differ.
    """
    check_features_and_masks(features, masks)
    masks = masks.to(features.dtype)
    area = masks.sum(dim=(2, 3))
    present = area > 0
    weighted = torch.einsum("nkhw,nchw->nkc", masks, features)
    protos = weighted / torch.where(present, area, torch.ones_like(area)).unsqueeze(-1)
    return protos, present


def _cosine(protos: Tensor) -> Tensor:
    """Cosine-similarity matrix over the second-to-last axis of ``(..., M, C)``."""
    unit = F.normalize(protos, p=2.0, dim=-1, eps=1e-12)
    return unit @ unit.transpose(-1, -2)


def _prototypes_pair(
    student: Tensor, teacher: Tensor, target: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Aligned student tensor and the student/teacher prototypes with their present mask."""
    labels = _as_labels(target)
    s, t = align_to_teacher(student, teacher)
    labels = _as_labels(labels, s.shape[0])
    masks = region_masks(labels, t.shape[-2:], dtype=t.dtype)
    protos_s, present = region_prototypes(s, masks)
    protos_t, _ = region_prototypes(t, masks)
    return s, protos_s, protos_t, present


def region_affinity_loss(student: Tensor, teacher: Tensor, target: Tensor | None) -> Tensor:
    """``L_RAD``: per-image prototype cosine-affinity matching (EMKD; module doc).

    Args:
        student: ``(N, Cs, Hs, Ws)`` student tensor (resized to the teacher's size if needed).
        teacher: ``(N, Ct, Ht, Wt)`` teacher tensor (detached here).
        target: ``(N, H0, W0)`` or ``(N, 1, H0, W0)`` integer ground-truth labels.

    Returns:
        A scalar tensor; a zero connected to the student's graph when no image has two
        present classes.

    Raises:
        ValueError: missing or malformed ``target``, non-4-D tensors, different batch sizes.
    """
    with float32_island(student):
        s, protos_s, protos_t, present = _prototypes_pair(student, teacher, target)
        pairs = (present.unsqueeze(2) & present.unsqueeze(1)).to(s.dtype)  # (N, K, K)
        count = present.sum(dim=1)  # (N,)
        related = count >= 2
        if not bool(related.any()):
            return s.sum() * 0
        sq = (_cosine(protos_s) - _cosine(protos_t)).square() * pairs
        per_image = sq.sum(dim=(1, 2)) / count.clamp_min(1).to(s.dtype).square()
        return per_image[related].mean()


def region_graph_loss(
    student: Tensor, teacher: Tensor, target: Tensor | None, order: int = 2
) -> Tensor:
    """``L_RGD``: batch region-graph matching with k-hop relations (MSKD; module doc).

    Args:
        student: ``(N, Cs, Hs, Ws)`` student tensor (resized to the teacher's size if needed).
        teacher: ``(N, Ct, Ht, Wt)`` teacher tensor (detached here).
        target: ``(N, H0, W0)`` or ``(N, 1, H0, W0)`` integer ground-truth labels.
        order: highest relation order ``>= 1`` (1: adjacency only; k: adds ``T^2 … T^k``).

    Returns:
        A scalar tensor; a zero connected to the student's graph when the batch has fewer
        than two present regions.

    Raises:
        ValueError: a bad ``order``, missing or malformed ``target``, non-4-D tensors or
            different batch sizes.
    """
    order = _check_order(order)
    with float32_island(student):
        s, protos_s, protos_t, present = _prototypes_pair(student, teacher, target)
        nodes_s, nodes_t = protos_s[present], protos_t[present]  # (M, Cs), (M, Ct)
        if nodes_s.shape[0] < 2:
            return s.sum() * 0
        adj_s, adj_t = _cosine(nodes_s), _cosine(nodes_t)
        loss = (adj_s - adj_t).square().mean()
        if order >= 2:
            trans_s = torch.softmax(adj_s / GRAPH_TEMPERATURE, dim=1)
            trans_t = torch.softmax(adj_t / GRAPH_TEMPERATURE, dim=1)
            walk_s, walk_t = trans_s, trans_t
            for _ in range(2, order + 1):
                walk_s, walk_t = walk_s @ trans_s, walk_t @ trans_t
                loss = loss + (walk_s - walk_t).square().mean()
        return loss


def _check_order(order: object) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    return order


class RegionAffinityLoss(DistillLoss):
    """EMKD region-affinity distillation ``L_RAD`` as a module (no parameters; module doc)."""

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """Scalar ``L_RAD``; ``target`` (ground-truth labels) is required."""
        reject_gate(valid, "rad")
        return region_affinity_loss(student, teacher, target)


class RegionGraphLoss(DistillLoss):
    """MSKD region-graph distillation ``L_RGD`` as a module (no parameters; module doc).

    Args:
        order: highest relation order ``>= 1``: the adjacency plus ``T^2 … T^order``.
    """

    def __init__(self, order: int = 2):
        super().__init__()
        self.order = _check_order(order)

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        target: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """Scalar ``L_RGD``; ``target`` (ground-truth labels) is required."""
        reject_gate(valid, "rgd")
        return region_graph_loss(student, teacher, target, self.order)

    def extra_repr(self) -> str:
        return f"order={self.order}"
