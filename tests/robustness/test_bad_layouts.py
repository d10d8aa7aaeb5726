"""``prepare`` on nnU-Net and Decathlon datasets from the command line: a case without a
site, a channel dataset.json does not name, a label outside ``--labels`` each end in one
line naming the file, exit 2, no traceback, the input unchanged and no cache written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import tree_digest
from layout_folders import write_decathlon, write_nnunet, write_site_map

CASES = ["prostate_00", "prostate_01", "prostate_02"]


def _assert_one_line_error(code, err, names, reason):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("crossdistill: error: "), lines[0]
    assert all(n in lines[0] for n in names) and reason in lines[0], lines[0]


def _missing_from_map(root):
    write_site_map(root / "sites.csv", {"prostate_00": "UCL", "prostate_01": "HK"})
    return ["--sites-from", root / "sites.csv"], [str(root / "sites.csv"), "prostate_02"]


def _unknown_channel(root):
    return ["--channel", "DWI"], [str(root / "data" / "dataset.json"), "'DWI'"]


def _label_outside(root):
    return ["--labels", "1"], ["labelsTr/prostate_00.nii.gz", "label 2"]


ERRORS = {
    "case missing from the site map": (_missing_from_map, "has no row in the site map"),
    "channel not in dataset.json": (_unknown_channel, "has no channel named"),
    "label outside --labels": (_label_outside, "neither background (0) nor a prostate label"),
}


@pytest.mark.parametrize("write", [write_decathlon, write_nnunet], ids=["decathlon", "nnunet"])
@pytest.mark.parametrize("label", list(ERRORS))
def test_layout_errors_are_one_line(label, write, tmp_path, run_cli):
    setup, reason = ERRORS[label]
    write(tmp_path / "data", CASES)
    args, names = setup(tmp_path)
    before = tree_digest(tmp_path / "data")
    out = tmp_path / "cache"
    code, _, err = run_cli("prepare", tmp_path / "data", "--out", out, "--size", 32, *args)
    _assert_one_line_error(code, err, names, reason)
    assert tree_digest(tmp_path / "data") == before
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--labels", "1,two"], "--labels takes the prostate label values"),
        (["--layout", "msd"], "unknown layout 'msd'"),
        (["--layout", "release", "--channel", "T2"], "apply to nnU-Net and Decathlon"),
    ],
)
def test_option_errors_are_one_line(args, reason, tmp_path, run_cli):
    write_decathlon(tmp_path / "data", CASES[:1])
    code, _, err = run_cli("prepare", tmp_path / "data", "--out", tmp_path / "c", *args)
    _assert_one_line_error(code, err, [], reason)


def test_real_process(tmp_path):
    """A Decathlon dataset through the console entry point (one process: each one imports
    torch; the errors above go through the same ``cli.main``): the sites of the map, and
    notes on stderr."""
    data = write_decathlon(tmp_path / "Task05_Prostate", CASES)
    sites = write_site_map(tmp_path / "s.csv", dict(zip(CASES, ["UCL", "UCL", "HK"], strict=True)))
    args = [data, "--out", tmp_path / "cache", "--size", 32, "--sites-from", sites]
    proc = subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", "prepare", *map(str, args), "--labels", "1,2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 cases" in proc.stdout and "sites: HK (1), UCL (2)" in proc.stdout
    assert "note: " in proc.stderr and "channel 0 'T2'" in proc.stderr
    assert "Traceback" not in proc.stderr
