"""How strong is the shift between the synthetic sites? ENet trained on the other sites (w/o)
against ENet trained on the target site itself (in-domain), for each target.

    python benchmarks/site_shift.py [--cases-per-site 20] [--targets S1,S4] [--seeds 0] [--out DIR]

Uses the demo's ENet settings (width 1/2, 300 steps of 8 slices at 128²). A gap
(in-domain − w/o) of at least 0.05 Dice means that the target's acquisition differs enough
from the other sites to test cross-site methods. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from crossdistill.config import load_config
from crossdistill.data.prepare import prepare
from crossdistill.data.sites import resolve_sites
from crossdistill.data.synth import synthesize
from crossdistill.demo import PLAN_BY_KEY, run_config
from demo_runs import train_or_reuse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases-per-site", type=int, default=20)
    parser.add_argument("--targets", default="S1,S2,S3,S4,S5,S6")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", type=Path, default=Path("runs/site-shift"))
    args = parser.parse_args()
    data, cache = args.out / "data", args.out / "cache"
    if not (data / "sites.json").is_file():
        synthesize(data, cases_per_site=args.cases_per_site, montage=False)
    prepare(data, cache, size=128, progress=False)
    rows = []
    for target in resolve_sites(args.targets.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            runs = args.out / "runs" / f"{target}-seed{seed}"
            base = load_config(
                "demo",
                [f"data.cache={cache}", f"output={runs}", f"seed={seed}", f"target={target}"],
            )
            dice = {}
            for key in ("student_wo", "student_in_domain"):
                summary = train_or_reuse(run_config(base, PLAN_BY_KEY[key], runs, quick=False))
                dice[key] = summary["dice"]["mean"]
            row = {
                "target": target,
                "seed": seed,
                **dice,
                "gap": dice["student_in_domain"] - dice["student_wo"],
            }
            rows.append(row)
            print(
                json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
                flush=True,
            )
    gaps = [r["gap"] for r in rows]
    print(f"mean gap {statistics.mean(gaps):+.3f} over {len(gaps)} target-seed pairs")


if __name__ == "__main__":
    main()
