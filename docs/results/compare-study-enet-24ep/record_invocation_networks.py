"""Add ``student``, ``teacher`` and ``targets`` to the invocations of a comparison plan
recorded before invocations had them, read from each invocation's own command line.

A report lists only the invocations of its student and teacher at its targets
(``compare.header.concerns``); an invocation without those keys counts for every report,
so that, in a folder shared by several students, an ESPNet report would list the ENet
invocations and their wall time. The keys are taken from the command's ``--student``,
``--teacher`` and ``--targets`` (their defaults where absent); an invocation whose command is
not a ``crossdistill compare`` command line is left as it is.

    .venv/bin/python docs/results/compare-study-enet-24ep/record_invocation_networks.py OUT
"""

from __future__ import annotations

import json
import shlex
import sys
from itertools import pairwise
from pathlib import Path

from crossdistill.data.sites import PAPER_FOLDERS, resolve_sites
from crossdistill.engine.run_folder import write_json
from crossdistill.models.registry import canonical_name

DEFAULTS = {"--student": "enet", "--teacher": "deeplabv3plus", "--targets": None}


def networks_of(command: str) -> dict | None:
    """``{"student", "teacher", "targets"}`` of a ``crossdistill compare`` command line."""
    words = shlex.split(command)
    if words[:2] != ["crossdistill", "compare"]:
        return None
    given = dict(DEFAULTS)
    for word, value in pairwise(words):
        if word in given:
            given[word] = value
    for word in words:
        name, _, value = word.partition("=")
        if name in given and value:
            given[name] = value
    targets = given["--targets"].split(",") if given["--targets"] else list(PAPER_FOLDERS)
    return {
        "student": canonical_name(given["--student"]),
        "teacher": canonical_name(given["--teacher"]),
        "targets": resolve_sites(targets),
    }


def main(out: Path) -> None:
    plan_file = out / "compare.plan.json"
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    added = 0
    for invocation in plan.get("invocations", []):
        if "targets" in invocation:
            continue
        found = networks_of(invocation["command"])
        if found is not None:
            invocation.update(found)
            added += 1
    write_json(plan_file, plan)
    print(f"{plan_file}: networks and targets added to {added} invocation(s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
