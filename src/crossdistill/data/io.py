"""Reading volumes from disk: NIfTI with nibabel; MHD, NRRD and DICOM series with SimpleITK.

Every reader returns a :class:`Volume` in the closest canonical (RAS+) orientation, so that
the third array axis runs inferior → superior and ``array[:, :, k]`` is an axial slice,
whatever the orientation stored in the file. Every failure is an :class:`InputError` that
names the file and the reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener
from nibabel.orientations import (
    OrientationError,
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from crossdistill.data.headers import check_header, data_files
from crossdistill.errors import InputError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = (".mhd", ".mha", ".nrrd", ".nhdr")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES
MAX_VOXELS = 2**28  # 268 M voxels (1 GiB of float32): anything larger is a broken header
MAX_CONDITION = 1e8  # of the voxel → world matrix; beyond it the axes are degenerate


@dataclass
class Volume:
    """A 3-D volume in closest-canonical RAS+ orientation.

    Attributes:
        array: ``(X, Y, Z)`` voxel values as stored (scaling applied), axis 2 is axial.
        affine: 4×4 voxel → RAS+ world (mm) matrix of ``array``.
        source_affine: the affine of the file before reorientation.
        source_shape: the array shape of the file before reorientation.
        path: the file or DICOM folder it was read from.
    """

    array: np.ndarray
    affine: np.ndarray
    source_affine: np.ndarray
    source_shape: tuple[int, ...]
    path: Path

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three array axes."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))

    def to_source_order(self, array: np.ndarray) -> np.ndarray:
        """An array on this volume's canonical grid, put back into the file's voxel order.

        The inverse of the reorientation done on reading: the result has ``source_shape``
        and lies on ``source_affine`` voxel for voxel.
        """
        if tuple(array.shape[:3]) != tuple(self.array.shape):
            raise ValueError(f"array of shape {array.shape} is not on the grid {self.array.shape}")
        back = ornt_transform(axcodes2ornt("RAS"), io_orientation(self.source_affine))
        return np.ascontiguousarray(apply_orientation(array, back))


def volume_suffix(path: Path) -> str | None:
    """The volume suffix of ``path`` (``".nii.gz"``, ``".mhd"``, ...) or ``None``."""
    name = path.name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def is_dicom_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding at least one DICOM file (by magic bytes)."""
    if not path.is_dir():
        return False
    return any(child.is_file() and _has_dicom_magic(child) for child in sorted(path.iterdir())[:64])


def _has_dicom_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_volume(path: str | Path) -> Volume:
    """Read a NIfTI, MHD/NRRD file or a DICOM series folder as a canonical :class:`Volume`.

    Raises:
        InputError: the path is missing or unreadable, not a volume, not 3-D (trailing
            singleton axes are dropped), has absurd dimensions or spacing, or is corrupt.
    """
    path = Path(path)
    if not path.exists():
        broken = path.is_symlink()
        raise InputError(path, "broken symbolic link" if broken else "file does not exist")
    if path.is_dir():
        array, affine = _read_dicom_series(path)
    elif not path.is_file():
        raise InputError(path, "not a regular file (a FIFO, device or socket)")
    else:
        suffix = volume_suffix(path)
        if suffix in NIFTI_SUFFIXES:
            array, affine = _read_nifti(path)
        elif suffix in ITK_SUFFIXES or _has_dicom_magic(path):
            if suffix in ITK_SUFFIXES:
                check_header(path)
            array, affine = _read_itk(path)
        else:
            raise InputError(path, "not a volume (expected .nii.gz, .nii, .mhd, .nrrd or DICOM)")
    return _canonical(array, affine, path)


@contextmanager
def _quiet_nibabel() -> Iterator[None]:
    """Silence nibabel's header-fixing log lines and warnings (we report problems ourselves)."""
    logger = logging.getLogger("nibabel.global")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _raw_pixdim(path: Path) -> np.ndarray:
    """The header's pixdim[1:4] as stored, before nibabel silently repairs it."""
    with ImageOpener(str(path)) as handle:
        header = nib.Nifti1Header.from_fileobj(handle, check=False)
    return np.asarray(header["pixdim"][1:4], dtype=float)


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with _quiet_nibabel():
            image = nib.load(str(path))
            shape = tuple(int(s) for s in image.shape)
            _check_shape(path, shape)
            pixdim = _raw_pixdim(path)[: max(0, min(3, len(shape)))]
            if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
                raise InputError(
                    path, f"invalid voxel spacing (pixdim) {pixdim.tolist()} in the header"
                )
            array = np.asanyarray(image.dataobj)
            affine = np.asarray(image.affine, dtype=np.float64)
    except InputError:
        raise
    except PermissionError:
        raise InputError(path, "cannot read: permission denied") from None
    except MemoryError:
        raise InputError(
            path, "cannot read: the header's dimensions do not fit in memory"
        ) from None
    except Exception as err:  # nibabel raises many types for corrupt files
        raise InputError(path, f"cannot read NIfTI ({_short(err)})") from None
    return array, affine


def _read_itk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        with _quiet_itk():
            reader.ReadImageInformation()
            size = tuple(int(s) for s in reader.GetSize())
            _check_shape(path, size)
            image = reader.Execute()
    except InputError:
        raise
    except PermissionError:
        raise InputError(path, "cannot read: permission denied") from None
    except Exception as err:
        raise InputError(path, f"cannot read ({_itk_reason(err)})") from None
    return _from_sitk(image, path)


@contextmanager
def _quiet_itk() -> Iterator[None]:
    """Silence ITK's own warnings on stderr (e.g. "No Series were found"); we report them."""
    import SimpleITK as sitk

    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _read_dicom_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        with _quiet_itk():
            series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except Exception as err:
        raise InputError(folder, f"cannot list DICOM series ({_short(err)})") from None
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
        with _quiet_itk():
            image = reader.Execute()
    except Exception as err:
        raise InputError(folder, f"cannot read DICOM series ({_itk_reason(err)})") from None
    return _from_sitk(image, folder)


def _from_sitk(image, path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def _check_shape(path: Path, shape: tuple[int, ...]) -> None:
    dims = list(shape)
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    if len(dims) != 3:
        raise InputError(path, f"expected a 3-D volume, got shape {tuple(shape)}")
    if min(dims) < 1:
        what = "negative dimensions" if min(dims) < 0 else "empty volume of shape"
        raise InputError(path, f"{what} {tuple(shape)} in the header")
    if int(np.prod(dims, dtype=np.int64)) > MAX_VOXELS:
        raise InputError(path, f"absurd dimensions {tuple(shape)} in the header")


def _canonical(array: np.ndarray, affine: np.ndarray, path: Path) -> Volume:
    source_shape = tuple(int(s) for s in array.shape)
    _check_shape(path, source_shape)
    array = np.asarray(array).reshape(source_shape[:3])
    # Condition number, not determinant: a matrix scaled up can pass any determinant test
    # and still be degenerate (a found case: columns of 1e-37 and 2e14 in one srow).
    if not np.all(np.isfinite(affine)) or np.linalg.cond(affine[:3, :3]) > MAX_CONDITION:
        raise InputError(path, "invalid (singular or non-finite) orientation matrix")
    try:
        ornt = io_orientation(affine)
        canonical = apply_orientation(array, ornt)
    except OrientationError:
        raise InputError(path, "invalid (degenerate) orientation matrix") from None
    return Volume(
        array=canonical,
        affine=affine @ inv_ornt_aff(ornt, array.shape),
        source_affine=np.asarray(affine, dtype=np.float64),
        source_shape=source_shape[:3],
        path=path,
    )


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, or of every file of a folder (names and contents, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        try:
            with open(file, "rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
        except OSError as err:
            raise InputError(file, f"cannot read: {err.strerror or err}") from None
    # Also bind the header files' data companions (.mhd → .raw/.zraw).
    if path.is_file() and volume_suffix(path) in ITK_SUFFIXES:
        for companion in data_files(path):
            if companion.is_file():
                digest.update(file_sha256(companion).encode())
    return digest.hexdigest()


def _itk_reason(err: BaseException) -> str:
    """The reason in an ITK exception, without its source-file and object-address prefix."""
    match = re.search(r"ERROR:\s*(?:\w+\(0x[0-9a-fA-F]+\):\s*)?(.*)", str(err), re.S)
    return _short(match.group(1) if match else err)


def _short(err: BaseException | str) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."
