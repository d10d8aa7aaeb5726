"""The distillation study: which KD term hurts, why, and which option repairs it.

    python benchmarks/distill_study.py --out runs/study [--quick] [--targets S1,S4,S5]
        [--seeds 0,1,2] [--protocols cross-site,leave-one-site-out] [--variants none,ours,...]
    python benchmarks/distill_study.py --out runs/study --quick --report docs/figures
    python benchmarks/distill_study.py --out runs/study --device cuda --jobs 8 --budget 300

For every target, seed and protocol it trains the demo's teacher and the demo's ENet student
once per variant (the same data, splits and schedule; ``--quick`` = the 64² demo), and
appends one JSON line per student to ``OUT/study.jsonl``: test and validation Dice, the
teacher's reliability, each term's raw value and gradient norm on the student's parameters
in the first and last epoch. Finished runs are reused. ``--report DIR`` prints the tables
(mean over seeds) and draws the figures from ``study.jsonl``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from crossdistill.data.sites import display_name, resolve_site
from demo_runs import epoch_metrics, prepare_bench, student_run, teacher_run

_PAIR = ("aam", "lm")


def _on(terms: tuple[str, ...], **options: Any) -> dict[str, dict[str, Any]]:
    return {t: dict(options) for t in terms}


#: variant -> (preset, term overrides); "ours" is the paper preset, untouched.
VARIANTS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "none": ("none", {}),
    "ours": ("ours", {}),
    "lm": ("lm", {}),
    "aam": ("aam", {}),
    "kmm": ("kmm", {}),
    "ours+gt_gate": ("ours", _on(_PAIR, gt_gate=True)),
    "ours+conf0.9": ("ours", _on(_PAIR, min_confidence=0.9)),
    "ours+tdice0.7": ("ours", _on(_PAIR, min_teacher_dice=0.7)),
    "ours+balance": ("ours", _on(("aam", "kmm", "lm"), balance_steps=20)),
    "ours+warmup": ("ours", _on(("aam", "kmm", "lm"), warmup_steps=60)),
    "kmm+lm+gt_gate": ("kmm+lm", {"lm": {"gt_gate": True}}),
    "kmm+lm+tdice0.7": ("kmm+lm", {"lm": {"min_teacher_dice": 0.7}}),
    "recommended": ("recommended", {}),
}
GRADS_FOR = {"ours", "lm", "aam", "kmm"}  # variants whose term gradients are logged


def _row(summary: dict, run: Path, **key: Any) -> dict:
    metrics = epoch_metrics(run)
    first, last = metrics[0], metrics[-1]
    terms = [k[len("loss/raw/") :] for k in last if k.startswith("loss/raw/")]
    return {
        **key,
        "dice": summary["dice"]["mean"],
        "val_dice": summary["val_dice"],
        "reliability": summary.get("teacher_reliability", {}).get("dice", {}).get("mean"),
        "raw": {t: [first.get(f"loss/raw/{t}"), last.get(f"loss/raw/{t}")] for t in terms},
        "grad": {t: [m.get(f"grad/{t}") for m in metrics] for t in terms},
        "seconds": summary["seconds"],
    }


def run_study(args: argparse.Namespace) -> None:
    """Train every (target, seed) group; ``--jobs N`` runs N groups in parallel processes."""
    cache = prepare_bench(args.out, args.quick)
    log = args.out / "study.jsonl"
    done = {
        (r["target"], r["seed"], r["protocol"], r["variant"])
        for r in map(json.loads, log.read_text().splitlines() if log.is_file() else [])
    }
    groups = [
        (args, cache, target, seed, protocol, done)
        for seed in map(int, args.seeds.split(","))
        for target in [resolve_site(t) for t in args.targets.split(",")]
        for protocol in args.protocols.split(",")
    ]
    deadline = time.time() + args.budget if args.budget else math.inf
    groups = [(*g, deadline) for g in groups]
    if args.jobs > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.jobs) as pool:
            for rows in pool.imap_unordered(_run_group, groups):
                _log_rows(log, rows)
    else:
        for group in groups:
            _log_rows(log, _run_group(group))


def _log_rows(log: Path, rows: list[dict]) -> None:
    with open(log, "a") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
            print(json.dumps({k: row[k] for k in (*_KEYS, "dice", "val_dice")}), flush=True)


def _run_group(group: tuple) -> list[dict]:
    """Teacher and students of one (target, seed, protocol); none starts after the deadline.

    The student without a teacher is the same run under every protocol: the group of the
    first protocol trains it and logs its row once per protocol.
    """
    args, cache, target, seed, protocol, done, deadline = group
    if args.jobs > 1:
        torch.set_num_threads(max(1, args.threads))
    runs = args.out / "runs" / f"{target}-seed{seed}"
    protocols = args.protocols.split(",")
    rows: list[dict] = []
    if time.time() > deadline:
        return rows
    teacher = teacher_run(cache, runs, target, seed, protocol, args.quick, args.device)
    for variant in args.variants.split(","):
        key = (target, seed, protocol, variant)
        if key in done or time.time() > deadline:
            continue
        if variant == "none" and protocol != protocols[0]:
            continue
        preset, terms = VARIANTS[variant]
        name = "none" if variant == "none" else f"{protocol}-{variant}"
        summary = student_run(
            cache,
            runs,
            target,
            seed,
            args.quick,
            name,
            protocol,
            preset=preset,
            terms=terms,
            teacher=None if variant == "none" else teacher,
            train={"term_grad_every": 5} if variant in GRADS_FOR else None,
            device=args.device,
        )
        row = _row(summary, runs / name, **dict(zip(_KEYS, key, strict=True)))
        rows.append(row)
        if variant == "none":
            rows += [
                {**row, "protocol": p} for p in protocols[1:] if (*key[:2], p, "none") not in done
            ]
    return rows


_KEYS = ("target", "seed", "protocol", "variant")


def _mean(values: list[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def report(args: argparse.Namespace) -> None:
    rows = [json.loads(x) for x in (args.out / "study.jsonl").read_text().splitlines()]
    out = args.report
    out.mkdir(parents=True, exist_ok=True)
    by: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        by[(r["protocol"], r["variant"], r["target"])][r["seed"]] = r
    protocols = sorted({r["protocol"] for r in rows})
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    targets = sorted({r["target"] for r in rows}, key=lambda t: display_name(t))
    for protocol in protocols:
        print(f"\n### {protocol}: test Dice, mean over seeds (val Dice in brackets)\n")
        print("| variant | " + " | ".join(display_name(t) for t in targets) + " | mean | wins |")
        print("|---" * (len(targets) + 3) + "|")
        for variant in variants:
            cells, means, wins = [], [], 0
            for t in targets:
                runs = by.get((protocol, variant, t), {})
                base = by.get((protocol, "none", t), {})
                if not runs:
                    cells.append("–")
                    continue
                d = _mean([r["dice"] for r in runs.values()])
                v = _mean([r["val_dice"] for r in runs.values()])
                b = _mean([r["dice"] for r in base.values()])
                wins += int(variant != "none" and d > b)
                means.append(d)
                cells.append(f"{d:.3f} ({v:.3f})")
            print(f"| {variant} | " + " | ".join(cells) + f" | {_mean(means):.3f} | {wins} |")
        rel = {
            t: _mean([r["reliability"] for r in by.get((protocol, "ours", t), {}).values()])
            for t in targets
        }
        print(
            "\nteacher Dice on the student's training images: "
            + ", ".join(f"{display_name(t)} {v:.2f}" for t, v in rel.items())
        )
        _print_terms(rows, protocol)
    _plot_delta(rows, protocols, variants, out / "study_delta_dice.png")
    _plot_terms(rows, protocols, out / "study_terms.png")


def _print_terms(rows: list[dict], protocol: str) -> None:
    """Raw value and gradient norm of each term of the paper preset, first → last epoch."""
    runs = [r for r in rows if r["protocol"] == protocol and r["variant"] == "ours"]
    if not runs:
        return
    print(f"\n{protocol}, paper preset (mean over {len(runs)} runs): first → last epoch\n")
    print("| term | raw value | ‖∇θ (λ·term)‖ |")
    print("|---|---|---|")
    for term in ("seg", "aam", "kmm", "lm"):
        raw = [r["raw"][term] for r in runs if term in r["raw"]]
        grads = [[g for g in r["grad"].get(term, []) if g is not None] for r in runs]
        grads = [g for g in grads if g]
        if not raw:
            continue
        value = f"{_mean([a for a, _ in raw]):.3f} → {_mean([b for _, b in raw]):.3f}"
        norm = (
            f"{_mean([g[0] for g in grads]):.3f} → {_mean([g[-1] for g in grads]):.3f}"
            if grads
            else "–"
        )
        print(f"| {term} | {value} | {norm} |")


def _plot_delta(rows, protocols, variants, path: Path) -> None:
    base = {
        (r["protocol"], r["target"], r["seed"]): r["dice"] for r in rows if r["variant"] == "none"
    }
    shown = [v for v in variants if v != "none"]
    fig, axes = plt.subplots(1, len(protocols), figsize=(6 * len(protocols), 4), squeeze=False)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        for i, variant in enumerate(shown):
            deltas = [
                r["dice"] - base[(protocol, r["target"], r["seed"])]
                for r in rows
                if r["protocol"] == protocol
                and r["variant"] == variant
                and (protocol, r["target"], r["seed"]) in base
            ]
            if deltas:
                ax.bar(i, _mean(deltas), color="tab:blue", alpha=0.6)
                ax.scatter([i] * len(deltas), deltas, s=8, color="black")
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xticks(range(len(shown)), shown, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{protocol}: test Dice − w/o (bar: mean; dots: target × seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_terms(rows, protocols, path: Path) -> None:
    fig, axes = plt.subplots(1, len(protocols), figsize=(6 * len(protocols), 4), squeeze=False)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        runs = [r for r in rows if r["protocol"] == protocol and r["variant"] == "ours"]
        for term in ("seg", "aam", "kmm", "lm"):
            curves = [r["grad"].get(term) for r in runs if r["grad"].get(term)]
            curves = [[v for v in c if v is not None] for c in curves]
            if not curves or not curves[0]:
                continue
            n = min(len(c) for c in curves)
            ax.plot(range(1, n + 1), [_mean([c[e] for c in curves]) for e in range(n)], label=term)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"{protocol}, paper preset: ‖∇θ λ·L‖ per term")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/study"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--targets", default="S1,S4,S5")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--protocols", default="cross-site,leave-one-site-out")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--jobs", type=int, default=1, help="(target, seed) groups in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--budget", type=float, default=0, help="start no run after N seconds")
    args = parser.parse_args()
    if args.report is not None:
        report(args)
    else:
        run_study(args)


if __name__ == "__main__":
    main()
