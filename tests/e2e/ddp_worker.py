"""A torchrun worker for tests/e2e/test_ddp.py: runs crossdistill commands and records file writes.

    torchrun --standalone --nproc-per-node 2 tests/e2e/ddp_worker.py PLAN.json

``PLAN.json`` holds ``{"watch": DIR, "report": DIR, "commands": [[name, arg, ...], ...]}``.
Each command runs as ``python -m crossdistill.<name> ARGS`` would (``cli.main(name)``), one
after the other in the same process group; ``["fit-float64", CACHE, RUN_DIR]`` runs
:func:`fit_float64` instead. An audit hook records every path under ``watch`` that this
process opens for writing, creates, renames onto or removes; at the end each rank writes
``report/rank-<r>.json``: ``{"codes": [exit code per command], "writes": [paths]}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FIT_FLOAT64 = "fit-float64"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _written_path(event: str, args: tuple) -> str | None:
    """The path an audit event writes to, or None if it only reads."""
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str):
            return path if any(c in mode for c in "wax+") else None
        return path if isinstance(flags, int) and flags & WRITE_FLAGS else None
    if event in ("os.mkdir", "os.remove", "os.rmdir", "os.truncate"):
        return args[0]
    if event == "os.rename":
        return args[1]
    return None


def fit_float64(cache: str, run_dir: str) -> None:
    """Distil an ENet from an ENet teacher (paper preset: AAM + KMM + LM; dropout, BatchNorm)
    for 2 epochs of 2 steps of a global batch of 8 in float64 (in one process, or as a rank
    of the process group), writing ``run_dir``."""
    import torch
    from torch.utils.data import Dataset

    from crossdistill.data.dataset import SliceDataset
    from crossdistill.distill import preset_terms
    from crossdistill.distill.distiller import Distiller
    from crossdistill.engine.fit import FitOptions, fit
    from crossdistill.models import create_model

    class Float64Slices(Dataset):
        def __init__(self, dataset: SliceDataset) -> None:
            self.dataset = dataset

        def __len__(self) -> int:
            return len(self.dataset)

        def __getitem__(self, index: int) -> dict:
            item = self.dataset[index]
            item["image"] = item["image"].double()
            return item

        def set_epoch(self, epoch: int) -> None:
            self.dataset.set_epoch(epoch)

    torch.manual_seed(1)
    teacher = create_model("enet", 1, 2, 0.25).eval()
    torch.manual_seed(0)
    student = create_model("enet", 1, 2, 0.25)
    objective = Distiller(teacher, student, preset_terms("ours")).double()
    dataset = SliceDataset(cache, ["HK", "BIDMC"], "train", 1, augment=True)
    optimizer = torch.optim.SGD(objective.trainable_parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    options = FitOptions(epochs=2, batch_size=8, steps_per_epoch=2, progress=False)
    fit(objective, Float64Slices(dataset), optimizer, scheduler, Path(run_dir), options, {})


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    watch = str(Path(plan["watch"]).resolve())
    writes: list[str] = []

    def audit(event: str, args: tuple, abspath=os.path.abspath, fsdecode=os.fsdecode) -> None:
        # bound defaults and no exception: the hook also runs while the interpreter shuts down
        try:
            path = _written_path(event, args)
            full = abspath(fsdecode(path)) if path is not None else ""
            if full.startswith(watch):
                writes.append(full)
        except Exception:
            pass

    sys.addaudithook(audit)
    from crossdistill.cli import main as crossdistill_main
    from crossdistill.engine.distributed import init_from_env

    init_from_env("cpu")  # the commands join the same group

    codes = []
    for name, *args in plan["commands"]:
        if name == FIT_FLOAT64:
            fit_float64(*args)
            codes.append(0)
            continue
        sys.argv = ["crossdistill", name, *args]  # as ``python -m crossdistill NAME ARGS``
        try:
            crossdistill_main()
            codes.append(0)
        except SystemExit as exit_:
            codes.append(exit_.code if isinstance(exit_.code, int) else 0)
    rank = os.environ.get("RANK", "0")
    report = Path(plan["report"]) / f"rank-{rank}.json"
    report.write_text(json.dumps({"codes": codes, "writes": sorted(set(writes))}))


if __name__ == "__main__":
    main()
