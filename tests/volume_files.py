"""Volume files for tests: a reference volume and a DICOM series writer (SimpleITK)."""

from __future__ import annotations

import locale
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk

SHAPE = (12, 10, 5)  # X, Y, Z
SPACING = (0.6, 0.7, 3.0)


def reference() -> np.ndarray:
    return np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)


def sitk_image() -> sitk.Image:
    image = sitk.GetImageFromArray(reference().transpose(2, 1, 0))  # sitk wants (Z, Y, X)
    image.SetSpacing(SPACING)
    image.SetOrigin((10.0, -20.0, 5.0))  # LPS
    return image


@contextmanager
def gdcm_keeps_the_locale() -> Iterator[None]:
    """GDCM's DICOM writer sets the process locale to "C": every later test of the worker
    would then decode subprocess output as ASCII. Put it back."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def write_dicom_series(folder, image: sitk.Image, series_uid: str) -> None:
    with gdcm_keeps_the_locale():
        write_dicom_slices(folder, image, series_uid)


def write_dicom_slices(folder, image: sitk.Image, series_uid: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        tags = {
            "0008|0060": "MR",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": str(SPACING[2]),
        }
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(plane)
