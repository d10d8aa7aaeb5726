"""The synthetic multi-site phantom: layout, headers, masks, determinism, site shifts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from crossdistill.data.acquisition import ACQUISITIONS, acquire
from crossdistill.data.anatomy import sample_anatomy
from crossdistill.data.sites import PAPER_FOLDERS
from crossdistill.data.synth import synthesize
from crossdistill.errors import CrossDistillError

SMALL = {"cases_per_site": 2, "size": 64, "slices": 8}


def digests(root: Path, pattern: str = "*/*.nii.gz") -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.glob(pattern))
    }


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    summary = synthesize(out, seed=3, **SMALL)
    assert summary["sites"] == list(PAPER_FOLDERS)
    assert summary["cases"] == 12
    return out


def load(path: Path) -> tuple[np.ndarray, nib.Nifti1Image]:
    img = nib.load(path)
    return np.asarray(img.dataobj), img


def test_layout(phantom: Path) -> None:
    assert sorted(p.name for p in phantom.iterdir() if p.is_dir()) == sorted(PAPER_FOLDERS)
    for folder in PAPER_FOLDERS:
        names = sorted(p.name for p in (phantom / folder).iterdir())
        assert names == [
            "Case00.nii.gz",
            "Case00_segmentation.nii.gz",
            "Case01.nii.gz",
            "Case01_segmentation.nii.gz",
        ]
        assert (phantom / f"montage_{folder}.png").stat().st_size > 1000
    info = json.loads((phantom / "sites.json").read_text())
    assert info["seed"] == 3 and info["size"] == 64 and info["slices"] == 8
    assert info["cases_per_site"] == 2 and info["version"]
    assert set(info["sites"]) == set(PAPER_FOLDERS)


def test_headers_and_grid(phantom: Path) -> None:
    info = json.loads((phantom / "sites.json").read_text())["sites"]
    for folder in PAPER_FOLDERS:
        for case in ("Case00", "Case01"):
            image, img = load(phantom / folder / f"{case}.nii.gz")
            mask, seg = load(phantom / folder / f"{case}_segmentation.nii.gz")
            assert image.shape == mask.shape == (64, 64, 8)
            assert image.dtype == np.int16 and mask.dtype == np.uint8
            np.testing.assert_allclose(img.affine, seg.affine)
            zooms = img.header.get_zooms()
            np.testing.assert_allclose(zooms, info[folder]["spacing_mm"], rtol=1e-5)
            centre = img.affine @ np.array([31.5, 31.5, 3.5, 1.0])
            np.testing.assert_allclose(centre[:3], 0, atol=1e-4)  # the volume is centred
            assert img.header["qform_code"] == 1 and img.header["sform_code"] == 1


def test_mask_labels_and_extent(phantom: Path) -> None:
    for folder in PAPER_FOLDERS:
        zones = folder in ("ISBI", "ISBI_1.5")
        for case in ("Case00", "Case01"):
            mask, _ = load(phantom / folder / f"{case}_segmentation.nii.gz")
            assert set(np.unique(mask)) == ({0, 1, 2} if zones else {0, 1})
            per_slice = (mask > 0).sum((0, 1))
            assert per_slice[0] == 0 and per_slice[-1] == 0, (folder, case, per_slice)
            assert per_slice[3] > 0 and per_slice[4] > 0


def test_gzip_has_no_timestamp(phantom: Path) -> None:
    raw = (phantom / "UCL" / "Case00.nii.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"


def test_same_seed_same_bytes_other_seed_differs(phantom: Path, tmp_path: Path) -> None:
    again = synthesize(tmp_path / "again", seed=3, montage=False, **SMALL)
    assert again["cases"] == 12
    assert digests(tmp_path / "again") == digests(phantom)
    assert (tmp_path / "again" / "sites.json").read_bytes() == (phantom / "sites.json").read_bytes()
    synthesize(tmp_path / "other", seed=4, sites=["UCL", "ISBI"], montage=False, **SMALL)
    other = digests(tmp_path / "other")
    base = digests(phantom)
    assert other and all(other[k] != base[k] for k in other)


def test_site_subset_is_independent(phantom: Path, tmp_path: Path) -> None:
    summary = synthesize(tmp_path / "ucl", sites=["S4"], seed=3, montage=False, **SMALL)
    assert summary["sites"] == ["UCL"]
    subset = digests(tmp_path / "ucl")
    assert set(subset) == {k for k in digests(phantom) if k.startswith("UCL/")}
    assert all(subset[k] == digests(phantom)[k] for k in subset)
    assert not (tmp_path / "ucl" / "ISBI").exists()


def test_unknown_site_and_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(CrossDistillError, match="unknown site"):
        synthesize(tmp_path / "x", sites=["S9"], **SMALL)
    with pytest.raises(CrossDistillError):
        synthesize(tmp_path / "x", cases_per_site=0)
    with pytest.raises(CrossDistillError):
        synthesize(tmp_path / "x", size=8)


def _noise_ratio(image: np.ndarray) -> float:
    """Pixel-to-pixel noise relative to the median tissue signal (robust, body only)."""
    body = image > np.percentile(image, 40)
    diff = np.abs(np.diff(image.astype(np.float64), axis=0))[body[1:] & body[:-1]]
    return float(np.median(diff) / np.median(image[body]))


def test_sites_differ(phantom: Path) -> None:
    stats = {}
    for folder in PAPER_FOLDERS:
        image, img = load(phantom / folder / "Case00.nii.gz")
        mask, _ = load(phantom / folder / "Case00_segmentation.nii.gz")
        stats[folder] = {
            "pixel": img.header.get_zooms()[0],
            "mean": float(image.mean()),
            "gland_fraction": float((mask > 0).mean()),
            "noise": _noise_ratio(image),
        }
    pixels = [s["pixel"] for s in stats.values()]
    assert len({round(p, 3) for p in pixels}) == 6  # six fields of view
    means = sorted(s["mean"] for s in stats.values())
    assert means[-1] > 4 * means[0]  # scanner units differ widely
    # the gland fills a larger part of a small-FOV image
    assert stats["ISBI_1.5"]["gland_fraction"] > 2 * stats["I2CVB"]["gland_fraction"]
    assert stats["I2CVB"]["noise"] > 1.5 * stats["ISBI"]["noise"]
    assert ACQUISITIONS["ISBI_1.5"].endorectal and ACQUISITIONS["BIDMC"].endorectal
    assert not ACQUISITIONS["ISBI"].endorectal


def test_endorectal_coil_hotspot() -> None:
    """The endorectal coil brightens the posterior gland far more than the anterior gland."""
    anatomy = sample_anatomy(np.random.default_rng(0), endorectal=True)
    quiet = replace(ACQUISITIONS["BIDMC"], noise_sigma=0.0, offset=0.0, case_gain_std=0.0)
    coil, zone, _ = acquire(anatomy, quiet, 64, 8, np.random.default_rng(1))
    plain, _, _ = acquire(anatomy, replace(quiet, erc_gain=0.0), 64, 8, np.random.default_rng(1))
    k = int(np.argmax((zone > 0).sum((0, 1))))
    ii, jj = np.nonzero(zone[:, :, k])
    gain = coil[ii, jj, k] / plain[ii, jj, k]
    posterior, anterior = gain[jj >= np.percentile(jj, 90)], gain[jj <= np.percentile(jj, 10)]
    assert posterior.mean() > 1.6 * anterior.mean()
    assert anterior.mean() > 1.0  # the coil only adds sensitivity
