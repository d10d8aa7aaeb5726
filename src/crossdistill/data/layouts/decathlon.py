"""The cases of a Medical Segmentation Decathlon dataset folder (``Task05_Prostate``).

All channels of a case are one 4-D NIfTI image, the channel on the 4th axis::

    imagesTr/prostate_00.nii.gz   (X, Y, Z, 2): channel 0 T2, channel 1 ADC
    labelsTr/prostate_00.nii.gz   (X, Y, Z): 0 background, 1 and 2 the two zones

The cases are the ``training`` list of ``dataset.json`` (or, without one, the label maps
of ``labelsTr/`` with an image of the same name); a case's id is its image's name without
the suffix. A listed file missing on disk and a case listed twice are problems of that
case. Images of ``imagesTr/`` that the list leaves out are ignored, with a note, as is
``imagesTs/``. With a single channel the images are 3-D and read as such.
"""

from __future__ import annotations

from pathlib import Path

from crossdistill.data.cases import CaseFiles
from crossdistill.data.io import volume_suffix
from crossdistill.data.layouts.dataset_folder import (
    IMAGES,
    LABELS,
    DatasetCases,
    DatasetFolder,
    unlabelled_note,
    volume_files,
)
from crossdistill.errors import InputError


def decathlon_cases(dataset: DatasetFolder, channel: int, site: str) -> DatasetCases:
    """The cases of ``dataset``, each reading ``channel`` of its image, at ``site``.

    Raises:
        InputError: without a training list, ``labelsTr/`` is missing or unreadable.
    """
    folder = dataset.folder
    found = DatasetCases(notes=unlabelled_note(dataset))
    pick = channel if len(dataset.channels) > 1 else None
    seen: set[str] = set()
    for image, label in _pairs(dataset, found):
        suffix = volume_suffix(image) or ""
        case = image.name[: len(image.name) - len(suffix)]
        missing = next((p for p in (image, label) if not (p.exists() or p.is_symlink())), None)
        if missing is not None:
            reason = (
                "listed in dataset.json (training) but missing"
                if dataset.training is not None
                else f"missing: the image of {LABELS}/{label.name}"
            )
            found.problems.append(InputError(missing, reason))
        elif case in seen:
            found.problems.append(InputError(image, "listed twice in dataset.json (training)"))
        else:
            seen.add(case)
            found.cases.append(CaseFiles(site, case, image, label, pick))
    listed = dataset.training is not None and (folder / IMAGES).is_dir()
    images = volume_files(folder / IMAGES, dataset.file_ending)[0] if listed else {}
    unlisted = sorted(set(images) - seen)
    if unlisted:
        found.notes.append(
            f"{folder / IMAGES}: {len(unlisted)} images not listed in dataset.json (training), "
            f"ignored (first: {unlisted[0]})"
        )
    return found


def _pairs(dataset: DatasetFolder, found: DatasetCases) -> list[tuple[Path, Path]]:
    if dataset.training is not None:
        return list(dataset.training)
    folder, ending = dataset.folder, dataset.file_ending
    labels, _ = volume_files(folder / LABELS, ending)
    found.notes.append(
        f"{dataset.json_path}: no training list; cases paired by name in {IMAGES}/ and {LABELS}/"
    )
    return [(folder / IMAGES / path.name, path) for path in labels.values()]
