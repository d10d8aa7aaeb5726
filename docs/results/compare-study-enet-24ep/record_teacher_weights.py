"""Add ``teacher_weights_sha256`` to the summaries of runs distilled before summaries had it.

A run's teacher-cache entry names, in its manifest, the SHA-256 of the teacher checkpoint
*file* the run was distilled from (the cache key of releases before the weights digest). When
that teacher file is still in place and has that SHA-256, the run was distilled from exactly
these weights, and their digest (``engine.loading.network_sha256``) is written into the run's
summary; a grid then keeps the run when the teacher is trained again to the same weights.
Runs whose teacher file is gone or changed are left as they are (they train again).

    .venv/bin/python docs/results/compare-study-enet-24ep/record_teacher_weights.py RUNS_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from crossdistill.data.io import file_sha256
from crossdistill.engine.loading import network_sha256
from crossdistill.engine.run_folder import write_json


def record(summary_file: Path) -> str:
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    if "teacher" not in summary or "teacher_weights_sha256" in summary:
        return "nothing to do"
    cache = summary.get("teacher_cache")
    manifest = Path(cache["path"]) / "manifest.json" if cache else None
    if manifest is None or not manifest.is_file():
        return "no teacher-cache manifest"
    key = json.loads(manifest.read_text(encoding="utf-8"))["key"]
    teacher = Path(summary["teacher"])
    if not teacher.is_file() or file_sha256(teacher) != key.get("teacher_sha256"):
        return "teacher file gone or changed"
    summary["teacher_weights_sha256"] = network_sha256(teacher)
    write_json(summary_file, summary)
    return "recorded"


if __name__ == "__main__":
    for file in sorted(Path(sys.argv[1]).glob("*/seed*/*-from-*/summary.json")):
        print(f"{record(file):<28} {file.parent.relative_to(sys.argv[1])}")
