"""GPU cost of the paper-preset grids (issue 7), from measured step times.

    PYTHONPATH=src:benchmarks python benchmarks/paper_cost.py [--steps 10] [--out DIR]
    PYTHONPATH=src:benchmarks python benchmarks/paper_cost.py --quick   # CPU dry run, tiny

1. Times one training step (forward, segmentation loss, backward, Adam) of each of the five
   networks at 384², batch 16 — the paper preset's geometry — and one distillation step
   ("ours": AAM + KMM + LM, the frozen teacher run every step, as the paper preset does) of
   each student from each teacher, through the engine's code (``Distiller``, ``Precision``),
   on random tensors already on the GPU. Precision and layout as the paper preset resolves
   them on this GPU (``train.precision: auto``, ``train.channels_last: auto``), and fp32.
2. Turns them into GPU hours per grid: 100 epochs of ``slices / 16`` steps per run, with the
   training slices of each site in proportion to its case count (30, 30, 19, 13, 12, 12 cases;
   ``--slices`` in total over the six sites, ≈ 25 axial slices per case and the splits'
   training share). Validation, evaluation and data loading are not counted.

Prints a table and one JSON object (also ``OUT/paper_cost.json``); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from crossdistill.distill import Distiller, preset_terms
from crossdistill.engine.precision import Precision, resolve_channels_last, resolve_precision
from crossdistill.models import create_model
from gpu_check import Bench, training_step

TEACHERS = ("unetpp", "deeplabv3plus")
STUDENTS = ("enet", "espnet", "erfnet")
#: Cases per site in the public multi-site release (S1 … S6).
CASES = {"S1": 30, "S2": 30, "S3": 19, "S4": 13, "S5": 12, "S6": 12}
#: Runs per target site beyond Table 2's, for Tables 3 and 4 (ENet from DeepLabV3+).
TABLE3_EXTRA = 6  # lm, aam, kmm, kmm+lm, aam+lm, aam+kmm (teacher, w/o, ours are Table 2's)
TABLE4_KD = 4  # kd, at, mskd, emkd (distilled from the teacher)
TABLE4_ALONE = 2  # saml, drdg (student alone, counted at a plain step)


def time_steps(bench: Bench, batch: int, size: int, configs, quick: bool) -> dict:
    """ms per step: ``train[config][net]`` and ``distill[config][teacher/student]``."""
    torch.manual_seed(0)
    device = bench.device
    images = torch.randn(batch, 1, size, size, device=device)
    masks = (torch.rand(batch, size, size, device=device) > 0.7).long()
    batches = [{"image": images, "mask": masks}]
    width = {"unetpp": 0.0625, "deeplabv3plus": 0.0625} if quick else {}
    out: dict = {"train": {}, "distill": {}}
    for precision, channels_last in configs:
        key = f"{precision}{'-cl' if channels_last else ''}"
        out["train"][key], out["distill"][key] = {}, {}
        for net in TEACHERS + STUDENTS:
            model = create_model(net, 1, 2, width.get(net, 0.25 if quick else 1.0))
            step = training_step(
                Distiller(None, model, {}), Precision(precision, device, channels_last), batches
            )
            out["train"][key][net] = bench.run(step, batch).get("ms_per_step")
            print(f"{key:10s} train   {net:30s} {out['train'][key][net]} ms", flush=True)
        for teacher_name in TEACHERS:
            teacher = create_model(teacher_name, 1, 2, width.get(teacher_name, 1.0)).to(device)
            for student_name in STUDENTS:
                student = create_model(student_name, 1, 2, 0.25 if quick else 1.0)
                objective = Distiller(teacher, student, preset_terms("ours"))
                step = training_step(
                    objective, Precision(precision, device, channels_last), batches
                )
                pair = f"{teacher_name}/{student_name}"
                out["distill"][key][pair] = bench.run(step, batch).get("ms_per_step")
                print(f"{key:10s} distill {pair:30s} {out['distill'][key][pair]} ms", flush=True)
            del teacher
    return out


def grid_hours(train: dict, distill: dict, slices: int, epochs: int, batch: int) -> dict:
    """GPU hours per target site and in total for Tables 2 (both protocols), 3 and 4."""
    total_cases = sum(CASES.values())
    hours: dict = {}

    def run_hours(ms: float, n_slices: float) -> float:
        return ms * epochs * (n_slices / batch) / 3.6e6

    for site, cases in CASES.items():
        own = slices * cases / total_cases
        others = slices - own
        students = sum(run_hours(train[s], others) for s in STUDENTS)
        distilled = sum(run_hours(distill[f"{t}/{s}"], others) for t in TEACHERS for s in STUDENTS)
        teachers_cross = sum(run_hours(train[t], own) for t in TEACHERS)
        teachers_loso = sum(run_hours(train[t], others) for t in TEACHERS)
        enet_dlv3 = run_hours(distill["deeplabv3plus/enet"], others)
        hours[site] = {
            "table2_cross_site": teachers_cross + students + distilled,
            "table2_leave_one_site_out": teachers_loso + students + distilled,
            "table3_extra": TABLE3_EXTRA * enet_dlv3,
            "table4_extra": TABLE4_KD * enet_dlv3 + TABLE4_ALONE * run_hours(train["enet"], others),
        }
    hours["all"] = {k: sum(h[k] for h in hours.values()) for k in hours["S1"]}
    return hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/crossdistill-paper-cost"))
    parser.add_argument("--quick", action="store_true", help="CPU dry run at a tiny size")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per figure")
    parser.add_argument("--slices", type=int, default=2000, help="training slices, six sites")
    args = parser.parse_args()
    started = time.perf_counter()
    device = "cpu" if args.quick else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("paper_cost: no CUDA device (use --quick for the CPU dry run)")
    torch.backends.cudnn.benchmark = True
    size, batch = (64, 2) if args.quick else (384, 16)
    bench = Bench(device, args.steps or (1 if args.quick else 10), 1 if args.quick else 3)
    paper = (resolve_precision("auto", device), resolve_channels_last("auto", device))
    configs = [paper] if paper == ("fp32", False) else [paper, ("fp32", False)]
    times = time_steps(bench, batch, size, configs, args.quick)
    report: dict = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "size": size,
        "batch": batch,
        "paper_preset_resolves_to": f"{paper[0]}{'-cl' if paper[1] else ''}",
        "ms_per_step": times,
        "assumed_training_slices": args.slices,
        "gpu_hours": {},
    }
    for key in times["train"]:
        measured = [*times["train"][key].values(), *times["distill"][key].values()]
        if None in measured:  # a step that did not fit in GPU memory
            report["gpu_hours"][key] = "a step ran out of GPU memory"
            continue
        report["gpu_hours"][key] = grid_hours(
            times["train"][key], times["distill"][key], args.slices, 100, batch
        )
    report["seconds"] = round(time.perf_counter() - started, 1)
    for key, hours in report["gpu_hours"].items():
        if isinstance(hours, str):
            print(f"GPU hours, {key}: not computed, {hours}")
            continue
        print(f"GPU hours, {key}, 100 epochs, {args.slices} training slices:")
        for site, row in hours.items():
            print(f"  {site:4s} " + "  ".join(f"{k} {v:6.2f}" for k, v in row.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "paper_cost.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
