"""MHD, NRRD and DICOM volumes through SimpleITK, as ``(X, Y, Z)`` arrays with RAS+ affines.

SimpleITK is imported on first use. ITK stores geometry in LPS; :func:`from_sitk` turns it
into the RAS+ affine that nibabel uses, so every reader of :mod:`crossdistill.data.io`
returns the same convention. Every failure is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from crossdistill.data.headers import check_shape
from crossdistill.errors import InputError


def read_itk_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An MHD/NRRD/DICOM file as ``(X, Y, Z)`` array and RAS+ affine (header checked first)."""
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        with quiet_itk():
            reader.ReadImageInformation()
            size = tuple(int(s) for s in reader.GetSize())
            check_shape(path, size)
            image = reader.Execute()
    except InputError:
        raise
    except PermissionError:
        raise InputError(path, "cannot read: permission denied") from None
    except Exception as err:
        raise InputError(path, f"cannot read ({itk_reason(err)})") from None
    return from_sitk(image, path)


@contextmanager
def quiet_itk() -> Iterator[None]:
    """Silence ITK's own warnings on stderr (e.g. "No Series were found"); we report them."""
    import SimpleITK as sitk

    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def read_dicom_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The one DICOM series of ``folder`` as ``(X, Y, Z)`` array and RAS+ affine."""
    import SimpleITK as sitk

    try:
        with quiet_itk():
            series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except Exception as err:
        raise InputError(folder, f"cannot list DICOM series ({short_reason(err)})") from None
    if not series:
        raise InputError(folder, "folder holds no DICOM series")
    if len(series) > 1:  # refused, not picked: image and mask must come from one known series
        counts = ", ".join(
            f"{uid} ({len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))} files)"
            for uid in series[:3]
        )
        raise InputError(
            folder,
            f"folder holds {len(series)} DICOM series ({counts}); give one series per folder",
        )
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0])
    try:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        reader.MetaDataDictionaryArrayUpdateOn()
        with quiet_itk():
            image = reader.Execute()
    except Exception as err:
        raise InputError(folder, f"cannot read DICOM series ({itk_reason(err)})") from None
    if image.GetDepth() == len(files) > 2:  # one slice a file: each file's geometry
        check_slice_geometry(folder, reader, image)
    return from_sitk(image, folder)


def _slice_tag(reader, index: int, tag: str) -> np.ndarray | None:
    """A numeric multi-valued tag (``a\\b\\c``) of slice ``index`` of a series read, or
    ``None`` when the slice lacks it or it does not parse."""
    if not reader.HasMetaDataKey(index, tag):
        return None
    try:
        return np.asarray([float(v) for v in reader.GetMetaData(index, tag).split("\\")])
    except ValueError:
        return None


def check_slice_geometry(folder: Path, reader, image) -> None:
    """Refuse a series whose slices disagree on their orientation (Image Orientation
    (Patient), e.g. a localizer filed in the series) or are not evenly spaced
    (:func:`check_slice_spacing`); slices without the tags are not checked."""
    count = image.GetDepth()
    orientations = [_slice_tag(reader, i, "0020|0037") for i in range(count)]
    known = all(o is not None and o.shape == (6,) for o in orientations)
    if known and max(float(np.max(np.abs(o - orientations[0]))) for o in orientations) > 1e-3:
        raise InputError(
            folder, "DICOM slices have different orientations (a localizer in the series?)"
        )
    positions = [_slice_tag(reader, i, "0020|0032") for i in range(count)]
    if all(p is not None and p.shape == (3,) for p in positions):
        normal = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)[:, 2]
        check_slice_spacing(folder, np.asarray(positions) @ normal)


def check_slice_spacing(folder: Path, offsets: np.ndarray, tolerance: float = 0.01) -> None:
    """Refuse a series whose slices are not evenly spaced along their normal.

    ITK gives a volume one slice spacing, (last − first) / (n − 1): with a slice missing or
    two at one position, every slice after it would be placed at a wrong depth, and the mask
    written on that grid would not lie on the scan. ``offsets``: each slice's position along
    the normal (mm); a gap may differ from the median gap by ``tolerance`` of it (or 1 µm).
    """
    gaps = np.diff(np.sort(offsets))
    median = float(np.median(gaps))
    worst = int(np.argmax(np.abs(gaps - median)))
    if median <= 0 or abs(gaps[worst] - median) > max(tolerance * median, 1e-3):
        raise InputError(
            folder,
            f"DICOM slices are not evenly spaced: {gaps[worst]:.3g} mm between slices "
            f"{worst + 1} and {worst + 2} where the median gap is {median:.3g} mm "
            "(a missing or duplicated slice?)",
        )


def from_sitk(image, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK image → ``(X, Y, Z)`` array and RAS+ affine (ITK stores LPS)."""
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, "expected a scalar volume, got a multi-component (vector) image")
    dim = image.GetDimension()
    if dim != 3:
        raise InputError(path, f"expected a 3-D volume, got {dim}-D")
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(path, f"invalid voxel spacing {spacing.tolist()}")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = lps_to_ras @ direction @ np.diag(spacing)
    affine[:3, 3] = lps_to_ras @ np.asarray(image.GetOrigin(), dtype=float)
    return array, affine


def itk_reason(err: BaseException) -> str:
    """The reason in an ITK exception, without its source-file and object-address prefix."""
    match = re.search(r"ERROR:\s*(?:\w+\(0x[0-9a-fA-F]+\):\s*)?(.*)", str(err), re.S)
    return short_reason(match.group(1) if match else err)


def short_reason(err: BaseException | str) -> str:
    """An error's text on one line, at most 160 characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."
