"""One scan through a network, and its mask back on the scan's own grid.

The steps are those of training (:mod:`crossdistill.data.preprocess`) and evaluation::

    canonical RAS+ volume                       data.io.read_volume
    → clip p0.5–p99.5, z-score per volume,      data.preprocess.volume_to_network
      display slices, resized to size × size
    → stacks of `channels` slices (2.5D),       eval.inference.network_batches
      batches of `batch_size`
    → logits → softmax over the K classes       Engine.logits
    → each class map resized back in-plane      data.preprocess.network_to_volume
    → argmax; foreground = largest 3-D          eval.postprocess.largest_component
      component of label > 0
    → the file's voxel order                    data.io.Volume.to_source_order

and the result is written as NIfTI on the file's grid: same shape, same affine (for MHD,
NRRD and DICOM, the RAS+ affine of their LPS geometry) and, for NIfTI inputs, the input's
own header geometry (qform, sform, pixdim).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from crossdistill.atomic import replaced_atomically
from crossdistill.data.io import NIFTI_SUFFIXES, Volume, quiet_nibabel, volume_suffix
from crossdistill.data.preprocess import network_to_volume, volume_to_network
from crossdistill.deploy.engines import Engine
from crossdistill.eval.inference import network_batches
from crossdistill.eval.postprocess import largest_component


@dataclass
class Segmentation:
    """A scan's segmentation in the file's voxel order.

    Attributes:
        labels: ``source_shape`` uint8, 0 background, the argmax class elsewhere; only the
            largest 3-D component of ``labels > 0`` is kept.
        foreground: ``source_shape`` float32, the probability of any class but background.
    """

    labels: np.ndarray
    foreground: np.ndarray

    def foreground_ml(self, volume: Volume) -> float:
        """The segmented volume in millilitres."""
        return float(np.count_nonzero(self.labels) * np.prod(volume.spacing) / 1000.0)


def class_probabilities(engine: Engine, volume: Volume, batch_size: int = 16) -> np.ndarray:
    """Softmax probabilities ``(K, X, Y, Z)`` float32 on the volume's canonical grid; a volume
    with NaN or inf voxels raises :class:`InputError`."""
    meta = engine.meta
    slices = volume_to_network(volume.finite_pixels(), meta.size)
    probs = [
        torch.softmax(torch.from_numpy(engine.logits(batch.numpy())), dim=1).numpy()
        for batch in network_batches(slices, meta.channels, batch_size)
    ]
    per_slice = np.concatenate(probs)  # (Z, K, size, size)
    shape = tuple(volume.array.shape)
    return np.stack([network_to_volume(per_slice[:, k], shape) for k in range(per_slice.shape[1])])


def segment_volume(engine: Engine, volume: Volume, batch_size: int = 16) -> Segmentation:
    """Labels (argmax, largest component) and foreground probability in the file's order."""
    probs = class_probabilities(engine, volume, batch_size)
    labels = probs.argmax(axis=0).astype(np.uint8)
    labels *= largest_component(labels > 0)
    foreground = np.clip(1.0 - probs[0], 0.0, 1.0).astype(np.float32)
    return Segmentation(volume.to_source_order(labels), volume.to_source_order(foreground))


def save_on_source_grid(array: np.ndarray, volume: Volume, path: str | Path) -> Path:
    """Write ``array`` (in the file's voxel order) as NIfTI on ``volume``'s file grid.

    A NIfTI input lends its header (qform and sform with their codes, pixdim, units) and its
    format (NIfTI-1 or NIfTI-2), so the output's grid is the input's exactly; other inputs get
    their RAS+ affine as qform and sform with the code *scanner*. The file appears atomically
    (temporary name, rename).
    """
    path = Path(path)
    if tuple(array.shape) != tuple(volume.source_shape):
        raise ValueError(f"array of shape {array.shape} is not on {volume.source_shape}")
    if volume.path.is_file() and volume_suffix(volume.path) in NIFTI_SUFFIXES:
        with quiet_nibabel():  # its header was checked on reading; say nothing twice
            source = nib.load(str(volume.path))
        image = type(source)(array, volume.source_affine, source.header.copy())  # NIfTI-1 or -2
    else:
        image = nib.Nifti1Image(array, volume.source_affine)
        image.set_qform(volume.source_affine, code="scanner")
        image.set_sform(volume.source_affine, code="scanner")
        image.header.set_xyzt_units("mm")
    image.header.set_data_dtype(array.dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"], image.header["cal_max"] = 0, 0
    image.header["descrip"] = b"crossdistill"
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.lower().endswith(".gz") else ".nii"
    with replaced_atomically(path, suffix) as tmp:
        nib.save(image, str(tmp))
    return path
