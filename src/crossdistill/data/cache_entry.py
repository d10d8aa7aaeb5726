"""One case's record in a prepared cache's ``index.json``, as a typed value.

:func:`crossdistill.data.cache_case.write_case` builds a :class:`CacheEntry` and
:mod:`crossdistill.data.prepare` stores :meth:`CacheEntry.to_json` in ``index.json``;
:class:`crossdistill.data.cache.Cache` reads every record back with
:meth:`CacheEntry.from_json`. The JSON record (its keys, their order and its values) is the
cache format of ``CACHE_VERSION`` 1 and does not change with this class. The one optional
key, ``source.channel``, is written only for a case read from a 4-D image (the Decathlon
layout), so the records of 3-D images are as they always were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CacheSource:
    """The input files a cached case was made from.

    Attributes:
        image: the image file (or DICOM folder), relative to the input folder.
        mask: the mask file, relative to the input folder.
        image_sha256: hex SHA-256 of the image as read by ``prepare``; None if not hashed.
        mask_sha256: hex SHA-256 of the mask; None if not hashed.
        channel: the channel read from a 4-D image (its 4th axis); None for a 3-D image.
    """

    image: str
    mask: str
    image_sha256: str | None
    mask_sha256: str | None
    channel: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``"source"`` object of the index record (``channel`` only when set)."""
        record: dict[str, Any] = {
            "image": self.image,
            "mask": self.mask,
            "image_sha256": self.image_sha256,
            "mask_sha256": self.mask_sha256,
        }
        if self.channel is not None:
            record["channel"] = self.channel
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> CacheSource:
        """Inverse of :meth:`to_json`.

        Raises:
            KeyError: a key is missing.
        """
        return cls(
            image=record["image"],
            mask=record["mask"],
            image_sha256=record["image_sha256"],
            mask_sha256=record["mask_sha256"],
            channel=record.get("channel"),
        )


@dataclass(frozen=True)
class CacheEntry:
    """One cached case: where its arrays lie and the geometry needed to measure on them.

    The cached arrays are ``(Z, S, S)`` axial slices in display orientation (rows
    anterior→posterior along Y, columns right→left along X), resized in-plane to the
    cache's ``S × S`` (:mod:`crossdistill.data.preprocess`).

    Attributes:
        site: the site folder the case came from.
        case_id: the case's name in its site (``"Case00"``); JSON key ``"case"``.
        image_file: path, relative to the cache folder, of the ``(Z, S, S)`` float16
            z-scored image array (``.npy``); JSON key ``"image"``.
        mask_file: path, relative to the cache folder, of the ``(Z, S, S)`` uint8 mask array
            in {0, 1}; JSON key ``"mask"``.
        num_slices: ``Z``, the number of axial slices.
        shape: ``(X, Y, Z)`` of the canonical RAS+ volume before resizing.
        source_shape: the volume's shape as stored in its file (before reorientation).
        spacing: voxel size (mm) of the canonical volume along X, Y, Z.
        slice_spacing: ``(row, column)`` pixel size (mm) of the resized ``S × S`` slices,
            ``(spacing_Y · Y / S, spacing_X · X / S)``.
        affine: the canonical volume's ``4 × 4`` voxel-to-RAS+ affine, rounded to 6 decimals.
        foreground: ``Z`` flags, 1 where the slice holds mask voxels in the original volume.
        foreground_voxels: mask voxels in the original volume (0: an empty mask).
        labels: the distinct label values of the mask file (all labels > 0 are prostate).
        source: the input files and their checksums.
    """

    site: str
    case_id: str
    image_file: str
    mask_file: str
    num_slices: int
    shape: tuple[int, int, int]
    source_shape: tuple[int, ...]
    spacing: tuple[float, float, float]
    slice_spacing: tuple[float, float]
    affine: tuple[tuple[float, ...], ...]
    foreground: tuple[int, ...]
    foreground_voxels: int
    labels: tuple[int, ...]
    source: CacheSource

    def to_json(self) -> dict[str, Any]:
        """The record as stored in ``index.json`` (keys in the format's order)."""
        return {
            "site": self.site,
            "case": self.case_id,
            "image": self.image_file,
            "mask": self.mask_file,
            "num_slices": self.num_slices,
            "shape": list(self.shape),
            "source_shape": list(self.source_shape),
            "spacing": list(self.spacing),
            "slice_spacing": list(self.slice_spacing),
            "affine": [list(row) for row in self.affine],
            "foreground": list(self.foreground),
            "foreground_voxels": self.foreground_voxels,
            "labels": list(self.labels),
            "source": self.source.to_json(),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> CacheEntry:
        """Inverse of :meth:`to_json`: ``CacheEntry.from_json(e.to_json()) == e``.

        Raises:
            KeyError: a key is missing.
        """
        return cls(
            site=record["site"],
            case_id=record["case"],
            image_file=record["image"],
            mask_file=record["mask"],
            num_slices=int(record["num_slices"]),
            shape=tuple(record["shape"]),
            source_shape=tuple(record["source_shape"]),
            spacing=tuple(record["spacing"]),
            slice_spacing=tuple(record["slice_spacing"]),
            affine=tuple(tuple(row) for row in record["affine"]),
            foreground=tuple(record["foreground"]),
            foreground_voxels=record["foreground_voxels"],
            labels=tuple(record["labels"]),
            source=CacheSource.from_json(record["source"]),
        )
