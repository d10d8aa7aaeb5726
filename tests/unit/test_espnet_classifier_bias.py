"""ESPNet's final deconvolution has a bias (models/espnet.py): without it, the 2-class decoder
has a state it cannot leave, in which no pixel is ever foreground. Both networks are put in
that state by hand and trained on a bright square; only the one with the bias gets out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crossdistill.losses.segmentation import segmentation_loss
from crossdistill.models.registry import create_model


def _train_from_the_dead_state(bias: bool, steps: int = 30) -> torch.Tensor:
    """Foreground probabilities of the last step. The state: both slopes of the last PReLU
    negative (its outputs y_c ≥ 0) and both weights of y_c in the foreground-minus-background
    logit negative, so that logit is ≤ 0 wherever the network has no bias to add."""
    torch.manual_seed(0)
    net = create_model("espnet", width=0.25).train()
    if not bias:  # the authors' bias-free classifier, as a control
        net.up1 = nn.ConvTranspose2d(2, 2, 2, stride=2, bias=False)
    prelu = next(m for m in net.fuse1.modules() if isinstance(m, nn.PReLU))
    with torch.no_grad():
        prelu.weight.fill_(-0.8)
        net.up1.weight[:, 0] = 1.0
        net.up1.weight[:, 1] = -1.0
        if net.up1.bias is not None:
            net.up1.bias.zero_()
    x = torch.randn(4, 1, 64, 64)
    y = torch.zeros(4, 64, 64, dtype=torch.long)
    y[:, 20:40, 24:44] = 1
    x[:, 0][y.bool()] += 2.0
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        logits = net(x).logits
        loss = segmentation_loss(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return logits.detach().softmax(1)[:, 1]


def test_with_the_bias_the_network_leaves_the_dead_state():
    foreground = _train_from_the_dead_state(bias=True)
    assert foreground.max() > 0.5  # some pixel is foreground again
    square = torch.zeros_like(foreground, dtype=torch.bool)
    square[:, 20:40, 24:44] = True
    assert foreground[square].mean() > foreground[~square].mean() + 0.15


def test_without_it_no_pixel_can_be_foreground():
    foreground = _train_from_the_dead_state(bias=False)
    assert foreground.max() <= 0.5 + 1e-6


def test_the_bias_is_the_only_parameter_beyond_the_authors_network():
    net = create_model("espnet")
    assert net.up1.bias is not None and net.up1.bias.numel() == 2
    total = sum(p.numel() for p in net.parameters())
    assert total - 2 == 182_659  # the bias-free count (Table 1: 0.183 M)
    assert total / 1e6 == pytest.approx(0.183, abs=5e-4)
