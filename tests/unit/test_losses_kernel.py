"""KernelMatrixLoss (KMM): hand-computed Gram matrices, both forms, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from crossdistill.losses import KernelMatrixLoss


def _identity(channels: int, normalize: bool = True) -> KernelMatrixLoss:
    module = KernelMatrixLoss(channels, channels, normalize=normalize)
    with torch.no_grad():
        module.adapter.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return module


def _two_samples() -> tuple[torch.Tensor, torch.Tensor]:
    # n = 2 samples, 1 channel, 1 x 2 pixels; flattened rows:
    # student z1 = (1, 2), z2 = (0, 1);  teacher t1 = (1, 0), t2 = (1, 1)
    student = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 1.0]]]])
    teacher = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]])
    return student, teacher


def test_literal_eq6_by_hand() -> None:
    student, teacher = _two_samples()
    # K_S = [[1+4, 0+2], [2, 0+1]] = [[5, 2], [2, 1]];  K_T = [[1, 1], [1, 2]]
    # D = K_S - K_T = [[4, 1], [1, -1]]
    # eq. 6: (1/n) sum D^2 + ||D||_L1 = (16 + 1 + 1 + 1)/2 + (4 + 1 + 1 + 1) = 9.5 + 7
    value = _identity(1, normalize=False)(student, teacher).item()
    assert value == pytest.approx(16.5, rel=1e-6)


def test_normalized_by_hand() -> None:
    student, teacher = _two_samples()
    # rows L2-normalised: K_S -> [5, 2]/sqrt29, [2, 1]/sqrt5;  K_T -> [1, 1]/sqrt2, [1, 2]/sqrt5
    r29, r5, r2 = math.sqrt(29), math.sqrt(5), math.sqrt(2)
    d = [5 / r29 - 1 / r2, 2 / r29 - 1 / r2, 2 / r5 - 1 / r5, 1 / r5 - 2 / r5]
    expected = sum(x * x for x in d) / 2 + sum(abs(x) for x in d) / 4  # 1/n and 1/n^2
    assert _identity(1)(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_zero_when_features_agree_through_identity() -> None:
    torch.manual_seed(0)
    feature = torch.randn(3, 4, 5, 5)
    for normalize in (True, False):
        value = _identity(4, normalize)(feature, feature.clone()).item()
        assert value == pytest.approx(0.0, abs=1e-4)


def test_student_resized_bilinearly_to_teacher() -> None:
    # a constant map stays constant under bilinear resizing: 2x2 ones -> 4x4 ones
    student = torch.ones(2, 3, 2, 2)
    teacher = torch.ones(2, 3, 4, 4)
    assert _identity(3, normalize=False)(student, teacher).item() == pytest.approx(0.0, abs=1e-5)
    # and the adapter maps 3 -> 5 channels before the Gram matrix
    module = KernelMatrixLoss(3, 5)
    assert module.adapter.out_channels == 5
    assert torch.isfinite(module(torch.randn(2, 3, 2, 2), torch.randn(2, 5, 4, 4)))


@pytest.mark.parametrize("normalize", [True, False])
def test_gradcheck(normalize: bool) -> None:
    torch.manual_seed(1)
    module = KernelMatrixLoss(2, 3, normalize=normalize).double()
    student = torch.randn(3, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(3, 3, 4, 6, dtype=torch.float64)
    weight = module.adapter.weight.detach().clone().requires_grad_()

    def fn(s: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return functional_call(module, {"adapter.weight": w}, (s, teacher))

    assert torch.autograd.gradcheck(fn, (student, weight))


def test_teacher_detached_adapter_trained() -> None:
    module = KernelMatrixLoss(2, 3)
    student = torch.randn(2, 2, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 4, 4, requires_grad=True)
    module(student, teacher).backward()
    assert teacher.grad is None
    assert module.adapter.weight.grad is not None and student.grad is not None


def test_autocast_bf16_large_features() -> None:
    torch.manual_seed(2)
    module = KernelMatrixLoss(4, 8, normalize=False)
    student = 1e3 * torch.randn(2, 4, 8, 8)
    teacher = 1e3 * torch.randn(2, 8, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = module(student, teacher)
    assert value.dtype == torch.float32 and torch.isfinite(value)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="normalize"):
        KernelMatrixLoss(2, 2, normalize="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch"):
        KernelMatrixLoss(2, 2)(torch.randn(2, 2, 2, 2), torch.randn(3, 2, 2, 2))
