"""Reading volumes from disk: NIfTI with nibabel; MHD, NRRD and DICOM series with SimpleITK.

Every reader returns a :class:`Volume` in the closest canonical (RAS+) orientation, so that
the third array axis runs inferior → superior and ``array[:, :, k]`` is an axial slice,
whatever the orientation stored in the file. Every failure is an :class:`InputError` that
names the file and the reason.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import warnings
import zlib
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

from crossdistill.data.headers import check_channel, check_header, check_shape, data_files
from crossdistill.data.itk_io import read_dicom_series, read_itk_file, short_reason
from crossdistill.errors import InputError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = (".mhd", ".mha", ".nrrd", ".nhdr")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES
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

    def finite_pixels(self) -> np.ndarray:
        """``array`` as float32; raises :class:`InputError` naming the file if any voxel is NaN
        or ±inf, or beyond float32's range (they would silently poison the intensity
        normalisation)."""
        with np.errstate(over="ignore"):
            pixels = np.asarray(self.array, dtype=np.float32)
        if np.all(np.isfinite(pixels)):
            return pixels
        bad = int(np.size(self.array) - np.count_nonzero(np.isfinite(self.array)))
        if bad:
            raise InputError(self.path, f"{bad} voxels are NaN or inf")
        peak = float(np.max(np.abs(self.array)))
        raise InputError(self.path, f"voxel values up to {peak:.3g} exceed the float32 range")

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


def read_volume(path: str | Path, channel: int | None = None) -> Volume:
    """Read a NIfTI, MHD/NRRD file or a DICOM series folder as a canonical :class:`Volume`.

    Args:
        path: the file or DICOM series folder.
        channel: for a 4-D NIfTI image whose 4th axis holds channels (the Medical
            Segmentation Decathlon stores T2 and ADC so), the channel to read: the volume is
            that 3-D channel on the image's 3-D grid. ``None``: the file must be 3-D.

    Raises:
        InputError: the path is missing or unreadable, not a volume, not 3-D (trailing
            singleton axes are dropped), has absurd dimensions or spacing, or is corrupt;
            with ``channel``: not a 4-D NIfTI image holding that channel.
    """
    path = Path(path)
    if not path.exists():
        broken = path.is_symlink()
        raise InputError(path, "broken symbolic link" if broken else "file does not exist")
    if channel is not None and (path.is_dir() or volume_suffix(path) not in NIFTI_SUFFIXES):
        raise InputError(path, "a channel can be read only from a 4-D NIfTI image")
    if path.is_dir():
        array, affine = read_dicom_series(path)
    elif not path.is_file():
        raise InputError(path, "not a regular file (a FIFO, device or socket)")
    else:
        suffix = volume_suffix(path)
        if suffix in NIFTI_SUFFIXES:
            array, affine = _read_nifti(path, channel)
        elif suffix in ITK_SUFFIXES or _has_dicom_magic(path):
            if suffix in ITK_SUFFIXES:
                check_header(path)
            array, affine = read_itk_file(path)
        else:
            raise InputError(path, "not a volume (expected .nii.gz, .nii, .mhd, .nrrd or DICOM)")
    _check_voxel_type(path, array)
    return _canonical(array, affine, path)


def _check_voxel_type(path: Path, array: np.ndarray) -> None:
    """Refuse voxels that are not real numbers: complex (e.g. an unreconstructed phase image),
    RGB or other structured types would lose data silently on the cast to float."""
    kind = np.asarray(array).dtype
    if kind.kind not in "biuf":  # bool, signed and unsigned integers, floating point
        name = f"structured ({', '.join(kind.names)})" if kind.names else str(kind)
        raise InputError(path, f"voxel type {name} is not a real-valued intensity image")


@contextmanager
def quiet_nibabel() -> Iterator[None]:
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


def _raw_pixdim(path: Path, header_class: type[nib.Nifti1Header]) -> np.ndarray:
    """The header's pixdim[1:4] as stored, before nibabel silently repairs it; the header is
    read as ``header_class`` (NIfTI-1 or NIfTI-2, as nibabel recognised the file)."""
    with ImageOpener(str(path)) as handle:
        header = header_class.from_fileobj(handle, check=False)
    return np.asarray(header["pixdim"][1:4], dtype=float)


def _read_nifti(path: Path, channel: int | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        with quiet_nibabel():
            image = nib.load(str(path))
            shape = tuple(int(s) for s in image.shape)
            if channel is None:
                check_shape(path, shape)
            else:
                check_channel(path, shape, channel)
            pixdim = _raw_pixdim(path, type(image.header))[: max(0, min(3, len(shape)))]
            if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
                raise InputError(
                    path, f"invalid voxel spacing (pixdim) {pixdim.tolist()} in the header"
                )
            # The affine is the 3-D grid's whatever the 4th axis; slicing the proxy reads
            # (and scales) that channel only.
            proxy = image.dataobj
            array = np.asanyarray(proxy if channel is None else proxy[:, :, :, channel])
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
        raise InputError(
            path, _misnamed(path) or f"cannot read NIfTI ({short_reason(err)})"
        ) from None
    return array, affine


def _misnamed(path: Path) -> str | None:
    """Why a NIfTI file cannot be read if it is a NIfTI file whose compression contradicts its
    name (nibabel goes by the name); ``None`` otherwise. Nothing is guessed: the user renames
    the file. At most the first 352 decompressed bytes are read."""
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            head = (gzip.GzipFile(fileobj=raw) if gzipped else raw).read(352)
    except (OSError, EOFError, zlib.error):
        return None
    if not _is_nifti_header(head):
        return None
    named_gz = path.name.lower().endswith(".gz")
    if gzipped and not named_gz:
        return "is gzip-compressed but named .nii; rename it to .nii.gz"
    if named_gz and not gzipped:
        return "is not gzip-compressed but named .nii.gz; rename it to .nii"
    return None


def _is_nifti_header(head: bytes) -> bool:
    """NIfTI-1's magic at byte 344 or NIfTI-2's at byte 4."""
    return head[344:348] == b"n+1\x00" or head[4:12] == b"n+2\x00\r\n\x1a\n"


def _canonical(array: np.ndarray, affine: np.ndarray, path: Path) -> Volume:
    source_shape = tuple(int(s) for s in array.shape)
    check_shape(path, source_shape)
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
