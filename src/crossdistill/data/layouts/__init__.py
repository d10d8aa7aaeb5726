"""Input layouts of ``prepare``: each turned into the same case list, site by site.

- ``release``: one folder per site holding ``CaseNN.nii.gz`` and its mask
  (:mod:`crossdistill.data.cases`);
- ``nnunet``: an nnU-Net raw dataset folder, one 3-D file per channel
  (:mod:`.nnunet`);
- ``decathlon``: a Medical Segmentation Decathlon folder, 4-D images
  (:mod:`.decathlon`).

The layout is detected: a folder holding ``dataset.json`` or ``imagesTr/`` is a dataset,
and so is each such folder inside the input folder (one dataset per site, the folder's
name its site); nnU-Net or Decathlon is told by each ``dataset.json`` and its files
(:func:`.dataset_folder.read_dataset_folder`). Anything else is the release layout.
``layout`` forces one. In a dataset, the T2 channel is chosen by name (:mod:`.channels`)
and the site of each case is its dataset folder's name, or the row of a site map
(:mod:`.site_map`). Every case then goes through the same validation and cache writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crossdistill.data.cases import CaseFiles, find_sites, natural_key
from crossdistill.data.layouts.channels import choose_channel
from crossdistill.data.layouts.dataset_folder import (
    DatasetCases,
    is_dataset_folder,
    read_dataset_folder,
)
from crossdistill.data.layouts.decathlon import decathlon_cases
from crossdistill.data.layouts.nnunet import nnunet_cases
from crossdistill.data.layouts.site_map import assign_sites, read_site_map
from crossdistill.errors import CrossDistillError, InputError

LAYOUTS = ("release", "nnunet", "decathlon")
_READERS = {"nnunet": nnunet_cases, "decathlon": decathlon_cases}


@dataclass
class FoundCases:
    """What ``prepare`` will read.

    Attributes:
        layout: ``release``, ``nnunet`` or ``decathlon`` (``nnunet+decathlon`` for a mix).
        sites: site → its cases, sites in order, cases naturally sorted; no empty site.
        problems: the cases that cannot be used, each an error naming the file: fatal,
            unless ``prepare`` skips invalid cases.
        notes: what was ignored or chosen (test images, the T2 channel), one line each.
    """

    layout: str
    sites: dict[str, list[CaseFiles]]
    problems: list[InputError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_cases(
    data_dir: str | Path,
    layout: str | None = None,
    sites_from: str | Path | None = None,
    channel: str | int | None = None,
) -> FoundCases:
    """The cases of ``data_dir`` in its (detected, or forced ``layout``) layout.

    Args:
        data_dir: a folder of site folders, a dataset folder, or a folder of datasets.
        layout: ``release``, ``nnunet`` or ``decathlon``; ``None`` detects it.
        sites_from: a CSV mapping each case to its site (datasets only).
        channel: the name or index of the T2 channel in ``dataset.json`` (datasets only).

    Raises:
        CrossDistillError: an unknown layout, or an option the release layout does not take.
        InputError: naming the file or folder that cannot be read as the layout.
    """
    if layout not in (None, *LAYOUTS):
        raise CrossDistillError(f"unknown layout '{layout}'; choose one of {', '.join(LAYOUTS)}")
    data_dir = Path(data_dir)
    datasets = [] if layout == "release" else _dataset_folders(data_dir)
    if layout == "release" or (layout is None and not datasets):
        if sites_from is not None or channel is not None:
            raise CrossDistillError(
                "--sites-from and --channel apply to nnU-Net and Decathlon datasets; in the "
                "release layout each folder is a site and each image its T2 scan"
            )
        sites = find_sites(data_dir)
        empty = [
            InputError(data_dir / s, "site folder holds no cases")
            for s, f in sites.items()
            if not f
        ]
        return FoundCases("release", {s: f for s, f in sites.items() if f}, empty)
    if not datasets:
        raise InputError(
            data_dir,
            f"holds no {layout} dataset: neither it nor its folders hold dataset.json or imagesTr/",
        )
    return _dataset_cases(data_dir, datasets, layout, sites_from, channel)


def _dataset_folders(data_dir: Path) -> list[Path]:
    """``[data_dir]`` when it is a dataset, else its dataset folders (all of its folders)."""
    if not data_dir.is_dir():
        find_sites(data_dir)  # raises its error for a missing folder or a file
    if is_dataset_folder(data_dir):
        return [data_dir]
    try:
        folders = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as err:
        raise InputError(data_dir, f"cannot read: {err.strerror or err}") from None
    datasets = [p for p in folders if is_dataset_folder(p)]
    others = [p for p in folders if p not in datasets]
    if datasets and others:
        raise InputError(
            others[0],
            f"not a dataset folder (no dataset.json), beside the dataset folders "
            f"{', '.join(p.name for p in datasets[:3])}; move it out of {data_dir}",
        )
    return datasets


def _dataset_cases(
    data_dir: Path,
    datasets: list[Path],
    layout: str | None,
    sites_from: str | Path | None,
    channel: str | int | None,
) -> FoundCases:
    cases: list[CaseFiles] = []
    found = FoundCases("", {})
    kinds = []
    for folder in datasets:
        dataset = read_dataset_folder(folder, data_dir)
        kind = layout or dataset.kind
        index, why = choose_channel(dataset, channel)
        site = folder.resolve().name if folder == data_dir else folder.name
        part: DatasetCases = _READERS[kind](dataset, index, site)
        if not part.cases and not part.problems:
            part.problems.append(InputError(folder, "dataset holds no training cases"))
        name = dataset.channels[index]
        found.notes += [f"{folder}: {kind} layout, T2 image = channel {index} '{name}' ({why})"]
        found.notes += part.notes
        found.problems += part.problems
        cases += part.cases
        kinds.append(kind)
    if sites_from is not None:
        cases = assign_sites(cases, read_site_map(sites_from), Path(sites_from))
    for case in cases:
        found.sites.setdefault(case.site, []).append(case)
    order = sorted(found.sites) if sites_from is not None else list(found.sites)  # by dataset
    found.sites = {s: sorted(found.sites[s], key=lambda c: natural_key(c.case_id)) for s in order}
    found.layout = "+".join(k for k in LAYOUTS if k in kinds)
    return found
