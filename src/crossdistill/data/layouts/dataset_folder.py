"""One nnU-Net raw or Medical Segmentation Decathlon dataset folder and its ``dataset.json``.

Layout shared by both::

    DATASET/dataset.json   channels ("channel_names" or "modality"), labels, [training list]
    DATASET/imagesTr/      training images
    DATASET/labelsTr/      their label maps
    DATASET/imagesTs/      test images without labels: ignored, with a note

``dataset.json`` is read with its own checks: a regular file inside the input folder (no
link out, no FIFO), at most ``MAX_JSON_BYTES`` of UTF-8 JSON holding an object. Channels
come from ``channel_names`` (nnU-Net v2) or ``modality`` (nnU-Net v1, Decathlon), as
``{"0": "T2", "1": "ADC"}``; ``file_ending`` (nnU-Net v2, default ``.nii.gz``) must be a
volume format that :func:`crossdistill.data.io.read_volume` reads; ``training`` (Decathlon,
nnU-Net v1) lists ``{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}``
pairs inside the dataset folder. Every failure is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from crossdistill.data.cases import CaseFiles
from crossdistill.data.containment import check_contained
from crossdistill.data.io import VOLUME_SUFFIXES
from crossdistill.data.layouts.bounded_read import read_bounded
from crossdistill.errors import InputError

DATASET_JSON = "dataset.json"
IMAGES, LABELS, TEST_IMAGES = "imagesTr", "labelsTr", "imagesTs"
MAX_JSON_BYTES = 16 << 20


@dataclass(frozen=True)
class DatasetFolder:
    """What ``dataset.json`` says about a dataset folder.

    Attributes:
        folder: the dataset folder.
        json_path: its ``dataset.json``.
        channels: channel index → name.
        file_ending: the suffix of every image and label file (``.nii.gz``).
        training: the ``(image, label)`` paths listed under ``training``, or ``None``.
        num_training: ``numTraining`` when given.
        kind: ``"nnunet"`` or ``"decathlon"``, as detected from the json and the files.
    """

    folder: Path
    json_path: Path
    channels: dict[int, str]
    file_ending: str
    training: tuple[tuple[Path, Path], ...] | None
    num_training: int | None
    kind: str


@dataclass
class DatasetCases:
    """The cases of one dataset folder (site: the folder's name), the cases that cannot be
    used (each an :class:`InputError`, fatal unless ``--skip-invalid``) and notes."""

    cases: list[CaseFiles] = field(default_factory=list)
    problems: list[InputError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_dataset_folder(path: Path) -> bool:
    """True for a folder holding ``dataset.json`` or ``imagesTr/``."""
    json_path = path / DATASET_JSON
    return path.is_dir() and (
        json_path.exists() or json_path.is_symlink() or (path / IMAGES).is_dir()
    )


def read_dataset_folder(folder: Path, root: Path) -> DatasetFolder:
    """Read and check ``folder/dataset.json`` (``root``: the input folder it must stay in).

    Raises:
        InputError: naming ``dataset.json`` and what is wrong with it.
    """
    json_path = folder / DATASET_JSON
    meta = _read_json(json_path, root)
    channels = _channels(json_path, meta)
    ending = meta.get("file_ending", ".nii.gz")
    if not isinstance(ending, str) or ending.lower() not in VOLUME_SUFFIXES:
        raise InputError(
            json_path,
            f"file_ending {ending!r} is not a volume format crossdistill reads "
            f"({', '.join(VOLUME_SUFFIXES)})",
        )
    training = _training(folder, json_path, meta.get("training"))
    count = meta.get("numTraining")
    num_training = count if isinstance(count, int) and not isinstance(count, bool) else None
    kind = _detect_kind(folder, meta, training)
    return DatasetFolder(folder, json_path, channels, ending, training, num_training, kind)


def _read_json(path: Path, root: Path) -> dict:
    if not (path.exists() or path.is_symlink()):
        raise InputError(
            path, "missing: an nnU-Net or Decathlon dataset names its channels in dataset.json"
        )
    check_contained(path, root)
    if not path.is_file():
        raise InputError(path, "not a regular file")
    blob = read_bounded(path, MAX_JSON_BYTES, "not a dataset.json")
    try:
        meta = json.loads(blob.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise InputError(path, "not valid JSON (nested too deeply)") from None
    if not isinstance(meta, dict):
        raise InputError(path, "expected a JSON object")
    return meta


def _channels(path: Path, meta: dict) -> dict[int, str]:
    key = "channel_names" if "channel_names" in meta else "modality"
    raw = meta.get(key)
    if raw is None:
        raise InputError(
            path,
            "names no channels: expected 'channel_names' (nnU-Net v2) or 'modality' "
            "(nnU-Net v1, Decathlon)",
        )
    shape = f'\'{key}\' must map channel indices to names, like {{"0": "T2", "1": "ADC"}}'
    if not isinstance(raw, dict) or not raw:
        raise InputError(path, shape)
    channels: dict[int, str] = {}
    for index, name in raw.items():
        ok = index.isascii() and index.isdigit() and len(index) <= 4
        if not ok or not isinstance(name, str) or not name.strip():
            raise InputError(path, f"{shape}; found {str(index)[:20]!r}: {str(name)[:20]!r}")
        channels[int(index)] = name.strip()
    return dict(sorted(channels.items()))


def _training(folder: Path, path: Path, raw) -> tuple[tuple[Path, Path], ...] | None:
    if raw is None:
        return None
    shape = '\'training\' must be a list of {"image": ..., "label": ...} entries'
    if not isinstance(raw, list):
        raise InputError(path, shape)
    pairs = []
    for entry in raw:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("image"), str)
            and isinstance(entry.get("label"), str)
        ):
            raise InputError(path, f"{shape}; found {str(entry)[:60]!r}")
        pairs.append(
            (listed_path(folder, path, entry["image"]), listed_path(folder, path, entry["label"]))
        )
    return tuple(pairs)


def listed_path(folder: Path, json_path: Path, text: str) -> Path:
    """``folder / text`` for a relative path listed in ``dataset.json``.

    Raises:
        InputError: ``text`` is absolute, empty or climbs out of ``folder`` (``..``).
    """
    relative = PurePosixPath(text.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise InputError(
            json_path,
            f"listed path {text[:80]!r} is not inside the dataset folder (absolute, empty or "
            "with '..'); refused",
        )
    return folder.joinpath(*relative.parts)


def _detect_kind(folder: Path, meta: dict, training: tuple[tuple[Path, Path], ...] | None) -> str:
    """nnU-Net v2 says ``channel_names``; the Decathlon (and nnU-Net v1) say ``modality``,
    and only the Decathlon stores an image under its label's name (nnU-Net v1 adds _0000)."""
    if "channel_names" in meta:
        return "nnunet"
    if training:
        return "decathlon" if any(image.is_file() for image, _ in training) else "nnunet"
    try:
        labels = [p.name for p in (folder / LABELS).iterdir() if not p.name.startswith(".")]
    except OSError:
        return "nnunet"
    return "decathlon" if any((folder / IMAGES / name).is_file() for name in labels) else "nnunet"


def volume_files(folder: Path, ending: str) -> tuple[dict[str, Path], int]:
    """``({name without ending: path}, number of other entries)`` of a folder; hidden
    entries (``.DS_Store``, macOS ``._x.nii.gz``) are not counted.

    Raises:
        InputError: the folder is missing, not a folder or unreadable.
    """
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "missing"
        raise InputError(
            folder, f"{what} (a dataset keeps its training cases in {IMAGES}/ and {LABELS}/)"
        )
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise InputError(folder, f"cannot read: {err.strerror or err}") from None
    found = {
        p.name[: -len(ending)]: p for p in entries if p.name.endswith(ending) and p.name != ending
    }
    return found, len(entries) - len(found)


def unlabelled_note(dataset: DatasetFolder) -> list[str]:
    """A note that ``imagesTs/`` (no labels) is ignored, when the dataset has one."""
    folder = dataset.folder / TEST_IMAGES
    if not folder.is_dir():
        return []
    try:
        count = sum(1 for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        count = 0
    return [f"{folder}: {count} test images without labels, ignored"]
