"""A few-minute check on a CUDA machine: losses, networks and the engine on the GPU.

    python benchmarks/cuda_check.py --cache CACHE [--out DIR] [--json]

1. every network at 384²: median latency (batch 1) and throughput (batch 16, slices/s),
   eval mode, float32 and bf16 autocast;
2. a teacher and a distilled student ("ours") trained for two short epochs on ``CACHE``
   through the same API as the CLI, with ``device=cuda``: checks that the engine, the
   distiller and the evaluation run on the GPU and reports their wall time.
The loss benchmark is ``benchmarks/losses.py --device cuda``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from crossdistill import api
from crossdistill.config import load_config
from crossdistill.models import create_model, list_models


def _time(fn, repeats: int = 10, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def network_figures(size: int = 384) -> dict:
    out = {}
    for name in list_models():
        model = create_model(name).cuda().eval()
        for dtype in ("float32", "bfloat16"):

            def run(batch, model=model, dtype=dtype):
                x = torch.randn(batch, 1, size, size, device="cuda")
                with torch.autocast("cuda", torch.bfloat16, enabled=dtype == "bfloat16"):
                    model(x)

            latency = _time(lambda run=run: run(1))
            per_batch = _time(lambda run=run: run(16), repeats=5)
            out[f"{name}/{dtype}"] = {
                "latency_ms_batch1": round(latency * 1e3, 2),
                "slices_per_s_batch16": round(16 / per_batch, 1),
            }
    return out


def engine_figures(cache: Path, out: Path) -> dict:
    common = [f"data.cache={cache}", f"output={out}", "device=cuda", "train.epochs=2", "seed=0"]
    figures = {}
    for name, extra in (
        ("teacher", ["role=teacher", "model.name=unetpp", "model.width=0.25"]),
        ("student", ["distill.preset=ours", f"distill.teacher={out / 'teacher'}"]),
    ):
        start = time.perf_counter()
        summary = api.train(load_config("demo", [*common, f"name={name}", *extra]), progress=False)
        figures[name] = {"seconds": round(time.perf_counter() - start, 1), "dice": summary["dice"]}
        if "teacher_reliability" in summary:
            figures[name]["teacher_reliability"] = summary["teacher_reliability"]["dice"]
            figures[name]["loss_terms_end"] = summary["loss_terms"]["end"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("/tmp/crossdistill-cuda-check"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    figures = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    figures["engine"] = engine_figures(args.cache, args.out)
    figures["networks"] = network_figures()
    print(json.dumps(figures, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
