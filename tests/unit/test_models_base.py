"""The networks' base class: what every network declares, the input check, and the taps.

Networks are built on the ``meta`` device: the input check runs before any layer, so a bad
input is rejected without arithmetic.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from crossdistill.errors import CrossDistillError
from crossdistill.models import SegmentationNetwork, SegOutput, create_model, list_models
from crossdistill.models.taps import LOGITS, check_tap, tap_channels
from standin_models import TinySegNet

NAMES = list_models()


def _meta(name: str, **kwargs: object) -> SegmentationNetwork:
    with torch.device("meta"):
        return create_model(name, **kwargs)  # type: ignore[arg-type]


class _Identity(SegmentationNetwork):
    """The smallest network: its input as logits and features, inputs of sides multiple of 8."""

    side_multiple = 8

    def __init__(self) -> None:
        super().__init__(2, 2, {"low": 2})

    def segment(self, x: Tensor) -> SegOutput:
        return SegOutput(x, {"low": x})


@pytest.mark.parametrize("name", NAMES)
def test_every_network_is_a_segmentation_network_declaring_its_shapes(name: str) -> None:
    model = _meta(name, in_channels=3, num_classes=4)
    assert isinstance(model, SegmentationNetwork)
    assert (model.in_channels, model.num_classes) == (3, 4)
    assert set(model.feature_channels) >= {"low", "high"}
    assert all(isinstance(c, int) and c > 0 for c in model.feature_channels.values())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 64, 64), r"expected a 4-D input \(N, C, H, W\), got shape \(1, 64, 64\)"),
        ((1, 3, 64, 64), r"expected 1 input channel\(s\), got 3"),
        ((1, 1, 64, 48), r"positive multiples of 32, got 64x48"),
        ((1, 1, 0, 64), r"positive multiples of 32, got 0x64"),
    ],
)
def test_every_network_rejects_a_bad_input_saying_why(
    name: str, shape: tuple[int, ...], message: str
) -> None:
    model = _meta(name)
    with pytest.raises(CrossDistillError, match=message):
        model(torch.empty(shape, device="meta"))


def test_forward_checks_then_segments_with_the_class_side_multiple() -> None:
    model = _Identity()
    x = torch.randn(1, 2, 8, 16)
    out = model(x)
    assert out.logits is x and out.features["low"] is x
    with pytest.raises(CrossDistillError, match="multiples of 8"):
        model(torch.randn(1, 2, 8, 12))


def test_the_base_adds_no_state_and_copies_the_declared_channels() -> None:
    declared = {"low": 2}
    model = _Identity()
    assert model.state_dict() == {} and not list(model.parameters())
    assert model.feature_channels == declared and model.feature_channels is not declared


def test_a_network_must_implement_segment() -> None:
    class Incomplete(SegmentationNetwork):
        pass

    with pytest.raises(TypeError, match="segment"):
        Incomplete(1, 2, {})  # type: ignore[abstract]


def test_taps_read_a_segmentation_network_and_fall_back_for_other_modules() -> None:
    network = _meta("enet", num_classes=3, width=0.5)
    assert tap_channels(network, LOGITS) == 3
    assert tap_channels(network, "high") == network.feature_channels["high"] == 64
    assert tap_channels(network, "mid") is None
    with pytest.raises(CrossDistillError, match="no feature 'mid'"):
        check_tap(network, "mid", role="student", key="terms.kmm.feature")

    standin = TinySegNet(num_classes=2, low=4, high=8)  # a plain module declaring the names
    assert not isinstance(standin, SegmentationNetwork)
    assert (tap_channels(standin, LOGITS), tap_channels(standin, "low")) == (2, 4)

    undeclared = nn.Conv2d(1, 2, 1)  # declares nothing: every tap is accepted, none is sized
    assert tap_channels(undeclared, LOGITS) is None and tap_channels(undeclared, "low") is None
    check_tap(undeclared, "anything", role="teacher", key="terms.at.feature")
