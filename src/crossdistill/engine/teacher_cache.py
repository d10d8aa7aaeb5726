"""Teacher-output cache: the frozen teacher's outputs on the student's training slices, stored
once and read by every later epoch and every later student of the same teacher and data.

A cache entry is one folder ``ROOT/<key>/`` holding, for every item of the (unaugmented)
training dataset in dataset order, the teacher's maps at the taps the KD terms read:

    logits.npy           (N, K, S, S)     float16, memory-mapped
    feature-<i>.npy      (N, C, S/r, S/r) float16, one per feature tap (manifest names them)
    manifest.json        key, shapes, SHA-256 of every array — written last

The key binds everything the stored values depend on: the SHA-256 of the teacher's weights
(``engine.loading.network_sha256``, not of the metadata beside them), the data cache's
content fingerprint (``prepare``'s hash of the source files and settings), the dataset's
items (site, case, slices), input channels, taps and autocast precision. A different key is
a different folder, so a teacher trained to other weights or re-prepared data never reads
stale outputs; a teacher trained again to the same weights reads the entry it built before.
An entry is built in a staging folder and renamed into place, so a crash never leaves a
half-written entry under the final name; on opening, the manifest, the array shapes and
their SHA-256 are checked, and an entry that fails is rebuilt (with a warning saying why).
Values are stored in float16: results equal the uncached path's within
fp16 rounding (relative 2⁻¹¹); an output beyond float16's range is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import Tensor
from torch.utils.data import DataLoader

from crossdistill.data.batch_keys import BatchKeys
from crossdistill.data.dataset import SliceDataset
from crossdistill.data.io import file_sha256
from crossdistill.engine.loading import network_sha256
from crossdistill.engine.precision import Precision
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.models.output import SegOutput
from crossdistill.models.taps import LOGITS, read_tap
from crossdistill.progress import progress_bar

FORMAT = "crossdistill-teacher-cache"
VERSION = 1
MANIFEST = "manifest.json"


def cache_key(
    teacher_file: Path,
    dataset: SliceDataset,
    taps: Sequence[str],
    precision: str,
    control: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the cached values depend on (module doc), as a JSON-able dict; ``control``
    describes a control teacher built from ``teacher_file`` (``distill.controls``), which
    outputs other values than the checkpoint itself."""
    index = dataset.cache.index
    data = (
        index.get("fingerprint")
        or hashlib.sha256(json.dumps(index, sort_keys=True).encode()).hexdigest()
    )
    items = [[case.site, case.case_id, case.num_slices] for case in dataset.cases]
    return {
        "format": FORMAT,
        "version": VERSION,
        "teacher_weights_sha256": network_sha256(teacher_file),
        "data_fingerprint": data,
        "items_sha256": hashlib.sha256(json.dumps(items).encode()).hexdigest(),
        "num_items": len(dataset),
        "channels": dataset.channels,
        "taps": list(taps),
        "precision": precision,
        **({"control": control} if control else {}),
    }


def key_digest(key: dict[str, Any]) -> str:
    """The SHA-256 of ``key``; its first 20 hex digits name the entry's folder."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class TeacherOutputs:
    """A verified cache entry: ``item(i)`` gives item ``i``'s maps, ``{tap: float16 tensor}``.

    The arrays are opened lazily, memory-mapped, once per process (DataLoader workers too).
    """

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def taps(self) -> list[str]:
        return list(self.manifest["arrays"])

    def __len__(self) -> int:
        return int(self.manifest["key"]["num_items"])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": {}}

    def item(self, index: int) -> dict[str, torch.Tensor]:
        if not self._arrays:
            self._arrays = {
                tap: np.load(self.folder / a["file"], mmap_mode="r", allow_pickle=False)
                for tap, a in self.manifest["arrays"].items()
            }
        return {tap: torch.from_numpy(np.array(a[index])) for tap, a in self._arrays.items()}


def open_or_build(
    root: Path,
    key: dict[str, Any],
    teacher: Callable[[Tensor, Tensor], SegOutput],
    dataset: SliceDataset,
    precision: Precision,
    batch_size: int,
    progress: bool = True,
) -> tuple[TeacherOutputs, bool]:
    """The entry of ``key`` under ``root``, built first if missing or invalid.

    ``teacher(images, masks)`` gives the teacher's output (eval mode, no gradient), e.g. the
    objective's ``teacher_forward``; the masks serve a control teacher made from the labels.

    Returns ``(outputs, built)``.

    Raises:
        InputError: ``root`` cannot be written.
        CrossDistillError: a teacher output does not fit float16.
    """
    folder = Path(root) / key_digest(key)[:20]
    reason = verify(folder, key)
    if reason is None:
        return TeacherOutputs(folder, _read_manifest(folder)), False
    if folder.exists():
        warnings.warn(f"teacher cache {folder}: {reason}; rebuilding it", stacklevel=2)
    staging = folder.with_name(f".staging-{folder.name}-{os.getpid()}")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _build(staging, key, teacher, dataset, precision, batch_size, progress)
        _commit(staging, folder, key)
    except OSError as err:
        raise InputError(
            folder, f"cannot write the teacher cache ({err.strerror or err})"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return TeacherOutputs(folder, _read_manifest(folder)), True


def verify(folder: Path, key: dict[str, Any]) -> str | None:
    """Why the entry in ``folder`` cannot be used for ``key``, or None if it can."""
    if not folder.is_dir():
        return "not built yet"
    try:
        manifest = _read_manifest(folder)
        if manifest["key"] != key:
            return "built for another teacher, data or setting"
        if sorted(manifest["arrays"]) != sorted(key["taps"]):
            return "the manifest lists other taps than the key"
        for entry in manifest["arrays"].values():
            path = folder / entry["file"]
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                return f"{entry['file']} is unreadable ({err})"
            if list(array.shape) != entry["shape"] or array.dtype != np.float16:
                return f"{entry['file']} has shape {list(array.shape)}, not {entry['shape']}"
            del array
            if file_sha256(path) != entry["sha256"]:
                return f"{entry['file']} does not match its checksum (damaged)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InputError):
        return "no readable manifest (an interrupted or damaged entry)"
    return None


def _read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())


@torch.no_grad()
def _build(staging, key, teacher, dataset, precision, batch_size, progress) -> dict[str, Any]:
    plain = dataset.unaugmented()
    # its own generator: building the cache leaves the global RNG (dropout, ...) untouched
    loader = DataLoader(plain, batch_size=batch_size, shuffle=False, generator=torch.Generator())
    files = {
        tap: "logits.npy" if tap == LOGITS else f"feature-{i}.npy"
        for i, tap in enumerate(key["taps"])
    }
    arrays: dict[str, np.ndarray] = {}
    start = 0
    with progress_bar(len(plain), "teacher cache", enabled=progress) as advance:
        for batch in loader:
            images = precision.inputs(batch[BatchKeys.IMAGE].to(precision.device))
            with precision.autocast():
                output = teacher(images, batch[BatchKeys.MASK].to(precision.device))
            for tap in key["taps"]:
                values = read_tap(output, tap).float().to(torch.float16)
                if not bool(torch.isfinite(values).all()):
                    raise CrossDistillError(
                        f"the teacher's '{tap}' output exceeds the float16 range; "
                        "it cannot be cached (run without distill.teacher_cache)"
                    )
                if tap not in arrays:
                    shape = (len(plain), *values.shape[1:])
                    arrays[tap] = open_memmap(staging / files[tap], "w+", np.float16, shape)
                arrays[tap][start : start + len(values)] = values.cpu().numpy()
            start += len(images)
            advance(len(images))
    manifest = {"key": key, "arrays": {}}
    for tap, array in arrays.items():
        array.flush()
        manifest["arrays"][tap] = {"file": files[tap], "shape": list(array.shape)}
        del array
    arrays.clear()
    for entry in manifest["arrays"].values():
        path = staging / entry["file"]
        _fsync(path)
        entry["sha256"] = file_sha256(path)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    _fsync(staging / MANIFEST)
    return manifest


def _commit(staging: Path, folder: Path, key: dict[str, Any]) -> None:
    """Rename ``staging`` to ``folder``, replacing an invalid entry; if another process has
    committed a valid entry meanwhile, keep theirs."""
    if folder.exists() and verify(folder, key) is None:
        return
    if folder.exists():
        trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}")
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(staging, folder)
    except OSError:
        if verify(folder, key) is not None:
            raise


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
