"""Which of SAML's shape terms makes the demo's student collapse (issue: SAML's Dice 0.03).

    python benchmarks/saml_ablation.py --out runs/saml [--target S4] [--seeds 0,1,2]
        [--variants saml,no_compact,no_smooth,no_shape] [--device cuda] [--jobs 4]

Trains the demo's ENet student with ``--method saml`` on the five source sites of the
target, once per variant (λ_c or λ_s set to 0) and seed, logging each weighted term's
gradient norm on the student's parameters every 5 steps. Appends one JSON line per run to
``OUT/saml.jsonl`` (test and validation Dice, per-epoch raw terms and gradient norms) and
prints a table of the means over seeds. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from pathlib import Path

import torch

from crossdistill.data.sites import resolve_site
from demo_runs import epoch_metrics, prepare_bench, student_run

VARIANTS = {
    "saml": {},
    "no_compact": {"compact_weight": 0.0},
    "no_smooth": {"smooth_weight": 0.0},
    "no_shape": {"compact_weight": 0.0, "smooth_weight": 0.0},
    "no_warmup": {"shape_warmup_steps": 0},
}


def _run(job: tuple) -> dict:
    args, cache, target, seed, variant, deadline = job
    if time.time() > deadline:
        return {}
    torch.set_num_threads(max(1, args.threads))
    runs = args.out / "runs" / f"{target}-seed{seed}"
    name = f"saml-{variant}"
    train = {"method_options": VARIANTS[variant], "term_grad_every": 5}
    summary = student_run(
        cache, runs, target, seed, args.quick, name, "cross-site",
        method="saml", train=train, device=args.device,
    )  # fmt: skip
    metrics = epoch_metrics(runs / name)
    terms = sorted({k[len("grad/") :] for m in metrics for k in m if k.startswith("grad/")})
    return {
        "target": target,
        "seed": seed,
        "variant": variant,
        "dice": summary["dice"]["mean"],
        "val_dice": summary["val_dice"],
        "raw": {t: [m.get(f"loss/raw/{t}") for m in metrics] for t in terms},
        "grad": {t: [m.get(f"grad/{t}") for m in metrics] for t in terms},
        "val_curve": [m.get("val_dice") for m in metrics],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/saml"))
    parser.add_argument("--target", default="S4")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=0, help="start no run after N seconds")
    parser.add_argument("--quick", action="store_true", help="the 64² demo (a smoke test)")
    args = parser.parse_args()
    cache = prepare_bench(args.out, quick=args.quick)
    target = resolve_site(args.target)
    jobs = [
        (args, cache, target, seed, variant, time.time() + (args.budget or math.inf))
        for seed in map(int, args.seeds.split(","))
        for variant in args.variants.split(",")
    ]
    rows = []
    with multiprocessing.get_context("spawn").Pool(max(1, args.jobs)) as pool:
        for row in pool.imap_unordered(_run, jobs):
            if not row:
                continue
            rows.append(row)
            with open(args.out / "saml.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps({k: row[k] for k in ("seed", "variant", "dice", "val_dice")}))
    print("\n| variant | test Dice (mean over seeds) | val Dice | ‖∇θ‖ first → last epoch |")
    print("|---|---|---|---|")
    for variant in args.variants.split(","):
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        grads = "; ".join(
            f"{t} {statistics.mean(r['grad'][t][0] or 0 for r in mine):.3g} → "
            f"{statistics.mean(r['grad'][t][-1] or 0 for r in mine):.3g}"
            for t in mine[0]["grad"]
        )
        dice = statistics.mean(r["dice"] for r in mine)
        val = statistics.mean(r["val_dice"] for r in mine)
        print(f"| {variant} | {dice:.3f} | {val:.3f} | {grads} |")


if __name__ == "__main__":
    main()
