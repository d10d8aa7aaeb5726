"""Finding the cases of a multi-site folder and loading one case with all its checks.

Layout (the public multi-site prostate release)::

    DATA_DIR/<SITE>/CaseNN.nii.gz               image
    DATA_DIR/<SITE>/CaseNN_segmentation.nii.gz  mask (``_Segmentation`` accepted too)

Images may also be ``.nii``, ``.mhd``/``.mha``, ``.nrrd`` files or a DICOM series folder
``CaseNN/``; masks any of the file formats. Any label > 0 is prostate; given the prostate
labels (``--labels 1,2``), any other label but 0 is refused. The nnU-Net and Decathlon
layouts are turned into the same :class:`CaseFiles` by :mod:`crossdistill.data.layouts`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crossdistill.data.io import Volume, is_dicom_folder, read_volume, volume_suffix
from crossdistill.errors import CrossDistillError, InputError

MASK_TAG = "_segmentation"


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case as found on disk; either may be missing.

    ``channel``: the channel to read from a 4-D image (the 4th axis), ``None`` for a 3-D one.
    """

    site: str
    case_id: str
    image: Path | None
    mask: Path | None
    channel: int | None = None


@dataclass
class Case:
    """One validated case: image and mask on the same grid, in canonical RAS+ orientation.

    Attributes:
        image: ``(X, Y, Z)`` float32 intensities as stored in the file.
        mask: ``(X, Y, Z)`` uint8, 1 where the file's label is > 0 (a prostate label).
        labels: the distinct label values of the mask file.
        channel: the channel read from a 4-D image file, ``None`` for a 3-D one.
    """

    site: str
    case_id: str
    image: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    image_path: Path
    mask_path: Path
    labels: list[int] = field(default_factory=list)
    source_shape: tuple[int, ...] = ()
    channel: int | None = None


def natural_key(text: str) -> list:
    """Sort key that orders digit runs by value (``Case2`` before ``Case10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _case_entry(path: Path) -> tuple[str, bool] | None:
    """``(case id, is_mask)`` for a volume file or DICOM folder, ``None`` for anything else."""
    if path.name.startswith("."):
        return None
    suffix = volume_suffix(path)
    if suffix is not None and not path.is_dir():
        stem = path.name[: -len(suffix)]
    elif is_dicom_folder(path):
        stem = path.name
    else:
        return None
    if stem.lower().endswith(MASK_TAG):
        return stem[: -len(MASK_TAG)], True
    return stem, False


def find_site_cases(site_dir: Path) -> list[CaseFiles]:
    """Every case of one site folder, naturally sorted (Case2 before Case10)."""
    images: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    for path in sorted(site_dir.iterdir()):
        entry = _case_entry(path)
        if entry is None:
            continue
        case_id, is_mask = entry
        (masks if is_mask else images)[case_id] = path
    ids = sorted(set(images) | set(masks), key=natural_key)
    return [CaseFiles(site_dir.name, i, images.get(i), masks.get(i)) for i in ids]


def find_sites(data_dir: str | Path) -> dict[str, list[CaseFiles]]:
    """Map each site folder of ``data_dir`` to its cases (a site may have none).

    Raises:
        InputError: ``data_dir`` is missing, not a folder, or holds no site folder.
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise InputError(data_dir, "data folder does not exist")
    if not data_dir.is_dir():
        raise InputError(data_dir, "not a folder (expected a folder of site folders)")
    try:
        children = sorted(p for p in data_dir.iterdir() if not p.name.startswith("."))
    except PermissionError:
        raise InputError(data_dir, "cannot read: permission denied") from None
    site_dirs = [p for p in children if p.is_dir() and not is_dicom_folder(p)]
    if not site_dirs:
        loose = [p for p in children if _case_entry(p) is not None]
        hint = (
            "it holds case files directly; give the folder above it"
            if loose
            else "expected one folder per site holding CaseNN.nii.gz and CaseNN_segmentation.nii.gz"
        )
        raise InputError(data_dir, f"no site folders ({hint})")
    return {p.name: find_site_cases(p) for p in site_dirs}


def _same_grid(a: Volume, b: Volume) -> bool:
    if a.source_shape != b.source_shape:
        return False
    linear = np.allclose(a.source_affine[:3, :3], b.source_affine[:3, :3], rtol=1e-3, atol=1e-4)
    origin = np.allclose(a.source_affine[:3, 3], b.source_affine[:3, 3], atol=1e-2)
    return bool(linear and origin)


def load_case(files: CaseFiles, prostate_labels: Sequence[int] | None = None) -> Case:
    """Read and validate one case (the image's ``files.channel`` for a 4-D image).

    Checks: both files present and readable, 3-D (or the channel of a 4-D image), same grid
    (shape and affine), finite image values, mask labels finite non-negative integers and,
    when ``prostate_labels`` are given, each either 0 or one of them. An empty mask is
    allowed.

    Raises:
        InputError: naming the offending file and the reason.
    """
    if files.image is None:
        raise InputError(files.mask, "mask without image (no matching image file beside it)")
    if files.mask is None:
        raise InputError(
            files.image, f"image without mask (expected {files.case_id}{MASK_TAG}.nii.gz)"
        )
    image = read_volume(files.image, files.channel)
    mask = read_volume(files.mask)
    if not _same_grid(image, mask):
        raise InputError(
            files.mask,
            f"mask grid (shape {mask.source_shape}, spacing {_fmt(mask.spacing)}) differs from "
            f"image grid (shape {image.source_shape}, spacing {_fmt(image.spacing)})",
        )
    pixels = image.finite_pixels()
    labels_raw = np.asarray(mask.array)
    labels = _check_labels(files.mask, labels_raw)
    if prostate_labels is not None:
        stray = [v for v in labels if v != 0 and v not in prostate_labels]
        if stray:
            allowed = ",".join(str(v) for v in prostate_labels)
            raise InputError(
                files.mask,
                f"label {stray[0]} is neither background (0) nor a prostate label ({allowed})",
            )
    return Case(
        site=files.site,
        case_id=files.case_id,
        image=pixels,
        mask=(labels_raw > 0).astype(np.uint8),
        affine=image.affine,
        spacing=image.spacing,
        image_path=files.image,
        mask_path=files.mask,
        labels=labels,
        source_shape=image.source_shape,
        channel=files.channel,
    )


def _check_labels(path: Path, labels: np.ndarray) -> list[int]:
    if labels.dtype.kind == "b":
        return sorted({int(v) for v in np.unique(labels)})
    if labels.dtype.kind not in "iu":
        as_float = labels.astype(np.float64)
        if not np.all(np.isfinite(as_float)):
            raise InputError(path, "mask has NaN or inf values")
        fractional = as_float[as_float != np.round(as_float)]
        if fractional.size:
            raise InputError(path, f"labels must be integers, found {fractional.flat[0]:g}")
        labels = as_float
    values = np.unique(labels)
    if values.size and values.min() < 0:
        raise InputError(path, f"labels must be non-negative, found {values.min():g}")
    return [int(v) for v in values]


def _fmt(spacing: tuple[float, ...]) -> str:
    return "×".join(f"{s:.3g}" for s in spacing)


def parse_labels(text: str) -> list[int]:
    """The prostate labels of ``--labels``: positive integers separated by commas (``1,2``).

    Raises:
        CrossDistillError: anything else.
    """
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or not all(v.isascii() and v.isdigit() and int(v) > 0 for v in values):
        raise CrossDistillError(
            f"--labels takes the prostate label values separated by commas (e.g. 1,2), got {text!r}"
        )
    return sorted({int(v) for v in values})
