"""synth → prepare → dataset: the embedded phantom goes through the whole data layer."""

from __future__ import annotations

import json

import numpy as np
import torch

from crossdistill.data.dataset import SliceDataset, iter_volumes
from crossdistill.data.prepare import prepare
from crossdistill.data.sites import PAPER_FOLDERS
from crossdistill.data.synth import synthesize


def test_synth_prepare_dataset(tmp_path):
    synthesize(tmp_path / "data", cases_per_site=3, size=64, slices=8, seed=1, montage=False)
    result = prepare(tmp_path / "data", tmp_path / "cache", size=32, progress=False)
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert sorted(index["sites"]) == sorted(PAPER_FOLDERS)
    assert result.slices == 6 * 3 * 8
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())["sites"]
    for parts in splits.values():
        assert len(parts["test"]) >= 1 and not set(parts["train"]) & set(parts["test"])
    data = SliceDataset(tmp_path / "cache", sites=None, split="train", channels=3)
    item = data[len(data) // 2]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    masks = torch.stack([data[i]["mask"] for i in range(len(data))])
    assert masks.dtype == torch.int64 and set(masks.unique().tolist()) == {0, 1}
    for volume in iter_volumes(tmp_path / "cache", ["ISBI"], "test"):
        assert volume.image.shape == (8, 32, 32) and set(np.unique(volume.mask)) <= {0, 1}
        assert volume.case.entry.labels == (0, 1, 2)  # the NCI-ISBI zones, merged in the cache
