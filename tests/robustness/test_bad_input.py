"""Every bad input to ``prepare``: one line on stderr naming the file, exit 2, no traceback,
input folder unchanged, nothing half-written; ``--skip-invalid`` prepares the rest."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import tree_digest, write_case


def _save(path: Path, array: np.ndarray, affine=None) -> None:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)


def _no_mask(root):
    (root / "UCL" / "Case01_segmentation.nii.gz").unlink()
    return "Case01.nii.gz"


def _no_image(root):
    (root / "UCL" / "Case01.nii.gz").unlink()
    return "Case01_segmentation.nii.gz"


def _grid_shape(root):
    _save(root / "UCL" / "Case01_segmentation.nii.gz", np.zeros((30, 28, 6), np.uint8))
    return "Case01_segmentation.nii.gz"


def _grid_affine(root):
    image = nib.load(root / "UCL" / "Case01.nii.gz")
    _save(
        root / "UCL" / "Case01_segmentation.nii.gz",
        np.zeros(image.shape, np.uint8),
        np.diag([1.0, 1.0, 1.0, 1]),
    )
    return "Case01_segmentation.nii.gz"


def _truncated(root):
    path = root / "UCL" / "Case01.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "Case01.nii.gz"


def _garbage(root):
    (root / "UCL" / "Case01.nii.gz").write_bytes(gzip.compress(b"not a nifti header" * 30))
    return "Case01.nii.gz"


def _two_d(root):
    _save(root / "UCL" / "Case01.nii.gz", np.zeros((32, 28), np.int16))
    return "Case01.nii.gz"


def _four_d(root):
    _save(root / "UCL" / "Case01.nii.gz", np.zeros((32, 28, 6, 2), np.int16))
    return "Case01.nii.gz"


def _nan(root):
    image = nib.load(root / "UCL" / "Case01.nii.gz")
    data = image.get_fdata().astype(np.float32)
    data[3, 3, 3] = np.nan
    data[4, 4, 4] = np.inf
    _save(root / "UCL" / "Case01.nii.gz", data, image.affine)
    return "Case01.nii.gz"


def _fractional_labels(root):
    mask = nib.load(root / "UCL" / "Case01_segmentation.nii.gz")
    data = mask.get_fdata().astype(np.float32) * 0.5
    _save(root / "UCL" / "Case01_segmentation.nii.gz", data, mask.affine)
    return "Case01_segmentation.nii.gz"


def _negative_labels(root):
    mask = nib.load(root / "UCL" / "Case01_segmentation.nii.gz")
    data = np.asarray(mask.dataobj).astype(np.int16)
    data[0, 0, 0] = -1
    _save(root / "UCL" / "Case01_segmentation.nii.gz", data, mask.affine)
    return "Case01_segmentation.nii.gz"


def _broken_link(root):
    path = root / "UCL" / "Case01.nii.gz"
    path.unlink()
    path.symlink_to(root / "nowhere.nii.gz")
    return "Case01.nii.gz"


def _empty_site(root):
    (root / "EMPTY").mkdir()
    (root / "EMPTY" / "notes.txt").write_text("no cases here")
    return "EMPTY"


CASE_ERRORS = {
    "image without mask": (_no_mask, "without mask"),
    "mask without image": (_no_image, "without image"),
    "mask shape differs": (_grid_shape, "grid"),
    "mask affine differs": (_grid_affine, "grid"),
    "truncated gzip": (_truncated, "cannot read"),
    "corrupt file": (_garbage, "cannot read"),
    "2-D volume": (_two_d, "3-D"),
    "4-D volume": (_four_d, "3-D"),
    "NaN and inf voxels": (_nan, "NaN or inf"),
    "non-integral labels": (_fractional_labels, "integers"),
    "negative labels": (_negative_labels, "non-negative"),
    "unreadable (broken link)": (_broken_link, "broken symbolic link"),
    "site without cases": (_empty_site, "no cases"),
}


def _assert_one_line_error(code, err, name, reason):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert name in lines[0] and reason in lines[0], lines[0]


@pytest.mark.parametrize("label", list(CASE_ERRORS))
def test_bad_case_stops_with_one_line(label, tiny_sites, tmp_path, run_cli):
    setup, reason = CASE_ERRORS[label]
    name = setup(tiny_sites)
    before = tree_digest(tiny_sites)
    out = tmp_path / "cache"
    code, _, err = run_cli("prepare", tiny_sites, "--out", out, "--size", 32)
    _assert_one_line_error(code, err, name, reason)
    assert tree_digest(tiny_sites) == before
    assert not (out / "index.json").exists()
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("label", list(CASE_ERRORS))
def test_skip_invalid_prepares_the_rest(label, tiny_sites, tmp_path, run_cli):
    setup, _ = CASE_ERRORS[label]
    name = setup(tiny_sites)
    before = tree_digest(tiny_sites)
    out = tmp_path / "cache"
    code, stdout, err = run_cli("prepare", tiny_sites, "--out", out, "--size", 32, "--skip-invalid")
    assert code == 0, err
    assert "Traceback" not in err
    assert any(line.startswith("skipped") and name in line for line in err.splitlines()), err
    assert "1 skipped" in stdout
    index = json.loads((out / "index.json").read_text())
    assert len(index["cases"]) >= 7 and index["skipped"]
    assert tree_digest(tiny_sites) == before


def test_empty_mask_is_allowed_and_counted(tiny_sites, tmp_path, run_cli):
    mask = nib.load(tiny_sites / "UCL" / "Case02_segmentation.nii.gz")
    _save(
        tiny_sites / "UCL" / "Case02_segmentation.nii.gz",
        np.zeros(mask.shape, np.uint8),
        mask.affine,
    )
    code, stdout, err = run_cli("prepare", tiny_sites, "--out", tmp_path / "cache", "--size", 32)
    assert code == 0, err
    assert "1 empty masks" in stdout


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "no site folders"),
    ],
)
def test_data_folder_errors(make, reason, tmp_path, run_cli):
    data = make(tmp_path)
    code, _, err = run_cli("prepare", data, "--out", tmp_path / "cache")
    _assert_one_line_error(code, err, str(data), reason)


def test_case_files_given_directly(tmp_path, run_cli):
    write_case(tmp_path / "UCL", "Case00")
    code, _, err = run_cli("prepare", tmp_path / "UCL", "--out", tmp_path / "cache")
    _assert_one_line_error(code, err, "UCL", "folder above")


def test_output_inside_input_is_refused(tiny_sites, run_cli):
    before = tree_digest(tiny_sites)
    code, _, err = run_cli("prepare", tiny_sites, "--out", tiny_sites / "cache")
    _assert_one_line_error(code, err, "cache", "inside the input folder")
    assert tree_digest(tiny_sites) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tiny_sites, tmp_path, run_cli):
    (tiny_sites / "UCL" / "Case01.nii.gz").chmod(0)
    code, _, err = run_cli("prepare", tiny_sites, "--out", tmp_path / "cache")
    _assert_one_line_error(code, err, "Case01.nii.gz", "permission denied")


def test_real_process_exit_code_and_single_line(tiny_sites, tmp_path):
    _truncated(tiny_sites)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossdistill.cli",
            "prepare",
            str(tiny_sites),
            "--out",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _assert_one_line_error(proc.returncode, proc.stderr, "Case01.nii.gz", "cannot read")
