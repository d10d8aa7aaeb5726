"""The options beyond the paper change each KD term exactly as documented, on hand-made cases:
per-image teacher-Dice gating, loss balancing by the initial magnitude, and λ warm-up."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from crossdistill.distill import Distiller, pixel_gate
from crossdistill.distill.gating import teacher_image_dice
from crossdistill.distill.terms import DistillTerm, TermWiring
from crossdistill.errors import ConfigError
from standin_models import FixedLogitsNet

LN3 = math.log(3.0)


def test_teacher_image_dice_by_hand() -> None:
    # image 0: teacher foreground at pixels 0, 1; truth at 1, 2, 3 -> 2·1 / (2 + 3) = 0.4
    # image 1: neither has foreground -> 1; image 2: teacher only -> 0
    fg, bg = [0.0, 1.0], [1.0, 0.0]
    teacher = torch.tensor([[fg, fg, bg, bg], [bg, bg, bg, bg], [fg, bg, bg, bg]]).permute(0, 2, 1)[
        :, :, None
    ]  # (3, 2, 1, 4)
    truth = torch.tensor([[[0, 1, 1, 1]], [[0, 0, 0, 0]], [[0, 0, 0, 0]]])
    dice = teacher_image_dice(teacher, truth)
    assert dice.tolist() == pytest.approx([0.4, 1.0, 0.0])
    gate = pixel_gate(teacher, truth, min_teacher_dice=0.5)
    assert gate.shape == (3, 1, 4)
    assert gate.all(dim=(1, 2)).tolist() == [False, True, False]
    assert not gate[[0, 2]].any()
    with pytest.raises(ValueError, match="ground-truth"):
        pixel_gate(teacher, None, min_teacher_dice=0.5)


def test_min_teacher_dice_drops_the_images_it_fails_on() -> None:
    # two one-row images of 3 pixels; the student is (1/4, 3/4) everywhere.
    # teacher: image 0 labels (1, 1, 0) = truth (Dice 1); image 1 labels (0, 0, 0), truth (1, 1, 0)
    # (Dice 0). The teacher's label-1 pixels are (1/4, 3/4), its label-0 pixels (3/4, 1/4).
    # LM = KL(p_s || p_t) per pixel; gated, only image 0's pixels count.
    student = torch.tensor([[0.0, 0.0, 0.0], [LN3, LN3, LN3]])[None].repeat(2, 1, 1)[:, :, None]
    t0 = torch.tensor([[0.0, 0.0, LN3], [LN3, LN3, 0.0]])
    t1 = torch.tensor([[LN3, LN3, LN3], [0.0, 0.0, 0.0]])
    teacher = torch.stack([t0, t1])[:, :, None]  # (2, 2, 1, 3)
    truth = torch.tensor([[[1, 1, 0]], [[1, 1, 0]]])
    ps = (0.25, 0.75)

    def kl(p, q):
        return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))

    fg_t, bg_t = (0.25, 0.75), (0.75, 0.25)
    image0 = (kl(ps, fg_t) * 2 + kl(ps, bg_t)) / 3
    image1 = kl(ps, bg_t)
    plain = Distiller(FixedLogitsNet(teacher), FixedLogitsNet(student), {"lm": {"weight": 1.0}})
    gated = Distiller(
        FixedLogitsNet(teacher),
        FixedLogitsNet(student),
        {"lm": {"weight": 1.0, "min_teacher_dice": 0.5}},
    )
    images = torch.zeros(2, 1, 1, 3)
    assert plain(images, truth).raw["lm"].item() == pytest.approx((image0 + image1) / 2, 1e-6)
    assert gated(images, truth).raw["lm"].item() == pytest.approx(image0, rel=1e-6)


def _term(**schedule) -> DistillTerm:
    return DistillTerm("x", nn.Identity(), TermWiring(0.5, "logits", **schedule), False)


def test_balance_divides_by_the_initial_mean() -> None:
    term = _term(balance_steps=2).train()
    values = [4.0, 2.0, 6.0, 1.0]
    got = [term.weighted(torch.tensor(v)).item() for v in values]
    # step 1: 0.5·4/4; step 2: 0.5·2/mean(4, 2); then the mean of the first two stays 3
    assert got == pytest.approx([0.5, 0.5 * 2 / 3, 0.5 * 6 / 3, 0.5 * 1 / 3])
    assert int(term.steps) == 4 and float(term.initial) == pytest.approx(3.0)
    # evaluation does not move the counters; the state is in the state dict (checkpoints)
    term.eval()
    assert term.weighted(torch.tensor(3.0)).item() == pytest.approx(0.5)
    assert int(term.steps) == 4
    assert set(term.state_dict()) == {"steps", "initial"}
    # a non-finite value (a skipped step) does not spoil the initial magnitude
    fresh = _term(balance_steps=2).train()
    fresh.weighted(torch.tensor(float("nan")))
    assert float(fresh.initial) == 0.0


def test_warmup_ramps_the_weight() -> None:
    term = _term(warmup_steps=4).train()
    got = [term.weighted(torch.tensor(2.0)).item() for _ in range(6)]
    assert got == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    both = _term(warmup_steps=2, balance_steps=1).train()
    got = [both.weighted(torch.tensor(v)).item() for v in (8.0, 4.0)]
    assert got == pytest.approx([0.5 * 0.5 * 8 / 8, 0.5 * 4 / 8])


def test_plain_terms_keep_no_state() -> None:
    term = _term()
    assert term.weighted(torch.tensor(2.0)).item() == 1.0 and not term.state_dict()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"balance_steps": -1}, "terms.lm.balance_steps"),
        ({"warmup_steps": 2.5}, "terms.lm.warmup_steps"),
        ({"min_teacher_dice": 1.5}, "terms.lm.min_teacher_dice"),
    ],
)
def test_option_errors_name_the_key(options: dict, key: str) -> None:
    teacher = FixedLogitsNet(torch.zeros(2, 1, 3))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        Distiller(teacher, FixedLogitsNet(torch.zeros(2, 1, 3)), {"lm": options})


def test_kmm_is_not_gateable_but_can_be_balanced() -> None:
    teacher = FixedLogitsNet(torch.zeros(2, 1, 3))
    with pytest.raises(ConfigError, match="does not support pixel gating"):
        Distiller(teacher, FixedLogitsNet(torch.zeros(2, 1, 3)), {"kmm": {"min_teacher_dice": 0.5}})
    Distiller(teacher, FixedLogitsNet(torch.zeros(2, 1, 3)), {"kmm": {"balance_steps": 5}})
