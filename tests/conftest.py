"""Shared fixtures: tiny multi-site folders written on the fly, and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from crossdistill import cli
from crossdistill.config import RunConfig, load_config
from crossdistill.data.prepare import prepare

# Property tests are deterministic: examples from a fixed seed, no example database.
settings.register_profile(
    "crossdistill",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("crossdistill")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs one worker per core) each worker, and every
    process its tests start, computes on one thread instead of oversubscribing the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def write_case(
    site_dir: Path, case_id: str, shape=(32, 28, 6), seed=0, spacing=(0.7, 0.7, 3.0), labels=1
) -> None:
    """A noisy image with a bright ellipsoid and its mask (``labels`` = value inside)."""
    rng = np.random.default_rng(seed)
    site_dir.mkdir(parents=True, exist_ok=True)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    inside = (x / 0.5) ** 2 + (y / 0.4) ** 2 + (z / 0.8) ** 2 <= 1
    image = (200 + 300 * inside + rng.normal(0, 20, shape)).astype(np.int16)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 2.0]
    nib.save(nib.Nifti1Image(image, affine), site_dir / f"{case_id}.nii.gz")
    nib.save(
        nib.Nifti1Image((inside * labels).astype(np.uint8), affine),
        site_dir / f"{case_id}_segmentation.nii.gz",
    )


@pytest.fixture
def tiny_sites(tmp_path: Path) -> Path:
    """Two sites (``UCL`` and ``SITEX``) with four cases each."""
    root = tmp_path / "data"
    for s, site in enumerate(["UCL", "SITEX"]):
        for c in range(4):
            write_case(root / site, f"Case{c:02d}", seed=10 * s + c)
    return root


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory) -> Path:
    """A prepared 32² cache of three sites (UCL, HK, BIDMC) with five cases each."""
    root = tmp_path_factory.mktemp("engine")
    for s, site in enumerate(["UCL", "HK", "BIDMC"]):
        for c in range(5):
            write_case(root / "data" / site, f"Case{c:02d}", shape=(48, 48, 8), seed=10 * s + c)
    return prepare(root / "data", root / "cache", size=32, progress=False).cache


#: ``--set`` overrides that make every run of a grid a few seconds long on the CPU.
TINY_OVERRIDES = (
    "model.width=0.25",
    "train.epochs=1",
    "train.batch_size=4",
    "train.steps_per_epoch=2",
    "train.schedule.name=constant",
)


def tiny_run_config(cache: Path, out: Path, name: str, *extra: str) -> RunConfig:
    """A CPU run of a width-1/4 ERFNet, 3 epochs of 6 steps, student of the cross-site
    protocol with target UCL (so it trains on HK and BIDMC); ``extra`` overrides."""
    return load_config(
        None,
        [
            f"data.cache={cache}",
            f"output={out}",
            f"name={name}",
            "device=cpu",
            "model.name=erfnet",
            "model.width=0.25",
            "train.epochs=3",
            "train.batch_size=8",
            "train.steps_per_epoch=6",
            "train.schedule.name=constant",
            "train.optimizer.lr=0.01",
            "protocol=cross-site",
            "target=S4",
            *extra,
        ],
    )


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its SHA-256 (to prove a folder was not written)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``crossdistill ARGS`` in-process through the console entry point.

    Returns ``(exit_code, stdout, stderr)``.
    """

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["crossdistill", *map(str, args)])
        code = 0
        try:
            cli.main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run
