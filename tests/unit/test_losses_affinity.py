"""affinity_loss (AAM) and AffinityLoss, checked against hand arithmetic."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from crossdistill.losses import AffinityLoss, affinity_loss

LN3 = math.log(3.0)


def kl(p: tuple[float, ...], q: tuple[float, ...]) -> float:
    """KL(p || q) of two explicit distributions."""
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _row() -> tuple[torch.Tensor, torch.Tensor]:
    # one row of three pixels a, b, c (1 x 2 x 1 x 3)
    # student: a = (1/2, 1/2), b = (1/4, 3/4), c = (3/4, 1/4)
    # teacher labels: a = 0, b = 0, c = 1
    student = torch.tensor([[[[0.0, 0.0, LN3]], [[0.0, LN3, 0.0]]]])
    teacher = torch.tensor([[[[1.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]])
    return student, teacher


A, B, C = (0.5, 0.5), (0.25, 0.75), (0.75, 0.25)


def test_hand_value_one_row() -> None:
    student, teacher = _row()
    # size 1 on a single row: only the horizontal pairs a<->b (P+) and b<->c (P-) exist
    # W_ij = KL(F_j || F_i), every unordered pair in both directions
    l_pos = (kl(B, A) + kl(A, B)) / 2
    l_neg = ((3 - kl(C, B)) + (3 - kl(B, C))) / 2  # both KLs = ln(3)/2 < 3: hinge active
    assert kl(C, B) == pytest.approx(LN3 / 2)
    value = affinity_loss(student, teacher).item()
    assert value == pytest.approx(l_pos + l_neg, rel=1e-6)
    # teacher given as a label map gives the same
    labels = torch.tensor([[[0, 0, 1]]])
    assert affinity_loss(student, labels).item() == pytest.approx(value, rel=1e-7)


def test_hinge_inactive_beyond_margin() -> None:
    student, teacher = _row()
    l_pos = (kl(B, A) + kl(A, B)) / 2
    # margin 0.5 < ln(3)/2 = 0.549: the P- pairs contribute max(0, 0.5 - 0.549) = 0
    assert affinity_loss(student, teacher, margin=0.5).item() == pytest.approx(l_pos, 1e-6)


def test_eight_neighbours_and_borders_2x2() -> None:
    # 2x2 image, all teacher labels equal: every pixel has 3 in-image neighbours
    # (right/left, down/up and one diagonal) -> 12 ordered pairs, all in P+, P- empty (= 0).
    # student: top-left = (1/2, 1/2), the other three = (1/4, 3/4)
    student = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]], [[0.0, LN3], [LN3, LN3]]]])
    teacher = torch.zeros(1, 2, 2, 2)
    expected = (3 * kl(B, A) + 3 * kl(A, B) + 6 * 0.0) / 12
    assert affinity_loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_sizes_and_weights() -> None:
    student, teacher = _row()
    l1 = (kl(B, A) + kl(A, B)) / 2 + ((3 - kl(C, B)) + (3 - kl(B, C))) / 2
    # size 2 on the row: only a<->c, labels differ -> P- only, P+ empty
    l2 = ((3 - kl(C, A)) + (3 - kl(A, C))) / 2
    # size 3: no pair fits in 3 columns -> 0
    value = affinity_loss(student, teacher, sizes=(1, 2, 3)).item()
    assert value == pytest.approx((l1 + l2 + 0.0) / 3, rel=1e-6)
    w = (0.3, -0.2, 1.0)
    z = [math.exp(x) for x in w]
    expected = (z[0] * l1 + z[1] * l2) / sum(z)
    assert affinity_loss(student, teacher, sizes=(1, 2, 3), weights=w).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_probabilities_clipped_at_1e_4() -> None:
    # a = (1/2, 1/2), b = logits (0, 20) -> p = (2e-9, ~1) clipped to (1e-4, ~1); same label
    student = torch.tensor([[[[0.0, 0.0]], [[0.0, 20.0]]]])
    teacher = torch.zeros(1, 2, 1, 2)
    q1 = 1 / (1 + math.exp(-20.0))
    b = (1e-4, q1)
    expected = (kl(b, A) + kl(A, b)) / 2  # KL with the clipped (unnormalised) values
    assert affinity_loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_valid_mask_keeps_pairs_of_valid_pixels() -> None:
    student, teacher = _row()
    valid = torch.tensor([[[True, True, False]]])  # c is gated out: b<->c pairs vanish
    expected = (kl(B, A) + kl(A, B)) / 2  # P- empty -> 0
    assert affinity_loss(student, teacher, valid=valid).item() == pytest.approx(expected, 1e-6)


def _loop_reference(student: torch.Tensor, labels: torch.Tensor, margin: float, size: int):
    """Pixel-by-pixel loops over the 8 neighbours (independent of the vectorised code)."""
    prob = torch.softmax(student.double(), 1).clamp(1e-4, 1.0).tolist()
    N, K, H, W = student.shape
    pos, neg = [], []
    for n, y, x in itertools.product(range(N), range(H), range(W)):
        for dy, dx in itertools.product((-size, 0, size), repeat=2):
            yj, xj = y + dy, x + dx
            if (dy, dx) == (0, 0) or not (0 <= yj < H and 0 <= xj < W):
                continue
            f_i = [prob[n][c][y][x] for c in range(K)]
            f_j = [prob[n][c][yj][xj] for c in range(K)]
            w_ij = sum(f_j[c] * (math.log(f_j[c]) - math.log(f_i[c])) for c in range(K))
            if labels[n, y, x] == labels[n, yj, xj]:
                pos.append(w_ij)
            else:
                neg.append(max(0.0, margin - w_ij))
    mean = lambda v: sum(v) / len(v) if v else 0.0  # noqa: E731
    return mean(pos) + mean(neg)


def test_matches_pixel_loop_reference() -> None:
    torch.manual_seed(0)
    student = 2 * torch.randn(2, 3, 4, 5)
    teacher = torch.randn(2, 3, 4, 5)
    labels = teacher.argmax(1)
    for size, margin in ((1, 3.0), (2, 0.3)):
        expected = _loop_reference(student, labels, margin, size)
        got = affinity_loss(student, teacher, margin=margin, sizes=(size,)).item()
        assert got == pytest.approx(expected, rel=1e-5)


def test_gradcheck_float64() -> None:
    torch.manual_seed(3)
    # |logits| <= ~1: probabilities far above 1e-4 (no clip), W << m = 3 (no hinge kink)
    student = (0.5 * torch.randn(1, 3, 4, 4, dtype=torch.float64)).requires_grad_()
    teacher = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    valid = torch.rand(1, 4, 4) > 0.25
    w = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s, w: affinity_loss(s, teacher, sizes=(1, 2), weights=w), (student, w)
    )
    assert torch.autograd.gradcheck(lambda s: affinity_loss(s, teacher, valid=valid), (student,))


def test_teacher_gets_no_gradient() -> None:
    student = torch.randn(1, 2, 3, 3, requires_grad=True)
    teacher = torch.randn(1, 2, 3, 3, requires_grad=True)
    affinity_loss(student, teacher).backward()
    assert teacher.grad is None and student.grad is not None


def test_learnable_size_weights_ascend() -> None:
    torch.manual_seed(4)
    student = torch.randn(2, 2, 6, 6)
    teacher = torch.randn(2, 2, 6, 6)
    module = AffinityLoss(sizes=(1, 2, 3), adaptive=True)
    assert isinstance(module.size_logits, torch.nn.Parameter)
    assert torch.allclose(module.size_weights(), torch.full((3,), 1 / 3))
    loss = module(student, teacher)
    loss.backward()
    grad = module.size_logits.grad
    assert grad is not None and grad.abs().sum() > 0
    # reversed: the parameter's gradient is -dL/dw
    w = module.size_logits.detach().clone().requires_grad_()
    affinity_loss(student, teacher, sizes=(1, 2, 3), weights=w).backward()
    assert torch.allclose(grad, -w.grad)
    # a descent step of the optimizer therefore increases the loss
    torch.optim.SGD(module.parameters(), lr=1.0).step()
    assert module(student, teacher).item() > loss.item()


def test_fixed_module_has_no_parameters() -> None:
    module = AffinityLoss(margin=2.0, sizes=(1, 2))
    assert list(module.parameters()) == []
    student, teacher = _row()
    assert module(student, teacher).item() == pytest.approx(
        affinity_loss(student, teacher, 2.0, (1, 2)).item()
    )


def test_autocast_no_overflow() -> None:
    torch.manual_seed(5)
    student = 200 * torch.randn(2, 2, 8, 8)
    teacher = torch.randn(2, 2, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = student.bfloat16().requires_grad_()
        value = affinity_loss(low, teacher)
        value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert low.grad is not None and torch.isfinite(low.grad.float()).all()
    expected = affinity_loss(student.bfloat16().float(), teacher)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bad_arguments() -> None:
    student, teacher = _row()
    with pytest.raises(ValueError, match="sizes"):
        affinity_loss(student, teacher, sizes=(0,))
    with pytest.raises(ValueError, match="weights"):
        affinity_loss(student, teacher, sizes=(1, 2), weights=(1.0,))
    with pytest.raises(ValueError, match="sizes"):
        AffinityLoss(sizes=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="match"):
        affinity_loss(student, torch.zeros(1, 2, 2, 3))


def test_chunked_batch_gives_the_same_values_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    import crossdistill.losses.affinity as affinity

    torch.manual_seed(6)
    student = torch.randn(3, 2, 5, 6)
    teacher = torch.randn(3, 2, 5, 6)
    valid = torch.rand(3, 5, 6) > 0.2
    results = []
    for chunk in (1 << 18, 1):  # one chunk, then one sample per chunk
        monkeypatch.setattr(affinity, "_CHUNK_ELEMENTS", chunk)
        z = student.clone().requires_grad_()
        value = affinity_loss(z, teacher, sizes=(1, 2), valid=valid)
        value.backward()
        results.append((value.detach(), z.grad))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-8)
