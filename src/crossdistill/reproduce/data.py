"""The cache a grid trains on: a given cache, a release folder prepared once, or the
synthetic sites (the demo's data: ``crossdistill synth`` with seed 0, then ``prepare``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crossdistill.data.cache import INDEX_FILE
from crossdistill.data.prepare import PrepareResult, prepare
from crossdistill.data.synth import synthesize
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.reproduce.presets import GridPreset

#: The synthetic sites and their case splits stay fixed; the run's seed varies training only.
DATA_SEED = 0


def synthetic_cache(
    root: Path,
    size: int,
    echo: Callable[[str], None] = print,
    montage: bool = True,
    progress: bool = True,
    cases_per_site: int = 10,
    seed: int = DATA_SEED,
) -> PrepareResult:
    """The synthetic sites (``cases_per_site``, generator and split ``seed``) in
    ``root/data`` (written once) and their cache ``root/cache-SIZE`` (reused when unchanged)."""
    data = Path(root) / "data"
    if not (data / "sites.json").is_file():
        summary = synthesize(data, cases_per_site=cases_per_site, seed=seed, montage=montage)
        echo(f"synthetic sites: {summary['cases']} cases → {data} ({summary['seconds']:.1f} s)")
    return prepare(data, Path(root) / f"cache-{size}", size=size, seed=seed, progress=progress)


def grid_cache(
    data: Path | None,
    out: Path,
    preset: GridPreset,
    echo: Callable[[str], None] = print,
    make: bool = True,
) -> Path:
    """The cache of a grid written to ``out``.

    ``data`` may be a prepared cache (used as it is), or a folder of sites in the release
    layout (prepared into ``out/cache-SIZE``, SIZE the preset's). Without ``data`` a
    synthetic preset makes its synthetic sites in ``out``; any other preset needs the data.
    ``make=False`` (a dry run): the synthetic sites are not made, only their cache's path is
    returned (a release folder is still prepared: its sites are known from it only).
    """
    size = preset.cache_size
    if data is None:
        if not preset.synthetic:
            raise CrossDistillError(
                "--data: the paper preset needs the multi-site release (a folder of site "
                "folders) or its cache; see README, 'Reproducing the paper'"
            )
        cache = Path(out) / f"cache-{size}"
        if not make and not (cache / INDEX_FILE).is_file():
            echo(f"cache: {cache} (not made by a dry run)")
            return cache
        result = synthetic_cache(
            out, size, echo, cases_per_site=preset.cases_per_site, seed=preset.data_seed
        )
    elif (Path(data) / INDEX_FILE).is_file():
        return Path(data)
    elif not Path(data).is_dir():
        raise InputError(data, "neither a prepared cache nor a folder of sites")
    else:
        result = prepare(data, out / f"cache-{size}", size=size, seed=DATA_SEED)
    echo(f"cache: {result.cache} ({result.slices} slices, {'reused' if result.reused else 'new'})")
    return result.cache
