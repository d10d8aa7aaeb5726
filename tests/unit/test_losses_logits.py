"""logits_kl: pixel-averaged KL in both directions, temperature, gating, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from crossdistill.losses import LogitsKL, logits_kl

LN3 = math.log(3.0)


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    # 1x2x1x2: pixel 1 student (0, 0) -> (1/2, 1/2), teacher (0, ln 3) -> (1/4, 3/4);
    #          pixel 2 student = teacher = (0, 0)
    student = torch.tensor([[[[0.0, 0.0]], [[0.0, 0.0]]]])
    teacher = torch.tensor([[[[0.0, 0.0]], [[LN3, 0.0]]]])
    return student, teacher


def test_student_teacher_direction_by_hand() -> None:
    student, teacher = _case()
    # KL(p_s || p_t) at pixel 1 = 1/2 ln(1/2 / 1/4) + 1/2 ln(1/2 / 3/4); pixel 2: 0
    kl1 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert logits_kl(student, teacher).item() == pytest.approx(kl1 / 2, rel=1e-6)
    assert logits_kl(student, teacher, direction="student||teacher").item() == pytest.approx(
        kl1 / 2, rel=1e-6
    )


def test_teacher_student_direction_by_hand_and_differs() -> None:
    student, teacher = _case()
    # KL(p_t || p_s) at pixel 1 = 1/4 ln(1/4 / 1/2) + 3/4 ln(3/4 / 1/2)
    kl1 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    value = logits_kl(student, teacher, direction="teacher||student").item()
    assert value == pytest.approx(kl1 / 2, rel=1e-6)
    assert value != pytest.approx(logits_kl(student, teacher).item(), rel=1e-3)


def test_temperature_scaling_by_hand() -> None:
    student, teacher = _case()
    # T = 2: teacher pixel 1 becomes softmax(0, ln3 / 2) = (1, sqrt 3) / (1 + sqrt 3)
    q1, q2 = 1 / (1 + math.sqrt(3)), math.sqrt(3) / (1 + math.sqrt(3))
    kl1 = 0.5 * math.log(0.5 / q1) + 0.5 * math.log(0.5 / q2)
    expected = 2**2 * kl1 / 2  # T^2 times the pixel mean
    assert logits_kl(student, teacher, temperature=2.0).item() == pytest.approx(expected, 1e-6)


def test_zero_for_equal_logits() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 3, 4, 5)
    for direction in ("student||teacher", "teacher||student"):
        for t in (1.0, 3.0):
            assert logits_kl(z, z.clone(), t, direction).item() == pytest.approx(0.0, abs=1e-7)


def test_valid_mask_means_over_valid_pixels() -> None:
    student, teacher = _case()
    kl1 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    only_first = torch.tensor([[[True, False]]])
    assert logits_kl(student, teacher, valid=only_first).item() == pytest.approx(kl1, 1e-6)
    none = torch.zeros(1, 1, 2, dtype=torch.bool)
    assert logits_kl(student, teacher, valid=none).item() == 0.0


@pytest.mark.parametrize("direction", ["student||teacher", "teacher||student"])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_gradcheck(direction: str, temperature: float) -> None:
    torch.manual_seed(1)
    student = torch.randn(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda s: logits_kl(s, teacher, temperature, direction), (student,)
    )


def test_teacher_gets_no_gradient() -> None:
    student = torch.randn(1, 2, 2, 2, requires_grad=True)
    teacher = torch.randn(1, 2, 2, 2, requires_grad=True)
    logits_kl(student, teacher).backward()
    assert teacher.grad is None and student.grad is not None


def test_autocast_bf16_computes_in_float32() -> None:
    torch.manual_seed(2)
    student, teacher = 30 * torch.randn(2, 2, 4, 4), 30 * torch.randn(2, 2, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = logits_kl(student.bfloat16(), teacher.bfloat16())
    assert value.dtype == torch.float32 and torch.isfinite(value)
    expected = logits_kl(student.bfloat16().float(), teacher.bfloat16().float())
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_invalid_arguments() -> None:
    z = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="direction"):
        logits_kl(z, z, direction="forward")
    with pytest.raises(ValueError, match="direction"):
        LogitsKL(direction="both")
    with pytest.raises(ValueError, match="temperature"):
        logits_kl(z, z, temperature=0.0)
    with pytest.raises(ValueError, match="shape"):
        logits_kl(z, torch.zeros(1, 3, 2, 2))
