"""segmentation_loss: ½·focal(γ=2) + ½·soft Dice, checked against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from crossdistill.losses import segmentation_loss

LN3 = math.log(3.0)


def _two_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    # pixel A: logits (0, ln 3) -> p = (1/4, 3/4), label 1
    # pixel B: logits (0, 0)    -> p = (1/2, 1/2), label 0
    logits = torch.tensor([[[[0.0, 0.0]], [[LN3, 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])  # (1, 1, 2)
    return logits, target


def test_hand_value_two_pixels() -> None:
    logits, target = _two_pixels()
    # focal: A has p_t = 3/4, B has p_t = 1/2; mean over the 2 pixels
    focal = (-((1 - 0.75) ** 2) * math.log(0.75) - (1 - 0.5) ** 2 * math.log(0.5)) / 2
    # dice on channel 1: p1 = (3/4, 1/2), g = (1, 0)
    # 1 - (2*3/4 + 1) / ((3/4 + 1/2) + 1 + 1) = 1 - 2.5/3.25 = 3/13
    dice = 3 / 13
    expected = 0.5 * focal + 0.5 * dice
    assert segmentation_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    # (N, 1, H, W) targets give the same value
    assert segmentation_loss(logits, target.unsqueeze(1)).item() == pytest.approx(expected, 1e-6)


def test_batch_and_per_sample_dice() -> None:
    logits, target = _two_pixels()
    # second sample: logits (0, 0) everywhere -> p1 = 1/2, labels 0 (no prostate)
    logits2 = torch.cat([logits, torch.zeros(1, 2, 1, 2)])
    target2 = torch.cat([target, torch.zeros(1, 1, 2, dtype=torch.long)])
    focal = (-(0.25**2) * math.log(0.75) - 3 * 0.5**2 * math.log(0.5)) / 4
    # batch Dice: sum p1 g = 3/4, sum p1 = 5/4 + 1, sum g = 1 -> 1 - 2.5/4.25 = 7/17
    batch = 0.5 * focal + 0.5 * (7 / 17)
    # per-sample: 3/13 and 1 - (0 + 1)/(1 + 0 + 1) = 1/2, averaged
    per_sample = 0.5 * focal + 0.5 * (3 / 13 + 0.5) / 2
    assert segmentation_loss(logits2, target2).item() == pytest.approx(batch, rel=1e-6)
    value = segmentation_loss(logits2, target2, batch_dice=False).item()
    assert value == pytest.approx(per_sample, rel=1e-6)


def test_gradient_and_autocast() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    target = (torch.rand(2, 8, 8) > 0.5).long()
    segmentation_loss(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = segmentation_loss(logits.bfloat16(), target)
    assert value.dtype == torch.float32
    expected = segmentation_loss(logits.bfloat16().float(), target)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bad_target_shape() -> None:
    with pytest.raises(ValueError, match="target"):
        segmentation_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="target"):
        segmentation_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))
