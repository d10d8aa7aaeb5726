"""Distillation epoch time with and without the teacher-output cache, over a plain student epoch.

    python benchmarks/teacher_cache.py [--root /tmp/crossdistill-teacher-cache] [--rounds 5]

At the demo's scale (``configs/demo.yaml``: 128² slices, an epoch = 25 steps of 8 slices, the
demo's UNet++ teacher of width 1/16 and ENet student of width 1/2), on the CPU, three
students train with ``data.augment=geometric`` (what the cache allows): without a teacher,
distilled ("ours") with the teacher run every step, and distilled from the cache. Each
epoch is one call of the engine's ``fit`` (resuming the run's last checkpoint), and the three
runs take turns epoch by epoch, so that on a shared machine they see the same load; the
epoch time of a run is its fastest epoch after the first. The cache is built once, before
the first epoch (its time is printed, and also spread over the demo's 12 student epochs).
Prints a table and one JSON object; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

from crossdistill import api
from crossdistill.config import RunConfig, load_config
from crossdistill.engine.fit import FitOptions, fit
from crossdistill.engine.run_folder import RunFolder
from crossdistill.run import build_run
from demo_runs import prepare_bench

DEMO_STUDENT_EPOCHS = 12  # crossdistill.demo.SCALE: the full demo's ENet epochs


def demo_config(cache: Path, runs: Path, name: str, *extra: str) -> RunConfig:
    overrides = [f"data.cache={cache}", f"output={runs}", f"name={name}", *extra]
    return load_config("demo", ["data.augment=geometric", *overrides])


def student_run(cfg: RunConfig, teacher: Path | None, cached: bool, run_dir: Path):
    """``(objective, dataset, optimizer, scheduler, cache build s)`` of a student distilled
    ("ours") from ``teacher`` (plain without one), built by ``build_run`` as ``api.train``
    builds them."""
    distill = {"teacher": teacher, "preset": "ours" if teacher is not None else "none"}
    if cached:
        distill["teacher_cache"] = run_dir / "cache"
    run = build_run(cfg.model_copy(update={"distill": cfg.distill.model_copy(update=distill)}))
    start = time.perf_counter()
    run.open_teacher_cache(progress=False)
    seconds = time.perf_counter() - start if cached else None
    optimizer, scheduler = run.optimizer_and_scheduler()
    return run.objective, run.dataset, optimizer, scheduler, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/crossdistill-teacher-cache"))
    parser.add_argument("--rounds", type=int, default=5, help="epochs of each run")
    args = parser.parse_args()
    cache = prepare_bench(args.root, quick=False)
    runs = args.root / "runs"
    teacher = runs / "teacher"
    if not RunFolder(teacher).finished():  # its quality does not matter here: 1 epoch
        overrides = ["role=teacher", "model.name=unetpp", "model.width=0.0625", "train.epochs=1"]
        api.train(demo_config(cache, runs, "teacher", *overrides), progress=False)
    cfg = demo_config(cache, runs, "timing")
    work = args.root / "timing"
    shutil.rmtree(work, ignore_errors=True)  # fresh runs and a fresh cache every invocation
    plans = {"plain": (None, False), "teacher every step": (teacher, False)}
    plans["teacher cache"] = (teacher, True)
    built, laps = {}, {label: [] for label in plans}
    options = FitOptions(epochs=1, batch_size=8, seed=0, steps_per_epoch=25, progress=False)
    pieces = {}
    for label, (source, cached) in plans.items():
        pieces[label] = student_run(cfg, source, cached, work)
        if cached:
            built["seconds"] = pieces[label][4]
            built["mib"] = sum(f.stat().st_size for f in (work / "cache").rglob("*.npy")) / 2**20
    for epoch in range(1, args.rounds + 1):
        for label, (objective, dataset, optimizer, scheduler, _) in pieces.items():
            run_dir = work / label.replace(" ", "-")
            result = fit(
                objective,
                dataset,
                optimizer,
                scheduler,
                run_dir,
                dataclasses.replace(options, epochs=epoch),
                {"model": {"name": "enet"}},
                None,
                resume=True,
            )
            laps[label].append(result.seconds)
    seconds = {label: min(times[1:]) for label, times in laps.items()}
    plain = seconds["plain"]
    amortised = seconds["teacher cache"] + built["seconds"] / DEMO_STUDENT_EPOCHS
    report = {
        "threads": torch.get_num_threads(),
        "epoch_seconds": {k: round(v, 2) for k, v in seconds.items()},
        "median_epoch_seconds": {k: round(statistics.median(v[1:]), 2) for k, v in laps.items()},
        "over_plain": {k: round(v / plain, 2) for k, v in seconds.items()},
        "cache_build_seconds": round(built["seconds"], 2),
        "cache_mib": round(built["mib"], 1),
        "cached_over_plain_with_build_over_12_epochs": round(amortised / plain, 2),
        "laps": {k: [round(x, 2) for x in v] for k, v in laps.items()},
    }
    print(f"{'student epoch (25 steps of 8, 128²)':<40}{'seconds':>9}{'× plain':>9}")
    for label, value in seconds.items():
        print(f"{label:<40}{value:>9.2f}{value / plain:>9.2f}")
    print(f"cache: built once in {report['cache_build_seconds']} s, {report['cache_mib']} MiB")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
