"""ESPNet's classifier head (models/espnet.py): the authors' head — BN + PReLU on the two class
channels, then a bias-free deconvolution — has a state it cannot leave, in which no pixel is
ever foreground. That head is put in the state by hand and trained on a bright square: it
stays there. The project's head (BN, no PReLU, a bias), started from the same weights of its
deconvolution, learns the square."""

from __future__ import annotations

import torch
from torch import nn

from crossdistill.losses.segmentation import segmentation_loss
from crossdistill.models.registry import create_model


def _authors_head(net: nn.Module) -> nn.PReLU:
    """Give ``net`` the authors' head; returns its last PReLU."""
    conv, bn = net.fuse1[0], net.fuse1[1]
    prelu = nn.PReLU(bn.num_features)
    net.fuse1 = nn.Sequential(conv, bn, prelu)
    net.up1 = nn.ConvTranspose2d(2, 2, 2, stride=2, bias=False)
    return prelu


def _train(authors_head: bool, steps: int = 30) -> torch.Tensor:
    """Foreground probabilities at the last step. Both weights of the head's outputs in the
    foreground-minus-background logit start negative; in the authors' head both PReLU slopes
    start negative too (its outputs ≥ 0), so that logit is ≤ 0 everywhere."""
    torch.manual_seed(0)
    net = create_model("espnet", width=0.25).train()
    if authors_head:
        with torch.no_grad():
            _authors_head(net).weight.fill_(-0.8)
    with torch.no_grad():
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


def test_the_projects_head_learns_from_negative_class_weights():
    foreground = _train(authors_head=False)
    square = torch.zeros_like(foreground, dtype=torch.bool)
    square[:, 20:40, 24:44] = True
    assert foreground.max() > 0.5
    assert (foreground > 0.5)[square].float().mean() > 0.5  # most of the square found
    assert (foreground > 0.5)[~square].float().mean() < 0.1


def test_the_authors_head_in_its_dead_state_never_makes_a_pixel_foreground():
    foreground = _train(authors_head=True)
    assert foreground.max() <= 0.5 + 1e-6


def test_the_head_keeps_the_authors_parameter_count():
    net = create_model("espnet")
    assert not any(isinstance(m, nn.PReLU) for m in net.fuse1.modules())
    assert net.up1.bias is not None and net.up1.bias.numel() == 2
    assert sum(p.numel() for p in net.parameters()) == 182_659  # Table 1: 0.183 M
