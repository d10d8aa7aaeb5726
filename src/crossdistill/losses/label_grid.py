"""Teacher labels (and pixel gates) carried to a coarser grid by majority in each cell.

AAM can act on a grid coarser than the image (the student's pooled output, or a feature map
at 1/8): a cell of ``r × r`` pixels (``r = H / h``) gets the label that most of its pixels
have — ``argmax_k (1/r²) Σ_{pixels} [y = k]``, ties to the lower class index (background first)
— and a gate keeps a cell when at least half of its pixels are kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cell_factor(size: tuple[int, int], grid: tuple[int, int]) -> int:
    """``r`` with ``size = r · grid`` in both axes; ``ValueError`` if there is none."""
    (H, W), (h, w) = size, grid
    if h < 1 or w < 1 or H % h or W % w or H // h != W // w:
        raise ValueError(f"a {H}x{W} label map does not split into a {h}x{w} grid of square cells")
    return H // h


def majority_labels(labels: Tensor, grid: tuple[int, int], num_classes: int) -> Tensor:
    """``(N, H, W)`` integer labels → ``(N, h, w)``: the most frequent label of each cell."""
    r = cell_factor(tuple(labels.shape[-2:]), grid)
    if r == 1:
        return labels
    with torch.no_grad():
        onehot = F.one_hot(labels.long().clamp(0, num_classes - 1), num_classes)
        share = F.avg_pool2d(onehot.permute(0, 3, 1, 2).float(), r)  # (N, K, h, w)
        best, out = share[:, 0], torch.zeros_like(share[:, 0], dtype=torch.long)
        for k in range(1, num_classes):
            more = share[:, k] > best  # strict: a tie keeps the lower class
            out.masked_fill_(more, k)
            best = torch.maximum(best, share[:, k])
        return out


def majority_gate(valid: Tensor, grid: tuple[int, int]) -> Tensor:
    """``(N, H, W)`` bool gate → ``(N, h, w)``: cells where at least half the pixels pass."""
    r = cell_factor(tuple(valid.shape[-2:]), grid)
    if r == 1:
        return valid.bool()
    with torch.no_grad():
        return F.avg_pool2d(valid.float().unsqueeze(1), r).squeeze(1) >= 0.5
