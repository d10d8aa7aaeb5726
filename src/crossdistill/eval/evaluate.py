"""Per-case, per-site evaluation of a network on a prepared cache.

Each test volume is segmented slice by slice (argmax, largest 3-D component) and compared
with its mask at the cache's resolution, with the cache's voxel spacing (in-plane spacing
of the resized slices, original slice spacing), so HD95 and ASD are in millimetres.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from torch import nn

from crossdistill.data.cache import Cache
from crossdistill.data.cache_entry import CacheEntry
from crossdistill.data.dataset import CachedVolume, iter_volumes
from crossdistill.eval.inference import segment_slices
from crossdistill.eval.metrics import METRICS, case_metrics, summarize


def cache_spacing(entry: CacheEntry) -> tuple[float, float, float]:
    """Voxel spacing (mm) of a cached ``(Z, H, W)`` volume: slice, row, column."""
    row, col = entry.slice_spacing
    return float(entry.spacing[2]), float(row), float(col)


def evaluate_model(
    model: nn.Module | None,
    cache: Cache,
    sites: Iterable[str] | None,
    split: str = "test",
    channels: int = 1,
    batch_size: int = 16,
    segment: Callable[[CachedVolume], np.ndarray] | None = None,
    metrics: Sequence[str] = METRICS,
) -> dict:
    """The ``metrics`` (of ``dice``, ``hd95``, ``asd``; default all) of ``model`` on the
    volumes of ``sites`` in ``split``; ask for ``("dice",)`` where only Dice is read (it
    skips the surface distances, most of the time of an evaluation).

    ``segment`` replaces running ``model`` (``model`` may then be None): it returns a
    volume's binary prediction, already reduced to its largest component (e.g. from stored
    teacher outputs, or from a control teacher that needs the masks).

    Returns ``{"split", "sites": {site: {"cases": {case: {metric: value}}, metric: {mean,
    std, n}, ...}}, "overall": {metric: summary over all cases}, "site_mean": {metric: mean
    of the site means}}``.
    """
    per_site: dict[str, dict] = {}
    for volume in iter_volumes(cache, sites, split):
        if segment is not None:
            pred = segment(volume)
        else:
            pred = segment_slices(model, volume.image, channels, batch_size)
        values = case_metrics(pred, volume.mask, cache_spacing(volume.case.entry), metrics)
        per_site.setdefault(volume.case.site, {"cases": {}})["cases"][volume.case.case_id] = values
    all_cases = [m for site in per_site.values() for m in site["cases"].values()]
    for site in per_site.values():
        for name in metrics:
            site[name] = summarize([m[name] for m in site["cases"].values()])
    return {
        "split": split,
        "sites": per_site,
        "overall": {name: summarize([m[name] for m in all_cases]) for name in metrics},
        "site_mean": {
            name: summarize([s[name]["mean"] for s in per_site.values()]) for name in metrics
        },
    }
