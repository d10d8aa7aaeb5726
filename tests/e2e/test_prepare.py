"""prepare: the cache's contents, splits, reuse and rebuild, and that input is never written."""

from __future__ import annotations

import json

import numpy as np

from conftest import tree_digest, write_case
from crossdistill.data.cache import Cache
from crossdistill.data.prepare import prepare


def test_cache_contents(tiny_sites, tmp_path):
    before = tree_digest(tiny_sites)
    result = prepare(tiny_sites, tmp_path / "cache", size=32, progress=False)
    assert not result.reused
    assert result.sites == {"SITEX": 4, "UCL": 4}
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert set(index["sites"]) == {"UCL", "SITEX"}
    assert index["sites"]["UCL"]["label"] == "S4"
    cache = Cache(tmp_path / "cache")
    for case in cache.cases():
        image, mask = case.image(), case.mask()
        assert image.dtype == np.float16 and mask.dtype == np.uint8
        assert image.shape == mask.shape == (6, 32, 32)
        assert set(np.unique(mask)) <= {0, 1}
        assert abs(float(image.astype(np.float32).mean())) < 0.2  # z-scored
        assert case.entry.foreground[0] == 0 and case.entry.foreground[3] == 1
        assert case.entry.source.image_sha256
    assert tree_digest(tiny_sites) == before


def test_zone_labels_become_binary(tmp_path):
    write_case(tmp_path / "data" / "ISBI", "Case00", labels=2)
    write_case(tmp_path / "data" / "ISBI", "Case01", labels=1)
    prepare(tmp_path / "data", tmp_path / "cache", size=32, progress=False)
    case = Cache(tmp_path / "cache").cases()[0]
    assert case.entry.labels == (0, 2)
    assert set(np.unique(case.mask())) == {0, 1}


def test_splits_disjoint_seeded_and_stable(tiny_sites, tmp_path):
    prepare(tiny_sites, tmp_path / "a", size=32, progress=False)
    prepare(tiny_sites, tmp_path / "b", size=32, progress=False)
    a = json.loads((tmp_path / "a" / "splits.json").read_text())
    b = json.loads((tmp_path / "b" / "splits.json").read_text())
    assert a == b
    for parts in a["sites"].values():
        train, val, test = (set(parts[k]) for k in ("train", "val", "test"))
        assert not (train & val or train & test or val & test)
        assert len(test) >= 1 and len(train) >= 1
        assert len(train | val | test) == 4
    prepare(tiny_sites, tmp_path / "c", size=32, seed=7, progress=False)
    c = json.loads((tmp_path / "c" / "splits.json").read_text())
    assert c["seed"] == 7


def test_reuse_and_rebuild(tiny_sites, tmp_path):
    out = tmp_path / "cache"
    first = prepare(tiny_sites, out, size=32, progress=False)
    stamp = (out / "index.json").stat().st_mtime_ns
    again = prepare(tiny_sites, out, size=32, progress=False)
    assert again.reused and not first.reused
    assert (out / "index.json").stat().st_mtime_ns == stamp
    write_case(tiny_sites / "UCL", "Case01", seed=99)  # same name, new content
    rebuilt = prepare(tiny_sites, out, size=32, progress=False)
    assert not rebuilt.reused
    other_size = prepare(tiny_sites, out, size=64, progress=False)
    assert not other_size.reused and Cache(out).size == 64
    assert not any(p.name.startswith(".staging") for p in out.iterdir())


def test_site_names_resolve_in_cache(tiny_sites, tmp_path):
    prepare(tiny_sites, tmp_path / "cache", size=32, progress=False)
    cache = Cache(tmp_path / "cache")
    assert {c.site for c in cache.cases(["S4"])} == {"UCL"}
    assert {c.site for c in cache.cases(["sitex"])} == {"SITEX"}
    assert len(cache.cases(["UCL"], "test")) >= 1
