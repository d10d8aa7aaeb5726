"""Losses: supervised segmentation loss and the knowledge-distillation terms (paper §2).

* ``segmentation_loss`` — ½·focal(γ=2) + ½·soft Dice (``L_seg``).
* ``logits_kl`` / ``LogitsKL`` — Logits Module (``L_LM``, eq. 7).
* ``affinity_loss`` / ``AffinityLoss`` — Adaptive Affinity Module (``L_AA``, eqs. 1–4).
* ``KernelMatrixLoss`` — Kernel Matrix Module with its 1×1 adapter (``L_KM``, eqs. 5–6).
* ``register_term`` / ``get_term`` / ``build_term`` / ``available_terms`` — the KD-term registry.
"""

from crossdistill.losses.affinity import AffinityLoss, affinity_loss, reverse_gradient
from crossdistill.losses.kernel import KernelMatrixLoss, gram_matrix
from crossdistill.losses.logits import LogitsKL, logits_kl
from crossdistill.losses.registry import (
    TermSpec,
    available_terms,
    build_term,
    get_term,
    register_term,
)
from crossdistill.losses.segmentation import segmentation_loss

__all__ = [
    "AffinityLoss",
    "KernelMatrixLoss",
    "LogitsKL",
    "TermSpec",
    "affinity_loss",
    "available_terms",
    "build_term",
    "get_term",
    "gram_matrix",
    "logits_kl",
    "register_term",
    "reverse_gradient",
    "segmentation_loss",
]
