"""Data-layer figures: synth time, prepare time, cache bytes per slice, loader throughput.

    python benchmarks/data.py [--size 128] [--json]

Prints figures; nothing is asserted. Record them in BENCHMARKS.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from crossdistill.data.dataset import SliceDataset
from crossdistill.data.prepare import prepare
from crossdistill.data.synth import synthesize


def loader_throughput(cache: Path, workers: int, augment: bool, channels: int) -> float:
    """Slices per second over one pass of the training split (batch 16)."""
    dataset = SliceDataset(cache, split="train", channels=channels, augment=augment)
    loader = DataLoader(dataset, batch_size=16, shuffle=True, num_workers=workers)
    start = time.perf_counter()
    count = sum(len(batch["slice"]) for batch in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="cache slice size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        synthesize(root / "data", montage=False)
        synth_s = time.perf_counter() - start
        first = prepare(root / "data", root / "cache", size=args.size, progress=False)
        again = prepare(root / "data", root / "cache", size=args.size, progress=False)
        npy = sum(p.stat().st_size for p in (root / "cache" / "cases").rglob("*.npy"))
        figures = {
            "synth_s": round(synth_s, 2),
            "prepare_s": round(first.seconds, 2),
            "prepare_reuse_s": round(again.seconds, 2),
            "cases": sum(first.sites.values()),
            "slices": first.slices,
            "cache_bytes_per_slice": round(npy / first.slices),
        }
        for workers in (0, 2):
            for augment in (False, True):
                key = f"loader_slices_per_s_workers{workers}" + ("_augment" if augment else "")
                figures[key] = round(loader_throughput(root / "cache", workers, augment, 1), 1)
        figures["loader_slices_per_s_workers0_2.5d"] = round(
            loader_throughput(root / "cache", 0, False, 3), 1
        )
    if args.json:
        print(json.dumps(figures))
    else:
        width = max(map(len, figures))
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
