"""The cache a grid trains on: a given cache, a release folder prepared once, or the
synthetic sites (the demo's data: ``crossdistill synth`` with seed 0, then ``prepare``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crossdistill.data.cache import INDEX_FILE, Cache
from crossdistill.data.layouts import find_cases
from crossdistill.data.prepare import PrepareResult, prepare
from crossdistill.data.sites import PAPER_FOLDERS
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


@dataclass(frozen=True)
class GridData:
    """The cache a grid trains on and the sites it holds (or will hold, after a dry run)."""

    cache: Path
    sites: tuple[str, ...]


def grid_cache(
    data: Path | None,
    out: Path,
    preset: GridPreset,
    echo: Callable[[str], None] = print,
    make: bool = True,
) -> GridData:
    """The cache of a grid written to ``out`` and its sites.

    ``data`` may be a prepared cache (used as it is), or a folder of sites in the release
    layout (prepared into ``out/cache-SIZE``, SIZE the preset's). Without ``data`` a
    synthetic preset makes its synthetic sites in ``out``; any other preset needs the data.
    ``make=False`` (a dry run) writes and hashes nothing: a cache already in ``out`` is taken
    as found; else the synthetic sites are the paper's six, a release folder's sites are
    its site folders as ``prepare`` would find them (listed, no file read), and the path
    of the cache not made is returned.
    """
    size = preset.cache_size
    planned = Path(out) / f"cache-{size}"
    if data is not None and (Path(data) / INDEX_FILE).is_file():
        return GridData(Path(data), tuple(Cache(data).sites))
    if data is not None and not Path(data).is_dir():
        raise InputError(data, "neither a prepared cache nor a folder of sites")
    if data is None and not preset.synthetic:
        raise CrossDistillError(
            "--data: the paper preset needs the multi-site release (a folder of site "
            "folders) or its cache; see README, 'Reproducing the paper'"
        )
    if not make and (planned / INDEX_FILE).is_file():
        echo(f"cache: {planned} (as found; a dry run does not check it against the data)")
        return GridData(planned, tuple(Cache(planned).sites))
    if not make:
        sites = PAPER_FOLDERS if data is None else tuple(find_cases(data).sites)
        echo(f"cache: {planned} (not made by a dry run)")
        return GridData(planned, sites)
    if data is None:
        result = synthetic_cache(
            out, size, echo, cases_per_site=preset.cases_per_site, seed=preset.data_seed
        )
    else:
        result = prepare(data, planned, size=size, seed=DATA_SEED)
    echo(f"cache: {result.cache} ({result.slices} slices, {'reused' if result.reused else 'new'})")
    return GridData(result.cache, tuple(Cache(result.cache).sites))
