"""Validation curves of a comparison: per target, each arm's source-site validation Dice per
epoch, mean over seeds with the range between seeds shaded — whether w/o (and every arm) had
stopped rising when training ended, i.e. whether it was undertrained."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from crossdistill.compare.arms import Arm
from crossdistill.data.sites import display_name
from crossdistill.engine.run_folder import RunFolder, read_metrics


def read_val_curve(metrics_file: Path) -> dict[int, float]:
    """``{epoch: val_dice}`` from a run's ``metrics.jsonl`` (lines that cannot be read or have
    no validation are skipped)."""
    return {
        int(r["epoch"]): float(r["val_dice"])
        for r in read_metrics(metrics_file)
        if r.get("val_dice") is not None
    }


def plot_val_curves(
    run_folders: Mapping[tuple[Arm, str, int], Path], path: Path, title: str = ""
) -> Path | None:
    """Draw every arm's validation curve per target into ``path``; None if no run has one."""
    curves: dict[str, dict[str, list[dict[int, float]]]] = {}
    for (arm, target, _), folder in run_folders.items():
        curve = read_val_curve(RunFolder(Path(folder)).metrics)
        if curve:
            curves.setdefault(target, {}).setdefault(arm.label, []).append(curve)
    if not curves:
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.6), squeeze=False)
    colours = plt.get_cmap("tab10")
    labels = list(dict.fromkeys(a.label for (a, _, _) in run_folders))
    for ax, (target, by_arm) in zip(axes[0], curves.items(), strict=True):
        for label, runs in by_arm.items():
            epochs = sorted(set.intersection(*(set(c) for c in runs)))
            values = np.array([[c[e] for e in epochs] for c in runs])
            colour = colours(labels.index(label) % 10)
            ax.plot(epochs, values.mean(0), color=colour, label=f"{label} ({len(runs)})")
            if len(runs) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=colour, alpha=0.12)
        ax.set_title(f"target {display_name(target)}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation Dice, source sites")
    axes[0][-1].legend(loc="lower right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
