"""The forest plot of a comparison: Δ Dice with its 95 % CI, one row per comparison, one
marker per target and a larger one for the pooled estimate, a vertical line at 0."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from crossdistill.compare.results import Comparison


def plot_forest(comparisons: list[Comparison], path: Path, title: str = "") -> Path:
    """Draw ``comparisons`` (one metric) into ``path`` (PNG)."""
    targets = sorted({t for c in comparisons for t in c.per_target})
    colours = plt.get_cmap("tab10")
    rows = len(comparisons)
    fig, ax = plt.subplots(figsize=(8.5, 1.0 + 0.55 * rows * (1 + 0.18 * len(targets))))
    step = 0.7 / max(1, len(targets))
    for i, comp in enumerate(comparisons):
        y0 = rows - 1 - i
        for j, target in enumerate(targets):
            d = comp.per_target.get(target)
            if d is None:
                continue
            y = y0 + 0.35 - step * (j + 0.5)
            _interval(ax, d.mean, d.low, d.high, y, colours(j % 10), 4, target if i == 0 else None)
        if comp.pooled is not None and len(comp.per_target) > 1:
            p = comp.pooled
            _interval(
                ax, p.mean, p.low, p.high, y0 - 0.42, "black", 8, "pooled" if i == 0 else None
            )
    ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.set_yticks([rows - 1 - i for i in range(rows)])
    ax.set_yticklabels([f"{c.a} − {c.b}" for c in comparisons])
    ax.set_xlabel("Δ Dice (mean over seeds, 95 % CI)")
    ax.set_ylim(-1, rows)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _interval(ax, mean, low, high, y, colour, size, label) -> None:
    if not (math.isnan(low) or math.isnan(high)):
        ax.plot([low, high], [y, y], color=colour, lw=1.5)
    ax.plot([mean], [y], "o", color=colour, ms=size, label=label)
