"""Distilling from the teacher-output cache (``distill --teacher-cache``).

:func:`use_teacher_cache` opens (or builds) the cache entry of the run's teacher and data
(``engine.teacher_cache``) and wraps the training dataset so that every item also carries
the teacher's stored maps, ``item[BatchKeys.TEACHER] = {tap: float16 map}``. The training
loop turns a batch's maps into the ``SegOutput`` the distiller would otherwise compute
(:func:`cached_teacher_outputs`), so the teacher never runs during training.

Augmentation: the stored maps are the teacher's outputs on the *unaugmented* slices.

* ``data.augment: false`` — the distiller sees exactly the uncached path's teacher outputs,
  up to float16 rounding.
* ``data.augment: geometric`` — each item's affine map ``θ`` (rotation, scale, shift, flip) is
  applied to its stored logits and features with the same normalised-coordinate warp as to
  its image (bilinear, border padding), so the maps stay aligned with the augmented image at
  every resolution. This is the warp of the teacher's output, ``T(x)∘θ``, not the teacher's
  output on the warped image, ``T(x∘θ)``: the two are equal for a network that commutes with
  the warp (exactly so for flips of a mirror-symmetric network and for per-pixel affine maps),
  and otherwise close but not equal (a CNN is only approximately equivariant to rotation and
  scaling, and the 1/8-resolution features are interpolated).
* ``data.augment: true`` also changes intensities, which changes the teacher's input in a way
  no warp of its output can reproduce: refused with a one-line error naming ``data.augment``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from crossdistill.data.augment import GEOMETRIC, warp_maps
from crossdistill.data.batch_keys import BatchKeys
from crossdistill.data.dataset import SliceDataset
from crossdistill.engine.objective import TrainingObjective
from crossdistill.engine.precision import Precision
from crossdistill.engine.teacher_cache import TeacherOutputs, cache_key, open_or_build
from crossdistill.errors import ConfigError
from crossdistill.models.output import SegOutput
from crossdistill.models.taps import LOGITS


class TeacherCachedDataset(Dataset):
    """``dataset``'s items, each with ``item[BatchKeys.TEACHER]``: its stored teacher maps.

    Every other attribute (``set_epoch``, ``item_sites``, ``cases``, ...) is the dataset's.
    """

    def __init__(self, dataset: SliceDataset, outputs: TeacherOutputs) -> None:
        if len(outputs) != len(dataset):
            raise ValueError(f"the cache holds {len(outputs)} items, the dataset {len(dataset)}")
        self.dataset = dataset
        self.outputs = outputs

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        item[BatchKeys.TEACHER] = self.outputs.item(index)
        return item

    def case_logits(self, site: str, case_id: str) -> torch.Tensor:
        """The stored teacher logits of one whole case, ``(Z, K, S, S)`` float16, slices in
        order (items are case-major, see ``SliceDataset``)."""
        start = 0
        for case in self.dataset.cases:
            if (case.site, case.case_id) == (site, case_id):
                return torch.stack(
                    [self.outputs.item(start + z)[LOGITS] for z in range(case.num_slices)]
                )
            start += case.num_slices
        raise KeyError(f"{site}/{case_id} is not among the cached items")

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "outputs"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def cached_teacher_outputs(batch: dict, device: str | torch.device) -> SegOutput | None:
    """The teacher's ``SegOutput`` for a collated batch of :class:`TeacherCachedDataset`
    items (float32 on ``device``, warped by the batch's ``theta`` if augmented), or None if
    the batch holds no stored maps."""
    maps = batch.get(BatchKeys.TEACHER)
    if maps is None:
        return None
    theta = batch.get(BatchKeys.THETA)
    out = {}
    for tap, values in maps.items():
        values = values.to(device, non_blocking=True).float()
        out[tap] = values if theta is None else warp_maps(values, theta.to(device))
    logits = out.pop(LOGITS)
    return SegOutput(logits, out)


def teacher_taps(objective: TrainingObjective) -> list[str]:
    """``"logits"`` and every feature tap the objective reads from its teacher.

    Raises:
        ConfigError: the objective reads no teacher (nothing to cache).
    """
    taps = objective.teacher_taps()  # empty without a teacher (the protocol's contract)
    if not taps:
        raise ConfigError(
            "distill.teacher_cache",
            "caches a teacher's outputs: it needs distill.teacher and distillation terms",
        )
    return list(taps)


def check_teacher_cache(objective: TrainingObjective, augment: bool | str) -> list[str]:
    """The taps to cache (see :func:`teacher_taps`) once the run is known to allow a cache.

    Raises:
        ConfigError: ``augment`` changes intensities, or ``objective`` does not distil.
    """
    taps = teacher_taps(objective)
    if augment and augment != GEOMETRIC:
        raise ConfigError(
            "data.augment",
            "intensity augmentation changes the teacher's input, so its cached outputs would "
            "be wrong; set data.augment=geometric (or false) to use the teacher cache",
        )
    return taps


def use_teacher_cache(
    root: str | Path,
    objective: TrainingObjective,
    teacher_file: Path,
    dataset: SliceDataset,
    precision: Precision,
    batch_size: int,
    progress: bool = True,
    control: dict[str, Any] | None = None,
) -> tuple[TeacherCachedDataset, dict[str, Any]]:
    """Open or build the teacher cache of ``objective``'s teacher on ``dataset`` under
    ``root``; returns the wrapped dataset and ``{"path", "built", "taps", "bytes"}``.
    ``control`` describes a control teacher made from ``teacher_file`` (part of the key).

    Raises:
        ConfigError: see :func:`check_teacher_cache`.
    """
    taps = check_teacher_cache(objective, dataset.augment)
    key = cache_key(teacher_file, dataset, taps, precision.name, control)
    outputs, built = open_or_build(
        Path(root), key, objective.teacher_forward, dataset, precision, batch_size, progress
    )
    size = sum(
        (outputs.folder / a["file"]).stat().st_size for a in outputs.manifest["arrays"].values()
    )
    info = {"path": str(outputs.folder), "built": built, "taps": taps, "bytes": size}
    return TeacherCachedDataset(dataset, outputs), info
