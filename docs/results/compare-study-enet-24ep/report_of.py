"""Write the report of one comparison whose runs share a folder with others, without touching
the folder: the plan's options and networks are those given here, not the last invocation's,
and invocations recorded without their networks get them from their command lines
(``record_invocation_networks.networks_of``), in memory only. Safe while a grid runs into
the folder (it reads the runs and the plan, writes only into DEST).

    .venv/bin/python docs/results/compare-study-enet-24ep/report_of.py OUT DEST \\
        --student espnet --width 0.5 --epochs 24 --targets S1,S4 --methods none,kmm,recommended
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crossdistill.compare import read_plan, write_comparison
from crossdistill.compare.arms import CompareOptions, parse_arms, split_methods
from crossdistill.compare.pipeline import parse_versus
from crossdistill.data.sites import resolve_sites

sys.path.insert(0, str(Path(__file__).parent))
from record_invocation_networks import networks_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--student", required=True)
    parser.add_argument("--width", type=float, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--teacher", default="deeplabv3plus")
    parser.add_argument("--targets", required=True)
    parser.add_argument("--methods", required=True)
    parser.add_argument("--versus", default="")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    plan = read_plan(args.out)
    for invocation in plan.get("invocations", []):
        if "targets" not in invocation:
            invocation.update(networks_of(invocation["command"]) or {})
    options = CompareOptions(
        tuple(resolve_sites(args.targets.split(","))),
        tuple(range(args.seeds)),
        args.student,
        args.teacher,
        parse_arms(split_methods(args.methods)),
    )
    plan["options"] = options
    plan["models"] = {
        **plan["models"],
        "student": {"name": args.student, "width": args.width, "epochs": args.epochs},
    }
    plan["versus"] = [list(pair) for pair in parse_versus(split_methods(args.versus), options.arms)]
    plan["configs"] = {}  # the digests are the last invocation's, of other runs
    for path in write_comparison(args.out, plan, to=args.dest):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
