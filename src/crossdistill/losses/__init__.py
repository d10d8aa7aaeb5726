"""Losses: supervised segmentation loss and the knowledge-distillation terms (paper §2).

* ``segmentation_loss`` — ½·focal(γ=2) + ½·soft Dice (``L_seg``).
* ``logits_kl`` / ``LogitsKL`` — Logits Module (``L_LM``, eq. 7).
* ``affinity_loss`` / ``AffinityLoss`` — Adaptive Affinity Module (``L_AA``, eqs. 1–4).
* ``KernelMatrixLoss`` — Kernel Matrix Module with its 1×1 adapter (``L_KM``, eqs. 5–6).
* ``AttentionMapLoss`` — attention transfer (AT) and EMKD's importance maps (p = 4).
* ``RegionAffinityLoss`` (EMKD), ``RegionGraphLoss`` and ``FeatureFilteringLoss`` (MSKD).
* ``compactness_loss`` / ``SmoothnessLoss`` — SAML's shape losses.
* ``DistillLoss`` — their common call ``loss(student, teacher, *, target=None, valid=None)``.
* ``register_term`` / ``get_term`` / ``build_term`` / ``available_terms`` — the KD-term registry.
"""

from crossdistill.losses.affinity import AffinityLoss, affinity_loss, reverse_gradient
from crossdistill.losses.attention import AttentionMapLoss, attention_loss, attention_map
from crossdistill.losses.contract import DistillLoss
from crossdistill.losses.filtering import FeatureFilteringLoss, feature_filtering_loss
from crossdistill.losses.kernel import KernelMatrixLoss, gram_matrix
from crossdistill.losses.logits import LogitsKL, logits_kl
from crossdistill.losses.regions import (
    RegionAffinityLoss,
    RegionGraphLoss,
    region_affinity_loss,
    region_graph_loss,
)
from crossdistill.losses.registry import (
    TermSpec,
    available_terms,
    build_term,
    get_term,
    register_term,
)
from crossdistill.losses.segmentation import segmentation_loss
from crossdistill.losses.shape import SmoothnessLoss, compactness_loss

__all__ = [
    "AffinityLoss",
    "AttentionMapLoss",
    "DistillLoss",
    "FeatureFilteringLoss",
    "KernelMatrixLoss",
    "LogitsKL",
    "RegionAffinityLoss",
    "RegionGraphLoss",
    "SmoothnessLoss",
    "TermSpec",
    "affinity_loss",
    "attention_loss",
    "attention_map",
    "available_terms",
    "build_term",
    "compactness_loss",
    "feature_filtering_loss",
    "get_term",
    "gram_matrix",
    "logits_kl",
    "region_affinity_loss",
    "region_graph_loss",
    "register_term",
    "reverse_gradient",
    "segmentation_loss",
]
