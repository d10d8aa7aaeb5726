"""AAM's fused pair sums (``aam.fused: true``): the function that is compiled gives the eager
AAM's values and gradients, it traces as one graph with its backward, and the option is
wired through the term configuration."""

from __future__ import annotations

import pytest
import torch

import crossdistill.losses.affinity_fused as affinity_fused
from crossdistill.errors import ConfigError
from crossdistill.losses import AffinityLoss, affinity_loss
from crossdistill.losses.affinity_fused import pair_losses
from crossdistill.losses.neighbour_pairs import LOG_CLIP
from crossdistill.losses.registry import build_term


def _inputs(seed: int, shape=(3, 3, 7, 6)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    student = 2 * torch.randn(*shape)
    teacher = torch.randn(*shape)
    valid = torch.rand(shape[0], *shape[2:]) > 0.3
    return student, teacher, valid


def _value_and_grad(loss) -> tuple[torch.Tensor, torch.Tensor]:
    def run(student, teacher, **kwargs):
        z = student.clone().requires_grad_()
        value = loss(z, teacher, **kwargs)
        (grad,) = torch.autograd.grad(value, z)
        return value.detach(), grad

    return run


@pytest.mark.parametrize("gated", [False, True])
def test_plain_autograd_pair_sums_equal_the_eager_aam(gated: bool) -> None:
    """``pair_losses`` (what is compiled) against the custom autograd function, by value and
    gradient, over sizes whose offsets leave the image partly (7 × 6 grid, size 5)."""
    student, teacher, valid = _inputs(1)
    kwargs = {"sizes": (1, 2, 5), "margin": 0.7, "valid": valid if gated else None}
    eager = _value_and_grad(affinity_loss)(student, teacher, **kwargs)

    def functional(z, t, sizes, margin, valid):
        logp = torch.log_softmax(z, 1).clamp_min(LOG_CLIP)
        return pair_losses(logp, t.argmax(1), valid, sizes, margin).mean()

    plain = _value_and_grad(functional)(student, teacher, **kwargs)
    assert torch.allclose(plain[0], eager[0], rtol=1e-6)
    assert torch.allclose(plain[1], eager[1], rtol=1e-5, atol=1e-8)


def test_gradcheck_of_the_plain_pair_sums() -> None:
    torch.manual_seed(4)
    logp = torch.log_softmax(torch.randn(2, 3, 4, 5, dtype=torch.float64), 1)
    logp.requires_grad_()
    labels = torch.randint(0, 3, (2, 4, 5))
    valid = torch.rand(2, 4, 5) > 0.25
    assert torch.autograd.gradcheck(lambda x: pair_losses(x, labels, valid, (1, 2), 3.0), (logp,))


def test_compiled_graph_gives_the_eager_values_and_gradients(monkeypatch) -> None:
    """``fused=True`` through ``torch.compile(fullgraph=True)``: the graph and the backward
    AOTAutograd derives from it (``aot_eager``: the same tracing as Inductor without
    generating kernels, which a CPU test cannot afford), gated, then with adaptive weights
    (one graph: same shapes, sizes and gate)."""
    monkeypatch.setattr(affinity_fused, "COMPILE_BACKEND", "aot_eager")
    student, teacher, valid = _inputs(2)
    eager = _value_and_grad(affinity_loss)(student, teacher, sizes=(1, 3), valid=valid)
    fused = _value_and_grad(affinity_loss)(student, teacher, sizes=(1, 3), valid=valid, fused=True)
    assert torch.allclose(fused[0], eager[0], rtol=1e-6)
    assert torch.allclose(fused[1], eager[1], rtol=1e-5, atol=1e-8)

    module = AffinityLoss(sizes=(1, 3), adaptive=True, fused=True)
    z = student.clone().requires_grad_()
    module(z, teacher, valid=valid).backward()
    assert torch.allclose(z.grad, eager[1], rtol=1e-5, atol=1e-8)  # equal weights at start
    assert module.size_logits.grad is not None


def test_the_option_is_a_term_option_and_checked() -> None:
    term = build_term("aam", {"fused": True}, 2, 2)
    assert isinstance(term, AffinityLoss) and term.fused and "fused=True" in repr(term)
    assert not build_term("aam", {}, 2, 2).fused
    with pytest.raises(TypeError, match="fused must be true or false"):
        AffinityLoss(fused="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="match: labels"):
        AffinityLoss(match="teacher", fused=True)
    with pytest.raises(ConfigError, match="fused"):
        build_term("aam", {"fused": "yes"}, 2, 2)


def test_a_machine_that_cannot_compile_gets_one_line_naming_the_option(monkeypatch) -> None:
    def no_compiler(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(affinity_fused, "COMPILE_BACKEND", no_compiler)
    student, teacher, _ = _inputs(3)
    with pytest.raises(ConfigError, match=r"distill\.terms\.aam\.fused") as info:
        affinity_loss(student, teacher, fused=True)
    assert "no C++ compiler found" in str(info.value) and "set it to false" in str(info.value)
    assert "\n" not in str(info.value)
