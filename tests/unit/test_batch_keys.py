"""The batch keys: their values, that the datasets emit them and the engine reads them."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from crossdistill.data.batch_keys import BatchKeys
from crossdistill.data.dataset import SliceDataset
from crossdistill.data.prepare import prepare
from crossdistill.engine.cached_teacher import TeacherCachedDataset, cached_teacher_outputs

ITEM_KEYS = [BatchKeys.IMAGE, BatchKeys.MASK, BatchKeys.SITE, BatchKeys.CASE, BatchKeys.SLICE]


@pytest.fixture
def cache(tiny_sites, tmp_path):
    return prepare(tiny_sites, tmp_path / "cache", size=32, progress=False).cache


class _StoredMaps:
    """Stands in for ``TeacherOutputs``: item ``i``'s logits are all ``i``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def item(self, index: int) -> dict[str, torch.Tensor]:
        return {"logits": torch.full((2, 32, 32), float(index), dtype=torch.float16)}


def test_the_values_are_the_keys_runs_and_tests_use():
    assert ITEM_KEYS == ["image", "mask", "site", "case", "slice"]
    assert (BatchKeys.THETA, BatchKeys.TEACHER) == ("theta", "teacher")


def test_items_and_batches_hold_the_keys_in_order(cache):
    plain = SliceDataset(cache, split="train")
    assert list(plain[0]) == ITEM_KEYS
    batch = next(iter(DataLoader(plain, batch_size=2)))
    assert list(batch) == ITEM_KEYS
    assert batch[BatchKeys.IMAGE].shape == (2, 1, 32, 32) and len(batch[BatchKeys.SITE]) == 2
    augmented = SliceDataset(cache, split="train", augment="geometric")
    assert list(augmented[0]) == [*ITEM_KEYS, BatchKeys.THETA]
    assert augmented[0][BatchKeys.THETA].shape == (2, 3)


def test_the_stored_teacher_maps_travel_under_their_key(cache):
    plain = SliceDataset(cache, split="train")
    cached = TeacherCachedDataset(plain, _StoredMaps(len(plain)))
    assert list(cached[3]) == [*ITEM_KEYS, BatchKeys.TEACHER]
    batch = next(iter(DataLoader(cached, batch_size=2)))
    out = cached_teacher_outputs(batch, "cpu")
    assert out is not None and out.logits.dtype == torch.float32
    assert out.logits[:, 0, 0, 0].tolist() == [0.0, 1.0]
    assert cached_teacher_outputs(next(iter(DataLoader(plain, batch_size=2))), "cpu") is None
