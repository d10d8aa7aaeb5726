"""One case of the slice cache: its two ``.npy`` files and its :class:`CacheEntry`."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np

from crossdistill.data.cache_entry import CacheEntry, CacheSource
from crossdistill.data.cases import Case
from crossdistill.data.preprocess import mask_to_network, volume_to_network


def write_case(
    case: Case, size: int, staging: Path, stem: str, data_dir: Path, hashes: dict
) -> CacheEntry:
    """Write ``case``'s slices (``size``², float16 image, uint8 mask) as ``staging/stem_*.npy``
    and return its record of the cache index (geometry, per-slice foreground, source files
    and their SHA-256 from ``hashes``, paths relative to ``data_dir``)."""
    image = volume_to_network(case.image, size).astype(np.float16)
    mask = mask_to_network(case.mask, size)
    (staging / stem).parent.mkdir(parents=True, exist_ok=True)
    save_array(staging / f"{stem}_image.npy", image)
    save_array(staging / f"{stem}_mask.npy", mask)
    sx, sy, _ = case.spacing
    x, y, z = case.image.shape
    per_slice = case.mask.reshape(-1, z).sum(axis=0)
    return CacheEntry(
        site=case.site,
        case_id=case.case_id,
        image_file=f"{stem}_image.npy",
        mask_file=f"{stem}_mask.npy",
        num_slices=int(z),
        shape=(int(x), int(y), int(z)),
        source_shape=tuple(case.source_shape),
        spacing=tuple(float(s) for s in case.spacing),
        slice_spacing=(sy * y / size, sx * x / size),
        affine=tuple(tuple(row) for row in np.asarray(case.affine).round(6).tolist()),
        foreground=tuple(int(v > 0) for v in per_slice),
        foreground_voxels=int(per_slice.sum()),
        labels=tuple(case.labels),
        source=CacheSource(
            image=str(case.image_path.relative_to(data_dir)),
            mask=str(case.mask_path.relative_to(data_dir)),
            image_sha256=hashes.get(case.image_path),
            mask_sha256=hashes.get(case.mask_path),
            channel=case.channel,
        ),
    )


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save``, with the file's name in the error (numpy's write errors carry none; a
    short write, numpy's "N requested and M written", is a full disk when little is free)."""
    try:
        np.save(path, array)
    except OSError as err:
        code, reason = err.errno, err.strerror or str(err)
        if code is None:
            full = shutil.disk_usage(path.parent).free < array.nbytes
            code = errno.ENOSPC if full else errno.EIO
            reason = f"No space left on device: {reason}" if full else reason
        raise OSError(code, reason, str(path)) from None
