"""``crossdistill prepare``: validate a multi-site folder and write the memory-mapped cache.

The input is a folder of site folders (the release layout), an nnU-Net raw or a Medical
Segmentation Decathlon dataset, or a folder of such datasets; each is turned into the same
list of cases (:func:`crossdistill.data.layouts.find_cases`). Case by case (peak memory is
one case, whatever the number of cases), each volume is read, validated
(:func:`crossdistill.data.cases.load_case`), reoriented to RAS+, z-scored and cut into axial
slices resized to ``size × size``. Everything is written into a staging folder inside the
output and moved into place only when all cases succeeded, so a failed run leaves no
half-written cache. The input folder is never written to.

The cache is keyed by a fingerprint of the settings and of every input file's SHA-256:
running ``prepare`` again on unchanged input reuses it; any change rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crossdistill.atomic import write_text_atomic
from crossdistill.data.cache import CACHE_VERSION, INDEX_FILE, SPLITS_FILE, Cache
from crossdistill.data.cache_case import write_case
from crossdistill.data.cache_entry import CacheEntry
from crossdistill.data.cases import CaseFiles, load_case
from crossdistill.data.containment import contained_cases
from crossdistill.data.io import file_sha256
from crossdistill.data.layouts import find_cases
from crossdistill.data.sites import site_info
from crossdistill.data.splits import make_splits
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.progress import progress_bar


@dataclass
class PrepareResult:
    """What ``prepare`` did (``notes``: what was chosen or ignored, one line each)."""

    cache: Path
    reused: bool
    sites: dict[str, int]
    slices: int
    empty_masks: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    layout: str = "release"
    notes: list[str] = field(default_factory=list)


def prepare(
    data_dir: str | Path,
    out: str | Path,
    size: int = 384,
    skip_invalid: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    progress: bool = True,
    layout: str | None = None,
    sites_from: str | Path | None = None,
    channel: str | int | None = None,
    labels: Sequence[int] | None = None,
) -> PrepareResult:
    """Validate ``data_dir`` and write (or reuse) the cache in ``out``.

    Args:
        layout: ``release``, ``nnunet`` or ``decathlon``; ``None`` detects it.
        sites_from: CSV of ``case,site`` rows, the site of each case of a dataset layout.
        channel: name or index of the T2 channel in ``dataset.json`` (default: by name).
        labels: the label values that are prostate; any other but 0 is an invalid case.
            ``None``: every label > 0 is prostate.

    Raises:
        InputError: the first invalid case (unless ``skip_invalid``), a missing input, a
            case without a site in ``sites_from``, a channel ``dataset.json`` does not
            name, or an output folder inside the input folder.
    """
    start = time.perf_counter()
    data_dir, out = Path(data_dir), Path(out)
    if size < 32 or size % 32:  # every network of the zoo downsamples by 32
        raise CrossDistillError(f"--size must be a positive multiple of 32, got {size}")
    labels = _prostate_labels(labels)
    found = find_cases(data_dir, layout, sites_from, channel)
    if _inside(out, data_dir):
        raise InputError(
            out, f"output folder is inside the input folder {data_dir}; choose another"
        )
    skipped: list[tuple[str, str]] = []
    for problem in found.problems:
        _fail_or_skip(problem, skip_invalid, skipped)
    # Before any file is read: links out of the input folder and FIFOs are refused.
    sites = contained_cases(
        found.sites, data_dir, lambda e: _fail_or_skip(e, skip_invalid, skipped)
    )

    fingerprint, hashes = _fingerprint(data_dir, sites, size, skip_invalid, labels)
    if _reusable(out, fingerprint):
        cache = Cache(out)
        _write_splits(out, cache.index, seed, val_fraction, test_fraction)
        return _result(out, cache.index, cache.entries, True, start, found.notes)

    staging = out / f".staging-{os.getpid()}"
    try:
        index, entries = _build(
            data_dir, sites, size, staging, hashes, skip_invalid, skipped, progress, labels
        )
        index["fingerprint"] = fingerprint
        index["layout"] = found.layout
        _commit(staging, out, index)
    except OSError as err:
        where = err.filename or out
        raise InputError(where, f"cannot write the cache ({err.strerror or err})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_splits(out, index, seed, val_fraction, test_fraction)
    return _result(out, index, entries, False, start, found.notes)


def _prostate_labels(labels: Sequence[int] | None) -> list[int] | None:
    if labels is None:
        return None
    values = list(labels)
    if not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise CrossDistillError(f"prostate labels must be positive integers, got {values}")
    return sorted(set(values))


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _fail_or_skip(err: InputError, skip_invalid: bool, skipped: list[tuple[str, str]]) -> None:
    if not skip_invalid:
        raise err
    skipped.append((str(err.path), err.reason))


def _fingerprint(
    data_dir: Path,
    sites: dict[str, list[CaseFiles]],
    size: int,
    skip_invalid: bool,
    labels: list[int] | None,
) -> tuple[str, dict]:
    hashes: dict[Path, str] = {}
    listing = []
    for site, files in sites.items():
        for f in files:
            row = [site, f.case_id]
            for path in (f.image, f.mask):
                if path is None:
                    row += [None, None]
                    continue
                try:
                    hashes[path] = file_sha256(path)
                except InputError:
                    hashes[path] = "unreadable"
                row += [str(path.relative_to(data_dir)), hashes[path]]
            if f.channel is not None:  # absent for 3-D images: release caches keep their key
                row.append(f.channel)
            listing.append(row)
    settings = {"version": CACHE_VERSION, "size": size, "skip_invalid": skip_invalid}
    if labels is not None:  # only a check, but a cache built without it must not stand in
        settings["labels"] = labels
    blob = json.dumps({**settings, "files": listing}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest(), hashes


def _reusable(out: Path, fingerprint: str) -> bool:
    try:
        index = json.loads((out / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return False
    if index.get("fingerprint") != fingerprint or index.get("version") != CACHE_VERSION:
        return False
    entries = [CacheEntry.from_json(e) for e in index["cases"]]
    return all((out / f).is_file() for e in entries for f in (e.image_file, e.mask_file))


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "_"


def _build(
    data_dir: Path,
    sites: dict[str, list[CaseFiles]],
    size: int,
    staging: Path,
    hashes: dict[Path, str],
    skip_invalid: bool,
    skipped: list[tuple[str, str]],
    progress: bool,
    labels: list[int] | None,
) -> tuple[dict, list[CacheEntry]]:
    """Write every loadable case into ``staging``; the index (all but the fingerprint) and
    the cases' records, in input order."""
    all_files = [f for files in sites.values() for f in files]
    entries: list[CacheEntry] = []
    used_names: set[str] = set()
    with progress_bar(len(all_files), "prepare", enabled=progress) as advance:
        for files in all_files:
            advance(status=f"{files.site}/{files.case_id}")
            try:
                case = load_case(files, labels)
            except InputError as err:
                _fail_or_skip(err, skip_invalid, skipped)
                continue
            stem = f"cases/{_safe_name(case.site)}/{_safe_name(case.case_id)}"
            while stem in used_names:
                stem += "_"
            used_names.add(stem)
            entries.append(write_case(case, size, staging, stem, data_dir, hashes))
    kept_sites = sorted({e.site for e in entries}, key=list(sites).index)
    if not entries:
        raise InputError(data_dir, "no valid case to prepare")
    index = {
        "version": CACHE_VERSION,
        "size": size,
        "source": str(data_dir.resolve()),
        "sites": {s: _site_record(s, entries) for s in kept_sites},
        "cases": [e.to_json() for e in entries],
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
    }
    return index, entries


def _site_record(site: str, entries: list[CacheEntry]) -> dict:
    info = site_info(site)
    cases = [e.case_id for e in entries if e.site == site]
    return {"label": info.label, "name": info.name, "source": info.source, "cases": cases}


def _commit(staging: Path, out: Path, index: dict) -> None:
    """Move the staged cache into ``out``: replace ``cases/``, then write ``index.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX_FILE).unlink(missing_ok=True)
    old = out / f".old-{os.getpid()}"
    if (out / "cases").exists():
        os.replace(out / "cases", old)
    os.replace(staging / "cases", out / "cases")
    shutil.rmtree(old, ignore_errors=True)
    write_json_atomic(out / INDEX_FILE, index)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (an error, a full disk,
    leaves ``path`` as it was and no temporary file)."""
    try:
        write_text_atomic(path, json.dumps(payload, indent=1))
    except OSError as err:
        raise InputError(path, f"cannot write ({err.strerror or err})") from None


def _write_splits(
    out: Path, index: dict, seed: int, val_fraction: float, test_fraction: float
) -> None:
    cases = {site: record["cases"] for site, record in index["sites"].items()}
    splits = make_splits(cases, seed, val_fraction, test_fraction)
    payload = {
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "sites": splits,
    }
    write_json_atomic(out / SPLITS_FILE, payload)


def _result(
    out: Path,
    index: dict,
    entries: list[CacheEntry],
    reused: bool,
    start: float,
    notes: list[str],
) -> PrepareResult:
    sites = {s: len(r["cases"]) for s, r in index["sites"].items()}
    return PrepareResult(
        cache=out,
        reused=reused,
        sites=sites,
        slices=sum(e.num_slices for e in entries),
        empty_masks=sum(1 for e in entries if e.foreground_voxels == 0),
        skipped=[(s["path"], s["reason"]) for s in index.get("skipped", [])],
        seconds=time.perf_counter() - start,
        layout=index.get("layout", "release"),
        notes=notes,
    )
