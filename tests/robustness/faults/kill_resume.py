"""Kill -9 a training run at seeded random points, resume it each time, and check that it
ends with exactly the weights of an uninterrupted run.

    python tests/robustness/faults/kill_resume.py --cache CACHE --work DIR [--kills 8] [--seed 0]

The run (``crossdistill train``, a width-1/4 ERFNet, 5 epochs of 4 steps, cyclic schedule,
augmentation on) is cut ``--kills`` times by ``CROSSDISTILL_FAULT_KILL`` (see
``crossdistill.faults``): alternately after a seeded random optimizer step and between
writing a checkpoint's temporary file and renaming it. After every kill each checkpoint
under its final name must load; after a cut write the temporary file is there and the
final name still holds the previous checkpoint. The killed runs are forked from this
process after it imported crossdistill (the same ``cli.main`` as ``crossdistill train``,
without paying the interpreter start-up each time); the last ``--resume`` is a real
``python -m crossdistill.cli train`` in a fresh interpreter. At the end every tensor
of ``last.safetensors`` and ``best.safetensors`` (weights, optimizer state, RNG state) and
the per-epoch metrics must equal the uninterrupted run's. Prints one JSON line; exit 0
when everything held. Use ``OMP_NUM_THREADS=1`` (bitwise-equal CPU results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from crossdistill import api, cli  # api: imported once here, not in every forked child
from crossdistill.engine.checkpoint import load_checkpoint
from crossdistill.faults import KILL_ENV

EPOCHS, STEPS = 5, 4


def warm_up() -> None:
    """Import, once before forking, what a run imports lazily (MONAI through the losses, and
    torch.optim pulls in torch._dynamo on first use: seconds per child otherwise)."""
    import torch

    import crossdistill.run  # noqa: F401  (MONAI, the losses, the engine)

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    assert api.train


def train_args(cache: Path, work: Path, name: str) -> list[str]:
    settings = {
        "data.cache": cache,
        "output": work,
        "name": name,
        "device": "cpu",
        "model.name": "erfnet",
        "model.width": 0.25,
        "train.epochs": EPOCHS,
        "train.batch_size": 4,
        "train.steps_per_epoch": STEPS,
        "train.schedule.step_size": 3,
        "train.schedule.max_lr": 0.01,
        "protocol": "cross-site",
        "target": "S4",
    }
    return ["train", *[a for k, v in settings.items() for a in ("--set", f"{k}={v}")]]


def run_forked(args: list[str], env: dict[str, str], log: Path) -> int:
    """``crossdistill ARGS`` in a forked child; its wait status (signal or exit code)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.update(env)
            sys.argv = ["crossdistill", *args]
            cli.main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def run_process(args: list[str], log: Path) -> int:
    """``python -m crossdistill.cli ARGS`` in a fresh interpreter; its return code."""
    with open(log, "w") as handle:
        proc = subprocess.run(
            [sys.executable, "-m", "crossdistill.cli", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    return proc.returncode


def checkpoints(run: Path) -> dict[str, int]:
    """Epoch of every checkpoint under its final name (each must load)."""
    return {
        p.name: int(load_checkpoint(p).meta["state"]["epoch"])
        for p in sorted((run / "checkpoints").glob("*.safetensors"))
    }


def temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob(".*.tmp-*"))


def check_cut(run: Path, point: str, after: dict[str, int], record: dict) -> list[str]:
    """After a cut write: exactly one temporary file (the resume removed older ones), and
    the final name still holds the checkpoint before it (``last``: the previous epoch)."""
    left = temporaries(run)
    if point != "checkpoint-write":
        return [f"temporary files after a kill between writes: {left}"] if left else []
    if len(left) != 1:
        return [f"expected one temporary file of the cut write, found {left}"]
    final = left[0].split(".tmp-")[0][1:]
    cut_epoch = int(load_checkpoint(run / "checkpoints" / left[0]).meta["state"]["epoch"])
    held = after.get(final)
    record["cut"] = {"file": final, "epoch": cut_epoch, "kept": held}
    if final == "last.safetensors":
        ok = held == cut_epoch - 1 if cut_epoch > 1 else held is None
    else:
        ok = held is None or held < cut_epoch
    return [] if ok else [f"{final} holds epoch {held} after its epoch-{cut_epoch} write was cut"]


def pick_kill(rng: random.Random, i: int, epochs_done: int) -> tuple[str, int] | None:
    """Alternately a step and a checkpoint write, within the next two epochs' worth."""
    left = EPOCHS - epochs_done
    if left <= 0:
        return None
    if i % 2 == 0:
        return "train-step", rng.randint(1, min(left, 2) * STEPS)
    return "checkpoint-write", rng.randint(1, min(left, 2))


def compare(reference: Path, run: Path) -> tuple[int, list[str]]:
    """``(tensors compared, differences)`` between two finished runs."""
    import torch

    count, diffs = 0, []
    for name in ("last.safetensors", "best.safetensors"):
        a = load_checkpoint(reference / "checkpoints" / name)
        b = load_checkpoint(run / "checkpoints" / name)
        groups = {"model": (a.model, b.model), "extra": (a.extra, b.extra)}
        if a.optimizer is not None:
            groups["optimizer"] = (
                {f"{i}/{k}": v for i, s in a.optimizer["state"].items() for k, v in s.items()},
                {f"{i}/{k}": v for i, s in b.optimizer["state"].items() for k, v in s.items()},
            )
            groups["rng"] = ({"torch": a.rng["torch"]}, {"torch": b.rng["torch"]})
        for group, (x, y) in groups.items():
            if set(x) != set(y):
                diffs.append(f"{name} {group}: different keys")
            for key in x:
                count += 1
                same = torch.equal(x[key], y[key]) if torch.is_tensor(x[key]) else x[key] == y[key]
                if not same:
                    diffs.append(f"{name} {group}/{key}")
        if a.meta["state"] != b.meta["state"]:
            diffs.append(f"{name} state {a.meta['state']} != {b.meta['state']}")

    def metrics(folder: Path) -> list[dict]:
        rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]

    if metrics(reference) != metrics(run):
        diffs.append("metrics.jsonl")
    return count, diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    start = time.perf_counter()
    work, logs = opts.work, opts.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    warm_up()

    status = run_forked(train_args(opts.cache, work, "reference"), {}, logs / "reference.log")
    if status != 0:
        failures.append(f"the uninterrupted run failed (status {status}, see {logs})")

    rng, run, kills = random.Random(opts.seed), work / "chained", []
    for i in range(opts.kills):
        before = checkpoints(run) if run.exists() else {}
        kill = pick_kill(rng, i, before.get("last.safetensors", 0))
        if kill is None:
            break
        args = train_args(opts.cache, work, "chained") + (["--resume"] if i else [])
        env = {KILL_ENV: f"{kill[0]}:{kill[1]}"}
        status = run_forked(args, env, logs / f"kill{i}.log")
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            failures.append(f"kill {i} ({kill}) did not happen: status {status}")
            break
        after = checkpoints(run)  # every checkpoint under its final name loads
        record = {"point": kill[0], "n": kill[1], "before": before, "after": after}
        failures += [f"kill {i}: {f}" for f in check_cut(run, kill[0], after, record)]
        kills.append(record)

    final = [*train_args(opts.cache, work, "chained"), "--resume"]
    status = run_process(final, logs / "final.log")
    if status != 0:
        failures.append(f"the final --resume failed (status {status}, see {logs}/final.log)")
    compared, diffs = compare(work / "reference", run) if not failures else (0, [])
    failures += [f"differs from the uninterrupted run: {d}" for d in diffs]
    if temporaries(run):
        failures.append(f"temporary files left after the resume: {temporaries(run)}")
    report = {
        "kills": len(kills),
        "points": kills,
        "tensors_compared": compared,
        "identical": not failures,
        "failures": failures,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
