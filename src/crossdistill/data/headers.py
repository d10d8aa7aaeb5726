"""Checks on MetaImage (``.mhd``/``.mha``) and NRRD (``.nrrd``/``.nhdr``) headers before
SimpleITK reads them.

Two things in such a header must not reach SimpleITK unchecked:

- a dimension count that is not a small positive integer: SimpleITK's MetaImage reader
  never returns on ``NDims = -1`` (or ``99999999999``), so a hostile header would hang the
  process;
- the data file it names (``ElementDataFile`` / ``data file``, each file of a ``LIST``,
  the folder of a ``%d`` pattern): it may be any path, an absolute one, one with ``..``, a
  device or a FIFO. Only regular files in the header's own folder (or below it) are
  accepted, so a header can neither pull a file from elsewhere into the cache nor block
  the read forever.

Only the header is read (at most ``HEADER_BYTES``), never the pixel data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossdistill.errors import InputError

HEADER_BYTES = 1 << 16
MAX_VOXELS = 2**28  # 268 M voxels (1 GiB of float32): anything larger is a broken header
MAX_DIMENSIONS = 16  # what ITK's readers accept; a volume needs 3 (or 4 with a singleton)
DATA_FILE_KEYS = ("elementdatafile", "data file", "datafile")


def header_fields(path: Path) -> tuple[dict[str, str], list[str]]:
    """``({lower-case key: value}, lines after the data-file field)`` of a MetaImage or NRRD
    header; the pixel data of an attached file is not read."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(HEADER_BYTES).decode("latin-1")
    except OSError as err:
        raise InputError(path, f"cannot read: {err.strerror or err}") from None
    lines = text.splitlines()
    nrrd = text.startswith("NRRD")
    fields: dict[str, str] = {}
    for i, line in enumerate(lines[1:] if nrrd else lines, start=1 if nrrd else 0):
        if nrrd and not line.strip():
            break  # a blank line ends a NRRD header
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(":" if nrrd else "=")
        if not sep:
            continue
        key = key.strip().lower()
        fields[key] = value.strip().lstrip("=").strip()
        if key in DATA_FILE_KEYS:  # the last field of a header
            return fields, [n.strip() for n in lines[i + 1 :] if n.strip()]
    return fields, []


def data_files(path: Path) -> list[Path]:
    """The data files a header names (none for attached data: ``LOCAL`` or no field)."""
    fields, rest = header_fields(path)
    value = next((fields[k] for k in DATA_FILE_KEYS if k in fields), "")
    if not value or value.upper() == "LOCAL":
        return []
    if value.upper().startswith("LIST"):
        names = rest
    else:
        names = [value.split()[0] if "%" in value else value]
    return [path.parent / name for name in names]


def check_header(path: Path) -> None:
    """Refuse a header SimpleITK must not read: a bad dimension count, or a data file
    outside the header's folder or not a regular file.

    Raises:
        InputError: naming the header and the reason.
    """
    fields, _ = header_fields(path)
    dims = fields.get("ndims", fields.get("dimension"))
    if dims is not None and not (dims.isdigit() and 1 <= int(dims) <= MAX_DIMENSIONS):
        raise InputError(path, f"invalid dimension count {dims[:20]!r} in the header")
    folder = path.parent.resolve()
    for data in data_files(path):
        if folder not in data.resolve().parents:
            raise InputError(
                path, f"the header names a data file outside its folder ({data}); refused"
            )
        if data.exists() and not data.is_file():
            raise InputError(path, f"its data file {data.name} is not a regular file; refused")


def check_channel(path: Path, shape: tuple[int, ...], channel: int) -> None:
    """Refuse to pick ``channel`` from an image that is not 4-D (after dropping trailing 1s
    beyond the fourth axis), whose 4th axis has no such channel, or whose 3-D grid
    :func:`check_shape` refuses."""
    dims = list(shape)
    while len(dims) > 4 and dims[-1] == 1:
        dims.pop()
    if len(dims) != 4:
        raise InputError(
            path, f"expected a 4-D image with its channels on the 4th axis, got shape {shape}"
        )
    if not 0 <= channel < dims[3]:
        raise InputError(path, f"has {dims[3]} channels on its 4th axis, so no channel {channel}")
    check_shape(path, tuple(dims[:3]))


def check_shape(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse shapes that are not 3-D (after dropping trailing 1s), empty or absurdly large."""
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
