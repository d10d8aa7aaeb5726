"""Data-parallel scaling on this machine: training images/s of 1 process against N gloo processes.

    python benchmarks/ddp_scaling.py [--root /tmp/crossdistill-ddp] [--rounds 2] [--nproc 2]

At the demo's scale (``configs/demo.yaml``: 128² slices, ENet of width 1/2, global batch 8,
25 steps an epoch, 3 epochs, validation only after the last) the same run is trained by

* 1 process with 1 thread (the per-rank baseline),
* ``torchrun --nproc-per-node N -m crossdistill train``, 1 thread per process (gloo),
* with ``--threads-total T``, also 1 process with T threads (one process using the cores),

each launched as its own command, the configurations taking turns for ``--rounds`` rounds so
that on a shared machine they see similar load. Images/s is 25·8 over the time of epoch 2
(from ``metrics.jsonl``: after start-up and the first steps, before the final validation).
Then the latency of one gloo collective among N processes, and how many a step needs
(synchronised BatchNorm: one all-gather forward and one all-reduce backward per layer).
Prints the best and the median over the rounds, and one JSON object; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.multiprocessing import spawn

from crossdistill.engine.run_folder import RunFolder
from crossdistill.models import create_model
from demo_runs import prepare_bench

STEPS, BATCH = 25, 8


def run(cache: Path, out: Path, name: str, threads: int, nproc: int) -> float:
    """Train one run of 3 epochs; returns its epoch-2 training images/s."""
    shutil.rmtree(out / name, ignore_errors=True)
    overrides = [
        f"data.cache={cache}",
        f"output={out}",
        f"name={name}",
        "device=cpu",
        "train.epochs=3",
        f"train.steps_per_epoch={STEPS}",
        f"train.batch_size={BATCH}",
        "train.val_every=1000",
    ]
    args = ["--config", "demo", *[a for o in overrides for a in ("--set", o)]]
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [*launcher, "-m", "crossdistill", "train", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    times = [
        json.loads(x)["time_s"] for x in RunFolder(out / name).metrics.read_text().splitlines()
    ]
    return round(STEPS * BATCH / (times[1] - times[0]), 2)


def _latency_worker(rank: int, nproc: int, port: int, out: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=nproc)
    stats = torch.ones(3 * 64)  # a BatchNorm layer's (count, mean, M2) for 64 channels
    parts = [torch.empty_like(stats) for _ in range(nproc)]
    timings = {}
    for name, collective in (
        ("all_gather_ms", lambda: dist.all_gather(parts, stats)),
        ("all_reduce_ms", lambda: dist.all_reduce(stats)),
    ):
        for _ in range(20):
            collective()
        start = time.perf_counter()
        for _ in range(300):
            collective()
        timings[name] = round((time.perf_counter() - start) / 300 * 1e3, 3)
    if rank == 0:
        out.write_text(json.dumps(timings))
    dist.destroy_process_group()


def collective_latency(nproc: int, root: Path) -> dict:
    """Milliseconds per gloo all-gather and all-reduce of 192 floats among ``nproc``
    processes, and the synchronised BatchNorm layers of the benchmark's ENet (each costs one
    all-gather forward and one all-reduce backward per step)."""
    out = root / "latency.json"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spawn(_latency_worker, args=(nproc, port, out), nprocs=nproc)
    layers = sum(isinstance(m, nn.BatchNorm2d) for m in create_model("enet", 1, 2, 0.5).modules())
    return {**json.loads(out.read_text()), "batchnorm_layers": layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/crossdistill-ddp"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2, help="gloo processes")
    parser.add_argument("--threads-total", type=int, default=0, help="0: no multi-thread run")
    args = parser.parse_args()
    cache = prepare_bench(args.root, quick=False)
    configs = [("one-1t", 1, 1), (f"ddp-{args.nproc}x1t", 1, args.nproc)]
    if args.threads_total > 1:
        configs.append((f"one-{args.threads_total}t", args.threads_total, 1))
    rates: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    for _ in range(args.rounds):
        for name, threads, nproc in configs:
            rates[name].append(run(cache, args.root / "runs", name, threads, nproc))
    base = max(rates["one-1t"])
    rows = []
    print(f"{'run':<10} {'images/s best':>13} {'median':>7} {'best vs 1×1t':>12}")
    for name, threads, nproc in configs:
        best, median = max(rates[name]), statistics.median(rates[name])
        rows.append(
            {"name": name, "processes": nproc, "threads": threads, "images_per_s": rates[name]}
        )
        print(f"{name:<10} {best:>13.1f} {median:>7.1f} {best / base:>12.2f}")
    latency = collective_latency(args.nproc, args.root)
    print(f"gloo latency among {args.nproc} processes: {latency}")
    print(json.dumps({"runs": rows, "latency": latency}))


if __name__ == "__main__":
    main()
