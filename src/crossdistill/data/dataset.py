"""Memory-mapped datasets over a prepared cache: slices for training, volumes for evaluation."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from crossdistill.data.augment import GEOMETRIC, AugmentMode, augment_slice, check_mode
from crossdistill.data.batch_keys import BatchKeys
from crossdistill.data.cache import Cache, CachedCase
from crossdistill.data.preprocess import stack_neighbours


def _as_cache(cache: Cache | str | Path) -> Cache:
    return cache if isinstance(cache, Cache) else Cache(cache)


class SliceDataset(Dataset):
    """Axial slices of the cases of ``sites`` in ``split``.

    Each item is a dict (keys: :class:`~crossdistill.data.batch_keys.BatchKeys`): ``image``
    float32 ``(channels, S, S)`` (``channels=3`` stacks slices z−1, z, z+1, edge-replicated
    at the first and last slice: 2.5D input), ``mask`` int64 ``(S, S)`` in {0, 1}, ``site``,
    ``case`` and ``slice`` (index in its volume).
    Arrays stay memory-mapped; each worker process opens its own maps.
    With ``augment=True`` (or ``"geometric"``: no intensity change, see
    :mod:`crossdistill.data.augment`) item ``i`` of epoch ``e`` is augmented from the
    generator seeded by ``(seed, e, i)``, so runs are reproducible whatever the number of
    workers; an augmented item also holds ``theta``, its ``(2, 3)`` geometric map.
    """

    def __init__(
        self,
        cache: Cache | str | Path,
        sites: Iterable[str] | None = None,
        split: str | None = "train",
        channels: int = 1,
        augment: AugmentMode = False,
        seed: int = 0,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.cache = _as_cache(cache)
        self.cases: list[CachedCase] = self.cache.cases(sites, split)
        self.items = [(c, z) for c, case in enumerate(self.cases) for z in range(case.num_slices)]
        self.channels = channels
        self.augment = check_mode(augment)
        self.seed = seed
        self.epoch = 0
        self._maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def item_sites(self) -> list[str]:
        """The site of every item, in item order (for site-aware samplers)."""
        return [self.cases[c].site for c, _ in self.items]

    def unaugmented(self) -> SliceDataset:
        """The same items, never augmented (a copy; this dataset is unchanged)."""
        plain = copy.copy(self)
        plain.augment = False
        plain._maps = {}
        return plain

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def _arrays(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        if c not in self._maps:
            self._maps[c] = (self.cases[c].image(), self.cases[c].mask())
        return self._maps[c]

    def __getitem__(self, index: int) -> dict:
        c, z = self.items[index]
        volume, masks = self._arrays(c)
        image = torch.from_numpy(stack_neighbours(volume, z, self.channels))
        mask = torch.from_numpy(np.asarray(masks[z], dtype=np.int64))
        case = self.cases[c]
        item = {
            BatchKeys.IMAGE: image,
            BatchKeys.MASK: mask,
            BatchKeys.SITE: case.site,
            BatchKeys.CASE: case.case_id,
            BatchKeys.SLICE: z,
        }
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            intensity = self.augment != GEOMETRIC
            item[BatchKeys.IMAGE], item[BatchKeys.MASK], draw = augment_slice(
                image, mask, rng, intensity
            )
            item[BatchKeys.THETA] = draw.theta
        return item


@dataclass
class CachedVolume:
    """One whole cached volume: ``image (Z, S, S)`` float32 and ``mask (Z, S, S)`` uint8."""

    case: CachedCase
    image: np.ndarray
    mask: np.ndarray


def iter_volumes(
    cache: Cache | str | Path, sites: Iterable[str] | None = None, split: str | None = "test"
) -> Iterator[CachedVolume]:
    """Yield the whole volumes of ``sites`` in ``split``, one at a time (for evaluation)."""
    for case in _as_cache(cache).cases(sites, split):
        yield CachedVolume(
            case, np.asarray(case.image(), dtype=np.float32), np.asarray(case.mask())
        )
