"""Distiller: terms, weights, frozen teacher, trainable parameters, presets, config errors."""

from __future__ import annotations

import math

import pytest
import torch

from crossdistill.distill import Distiller, pixel_gate, preset_names, preset_terms
from crossdistill.errors import ConfigError
from crossdistill.losses import available_terms, segmentation_loss
from crossdistill.models.output import SegOutput
from standin_models import FixedLogitsNet, TinySegNet

LN3 = math.log(3.0)
PAPER = {"lm": 0.2, "kmm": 0.9, "aam": 0.9}


def _models() -> tuple[TinySegNet, TinySegNet]:
    torch.manual_seed(0)
    return TinySegNet(low=6, high=16), TinySegNet(low=4, high=8)


def _batch(n: int = 2, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(n, 1, size, size), (torch.rand(n, size, size) > 0.6).long()


def test_every_configured_term_weighted_and_raw() -> None:
    teacher, student = _models()
    distiller = Distiller(teacher, student, preset_terms("ours"))
    images, masks = _batch()
    out = distiller(images, masks)
    assert set(out.terms) == set(out.raw) == {"seg", "lm", "kmm", "aam"}
    for name, weight in {"seg": 1.0, **PAPER}.items():
        assert torch.allclose(out.terms[name], weight * out.raw[name])
    assert torch.allclose(out.total, sum(out.terms.values()))
    assert out.logits is not None and out.logits.shape == (2, 2, 16, 16)
    assert out.teacher_logits is not None and not out.teacher_logits.requires_grad
    assert distiller.term_weights == {"seg": 1.0, **PAPER}
    assert set(out.detached()) >= {"total", "seg", "raw/aam"}


def test_no_terms_is_segmentation_only_without_teacher() -> None:
    _, student = _models()
    distiller = Distiller(None, student, preset_terms("none"))
    images, masks = _batch()
    out = distiller(images, masks)
    assert set(out.terms) == {"seg"} and out.teacher_logits is None
    assert torch.allclose(out.total, segmentation_loss(student(images).logits, masks))


def test_teacher_frozen_student_and_adapter_trained() -> None:
    teacher, student = _models()
    distiller = Distiller(
        teacher, student, {**preset_terms("ours"), "aam": {"sizes": [1, 2], "adaptive": True}}
    )
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_state = {k: v.clone() for k, v in student.state_dict().items()}
    adapter = distiller.kd_terms["kmm"].loss.adapter.weight
    adapter_before = adapter.detach().clone()
    params = list(distiller.trainable_parameters())
    assert all(p.requires_grad for p in params)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert any(p is adapter for p in params)
    assert any(p is distiller.kd_terms["aam"].loss.size_logits for p in params)
    assert not any(p is q for p in params for q in teacher.parameters())

    optimizer = torch.optim.SGD(params, lr=0.1)
    distiller.train()
    assert distiller.student.training and not distiller.teacher.training
    images, masks = _batch()
    for _ in range(2):
        optimizer.zero_grad()
        distiller(images, masks).total.backward()
        optimizer.step()

    for key, value in teacher.state_dict().items():  # weights AND BN running buffers
        assert torch.equal(value, teacher_state[key]), key
    assert not torch.equal(adapter.detach(), adapter_before)
    assert not torch.equal(student.state_dict()["stem.0.weight"], student_state["stem.0.weight"])
    # the student's BN statistics move (it trains), the teacher's did not
    assert not torch.equal(
        student.state_dict()["stem.1.running_mean"], student_state["stem.1.running_mean"]
    )


def test_train_keeps_teacher_in_eval() -> None:
    teacher, student = _models()
    teacher.train()
    distiller = Distiller(teacher, student, preset_terms("lm"))
    assert not teacher.training
    distiller.train(True)
    assert not teacher.training and student.training
    distiller.eval()
    assert not teacher.training and not student.training
    distiller.train()
    assert not teacher.training


def test_precomputed_teacher_outputs_are_used() -> None:
    teacher, student = _models()
    distiller = Distiller(teacher, student, preset_terms("ours"))
    images, masks = _batch()
    cached = distiller.teacher_forward(images)
    calls = []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    out = distiller(images, masks, teacher_outputs=cached)
    assert calls == []
    reference = distiller(images, masks)
    assert calls == [1]
    for name in out.raw:
        assert torch.allclose(out.raw[name], reference.raw[name])


def test_presets_terms_and_weights() -> None:
    rows = ("lm", "aam", "kmm", "kmm+lm", "aam+lm", "aam+kmm", "aam+kmm+lm")
    assert set(preset_names()) == {"none", "ours", *rows, "kd", "at", "emkd", "mskd", "recommended"}
    assert preset_terms("none") == {}
    assert preset_terms("ours") == {
        "lm": {"weight": 0.2},
        "kmm": {"weight": 0.9, "feature": "high"},
        "aam": {"weight": 0.9, "margin": 3.0},
    }
    for row in rows:
        terms = preset_terms(row)
        assert set(terms) == set(row.split("+"))
        assert {k: v["weight"] for k, v in terms.items()} == {k: PAPER[k] for k in terms}
    assert preset_terms("LM+AAM") == preset_terms("aam+lm")
    preset_terms("ours")["lm"]["weight"] = 5.0  # a copy: the preset itself is unchanged
    assert preset_terms("ours")["lm"]["weight"] == 0.2


def test_unknown_preset_lists_names() -> None:
    with pytest.raises(ConfigError, match="aam\\+kmm\\+lm") as err:
        preset_terms("kd+lm")
    assert "ours" in str(err.value)


@pytest.mark.parametrize(
    ("terms", "key"),
    [
        ({"foo": {"weight": 1.0}}, "terms.foo"),
        ({"aam": {"margn": 3.0}}, "terms.aam.margn"),
        ({"kmm": {"feature": "middle"}}, "terms.kmm.feature"),
        ({"lm": {"weight": "high"}}, "terms.lm.weight"),
        ({"lm": {"weight": -1.0}}, "terms.lm.weight"),
        ({"lm": {"direction": "sideways"}}, "terms.lm.direction"),
        ({"lm": {"temperature": 0}}, "terms.lm.temperature"),
        ({"lm": {"temperature": "warm"}}, "terms.lm.temperature"),
        ({"aam": {"sizes": [0]}}, "terms.aam.sizes"),
        ({"aam": {"margin": "wide"}}, "terms.aam.margin"),
        ({"kmm": {"normalize": 1}}, "terms.kmm.normalize"),
        ({"kmm": {"min_confidence": 0.9}}, "terms.kmm.min_confidence"),
        ({"lm": {"min_confidence": 1.5}}, "terms.lm.min_confidence"),
        ({"aam": {"gt_gate": "yes"}}, "terms.aam.gt_gate"),
        ({"seg": {"weight": 1.0}}, "terms.seg"),
    ],
)
def test_config_errors_name_the_key(terms: dict, key: str) -> None:
    teacher, student = _models()
    with pytest.raises(ConfigError) as err:
        Distiller(teacher, student, terms)
    assert err.value.key == key


def test_terms_need_a_teacher() -> None:
    _, student = _models()
    with pytest.raises(ConfigError, match="teacher"):
        Distiller(None, student, preset_terms("ours"))


def test_registry_lists_paper_terms() -> None:
    assert {"lm", "kmm", "aam"} <= set(available_terms())


# --- gating ("beyond the paper"), by hand ------------------------------------------------
# Three pixels in a row. Student: (0, 0) everywhere -> p_s = (1/2, 1/2).
# Teacher: p1 = (1/2, 1/2) [conf 0.5, argmax 0], p2 = (1/4, 3/4) [0.75, 1], p3 = (3/4, 1/4)
# [0.75, 0]. Ground truth: (0, 1, 1) -> the teacher agrees at pixels 1 and 2.
STUDENT = torch.zeros(1, 2, 1, 3)
TEACHER = torch.tensor([[[[0.0, 0.0, LN3]], [[0.0, LN3, 0.0]]]])
TRUTH = torch.tensor([[[0, 1, 1]]])
KL_23 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # KL(p_s||p_t), pixels 2, 3


def test_pixel_gate_by_hand() -> None:
    assert pixel_gate(TEACHER) is None
    conf = pixel_gate(TEACHER, min_confidence=0.7)
    assert conf.tolist() == [[[False, True, True]]]
    assert pixel_gate(TEACHER, TRUTH, gt_gate=True).tolist() == [[[True, True, False]]]
    both = pixel_gate(TEACHER, TRUTH, min_confidence=0.7, gt_gate=True)
    assert both.tolist() == [[[False, True, False]]]


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ({}, 2 * KL_23 / 3),  # pixels 1..3: (0 + KL + KL) / 3
        ({"min_confidence": 0.7}, KL_23),  # pixels 2, 3
        ({"gt_gate": True}, KL_23 / 2),  # pixels 1, 2: (0 + KL) / 2
        ({"min_confidence": 0.7, "gt_gate": True}, KL_23),  # pixel 2
    ],
)
def test_lm_gating_in_distiller(gate: dict, expected: float) -> None:
    distiller = Distiller(
        FixedLogitsNet(TEACHER), FixedLogitsNet(STUDENT), {"lm": {"weight": 1.0, **gate}}
    )
    out = distiller(torch.zeros(1, 1, 1, 3), TRUTH)
    assert out.raw["lm"].item() == pytest.approx(expected, rel=1e-6)


def test_aam_confidence_gating_in_distiller() -> None:
    # student a = (1/2, 1/2), b = (1/4, 3/4), c = (3/4, 1/4); teacher labels (0, 0, 1) with
    # confidences (0.75, 0.75, ~0.52): tau = 0.7 removes c, so only a<->b (P+) remains.
    student = torch.tensor([[[[0.0, 0.0, LN3]], [[0.0, LN3, 0.0]]]])
    teacher = torch.tensor([[[[LN3, LN3, 0.0]], [[0.0, 0.0, 0.1]]]])
    a, b = (0.5, 0.5), (0.25, 0.75)
    kl_ba = sum(x * math.log(x / y) for x, y in zip(b, a, strict=True))
    kl_ab = sum(x * math.log(x / y) for x, y in zip(a, b, strict=True))
    distiller = Distiller(
        FixedLogitsNet(teacher),
        FixedLogitsNet(student),
        {"aam": {"weight": 0.9, "min_confidence": 0.7}},
    )
    out = distiller(torch.zeros(1, 1, 1, 3), torch.zeros(1, 1, 3, dtype=torch.long))
    assert out.raw["aam"].item() == pytest.approx((kl_ba + kl_ab) / 2, rel=1e-6)
    assert out.terms["aam"].item() == pytest.approx(0.9 * (kl_ba + kl_ab) / 2, rel=1e-6)


def test_teacher_outputs_may_be_a_plain_segoutput() -> None:
    distiller = Distiller(FixedLogitsNet(TEACHER), FixedLogitsNet(STUDENT), preset_terms("lm"))
    given = SegOutput(TEACHER.clone().requires_grad_(), {})
    out = distiller(torch.zeros(1, 1, 1, 3), TRUTH, teacher_outputs=given)
    out.total.backward()
    assert given.logits.grad is None
    assert out.raw["lm"].item() == pytest.approx(2 * KL_23 / 3, rel=1e-6)
