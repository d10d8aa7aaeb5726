"""Tiny nnU-Net raw and Medical Segmentation Decathlon dataset folders for tests.

Every case is ``SHAPE`` voxels: a zoned gland (label 1 the outer zone, 2 the inner one)
and two channels with unlike contents, so a test can tell which channel was read: T2
(bright gland, rising along x) and ADC (dark gland, rising along y).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (16, 16, 4)  # X, Y, Z
AFFINE = np.diag([0.8, 0.8, 3.0, 1.0])  # RAS+ already: the cache sees the arrays as written


def zones(case: str) -> np.ndarray:
    """``(X, Y, Z)`` uint8 labels: 0 background, 1 outer zone, 2 inner zone (shifted per
    case)."""
    shift = zlib.crc32(case.encode()) % 3 - 1
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    r2 = ((x - 0.1 * shift) / 0.6) ** 2 + (y / 0.5) ** 2 + (z / 0.9) ** 2
    return np.where(r2 <= 0.4, 2, np.where(r2 <= 1, 1, 0)).astype(np.uint8)


def channel(case: str, name: str) -> np.ndarray:
    """``(X, Y, Z)`` int16 intensities of channel ``name`` (T2 if it starts with T2, else
    ADC-like) of ``case``."""
    rng = np.random.default_rng(zlib.crc32(f"{case}/{name}".encode()))
    gland = zones(case) > 0
    x, y, _ = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    if name.upper().startswith("T2"):
        values = 300 + 400 * gland + 15 * x
    else:
        values = 1500 - 600 * gland + 40 * y
    return (values + rng.normal(0, 5, SHAPE)).astype(np.int16)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, AFFINE), path)


def write_nnunet(folder: Path, cases: list[str], channels=("T2", "ADC"), version: int = 2) -> Path:
    """An nnU-Net raw dataset: ``imagesTr/NAME_000k.nii.gz`` per channel, ``labelsTr``,
    ``dataset.json`` (v2: ``channel_names``; v1: ``modality`` and a training list)."""
    for case in cases:
        for k, name in enumerate(channels):
            _save(folder / "imagesTr" / f"{case}_{k:04d}.nii.gz", channel(case, name))
        _save(folder / "labelsTr" / f"{case}.nii.gz", zones(case))
    names = {str(k): name for k, name in enumerate(channels)}
    labels = {"background": 0, "PZ": 1, "TZ": 2}
    meta = {"channel_names": names, "labels": labels, "numTraining": len(cases)}
    meta["file_ending"] = ".nii.gz"
    if version == 1:
        meta = {
            "modality": names,
            "labels": {str(v): k for k, v in labels.items()},
            "training": [
                {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
                for c in cases
            ],
        }
    (folder / "dataset.json").write_text(json.dumps(meta))
    return folder


def write_decathlon(folder: Path, cases: list[str], channels=("T2", "ADC")) -> Path:
    """A Decathlon dataset (``Task05_Prostate``): 4-D images, channel on the 4th axis."""
    for case in cases:
        stack = np.stack([channel(case, name) for name in channels], axis=-1)
        _save(folder / "imagesTr" / f"{case}.nii.gz", stack if len(channels) > 1 else stack[..., 0])
        _save(folder / "labelsTr" / f"{case}.nii.gz", zones(case))
    meta = {
        "name": "Prostate",
        "modality": {str(k): name for k, name in enumerate(channels)},
        "labels": {"0": "background", "1": "PZ", "2": "TZ"},
        "numTraining": len(cases),
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in cases
        ],
        "test": [],
    }
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1))
    return folder


def write_site_map(path: Path, sites: dict[str, str], header: bool = True) -> Path:
    """A ``case,site`` CSV."""
    rows = (["case,site"] if header else []) + [f"{c},{s}" for c, s in sites.items()]
    path.write_text("\n".join(rows) + "\n")
    return path
