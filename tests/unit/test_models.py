"""The model zoo: the output contract, gradients, determinism, input checks and the registry.

Every network runs at a small width on tiny inputs, so the whole file takes a few seconds.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crossdistill.errors import CrossDistillError
from crossdistill.models import (
    STUDENTS,
    TEACHERS,
    SegOutput,
    create_model,
    list_models,
    model_role,
)

NAMES = list_models()
WIDTH = 0.125

#: docs/design.md §4: the feature taps' channels at width 1.
TAPS = {
    "enet": {"low": 16, "high": 128},
    "espnet": {"low": 16, "high": 256},
    "erfnet": {"low": 16, "high": 128},
    "unetpp": {"low": 128, "high": 512},
    "deeplabv3plus": {"low": 32, "high": 2048},
}


def _model(name: str, seed: int = 0, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, width=kwargs.pop("width", WIDTH), **kwargs)  # type: ignore[arg-type]


def _check_output(out: SegOutput, model: torch.nn.Module, n: int, h: int, w: int) -> None:
    assert isinstance(out, SegOutput)
    assert out.logits.shape == (n, model.num_classes, h, w)
    assert set(out.features) >= {"low", "high"}
    low, high = out.features["low"], out.features["high"]
    assert low.shape == (n, model.feature_channels["low"], h // 2, w // 2)
    assert high.shape == (n, model.feature_channels["high"], h // 8, w // 8)
    for tensor in (out.logits, low, high):
        assert torch.isfinite(tensor).all()


def test_registry_lists_the_five_networks_and_their_roles() -> None:
    assert sorted(NAMES) == sorted(TAPS)
    assert list_models("teacher") == list(TEACHERS) == ["unetpp", "deeplabv3plus"]
    assert list_models("student") == list(STUDENTS) == ["enet", "espnet", "erfnet"]
    assert model_role("UNet++") == "teacher" and model_role("ENet") == "student"


@pytest.mark.parametrize("name", NAMES)
def test_feature_channels_at_width_1_follow_the_design(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    assert model.feature_channels == TAPS[name]


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(CrossDistillError) as err:
        create_model("unet3000")
    for name in NAMES:
        assert name in str(err.value)


def test_aliases_and_case_are_accepted() -> None:
    assert type(create_model("ENet", width=WIDTH)) is type(create_model("enet", width=WIDTH))
    assert type(create_model("UNet++", width=WIDTH)).__name__ == "UNetPlusPlus"
    assert type(create_model("DeepLabV3+", width=WIDTH)).__name__ == "DeepLabV3Plus"


@pytest.mark.parametrize("bad", [{"width": 0.0}, {"in_channels": 0}, {"num_classes": 0}])
def test_bad_constructor_arguments_raise(bad: dict) -> None:
    with pytest.raises(CrossDistillError):
        create_model("enet", **bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("h", "w"), [(64, 64), (96, 96), (64, 96)])
def test_output_shapes(name: str, h: int, w: int) -> None:
    model = _model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, h, w))
    _check_output(out, model, 2, h, w)


@pytest.mark.parametrize("name", NAMES)
def test_three_input_channels_and_more_classes(name: str) -> None:
    model = _model(name, in_channels=3, num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    _check_output(out, model, 1, 64, 64)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("train", [True, False])
def test_forward_backward(name: str, train: bool) -> None:
    model = _model(name).train(train)
    x = torch.randn(2, 1, 64, 64)
    target = (torch.rand(2, 64, 64) > 0.5).long()
    out = model(x)
    # No in-place op touched a tapped feature after it was produced.
    assert out.features["low"]._version == 0
    assert out.features["high"]._version == 0
    loss = F.cross_entropy(out.logits, target)
    loss = loss + out.features["low"].mean() + out.features["high"].mean()
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_one_trains(name: str) -> None:
    model = _model(name).train()
    out = model(torch.randn(1, 1, 64, 64))
    out.logits.sum().backward()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_weights_same_output(name: str) -> None:
    a, b, c = _model(name, seed=3).eval(), _model(name, seed=3).eval(), _model(name, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(a(x).logits, b(x).logits)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1, 48, 64), (1, 1, 64, 80), (1, 1, 100, 100)])
def test_sides_not_multiple_of_32_raise(name: str, shape: tuple[int, ...]) -> None:
    model = _model(name).eval()
    with pytest.raises(CrossDistillError, match="multiples of 32"):
        model(torch.randn(*shape))


@pytest.mark.parametrize("name", ["enet", "deeplabv3plus"])
def test_wrong_channels_or_rank_raise(name: str) -> None:
    model = _model(name).eval()
    with pytest.raises(CrossDistillError, match="input channel"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(CrossDistillError, match="4-D"):
        model(torch.randn(1, 64, 64))


@pytest.mark.parametrize("name", NAMES)
def test_width_scales_channels(name: str) -> None:
    with torch.device("meta"):
        half = create_model(name, width=0.5)
    assert half.feature_channels == {k: v // 2 for k, v in TAPS[name].items()}


def test_enet_unpooling_equals_max_unpool() -> None:
    from crossdistill.models.enet import max_unpool2x2

    x = torch.randn(2, 3, 8, 12)
    values, indices = F.max_pool2d(x, 2, 2, return_indices=True)
    assert torch.equal(max_unpool2x2(values, indices), F.max_unpool2d(values, indices, 2, 2))


def test_deeplab_imagenet_head_is_frozen_and_optional() -> None:
    with torch.device("meta"):
        with_head = create_model("deeplabv3plus")
        from crossdistill.models.deeplabv3plus import DeepLabV3Plus

        without = DeepLabV3Plus(imagenet_head=False)
    head = with_head.imagenet_head
    assert head is not None and not any(p.requires_grad for p in head.parameters())
    n_with = sum(p.numel() for p in with_head.parameters())
    n_without = sum(p.numel() for p in without.parameters())
    assert n_with - n_without == 2048 * 1000 + 1000
