"""Atomic writes: the final name shows the old file or the new one, never a part."""

from __future__ import annotations

import json

import pytest

from crossdistill.atomic import replaced_atomically, write_text_atomic
from crossdistill.engine.run_folder import write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="killed"), replaced_atomically(path) as tmp:
        tmp.write_text("half of the ne")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "mask.nii.gz"
    with replaced_atomically(path, ".nii.gz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz") and tmp.name[0] == "."
        tmp.write_bytes(b"new")
    write_text_atomic(tmp_path / "note.txt", "été")
    write_json(tmp_path / "summary.json", {"dice": float("nan")})
    assert path.read_bytes() == b"new" and (tmp_path / "note.txt").read_text("utf-8") == "été"
    assert json.loads((tmp_path / "summary.json").read_text())["dice"] != 0  # NaN kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.nii.gz", "note.txt", "summary.json"]
