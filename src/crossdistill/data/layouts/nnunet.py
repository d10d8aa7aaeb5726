"""The cases of an nnU-Net raw dataset folder (``nnUNet_raw/DatasetNNN_Name``).

Each channel of a case is its own 3-D file, named by the case and a 4-digit channel index::

    imagesTr/NAME_0000.nii.gz   channel 0 (T2, say)
    imagesTr/NAME_0001.nii.gz   channel 1 (ADC, say)
    labelsTr/NAME.nii.gz        the label map of case NAME

(``.nii.gz``: the ``file_ending`` of ``dataset.json``.) The case's image is the file of the
chosen channel. An image without a label, a label without the chosen channel's image, and a
case listed under ``training`` (nnU-Net v1) but absent from disk are problems of that case;
files not named so are ignored, with a note, as is ``imagesTs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from crossdistill.data.cases import CaseFiles, natural_key
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

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def nnunet_cases(dataset: DatasetFolder, channel: int, site: str) -> DatasetCases:
    """The cases of ``dataset`` with the image of ``channel``, each at ``site``.

    Raises:
        InputError: ``imagesTr/`` or ``labelsTr/`` is missing or unreadable.
    """
    ending, folder = dataset.file_ending, dataset.folder
    files, other_images = volume_files(folder / IMAGES, ending)
    labels, other_labels = volume_files(folder / LABELS, ending)
    found = DatasetCases(notes=unlabelled_note(dataset))
    images: dict[str, dict[int, Path]] = {}
    for stem, path in files.items():
        match = _CHANNEL_FILE.match(stem)
        if match is None:
            other_images += 1
            continue
        images.setdefault(match["case"], {})[int(match["channel"])] = path
    for case in sorted(set(images) | set(labels), key=natural_key):
        wanted = f"{IMAGES}/{case}_{channel:04d}{ending}"
        if case not in labels:
            some_image = next(iter(images[case].values()))
            found.problems.append(
                InputError(some_image, f"image without label (expected {LABELS}/{case}{ending})")
            )
        elif channel not in images.get(case, {}):
            found.problems.append(
                InputError(
                    labels[case], f"label without image: {wanted} (channel {channel}) is missing"
                )
            )
        else:
            found.cases.append(CaseFiles(site, case, images[case][channel], labels[case]))
    _check_listed(dataset, set(images) | set(labels), found)
    for name, count in ((IMAGES, other_images), (LABELS, other_labels)):
        if count:
            found.notes.append(
                f"{folder / name}: {count} entries not named as nnU-Net cases "
                f"(NAME_XXXX{ending} in {IMAGES}, NAME{ending} in {LABELS}), ignored"
            )
    if dataset.num_training is not None and dataset.num_training != len(labels):
        found.notes.append(
            f"{dataset.json_path}: numTraining is {dataset.num_training}, "
            f"{LABELS}/ holds {len(labels)} label maps"
        )
    return found


def _check_listed(dataset: DatasetFolder, on_disk: set[str], found: DatasetCases) -> None:
    """A case of ``training`` (nnU-Net v1 lists ``./imagesTr/NAME.nii.gz``, without the
    channel index) that has neither image nor label on disk is a problem."""
    for _, label in dataset.training or ():
        suffix = volume_suffix(label) or ""
        case = label.name[: len(label.name) - len(suffix)]
        if case not in on_disk:
            found.problems.append(
                InputError(label, "listed in dataset.json (training) but missing")
            )
