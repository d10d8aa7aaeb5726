"""Slice-by-slice inference over a whole volume."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from crossdistill.data.preprocess import stack_neighbours
from crossdistill.eval.postprocess import largest_component


def network_batches(slices: np.ndarray, channels: int, batch_size: int):
    """Yield ``(C, H, W)``-stacked batches ``(B, C, H, W)`` of a ``(Z, H, W)`` volume in order."""
    for start in range(0, slices.shape[0], batch_size):
        stop = min(start + batch_size, slices.shape[0])
        batch = np.stack([stack_neighbours(slices, z, channels) for z in range(start, stop)])
        yield torch.from_numpy(batch)


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, slices: np.ndarray, channels: int = 1, batch_size: int = 16
) -> np.ndarray:
    """Softmax probabilities ``(Z, K, H, W)`` float32 of a ``(Z, H, W)`` volume.

    The model is put in eval mode for the call and given back in the mode it had.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = [
            torch.softmax(model(batch.to(device)).logits.float(), dim=1).cpu()
            for batch in network_batches(slices, channels, batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def segment_slices(
    model: nn.Module, slices: np.ndarray, channels: int = 1, batch_size: int = 16
) -> np.ndarray:
    """Argmax labels of a ``(Z, H, W)`` volume, foreground reduced to its largest 3-D component."""
    labels = predict_probabilities(model, slices, channels, batch_size).argmax(axis=1)
    return largest_component((labels > 0).astype(np.uint8))
