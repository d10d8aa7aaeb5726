"""Domain-generalisation baselines: SAML's episodes and first-order step, its shape losses,
DRDG's gradient reversal, the site-balanced sampler and the method registry."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from crossdistill.data.sampling import SiteBalancedSampler
from crossdistill.dg import DRDG, SAML, split_episode
from crossdistill.errors import ConfigError
from crossdistill.losses.affinity import reverse_gradient
from crossdistill.losses.segmentation import segmentation_loss
from crossdistill.losses.shape import SmoothnessLoss, compactness_loss, contour_and_ring
from crossdistill.methods import create_objective, method_options
from standin_models import TinySegNet

SITES = ["A", "A", "B", "B", "C", "C"]


def _batch(n: int = 6, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 1, size, size, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.long)
    masks[:, 4:12, 5:11] = 1
    return images, masks


def test_episode_splits_sites_into_disjoint_groups() -> None:
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        train, test, test_sites = split_episode(SITES, 1)
        assert len(test_sites) == 1
        assert {SITES[i] for i in test} == set(test_sites)
        assert not {SITES[i] for i in train} & set(test_sites)
        assert sorted(train + test) == list(range(len(SITES)))
        seen.add(test_sites[0])
    assert seen == {"A", "B", "C"}  # every site is meta-test in some episode
    train, test, names = split_episode(SITES, 2)
    assert len(names) == 2 and len({SITES[i] for i in train}) == 1
    with pytest.raises(ValueError, match="at least 2 sites"):
        split_episode(["A", "A"], 1)


def test_site_balanced_batches_hold_every_site() -> None:
    sites = ["A"] * 10 + ["B"] * 3 + ["C"] * 1
    sampler = SiteBalancedSampler(sites, 20, 6, torch.Generator().manual_seed(1))
    indices = list(sampler)
    assert len(indices) == len(sampler) == 120
    for b in range(20):
        batch = indices[6 * b : 6 * b + 6]
        assert sorted(sites[i] for i in batch) == ["A", "A", "B", "B", "C", "C"]
    small = list(SiteBalancedSampler(sites, 5, 2, torch.Generator().manual_seed(1)))
    assert all(sites[small[2 * b]] != sites[small[2 * b + 1]] for b in range(5))
    again = list(SiteBalancedSampler(sites, 20, 6, torch.Generator().manual_seed(1)))
    assert again == indices


def test_saml_first_order_meta_gradient() -> None:
    """With the shape weights at 0, θ.grad = ∇L_a(θ) + ∇L_b(θ − α∇L_a(θ)) (first order)."""
    torch.manual_seed(0)
    student = TinySegNet()
    method = SAML(student, inner_lr=0.1, compact_weight=0.0, smooth_weight=0.0)
    images, masks = _batch()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    torch.manual_seed(5)
    out = method(images, masks, sites=SITES)
    out.total.backward()
    grads = {n: p.grad.clone() for n, p in student.named_parameters()}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for g in grads.values())
    params = dict(student.named_parameters())
    assert all(torch.equal(params[n], before[n]) for n in params)  # θ not stepped in place

    # the same episode by hand (the meta-test site drawn from the same RNG state)
    torch.manual_seed(5)
    tr, te, _ = split_episode(SITES, 1)
    student.load_state_dict(before)  # BatchNorm running stats as before the first pass
    student.zero_grad()
    loss_a = segmentation_loss(student(images[tr]).logits, masks[tr])
    g_a = torch.autograd.grad(loss_a, list(params.values()))
    fast = {
        n: (p - 0.1 * g).detach().requires_grad_()
        for (n, p), g in zip(params.items(), g_a, strict=True)
    }
    loss_b = segmentation_loss(functional_call(student, fast, (images[te],)).logits, masks[te])
    g_b = torch.autograd.grad(loss_b, list(fast.values()))
    for (name, _), ga, gb in zip(params.items(), g_a, g_b, strict=True):
        torch.testing.assert_close(grads[name], ga + gb, rtol=1e-4, atol=1e-6)


def test_saml_reports_its_terms_and_needs_sites() -> None:
    torch.manual_seed(0)
    method = SAML(TinySegNet(), shape_warmup_steps=4)
    images, masks = _batch()
    out = method(images, masks, sites=SITES)
    assert set(out.raw) == {"seg", "meta_seg", "compact", "smooth"}
    # the shape weights ramp up: step 1 of 4 -> 1/4 of λ_s
    assert out.terms["smooth"].item() == pytest.approx(5e-3 / 4 * out.raw["smooth"].item())
    for _ in range(4):
        out = method(images, masks, sites=SITES)
    assert out.terms["compact"].item() == pytest.approx(out.raw["compact"].item())
    assert int(method.auxiliary.state_dict()["steps.count"]) == 5
    assert out.logits.shape == (6, 2, 16, 16)
    with pytest.raises(ConfigError, match="site"):
        method(images, masks)


def test_compactness_of_a_square_by_hand() -> None:
    # 4x4 square in an 8x8 image. Backward differences at the 7x7 pixels (i, j >= 1): the
    # square's top and left edges (row/column 2) step up, the pixels just past its bottom and
    # right edges (row/column 6) step down: one unit step at 14 pixels, two at the corner
    # (2, 2), sqrt(eps) at the other 34. A = 16.
    p = torch.zeros(1, 8, 8)
    p[0, 2:6, 2:6] = 1
    eps = 1e-8
    steps = torch.zeros(8, 8)
    for i in range(1, 8):
        for j in range(1, 8):
            steps[i, j] = (p[0, i, j] - p[0, i - 1, j]) ** 2 + (p[0, i, j] - p[0, i, j - 1]) ** 2
    ones = int((steps == 1).sum())
    twos = int((steps == 2).sum())
    assert (ones, twos) == (14, 1)  # the corner (2, 2) steps up in both directions
    perimeter = 0.01 * (ones * math.sqrt(1 + eps) + twos * math.sqrt(2 + eps))
    perimeter += 0.01 * (49 - ones - twos) * math.sqrt(eps)
    expected = perimeter**2 / (4 * math.pi * 16)
    assert compactness_loss(p).item() == pytest.approx(expected, rel=1e-5)
    # the length weight is the original's 0.01: without it the quotient is 10^4 times larger
    assert compactness_loss(p, length_weight=1.0).item() == pytest.approx(1e4 * expected, rel=1e-5)
    # a ragged shape of the same area is less compact; images add up
    q = torch.zeros(1, 8, 8)
    q[0, ::2, ::2] = 1
    assert compactness_loss(q).item() > 3 * expected
    both = torch.cat([p, q])
    total = compactness_loss(p) + compactness_loss(q)
    assert compactness_loss(both).item() == pytest.approx(total.item(), rel=1e-6)


def test_compactness_gradient_by_gradcheck() -> None:
    torch.manual_seed(0)
    p = torch.rand(2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(compactness_loss, (p,))


def test_contour_band_and_background_ring() -> None:
    mask = torch.zeros(1, 9, 9)
    mask[0, 3:6, 3:6] = 1
    contour, ring = contour_and_ring(mask)
    # dilate: 5x5 (2..6), erode: the centre pixel -> contour = 25 - 1 pixels
    assert contour.sum() == 24 and contour[0, 4, 4] == 0
    # ring: 7x7 (1..7) minus the 5x5 dilation
    assert ring.sum() == 49 - 25 and ring[0, 1, 1] == 1 and ring[0, 2, 2] == 0


def test_smoothness_triplet_by_hand() -> None:
    # constant features: every embedding is the same vector -> both hinges = margin
    loss = SmoothnessLoss(channels=3, margin=0.7)
    feats = torch.ones(2, 3, 8, 8)
    masks = torch.zeros(2, 8, 8, dtype=torch.long)
    masks[:, 2:6, 2:6] = 1
    assert loss(feats, masks, feats, masks).item() == pytest.approx(1.4, rel=1e-6)
    # no foreground in one group: no contour, loss 0 and still differentiable
    empty = torch.zeros_like(masks)
    feats.requires_grad_()
    zero = loss(feats, masks, feats, empty)
    zero.backward()
    assert zero.item() == 0.0 and feats.grad is not None


def test_gradient_reversal() -> None:
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = reverse_gradient(x)
    assert torch.equal(y, x)
    (3 * y).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-3.0, -3.0]))


def test_drdg_terms_and_site_checks() -> None:
    torch.manual_seed(0)
    method = DRDG(TinySegNet(), ["A", "B", "C"], in_channels=1)
    images, masks = _batch()
    out = method(images, masks, sites=SITES)
    assert set(out.raw) == {"seg", "rec", "style", "adv"}
    # three sites: an untrained classifier's cross-entropy is near ln 3
    assert abs(out.raw["style"].item() - math.log(3)) < 0.7
    out.total.backward()
    assert method.heads["decoder"].out.weight.grad is not None
    with pytest.raises(ConfigError, match="'D'"):
        method(images, masks, sites=["A", "B", "C", "D", "A", "B"])
    with pytest.raises(ValueError, match="two training sites"):
        DRDG(TinySegNet(), ["A"])


def test_registry_checks_options() -> None:
    assert set(method_options("saml")) >= {"inner_lr", "compact_weight", "smooth_weight"}
    assert method_options("supervised") == {}
    with pytest.raises(ConfigError, match=r"train\.method_options\.inner_rate"):
        create_objective("saml", TinySegNet(), ["A", "B"], 1, {"inner_rate": 1})
    with pytest.raises(ConfigError, match=r"train\.method_options\.inner_lr"):
        create_objective("saml", TinySegNet(), ["A", "B"], 1, {"inner_lr": -1})
    with pytest.raises(ConfigError, match="unknown method"):
        create_objective("mixup", TinySegNet(), ["A", "B"], 1)
