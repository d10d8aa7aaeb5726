"""What int8 quantisation costs in Dice, per trained student, on validation and on test.

    python benchmarks/int8_dice.py RUN [RUN ...] --cache CACHE [--slices 64] [--out FILE]
        [--activation-range percentile,minmax]

For each run folder: quantise its best checkpoint as ``crossdistill export --quantize int8``
does (calibration on the training slices of its training sites, the Dice check on their
validation cases), then segment the test cases of its evaluation sites with the float32 and
the int8 graph in ONNX Runtime. Prints one JSON line per run (validation and test Dice of
both graphs, the drops) per activation range, then per range the mean validation and test
drop with its 95 % t interval over runs and, for two ranges, the paired difference of their
validation drops (the split to choose on); writes the lines to ``--out`` if given. Asserts
nothing.
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


def measure(run: Path, cache: Path, slices: int, activation_range: str) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    with tempfile.TemporaryDirectory(prefix="int8-dice-") as tmp:
        exported = export_int8(
            run,
            Path(tmp) / "int8.onnx",
            cache,
            slices=slices,
            max_drop=1.0,
            activation_range=activation_range,
        )
        float_file = export_onnx(run, Path(tmp) / "float32.onnx")
        engines = open_engine(float_file), open_engine(exported.path)
        test = dice_check(*engines, Cache(cache), summary["eval_sites"], 1.0, split="test")
    return {
        "run": str(run),
        "model": summary["model"],
        "activation_range": activation_range,
        "val": exported.check.as_dict(),
        "test": test.as_dict(),
    }


def interval(values: np.ndarray) -> str:
    """``mean [low, high]`` with the 95 % Student-t interval (``n ≥ 2``)."""
    if len(values) < 2:
        return f"{values.mean():+.4f}"
    low, high = stats.t.interval(0.95, len(values) - 1, values.mean(), stats.sem(values))
    return f"{values.mean():+.4f} [{low:+.4f}, {high:+.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--activation-range", default="minmax", help="comma-separated")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ranges = args.activation_range.split(",")
    rows = []
    for run in args.runs:
        for activation_range in ranges:
            rows.append(measure(run, args.cache, args.slices, activation_range))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    drops = {
        (r, split): np.array([row[split]["drop"] for row in rows if row["activation_range"] == r])
        for r in ranges
        for split in ("val", "test")
    }
    for r in ranges:
        print(
            f"{r}: Dice drop over {len(args.runs)} runs, validation {interval(drops[r, 'val'])}, "
            f"test {interval(drops[r, 'test'])}"
        )
    if len(ranges) == 2:
        a, b = ranges
        print(f"validation drop, {a} − {b} (paired): {interval(drops[a, 'val'] - drops[b, 'val'])}")


if __name__ == "__main__":
    main()
