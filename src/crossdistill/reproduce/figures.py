"""Figures of a reproduced table: grouped Dice bars per site (the paper's values marked),
Table 3 as a heat map, and contour overlays in the style of the paper's Fig. 3."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import yaml

from crossdistill.data.cache import Cache
from crossdistill.data.dataset import iter_volumes
from crossdistill.data.sites import display_name
from crossdistill.engine.loading import load_model
from crossdistill.engine.run_folder import RunFolder
from crossdistill.errors import CrossDistillError
from crossdistill.eval.inference import segment_slices
from crossdistill.reproduce.grid import Cell
from crossdistill.reproduce.tables import MEAN, Entry, block_title


def _site_names(sites: list[str]) -> list[str]:
    return [display_name(s) if s != MEAN else "mean" for s in sites]


def plot_dice_bars(entries: list[Entry], out: Path, title: str, table: int = 2) -> Path:
    """One panel per block; per site a group of bars (one per row: mean over seeds, std as
    error bar), the paper's value as a black diamond above each bar."""
    blocks = list(dict.fromkeys(e.block for e in entries))
    sites = list(dict.fromkeys(e.site for e in entries))
    fig, axes = plt.subplots(
        len(blocks), 1, figsize=(1.6 * len(sites) + 4.5, 3.6 * len(blocks)), squeeze=False
    )
    for ax, block in zip(axes[:, 0], blocks, strict=True):
        rows = list(dict.fromkeys((e.row, e.label) for e in entries if e.block == block))
        index = {(e.row, e.site): e for e in entries if e.block == block}
        width = 0.8 / len(rows)
        for i, (row, label) in enumerate(rows):
            x = np.arange(len(sites)) + (i - (len(rows) - 1) / 2) * width
            cells = [index.get((row, s)) for s in sites]
            means = [c.mean if c and c.mean is not None else np.nan for c in cells]
            stds = [c.std if c and c.std is not None else 0.0 for c in cells]
            ax.bar(
                x,
                means,
                width,
                yerr=stds,
                capsize=2,
                ecolor="0.35",
                label=label,
                color=f"C{i}",
                alpha=0.85,
            )
            papers = [c.paper if c and c.paper is not None else np.nan for c in cells]
            ax.scatter(x, papers, marker="D", s=14, color="black", zorder=3)
        ax.set_xticks(range(len(sites)), _site_names(sites))
        ax.set(ylabel="3-D Dice", ylim=(0, 1), title=block_title(table, block))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
    fig.suptitle(f"{title}\nbars: ours (mean ± std over seeds); black diamonds: the paper")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_heatmap(entries: list[Entry], out: Path, title: str) -> Path:
    """Rows × sites (and their mean), coloured by our Dice, each cell ``ours (paper)``."""
    rows = list(dict.fromkeys((e.row, e.label) for e in entries))
    sites = list(dict.fromkeys(e.site for e in entries))
    index = {(e.row, e.site): e for e in entries}
    grid = np.full((len(rows), len(sites)), np.nan)
    fig, ax = plt.subplots(figsize=(1.3 * len(sites) + 3, 0.55 * len(rows) + 1.5))
    for i, (row, _) in enumerate(rows):
        for j, site in enumerate(sites):
            e = index.get((row, site))
            if e is None or e.mean is None:
                continue
            grid[i, j] = e.mean
            paper = f"\n({e.paper:.3f})" if e.paper is not None else ""
            ax.text(j, i, f"{e.mean:.3f}{paper}", ha="center", va="center", fontsize=7)
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(sites)), _site_names(sites))
    ax.set_yticks(range(len(rows)), [label for _, label in rows])
    fig.colorbar(image, ax=ax, label="3-D Dice (ours)")
    ax.set_title(f"{title}\nours (paper)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_overlays(cells: list[Cell], runs_dir: Path, out: Path, title: str) -> Path | None:
    """Fig. 3 style: one row per target site, one column per cell's run (first seed): the
    slice with the most prostate of the site's first test case, ground truth (red) and the
    run's prediction (green), titled with the run's Dice on that case. ``None`` when no run
    of ``cells`` has finished or the cache is gone."""
    seed = min(c.seed for c in cells)
    cells = [c for c in cells if c.seed == seed and RunFolder(runs_dir / c.run.id).finished()]
    if not cells:
        return None
    cache = _cache_of(runs_dir / cells[0].run.id)
    if cache is None:
        return None
    sites = list(dict.fromkeys(c.site for c in cells))
    columns = list(dict.fromkeys((c.row, c.label) for c in cells))
    fig, axes = plt.subplots(
        len(sites), len(columns), figsize=(2.2 * len(columns), 2.4 * len(sites)), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, site in enumerate(sites):
        volume = next(iter_volumes(cache, [site], "test"), None)
        if volume is None:
            continue
        z = int(np.argmax(volume.mask.reshape(volume.mask.shape[0], -1).sum(axis=1)))
        for j, (row, label) in enumerate(columns):
            cell = next((c for c in cells if c.site == site and c.row == row), None)
            if cell is None:
                continue
            model, meta = load_model(runs_dir / cell.run.id)
            pred = segment_slices(model, volume.image, int(meta["model"]["in_channels"]))
            ax = axes[i, j]
            ax.imshow(volume.image[z], cmap="gray")
            if volume.mask[z].any():
                ax.contour(volume.mask[z], levels=[0.5], colors="red", linewidths=0.8)
            if pred[z].any():
                ax.contour(pred[z], levels=[0.5], colors="lime", linewidths=0.8)
            dice = _case_dice(runs_dir / cell.run.id, f"{site}/{volume.case.case_id}")
            ax.set_title(f"{display_name(site)}\n{label}{dice}", fontsize=7)
    fig.suptitle(f"{title}: ground truth (red), prediction (green), seed {seed}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _cache_of(folder: Path) -> Cache | None:
    try:
        config = yaml.safe_load(RunFolder(folder).config.read_text(encoding="utf-8"))
        return Cache(config["data"]["cache"])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError, CrossDistillError):
        return None  # a moved or deleted cache (or an unreadable config): no overlays


def _case_dice(folder: Path, key: str) -> str:
    value = RunFolder(folder).read_summary().get("per_case_dice", {}).get(key)
    return f": {value:.3f}" if value is not None else ""
