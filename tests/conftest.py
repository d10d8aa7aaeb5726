"""Shared fixtures: tiny multi-site folders written on the fly, and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from crossdistill import cli


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
