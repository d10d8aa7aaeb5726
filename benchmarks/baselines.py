"""Every comparison method of the paper's Table 4 at demo size, on one target site.

    python benchmarks/baselines.py --demo runs/demo [--target S4] [--seed 0]
        [--protocol cross-site] [--methods none,ours,kd,at,emkd,mskd,saml,drdg]

Reuses the data, cache and teachers of ``crossdistill demo --out DEMO --seed SEED`` when they
are there (``teacher`` for ``cross-site``, ``loso_teacher`` for ``leave-one-site-out``; else
trains them) and trains the demo's ENet student once per method on the student's sites (the
other five): the distillation presets from the protocol's teacher, SAML and DRDG without a
teacher. Prints a table with the 3-D Dice on the target's test cases, the best validation
Dice, and the time per epoch relative to ``none``; writes ``baselines-PROTOCOL.json`` into
the runs folder. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crossdistill.data.sites import display_name, resolve_site
from demo_runs import TEACHER_KEY, epoch_metrics, prepare_bench, student_run, teacher_run

KD = ("none", "ours", "kd", "at", "emkd", "mskd")
DG = ("saml", "drdg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"))
    parser.add_argument("--target", default="S4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocol", choices=sorted(TEACHER_KEY), default="cross-site")
    parser.add_argument("--methods", default=",".join(KD + DG))
    args = parser.parse_args()
    target = resolve_site(args.target)
    cache = prepare_bench(args.demo, quick=False)
    runs = args.demo / "runs" / f"{target}-seed{args.seed}"
    teacher = teacher_run(cache, runs, target, args.seed, args.protocol, quick=False)
    rows = {}
    for method in args.methods.split(","):
        name = f"baseline-{args.protocol}-{method}"
        summary = student_run(
            cache,
            runs,
            target,
            args.seed,
            False,
            name,
            args.protocol,
            preset=method if method not in DG else "none",
            teacher=teacher if method not in (*DG, "none") else None,
            method=method if method in DG else "supervised",
        )
        metrics = epoch_metrics(runs / name)
        rows[method] = {
            "dice": summary["dice"]["mean"],
            "std": summary["dice"]["std"],
            "val_dice": summary["val_dice"],
            "seconds_per_epoch": metrics[-1]["time_s"] / len(metrics),
            "reliability": summary.get("teacher_reliability", {}).get("dice", {}).get("mean"),
        }
        print(json.dumps({"method": method, **rows[method]}), flush=True)
    base = rows.get("none", {}).get("seconds_per_epoch")
    print(f"\ntarget {display_name(target)}, seed {args.seed}, protocol {args.protocol}\n")
    print("| method | Dice (test) | val Dice | s / epoch | × none |")
    print("|---|---|---|---|---|")
    for method, r in rows.items():
        rel = f"{r['seconds_per_epoch'] / base:.2f}" if base else "-"
        print(
            f"| {method} | {r['dice']:.3f} ± {r['std']:.3f} | {r['val_dice']:.3f} | "
            f"{r['seconds_per_epoch']:.1f} | {rel} |"
        )
    (runs / f"baselines-{args.protocol}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
