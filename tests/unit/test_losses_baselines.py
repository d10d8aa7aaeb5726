"""Baseline KD losses: attention transfer, EMKD region affinity, MSKD region graph and feature
filtering. Hand-computed values on tiny tensors, invariances, resizing, absent classes,
gradients."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.losses.attention import (
    AttentionMapLoss,
    align_to_teacher,
    attention_loss,
    attention_map,
)
from crossdistill.losses.filtering import FeatureFilteringLoss, filtered_attention
from crossdistill.losses.regions import (
    RegionAffinityLoss,
    RegionGraphLoss,
    region_masks,
    region_prototypes,
)

S2, S5 = math.sqrt(2.0), math.sqrt(5.0)

ALL_LOSSES: dict[str, Callable[[], nn.Module]] = {
    "at": AttentionMapLoss,
    "emkd": lambda: AttentionMapLoss(power=4.0),
    "rad": RegionAffinityLoss,
    "rgd1": lambda: RegionGraphLoss(order=1),
    "rgd3": lambda: RegionGraphLoss(order=3),
    "ffd": FeatureFilteringLoss,
}
REGION_LOSSES = ("rad", "rgd1", "rgd3", "ffd")


def _pixels(*columns: tuple[float, ...]) -> Tensor:
    """A 1 x C x 1 x W map from the W per-pixel feature vectors."""
    return torch.tensor(columns).T.reshape(1, len(columns[0]), 1, len(columns))


# ---------------------------------------------------------------------------- attention


def test_attention_map_by_hand() -> None:
    # 1x2x1x2: channel 1 = (1, 2), channel 2 = (1, 0)
    f = torch.tensor([[[[1.0, 2.0]], [[1.0, 0.0]]]])
    # p = 2: mean of squares = ((1 + 1)/2, (4 + 0)/2) = (1, 2) -> (1, 2)/sqrt5
    assert torch.allclose(attention_map(f, 2.0), torch.tensor([[1 / S5, 2 / S5]]))
    # p = 4: mean of 4th powers = ((1 + 1)/2, (16 + 0)/2) = (1, 8) -> (1, 8)/sqrt65
    s65 = math.sqrt(65.0)
    assert torch.allclose(attention_map(f, 4.0), torch.tensor([[1 / s65, 8 / s65]]))
    # negative values count by magnitude; an all-zero map stays zero (no NaN)
    assert torch.allclose(attention_map(-f, 2.0), attention_map(f, 2.0))
    assert torch.equal(attention_map(torch.zeros(1, 2, 1, 2), 2.0), torch.zeros(1, 2))


def test_attention_loss_by_hand() -> None:
    student = torch.tensor([[[[1.0, 2.0]], [[1.0, 0.0]]]])  # a_s = (1, 2)/sqrt5 (as above)
    teacher = torch.tensor([[[[3.0, 0.0]]]])  # one channel: squares (9, 0) -> a_t = (1, 0)
    # ||a_s - a_t||^2 = (1/sqrt5 - 1)^2 + (2/sqrt5)^2 = 1/5 - 2/sqrt5 + 1 + 4/5 = 2 - 2/sqrt5
    expected = 2 - 2 / S5
    assert attention_loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    assert AttentionMapLoss()(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    # p = 4: a_s = (1, 8)/sqrt65, a_t = (1, 0) -> 2 - 2/sqrt65
    value = AttentionMapLoss(power=4)(student, teacher).item()
    assert value == pytest.approx(2 - 2 / math.sqrt(65.0), rel=1e-6)
    # batch mean: a second sample with equal maps adds 0, the mean halves
    batch_s = torch.cat([student, torch.ones(1, 2, 1, 2)])
    batch_t = torch.cat([teacher, torch.ones(1, 1, 1, 2)])
    assert attention_loss(batch_s, batch_t).item() == pytest.approx(expected / 2, rel=1e-6)


@pytest.mark.parametrize("power", [1.0, 2.0, 4.0])
def test_attention_loss_zero_for_scaled_teacher(power: float) -> None:
    torch.manual_seed(0)
    student = torch.randn(3, 4, 5, 6)
    assert attention_loss(student, 3 * student, power).item() == pytest.approx(0.0, abs=1e-6)


def test_attention_loss_independent_of_channel_count() -> None:
    torch.manual_seed(1)
    student = torch.randn(2, 1, 3, 3)
    # 2 channels (sqrt2 * F, 0): per-pixel mean of squares (2 F^2 + 0)/2 = F^2, the student's
    teacher = torch.cat([S2 * student, torch.zeros_like(student)], dim=1)
    assert attention_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-6)
    # (F, -F) as well: (F^2 + F^2)/2 = F^2
    teacher = torch.cat([student, -student], dim=1)
    assert attention_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-6)


def test_bilinear_halving_is_block_mean() -> None:
    # align_corners=False, 4 -> 2: output i samples source 2i + 0.5, the mean of 2i and 2i + 1
    # in each direction, i.e. the mean of each 2x2 block (what the resize tests below rely on)
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4, 4)
    s, _ = align_to_teacher(x, torch.zeros(2, 1, 2, 2))
    assert s.shape == (2, 3, 2, 2)
    assert torch.allclose(s, F.avg_pool2d(x, 2), atol=1e-6)
    assert s[0, 0, 0, 0].item() == pytest.approx(x[0, 0, :2, :2].mean().item(), abs=1e-6)


def test_attention_loss_resizes_student_by_hand() -> None:
    # student 1x1x4x4 made of constant 2x2 blocks (1, 2; 0, 2): resized to 2x2 = the blocks
    blocks = torch.tensor([[[[1.0, 2.0], [0.0, 2.0]]]])
    student = blocks.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    teacher = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # a_s = (1, 4, 0, 4)/sqrt33, a_t = (1, 0, 0, 0): ||a_s - a_t||^2 = 2 - 2/sqrt33
    value = attention_loss(student, teacher).item()
    assert value == pytest.approx(2 - 2 / math.sqrt(33.0), rel=1e-6)


def test_attention_bad_power() -> None:
    f = torch.ones(1, 1, 2, 2)
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "2"):
        with pytest.raises(ValueError, match=r"^power"):
            AttentionMapLoss(power=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^power"):
        attention_loss(f, f, power=0)
    with pytest.raises(ValueError, match=r"^power"):
        attention_map(f, power=-2)
    with pytest.raises(ValueError, match="batch"):
        attention_loss(torch.ones(2, 1, 2, 2), f)
    with pytest.raises(ValueError, match="N, C, H, W"):
        attention_loss(torch.ones(1, 2, 2), f)


# ---------------------------------------------------------------------------- regions


def test_region_masks_area_by_hand() -> None:
    # labels 2x4 -> feature 1x2: cell 0 = columns 0-1 = labels (0, 0, 0, 1) -> 3/4 class 0,
    # 1/4 class 1; cell 1 = columns 2-3 = labels (1, 1, 1, 1) -> class 1 only
    target = torch.tensor([[[0, 0, 1, 1], [0, 1, 1, 1]]])
    masks = region_masks(target, (1, 2))
    expected = torch.tensor([[[[0.75, 0.0]], [[0.25, 1.0]]]])
    assert masks.shape == (1, 2, 1, 2) and torch.allclose(masks, expected)
    # (N, 1, H, W) labels give the same masks; masks of a cell sum to 1
    assert torch.equal(region_masks(target.unsqueeze(1), (1, 2)), masks)
    assert torch.allclose(masks.sum(1), torch.ones(1, 1, 2))


def test_region_masks_nearest_same_size_and_class_count() -> None:
    target = torch.tensor([[[0, 2]]])  # K = 3, class 1 absent
    # same size: one-hot
    one_hot = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert torch.equal(region_masks(target, (1, 2)), one_hot)
    # larger: nearest = each label repeated 2x2
    up = region_masks(target, (2, 4))
    assert up.shape == (1, 3, 2, 4)
    assert torch.equal(up[0, 2], torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1]]))
    # all background: still K = 2 (an empty foreground mask)
    bg = region_masks(torch.zeros(1, 4, 4, dtype=torch.long), (2, 2), dtype=torch.float64)
    assert bg.shape == (1, 2, 2, 2) and bg.dtype == torch.float64
    assert torch.equal(bg[0, 1], torch.zeros(2, 2, dtype=torch.float64))


def test_region_prototypes_by_hand() -> None:
    features = torch.tensor([[[[2.0, 4.0]]]])  # 1x1x1x2
    masks = torch.tensor([[[[0.75, 0.0]], [[0.25, 1.0]], [[0.0, 0.0]]]])  # class 2 absent
    protos, present = region_prototypes(features, masks)
    # class 0: (3/4 * 2) / (3/4) = 2;  class 1: (1/4 * 2 + 1 * 4) / (5/4) = 4.5 / 1.25 = 3.6
    assert torch.allclose(protos, torch.tensor([[[2.0], [3.6], [0.0]]]))
    assert present.tolist() == [[True, True, False]]
    with pytest.raises(ValueError, match="masks"):
        region_prototypes(features, masks[..., :1])


def _two_region_case() -> tuple[Tensor, Tensor, Tensor]:
    # 2 channels, 1x2 pixels; labels at 2x4 map exactly onto the 2 pixels: left 0, right 1
    student = _pixels((1.0, 0.0), (1.0, 1.0))  # prototypes p0 = (1, 0), p1 = (1, 1)
    teacher = _pixels((1.0, 0.0), (0.0, 1.0))  # prototypes p0 = (1, 0), p1 = (0, 1)
    target = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1]]])
    return student, teacher, target


def test_region_affinity_by_hand() -> None:
    student, teacher, target = _two_region_case()
    # S_s = [[1, 1/sqrt2], [1/sqrt2, 1]], S_t = [[1, 0], [0, 1]]
    # mean over the 2x2 pairs: (0 + 1/2 + 1/2 + 0) / 4 = 1/4
    assert RegionAffinityLoss()(student, teacher, target=target).item() == pytest.approx(0.25, 1e-6)
    # a second image with a single class has no relation: left out of the batch mean
    batch_s = torch.cat([student, torch.randn(1, 2, 1, 2)])
    batch_t = torch.cat([teacher, torch.randn(1, 2, 1, 2)])
    batch_y = torch.cat([target, torch.ones_like(target)])
    assert RegionAffinityLoss()(batch_s, batch_t, target=batch_y).item() == pytest.approx(
        0.25, 1e-6
    )


def test_region_affinity_only_over_present_classes() -> None:
    student, teacher, target = _two_region_case()
    # relabel the right half 2: class 1 absent, K = 3, the same 2 present regions -> 1/4
    value = RegionAffinityLoss()(student, teacher, target=2 * target).item()
    assert value == pytest.approx(0.25, rel=1e-6)


def test_region_affinity_scale_invariant() -> None:
    torch.manual_seed(3)
    student, teacher = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    target = torch.randint(0, 3, (2, 8, 8))
    loss = RegionAffinityLoss()
    value = loss(student, teacher, target=target).item()
    assert value > 0
    assert loss(7.0 * student, teacher, target=target).item() == pytest.approx(value, rel=1e-5)
    assert loss(student, 0.1 * teacher, target=target).item() == pytest.approx(value, rel=1e-5)
    assert loss(student, student.clone(), target=target).item() == pytest.approx(0.0, abs=1e-6)


def _lambda(c: float, order: int) -> float:
    # 2 nodes with adjacency [[1, c], [c, 1]]: T = softmax(A / 0.1) rows = [[q, 1-q], [1-q, q]],
    # q = 1 / (1 + exp((c - 1) / 0.1)); eigenvalues 1 and lam = 2q - 1, so
    # T^k = 1/2 [[1 + lam^k, 1 - lam^k], [1 - lam^k, 1 + lam^k]]
    q = 1.0 / (1.0 + math.exp((c - 1.0) / 0.1))
    return (2 * q - 1) ** order


def _graph_expected(order: int) -> float:
    # first order: A_s - A_t has off-diagonals 1/sqrt2 -> mean of squares (1/2 + 1/2)/4 = 1/4;
    # order k: T_s^k - T_t^k = +-(lam_s^k - lam_t^k)/2 on all 4 entries -> mean = that squared
    return 0.25 + sum(
        ((_lambda(1 / S2, k) - _lambda(0.0, k)) / 2) ** 2 for k in range(2, order + 1)
    )


@pytest.mark.parametrize("order", [1, 2, 3])
def test_region_graph_by_hand(order: int) -> None:
    student, teacher, target = _two_region_case()
    value = RegionGraphLoss(order=order)(student, teacher, target=target).item()
    assert value == pytest.approx(_graph_expected(order), rel=1e-6)
    if order > 1:
        assert value > _graph_expected(order - 1) + 1e-4  # the k-hop terms count


def test_region_graph_spans_the_batch() -> None:
    # two images with one class each: RAD has no relation (0), RGD relates the two regions
    student = torch.cat([_pixels((1.0, 0.0)), _pixels((1.0, 1.0))])  # nodes (1, 0), (1, 1)
    teacher = torch.cat([_pixels((1.0, 0.0)), _pixels((0.0, 1.0))])  # nodes (1, 0), (0, 1)
    target = torch.tensor([[[0]], [[1]]])
    assert RegionAffinityLoss()(student, teacher, target=target).item() == 0.0
    value = RegionGraphLoss()(student, teacher, target=target).item()
    assert value == pytest.approx(_graph_expected(2), rel=1e-6)


# ---------------------------------------------------------------------------- filtering


def test_feature_filtering_by_hand() -> None:
    # 1x1x1x4 maps, labels (0, 0, 1, 1) at the same size: hard masks
    student = torch.tensor([[[[1.0, 2.0, 1.0, 1.0]]]])  # squares (1, 4, 1, 1)
    teacher = torch.tensor([[[[2.0, 2.0, 3.0, 0.0]]]])  # squares (4, 4, 9, 0)
    target = torch.tensor([[[0, 0, 1, 1]]])
    # class 0: a_s = (1, 4, 0, 0)/sqrt17, a_t = (1, 1, 0, 0)/sqrt2
    # class 1: a_s = (0, 0, 1, 1)/sqrt2,  a_t = (0, 0, 1, 0)
    # unit vectors: ||a - b||^2 = 2 - 2 a.b -> 2 - 2*5/sqrt34 and 2 - 2/sqrt2; mean of the two
    expected = ((2 - 10 / math.sqrt(34.0)) + (2 - S2)) / 2
    value = FeatureFilteringLoss()(student, teacher, target=target).item()
    assert value == pytest.approx(expected, rel=1e-6)


def test_feature_filtering_soft_masks_by_hand() -> None:
    student = torch.tensor([[[[1.0, 2.0]]]])  # squares (1, 4)
    teacher = torch.tensor([[[[1.0, 1.0]]]])  # squares (1, 1)
    target = torch.tensor([[[0, 0, 1, 1], [0, 1, 1, 1]]])  # masks (3/4, 0) and (1/4, 1)
    # class 0: a_s = a_t = (1, 0) -> 0
    # class 1: a_s = (1/4, 4) ~ (1, 16)/sqrt257, a_t = (1/4, 1) ~ (1, 4)/sqrt17
    #          -> 2 - 2 (1 + 64)/sqrt(257 * 17); mean over the 2 regions
    expected = (2 - 130 / math.sqrt(257.0 * 17.0)) / 2
    value = FeatureFilteringLoss()(student, teacher, target=target).item()
    assert value == pytest.approx(expected, rel=1e-6)
    maps = filtered_attention(student, region_masks(target, (1, 2)))
    assert torch.allclose(maps[0, 1], torch.tensor([1.0, 16.0]) / math.sqrt(257.0))


def test_feature_filtering_channel_count_and_absent_class() -> None:
    torch.manual_seed(4)
    student = torch.randn(2, 1, 4, 4)
    teacher = torch.cat([student, -student], dim=1)  # same per-pixel mean of squares
    target = torch.randint(0, 3, (2, 4, 4))
    target[1] = 2  # image 2: one class, classes 0 and 1 absent
    assert FeatureFilteringLoss()(student, teacher, target=target).item() == pytest.approx(
        0, abs=1e-6
    )
    value = FeatureFilteringLoss()(student, torch.randn(2, 3, 4, 4), target=target)
    assert torch.isfinite(value) and value.item() > 0


# ---------------------------------------------------------------------------- common


@pytest.mark.parametrize("name", REGION_LOSSES)
def test_single_class_target(name: str) -> None:
    torch.manual_seed(5)
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 2, 4, 4)
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    value = ALL_LOSSES[name]()(student[:1], teacher[:1], target=target[:1])
    assert torch.isfinite(value)
    if name != "ffd":  # one region: no relation, a zero that still backpropagates
        assert value.item() == 0.0
        value.backward()
        assert student.grad is not None and torch.equal(student.grad, torch.zeros_like(student))
    # a whole batch of background-only images: RAD 0; RGD relates the images' regions
    value = ALL_LOSSES[name]()(student.detach(), teacher, target=target)
    assert torch.isfinite(value)
    if name == "rad":
        assert value.item() == 0.0


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_student_resized_to_teacher(name: str) -> None:
    torch.manual_seed(6)
    student = torch.randn(2, 3, 4, 4)
    teacher = torch.randn(2, 5, 2, 2)
    target = torch.randint(0, 3, (2, 8, 8))
    loss = ALL_LOSSES[name]()
    value = loss(student, teacher, target=target)
    by_hand = loss(F.avg_pool2d(student, 2), teacher, target=target)  # 4 -> 2 bilinear = block mean
    assert value.shape == () and value.item() == pytest.approx(by_hand.item(), rel=1e-5)


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_gradcheck(name: str) -> None:
    torch.manual_seed(7)
    student = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    # 4x4 labels on the 2x2 teacher grid: soft masks of 3 classes
    target = torch.tensor([[[0, 1, 1, 1], [0, 0, 2, 1], [2, 2, 1, 1], [0, 2, 0, 1]]])
    loss = ALL_LOSSES[name]()
    assert loss(student, teacher, target=target).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda s: loss(s, teacher, target=target), (student,))


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_teacher_detached_no_parameters(name: str) -> None:
    torch.manual_seed(8)
    loss = ALL_LOSSES[name]()
    assert list(loss.parameters()) == []
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 2, 4, 4, requires_grad=True)
    target = torch.randint(0, 2, (2, 1, 4, 4))
    loss(student, teacher, target=target).backward()
    assert teacher.grad is None and student.grad is not None


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_autocast_bf16_computes_in_float32(name: str) -> None:
    torch.manual_seed(9)
    student, teacher = 30 * torch.randn(2, 3, 4, 4), 30 * torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 3, (2, 8, 8))
    loss = ALL_LOSSES[name]()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(student.bfloat16(), teacher.bfloat16(), target=target)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    expected = loss(student.bfloat16().float(), teacher.bfloat16().float(), target=target)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", REGION_LOSSES)
def test_region_losses_need_a_valid_target(name: str) -> None:
    loss = ALL_LOSSES[name]()
    x = torch.randn(2, 2, 2, 2)
    with pytest.raises(ValueError, match=r"^target"):
        loss(x, x)
    with pytest.raises(ValueError, match=r"^target"):
        loss(x, x, target=torch.zeros(2, 2, 2))  # float labels
    with pytest.raises(ValueError, match=r"^target"):
        loss(x, x, target=torch.zeros(3, 2, 2, dtype=torch.long))  # batch size
    with pytest.raises(ValueError, match=r"^target"):
        loss(x, x, target=torch.zeros(2, 2, dtype=torch.long))  # shape
    with pytest.raises(ValueError, match=r"^target"):
        loss(x, x, target=-torch.ones(2, 2, 2, dtype=torch.long))  # negative label


def test_region_graph_bad_order() -> None:
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"^order"):
            RegionGraphLoss(order=bad)  # type: ignore[arg-type]
    assert "order=3" in repr(RegionGraphLoss(order=3))
