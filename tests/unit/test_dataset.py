"""SliceDataset and the volume iterator over a prepared cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from crossdistill.data.dataset import SliceDataset, iter_volumes
from crossdistill.data.prepare import prepare


@pytest.fixture
def cache(tiny_sites, tmp_path):
    return prepare(tiny_sites, tmp_path / "cache", size=32, progress=False).cache


def test_items_shapes_and_dtypes(cache):
    ds = SliceDataset(cache, sites=["UCL"], split="train")
    assert len(ds) == 6 * len(ds.cases)
    item = ds[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64
    assert item["site"] == "UCL" and item["slice"] == 0
    labels = torch.cat([ds[i]["mask"].flatten() for i in range(len(ds))]).unique().tolist()
    assert labels == [0, 1]


def test_two_point_five_d_stacking_at_the_ends(cache):
    flat = SliceDataset(cache, sites=["UCL"], split="train", channels=1)
    stacked = SliceDataset(cache, sites=["UCL"], split="train", channels=3)
    z = lambda i: flat[i]["image"][0]  # noqa: E731
    first, last = 0, stacked.cases[0].num_slices - 1
    x = stacked[first]["image"]
    assert x.shape == (3, 32, 32)
    assert (
        torch.equal(x[0], z(first))
        and torch.equal(x[1], z(first))
        and torch.equal(x[2], z(first + 1))
    )
    x = stacked[last]["image"]
    assert (
        torch.equal(x[0], z(last - 1)) and torch.equal(x[1], z(last)) and torch.equal(x[2], z(last))
    )
    x = stacked[2]["image"]
    assert torch.equal(x[0], z(1)) and torch.equal(x[2], z(3))


def test_splits_do_not_share_cases(cache):
    parts = {
        s: {(i["site"], i["case"]) for i in SliceDataset(cache, split=s)}
        for s in ("train", "val", "test")
    }
    assert not (parts["train"] & parts["test"]) and not (parts["train"] & parts["val"])


def test_augmentation_is_reproducible_and_changes_the_image(cache):
    ds = SliceDataset(cache, split="train", augment=True, seed=3)
    plain = SliceDataset(cache, split="train")
    a, b = ds[3], ds[3]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["image"], plain[3]["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["image"], a["image"])
    assert set(a["mask"].unique().tolist()) <= {0, 1}


def test_geometric_augmentation_is_the_same_warp_without_the_intensity_change(cache):
    full = SliceDataset(cache, split="train", augment=True, seed=3)
    geometric = SliceDataset(cache, split="train", augment="geometric", seed=3)
    rng = np.random.default_rng([3, 0, 5])  # the draws of item 5 in epoch 0
    rng.random(5)  # angle, scale, shift (2), flip
    gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-0.1, 0.1)
    a, g = full[5], geometric[5]
    assert torch.equal(a["theta"], g["theta"]) and a["theta"].shape == (2, 3)
    assert torch.equal(a["mask"], g["mask"])
    assert torch.allclose(a["image"], g["image"] * gain + offset, atol=1e-6)
    assert "theta" not in SliceDataset(cache, split="train")[5]
    with pytest.raises(ValueError, match="augment"):
        SliceDataset(cache, split="train", augment="intensity")


def test_loader_with_workers(cache):
    ds = SliceDataset(cache, split="train", channels=3)
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert sum(len(b["slice"]) for b in batches) == len(ds)
    assert batches[0]["image"].shape[1:] == (3, 32, 32)


def test_iter_volumes(cache):
    volumes = list(iter_volumes(cache, ["S4"], "test"))
    assert volumes and all(v.case.site == "UCL" for v in volumes)
    v = volumes[0]
    assert v.image.dtype == np.float32 and v.image.shape == v.mask.shape == (6, 32, 32)
