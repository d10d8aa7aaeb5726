"""kill -9 at seeded random points of a training run (after optimizer steps and in the middle
of checkpoint writes); ``--resume`` ends with exactly the uninterrupted run's tensors.

The work is done by ``tests/robustness/faults/kill_resume.py`` (also usable on its own);
this test runs it in a fresh process (it forks the killed runs) and checks its report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("kill_resume.py")
KILLS = 8


@pytest.mark.faults
def test_kill_nine_then_resume_ends_with_the_same_tensors(engine_cache, tmp_path):
    args = ["--cache", engine_cache, "--work", tmp_path, "--kills", KILLS, "--seed", 0]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.stdout.strip(), proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and report["identical"], report["failures"]
    assert report["kills"] == KILLS
    points = [kill["point"] for kill in report["points"]]
    assert points.count("train-step") == points.count("checkpoint-write") == KILLS // 2
    cuts = [kill["cut"] for kill in report["points"] if "cut" in kill]
    assert len(cuts) == KILLS // 2  # each cut write left its temporary file, not the final name
    assert report["tensors_compared"] > 100
