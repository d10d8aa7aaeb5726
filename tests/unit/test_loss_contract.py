"""Every registered distillation loss keeps one call signature (losses/contract.py)."""

from __future__ import annotations

import inspect

import pytest
import torch

from crossdistill.losses import DistillLoss, available_terms, build_term, get_term
from crossdistill.losses.contract import float32_island

SIGNATURE = [
    ("student", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
    ("teacher", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
    ("target", inspect.Parameter.KEYWORD_ONLY, None),
    ("valid", inspect.Parameter.KEYWORD_ONLY, None),
]


@pytest.mark.parametrize("name", available_terms())
def test_every_registered_loss_has_the_one_forward_signature(name: str) -> None:
    loss = build_term(name, {}, 8, 16)
    assert isinstance(loss, DistillLoss)
    params = list(inspect.signature(loss.forward).parameters.values())
    assert [(p.name, p.kind, p.default) for p in params] == SIGNATURE


@pytest.mark.parametrize("name", available_terms())
def test_a_gate_is_taken_by_gateable_losses_and_refused_by_the_others(name: str) -> None:
    torch.manual_seed(0)
    loss = build_term(name, {}, 8, 16)
    target = torch.randint(0, 2, (2, 8, 8))
    valid = torch.ones(2, 8, 8, dtype=torch.bool)
    if get_term(name).gateable:  # read at the logits
        student, teacher = torch.randn(2, 2, 8, 8), torch.randn(2, 2, 8, 8)
        gated = loss(student, teacher, target=target, valid=valid)
        assert gated.item() == pytest.approx(loss(student, teacher, target=target).item())
    else:  # read at a feature map
        student, teacher = torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4)
        assert torch.isfinite(loss(student, teacher, target=target))
        with pytest.raises(ValueError, match="valid"):
            loss(student, teacher, target=target, valid=valid)


def test_the_float32_island_turns_autocast_off_and_keeps_float64() -> None:
    x16 = torch.ones(2, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with float32_island(x16) as dtype:
            assert dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
        assert torch.is_autocast_enabled("cpu")
    with float32_island(torch.ones(2, dtype=torch.float64)) as dtype:
        assert dtype == torch.float64
