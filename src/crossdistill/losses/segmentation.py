"""Supervised segmentation loss: ½·focal + ½·soft Dice (the paper's ``Loss_Seg``).

With ``p = softmax(logits)`` over the K classes, ``t`` the ground-truth class of a pixel and
``P`` the N·H·W pixels of the batch::

    focal = (1/|P|) · Σ_{x∈P} −(1 − p_t(x))^γ · log p_t(x)                 γ = 2
    dice  = 1 − (2·Σ_x p_1(x)·g(x) + 1) / (Σ_x p_1(x) + Σ_x g(x) + 1)     foreground channel
    L_seg = 0.5·focal + 0.5·dice

where ``g = [t = 1]`` (more generally the Dice is taken per foreground channel 1..K−1 and
averaged). Both parts come from MONAI:

* ``FocalLoss(use_softmax=True, to_onehot_y=True, gamma=2, reduction="none")`` gives
  ``−(1 − p_c)^γ · log p_c · onehot_c`` per class and pixel. MONAI's ``"mean"`` reduction
  would divide by N·K·H·W, i.e. by an extra factor K; we sum over the class axis and average
  over the pixels instead, which is the focal loss of Lin et al. (2017) per pixel.
* ``DiceLoss(include_background=False, to_onehot_y=True, softmax=True, smooth_nr=1,
  smooth_dr=1, batch=True)`` computes exactly the ``dice`` line above, the sums running over
  the whole batch (``batch=True``: a slice without prostate does not get its own, noisy
  Dice). ``batch_dice=False`` gives MONAI's per-sample Dice averaged over the samples.

Everything is computed in float32, also under ``torch.autocast``.
"""

from __future__ import annotations

from monai.losses import DiceLoss, FocalLoss
from torch import Tensor

from crossdistill.losses.contract import float32_island

_FOCAL = FocalLoss(use_softmax=True, to_onehot_y=True, gamma=2.0, reduction="none")
_DICE = {
    batch: DiceLoss(
        include_background=False,
        to_onehot_y=True,
        softmax=True,
        smooth_nr=1.0,
        smooth_dr=1.0,
        batch=batch,
    )
    for batch in (True, False)
}


def _as_label_map(target: Tensor, logits: Tensor) -> Tensor:
    """``(N,H,W)`` or ``(N,1,H,W)`` integer labels → ``(N,1,H,W)`` long."""
    if target.dim() == logits.dim() - 1:
        target = target.unsqueeze(1)
    if target.dim() != logits.dim() or target.shape[1] != 1:
        raise ValueError(
            f"target must be (N,H,W) or (N,1,H,W) labels for logits {tuple(logits.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if target.shape[0] != logits.shape[0] or target.shape[2:] != logits.shape[2:]:
        raise ValueError(
            f"target {tuple(target.shape)} does not match logits {tuple(logits.shape)}"
        )
    return target.long()


def segmentation_loss(
    logits: Tensor,
    target: Tensor,
    *,
    focal_weight: float = 0.5,
    dice_weight: float = 0.5,
    batch_dice: bool = True,
) -> Tensor:
    """``0.5·focal(γ=2) + 0.5·soft Dice`` of the foreground channel (formulas: module doc).

    Args:
        logits: ``(N, K, H, W)`` raw scores, K ≥ 2.
        target: ``(N, H, W)`` or ``(N, 1, H, W)`` integer labels in ``[0, K)``.
        focal_weight, dice_weight: the two mixing weights (0.5 each in the paper preset).
        batch_dice: sum the Dice over the whole batch (True) or average per-sample Dice.

    Returns:
        A scalar float32 tensor.
    """
    if logits.dim() < 3 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (N, K>=2, H, W), got {tuple(logits.shape)}")
    labels = _as_label_map(target, logits)
    with float32_island(logits):
        x = logits.float()
        focal = _FOCAL(x, labels).sum(dim=1).mean()
        dice = _DICE[batch_dice](x, labels)
    return focal_weight * focal + dice_weight * dice
