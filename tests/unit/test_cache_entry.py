"""CacheEntry: the cache's per-case record, written, stored and read back unchanged."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import write_case as write_files
from crossdistill.data.cache import Cache
from crossdistill.data.cache_case import write_case
from crossdistill.data.cache_entry import CacheEntry
from crossdistill.data.cases import find_sites, load_case
from crossdistill.data.prepare import prepare
from crossdistill.data.preprocess import mask_to_network, volume_to_network
from crossdistill.errors import InputError

#: the keys of an ``index.json`` case record, in order (the cache format, version 1)
FORMAT_KEYS = [
    "site", "case", "image", "mask", "num_slices", "shape", "source_shape", "spacing",
    "slice_spacing", "affine", "foreground", "foreground_voxels", "labels", "source",
]  # fmt: skip


@pytest.fixture
def one_case(tmp_path):
    """A folder with one ISBI case (zone labels 2) and that case, loaded."""
    data = tmp_path / "data"
    write_files(data / "ISBI", "Case00", shape=(20, 16, 5), spacing=(0.6, 0.8, 3.0), labels=2)
    return data, load_case(find_sites(data)["ISBI"][0])


def _legacy_record(case, size, stem, data, hashes) -> dict:
    """The record as ``write_case`` built it before CacheEntry (kept here to pin the format)."""
    sx, sy, _ = case.spacing
    x, y, z = case.image.shape
    per_slice = case.mask.reshape(-1, z).sum(axis=0)
    return {
        "site": case.site,
        "case": case.case_id,
        "image": f"{stem}_image.npy",
        "mask": f"{stem}_mask.npy",
        "num_slices": int(z),
        "shape": [int(x), int(y), int(z)],
        "source_shape": list(case.source_shape),
        "spacing": [float(s) for s in case.spacing],
        "slice_spacing": [sy * y / size, sx * x / size],
        "affine": np.asarray(case.affine).round(6).tolist(),
        "foreground": [int(v > 0) for v in per_slice],
        "foreground_voxels": int(per_slice.sum()),
        "labels": case.labels,
        "source": {
            "image": str(case.image_path.relative_to(data)),
            "mask": str(case.mask_path.relative_to(data)),
            "image_sha256": hashes.get(case.image_path),
            "mask_sha256": hashes.get(case.mask_path),
        },
    }


def test_the_written_record_is_the_format_byte_for_byte(one_case, tmp_path):
    data, case = one_case
    hashes = {case.image_path: "ab" * 32}  # the mask's hash missing: stored as null
    entry = write_case(case, 32, tmp_path / "staging", "cases/ISBI/Case00", data, hashes)
    assert isinstance(entry, CacheEntry)
    record = entry.to_json()
    assert list(record) == FORMAT_KEYS
    legacy = _legacy_record(case, 32, "cases/ISBI/Case00", data, hashes)
    assert json.dumps(record, indent=1) == json.dumps(legacy, indent=1)
    assert CacheEntry.from_json(json.loads(json.dumps(record))) == entry


def test_a_cache_reads_back_as_entries_with_equal_arrays(one_case, tmp_path):
    data, case = one_case
    prepare(data, tmp_path / "cache", size=32, progress=False)
    cache = Cache(tmp_path / "cache")
    [cached] = cache.cases()
    entry = cached.entry
    assert cache.entries == [entry] and isinstance(entry, CacheEntry)
    assert cache.index["cases"] == [entry.to_json()]
    assert (entry.site, entry.case_id, entry.num_slices) == ("ISBI", "Case00", 5)
    assert entry.shape == (20, 16, 5) and entry.labels == (0, 2)
    assert entry.spacing == pytest.approx((0.6, 0.8, 3.0))
    assert entry.slice_spacing == pytest.approx((0.8 * 16 / 32, 0.6 * 20 / 32))
    assert entry.foreground_voxels == int(case.mask.sum())
    assert entry.source.image == "ISBI/Case00.nii.gz" and entry.source.mask_sha256
    assert cached.image_file == tmp_path / "cache" / entry.image_file
    image, mask = cached.image(), cached.mask()
    assert image.dtype == np.float16 and mask.dtype == np.uint8
    assert np.array_equal(image, volume_to_network(case.image, 32).astype(np.float16))
    assert np.array_equal(mask, mask_to_network(case.mask, 32))
    staged = write_case(case, 32, tmp_path / "again", "cases/ISBI/Case00", data, {})
    assert dataclasses.replace(staged, source=entry.source) == entry


def test_an_entry_is_immutable(one_case, tmp_path):
    data, case = one_case
    entry = write_case(case, 32, tmp_path / "staging", "cases/ISBI/Case00", data, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.num_slices = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.source.image = "elsewhere"  # type: ignore[misc]
    assert hash(entry) == hash(CacheEntry.from_json(entry.to_json()))


@pytest.mark.parametrize(
    "damage",
    [
        lambda index: index["cases"][0].pop("site"),
        lambda index: index["cases"][0].update(shape=None),
        lambda index: index.pop("cases"),
    ],
)
def test_a_damaged_index_record_is_one_clear_error(one_case, tmp_path, damage):
    data, _ = one_case
    prepare(data, tmp_path / "cache", size=32, progress=False)
    path = tmp_path / "cache" / "index.json"
    index = json.loads(path.read_text())
    damage(index)
    path.write_text(json.dumps(index))
    with pytest.raises(InputError, match=r"index\.json: damaged case record"):
        Cache(tmp_path / "cache")
    path.write_text("[1, 2]")  # JSON, but not an index
    with pytest.raises(InputError, match=r"cache version None"):
        Cache(tmp_path / "cache")
