"""What int8 quantisation costs in Dice, per trained student, on validation and on test.

    python benchmarks/int8_dice.py RUN [RUN ...] --cache CACHE [--slices 64] [--out FILE]

For each run folder: quantise its best checkpoint as ``crossdistill export --quantize int8``
does (calibration on the training slices of its training sites, the Dice check on their
validation cases), then segment the test cases of its evaluation sites with the float32 and
the int8 graph in ONNX Runtime. Prints one JSON line per run (validation and test Dice of
both graphs, the drops) and the mean test drop with its 95 % t interval over runs; writes
the lines to ``--out`` if given. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats

from crossdistill.data.cache import Cache
from crossdistill.deploy.engines import open_engine
from crossdistill.deploy.export import export_onnx
from crossdistill.deploy.quantize import dice_check, export_int8


def measure(run: Path, cache: Path, slices: int) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    with tempfile.TemporaryDirectory(prefix="int8-dice-") as tmp:
        exported = export_int8(run, Path(tmp) / "int8.onnx", cache, slices=slices, max_drop=1.0)
        float_file = export_onnx(run, Path(tmp) / "float32.onnx")
        engines = open_engine(float_file), open_engine(exported.path)
        test = dice_check(*engines, Cache(cache), summary["eval_sites"], 1.0, split="test")
    return {
        "run": str(run),
        "model": summary["model"],
        "val": exported.check.as_dict(),
        "test": test.as_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = []
    for run in args.runs:
        row = measure(run, args.cache, args.slices)
        lines.append(json.dumps(row))
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    drops = np.array([json.loads(line)["test"]["drop"] for line in lines])
    if len(drops) > 1:
        low, high = stats.t.interval(0.95, len(drops) - 1, drops.mean(), stats.sem(drops))
        interval = f"[{low:+.4f}, {high:+.4f}]"
        print(f"test Dice drop over {len(drops)} runs: {drops.mean():+.4f} {interval}")


if __name__ == "__main__":
    main()
