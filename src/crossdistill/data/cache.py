"""Reading a prepared cache (written by :mod:`crossdistill.data.prepare`).

Layout::

    CACHE/index.json                       sites, cases (one CacheEntry each), hashes
    CACHE/splits.json                      case-level train/val/test per site
    CACHE/cases/<site>/<case>_image.npy    (Z, size, size) float16, z-scored
    CACHE/cases/<site>/<case>_mask.npy     (Z, size, size) uint8 in {0, 1}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossdistill.data.cache_entry import CacheEntry
from crossdistill.data.sites import resolve_sites
from crossdistill.data.splits import SPLITS
from crossdistill.errors import CrossDistillError, InputError

INDEX_FILE = "index.json"
SPLITS_FILE = "splits.json"
CACHE_VERSION = 1


@dataclass(frozen=True)
class CachedCase:
    """One case of the cache folder ``root``: its :class:`CacheEntry` and its arrays."""

    root: Path
    entry: CacheEntry

    @property
    def site(self) -> str:
        return self.entry.site

    @property
    def case_id(self) -> str:
        return self.entry.case_id

    @property
    def image_file(self) -> Path:
        return self.root / self.entry.image_file

    @property
    def mask_file(self) -> Path:
        return self.root / self.entry.mask_file

    @property
    def num_slices(self) -> int:
        return self.entry.num_slices

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) of the original canonical volume along X, Y, Z."""
        return self.entry.spacing

    def image(self, mmap: bool = True) -> np.ndarray:
        """``(Z, size, size)`` float16 slices, memory-mapped unless ``mmap=False``."""
        return np.load(self.image_file, mmap_mode="r" if mmap else None, allow_pickle=False)

    def mask(self, mmap: bool = True) -> np.ndarray:
        """``(Z, size, size)`` uint8 slices in {0, 1}."""
        return np.load(self.mask_file, mmap_mode="r" if mmap else None, allow_pickle=False)


class Cache:
    """A prepared cache folder: its index, its splits and its memory-mapped arrays.

    ``index`` is ``index.json`` as read; ``entries`` holds its cases' records as
    :class:`CacheEntry` objects, in index order.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX_FILE
        if not self.root.is_dir():
            raise InputError(self.root, "cache folder does not exist (run `crossdistill prepare`)")
        if not index_path.is_file():
            raise InputError(
                self.root, "not a prepared cache: no index.json (run `crossdistill prepare`)"
            )
        self.index = _read_json(index_path)
        version = self.index.get("version") if isinstance(self.index, dict) else None
        if version != CACHE_VERSION:
            raise InputError(
                index_path,
                f"cache version {version} is not {CACHE_VERSION}; run prepare again",
            )
        splits_path = self.root / SPLITS_FILE
        self.splits: dict = _read_json(splits_path)["sites"] if splits_path.is_file() else {}
        try:
            self.entries: list[CacheEntry] = [CacheEntry.from_json(e) for e in self.index["cases"]]
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                index_path, f"damaged case record (missing or bad {err}); run prepare again"
            ) from None
        self._cases = [CachedCase(self.root, entry) for entry in self.entries]

    @property
    def size(self) -> int:
        """In-plane size of every cached slice."""
        return int(self.index["size"])

    @property
    def sites(self) -> list[str]:
        """Site folders in the cache, in index order."""
        return list(self.index["sites"])

    def resolve_sites(self, names: Iterable[str] | None) -> list[str]:
        """Site folders for names given as S4 / UCL / folder; ``None`` means all sites."""
        return self.sites if names is None else resolve_sites(names, self.sites)

    def cases(
        self, sites: Iterable[str] | None = None, split: str | None = None
    ) -> list[CachedCase]:
        """The cases of ``sites`` (all by default) in ``split`` (all by default)."""
        folders = self.resolve_sites(sites)
        if split is not None and split not in SPLITS:
            raise CrossDistillError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
        out = []
        for case in self._cases:
            if case.site not in folders:
                continue
            if split is not None and case.case_id not in self.splits.get(case.site, {}).get(
                split, []
            ):
                continue
            out.append(case)
        return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read ({err})") from None
