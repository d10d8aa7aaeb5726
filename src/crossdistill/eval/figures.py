"""Figures drawn as PNG: training curves, per-method Dice bars, contour overlays."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from torch import nn

from crossdistill.data.cache import Cache
from crossdistill.data.dataset import iter_volumes
from crossdistill.engine.run_folder import read_metrics
from crossdistill.eval.inference import segment_slices


def plot_curves(metrics_file: Path, out: Path, title: str = "") -> Path | None:
    """Loss terms (weighted) and validation Dice per epoch from ``metrics.jsonl``."""
    records = read_metrics(metrics_file)
    if not records:
        return None
    epochs = [r["epoch"] for r in records]
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(10, 3.8))
    keys = [k for k in records[-1] if k.startswith("loss/") and not k.startswith("loss/raw/")]
    for key in keys:
        ax_loss.plot(epochs, [r.get(key, np.nan) for r in records], label=key[5:])
    ax_loss.set(xlabel="epoch", ylabel="loss (weighted)", yscale="log", title="loss terms")
    ax_loss.legend(fontsize=8)
    if any("val_dice" in r for r in records):
        ax_dice.plot(epochs, [r.get("val_dice", np.nan) for r in records], marker="o")
    ax_dice.set(xlabel="epoch", ylabel="3-D Dice", ylim=(0, 1), title="validation Dice")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_dice_bars(results: Mapping[str, Mapping], out: Path, title: str = "") -> Path:
    """One bar per method: mean per-case Dice with its standard deviation and the cases."""
    names = list(results)
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 4))
    for i, name in enumerate(names):
        cases = list(results[name]["per_case_dice"].values())
        ax.bar(i, np.mean(cases), yerr=np.std(cases), capsize=4, color=f"C{i}", alpha=0.8)
        ax.scatter(np.full(len(cases), i), cases, color="k", s=10, zorder=3)
        ax.text(i, 0.02, f"{np.mean(cases):.3f}", ha="center", color="white", fontsize=9)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set(ylabel="3-D Dice per case", ylim=(0, 1), title=title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_overlay(
    model: nn.Module,
    cache: Cache,
    sites: Iterable[str] | None,
    split: str,
    channels: int,
    out: Path,
    max_cases: int = 4,
) -> Path | None:
    """Ground-truth contour (red) and prediction contour (green) on the slice of each case
    with the most prostate (the style of the paper's Fig. 3)."""
    volumes = list(iter_volumes(cache, sites, split))[:max_cases]
    if not volumes:
        return None
    fig, axes = plt.subplots(1, len(volumes), figsize=(3 * len(volumes), 3.2), squeeze=False)
    for ax, volume in zip(axes[0], volumes, strict=True):
        pred = segment_slices(model, volume.image, channels)
        z = int(np.argmax(volume.mask.reshape(volume.mask.shape[0], -1).sum(axis=1)))
        ax.imshow(volume.image[z], cmap="gray")
        if volume.mask[z].any():
            ax.contour(volume.mask[z], levels=[0.5], colors="red", linewidths=1)
        if pred[z].any():
            ax.contour(pred[z], levels=[0.5], colors="lime", linewidths=1)
        ax.set_title(f"{volume.case.site}/{volume.case.case_id} z={z}", fontsize=8)
        ax.axis("off")
    fig.suptitle("ground truth (red), prediction (green)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
