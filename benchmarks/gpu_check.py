"""GPU check of issue 9: training throughput with and without mixed precision and channels-last,
the distillation step with and without the teacher-output cache, peak memory, and the
teacher's achieved FLOP/s as a fraction of the GPU's peak.

    PYTHONPATH=src bash benchmarks/gpu_check.sh [--out DIR] [--steps 10] [--compile]
    PYTHONPATH=src bash benchmarks/gpu_check.sh --quick     # CPU dry run at a tiny size

1. Training steps (forward, segmentation loss, backward, Adam) of the teacher (UNet++) and the
   student (ENet) at 384², batch 16, on random tensors already on the GPU: slices/s, ms/step,
   peak GPU memory, for fp32 / autocast (bf16, or fp16 + grad scaler) × NCHW / channels-last.
2. The teacher's forward pass alone (what the uncached distillation runs every step).
3. Distillation steps of the student from the teacher ("ours": LM + KMM + AAM) through the
   engine's code (``Distiller``, ``Precision``, ``use_teacher_cache``): batches of a small
   synthetic 384² cache, geometric augmentation, preloaded in host memory; the cached step
   moves the stored maps to the GPU and warps them, the uncached one runs the teacher.
4. FLOP/s: exact FLOPs of one forward pass (``FlopCounterMode``, 2 per multiply-add) × 3 for
   a training step (forward + backward), × slices/s, over the peak dense figure of the GPU's
   datasheet (``PEAK_TFLOPS``; fp32 runs are set against TF32 when cuDNN may use it, which is
   PyTorch's default for convolutions).

A figure that does not fit reads "out of GPU memory" and the check goes on: UNet++ training in
fp32 at 384², batch 16, keeps ≈ 69 GiB of activations (measured on the CPU at 96², scaled),
which may not fit an 80 GB H100. ``--quick`` takes ≈ 15 s on a CPU; the GPU run a few minutes
(``--compile`` adds the compilation of both networks, a few minutes more).

Prints a table and then one JSON object (also written to ``OUT/gpu_check.json``); asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from crossdistill.data.dataset import SliceDataset
from crossdistill.data.prepare import prepare
from crossdistill.data.synth import synthesize
from crossdistill.distill import Distiller, preset_terms
from crossdistill.engine.cached_teacher import cached_teacher_outputs, use_teacher_cache
from crossdistill.engine.checkpoint import save_checkpoint
from crossdistill.engine.precision import Precision, resolve_precision
from crossdistill.models import count_flops, create_model

#: Dense tensor-core / CUDA-core peaks (TFLOP/s, no sparsity) from NVIDIA's product datasheets
#: (H100: "NVIDIA H100 Tensor Core GPU" datasheet; H200: "NVIDIA H200 Tensor Core GPU"
#: datasheet; A100, L40S, L4: their datasheets). The datasheets quote the sparse figures for
#: tensor cores; these are half of them. Matched against ``torch.cuda.get_device_name()``.
PEAK_TFLOPS = {
    "H100 PCIe": {"fp32": 51.0, "tf32": 378.0, "bf16": 756.0},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5},
    "H100 SXM": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "H200 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5},
    "H200 SXM": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
    "L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0},
}


def peak_entry(name: str) -> tuple[str, dict] | None:
    """The ``PEAK_TFLOPS`` row of a CUDA device name (``NVIDIA H100 80GB HBM3`` → H100 SXM)."""
    for chip in ("H100", "H200"):
        if chip in name:
            form = "PCIe" if "PCIe" in name else "NVL" if "NVL" in name else "SXM"
            key = f"{chip} {form}" if f"{chip} {form}" in PEAK_TFLOPS else f"{chip} SXM"
            return key, PEAK_TFLOPS[key]
    for key in ("A100", "L40S", "L4"):
        if key in name.split() or f"{key}-" in name:
            return key, PEAK_TFLOPS[key]
    return None


class Bench:
    """Times steps on one device and reads its peak memory."""

    def __init__(self, device: str, steps: int, warmup: int) -> None:
        self.device, self.steps, self.warmup = device, steps, warmup
        self.cuda = device.startswith("cuda")

    def run(self, step, batch: int) -> dict:
        """``step(i)`` timed over ``steps`` calls after ``warmup``: slices/s, ms, peak GiB."""
        gc.collect()  # the previous figure's networks and optimiser state
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            for i in range(self.warmup):
                step(i)
            self._sync()
            start = time.perf_counter()
            for i in range(self.steps):
                step(self.warmup + i)
            self._sync()
        except torch.cuda.OutOfMemoryError:
            return {"error": "out of GPU memory"}
        seconds = (time.perf_counter() - start) / self.steps
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
        return {
            "slices_per_s": round(batch / seconds, 1),
            "ms_per_step": round(seconds * 1e3, 2),
            "peak_mem_gib": None if peak is None else round(peak, 2),
        }

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def training_step(objective, amp: Precision, batches):
    """One optimiser step of ``objective`` on ``batches[i % len]`` as the engine runs it."""
    objective.to(amp.device).train()
    amp.prepare(objective)
    optimizer = torch.optim.Adam(objective.trainable_parameters(), lr=1e-4)

    def step(i: int) -> None:
        batch = batches[i % len(batches)]
        images = amp.inputs(batch["image"].to(amp.device, non_blocking=True))
        masks = batch["mask"].to(amp.device, non_blocking=True)
        teacher = cached_teacher_outputs(batch, amp.device)
        with amp.autocast():
            extra = {} if teacher is None else {"teacher_outputs": teacher}
            out = objective(images, masks, **extra)
        optimizer.zero_grad(set_to_none=True)
        amp.step(out.total, optimizer)

    return step


def forward_step(model, amp: Precision, images):
    model.to(amp.device).eval()
    if amp.channels_last:
        model.to(memory_format=torch.channels_last)
    images = amp.inputs(images)

    @torch.no_grad()
    def step(_i: int) -> None:
        with amp.autocast():
            model(images)

    return step


def with_flops(row: dict, flops: float, peak: dict | None, fp32_kind: str) -> dict:
    """``row`` with achieved TFLOP/s and, on a known GPU, its fraction of the peak."""
    if "slices_per_s" in row:
        kind = fp32_kind if row["precision"] == "fp32" else "bf16"
        row["tflops"] = round(flops * row["slices_per_s"] / 1e12, 2)
        if peak is not None:
            row["peak_kind"] = kind
            row["fraction_of_peak"] = round(row["tflops"] / peak[kind], 4)
    return row


def synthetic_cache(out: Path, size: int, quick: bool) -> Path:
    """A small synthetic cache at ``size``² (two sites); reused when already there."""
    data = out / "data"
    if not (data / "sites.json").is_file():
        cases, slices = (2, 8) if quick else (3, 24)
        synthesize(data, ["S4", "S5"], cases, size=64, slices=slices, montage=False)
    return prepare(data, out / f"cache-{size}", size=size, progress=False).cache


def distill_rows(args, bench, configs, widths, batch, student_rows) -> tuple[list, dict]:
    """Distillation steps ("ours") with the teacher run every step and from the cache."""
    device = bench.device
    cache = synthetic_cache(args.out, args.size, args.quick)
    dataset = SliceDataset(cache, None, None, augment="geometric", seed=0)
    torch.manual_seed(0)
    teacher = create_model("unetpp", 1, 2, widths[0])
    spec = {"name": "unetpp", "width": widths[0], "in_channels": 1, "num_classes": 2}
    teacher_file = save_checkpoint(
        args.out / "teacher.safetensors", teacher.state_dict(), {"model": spec}
    )
    rows, info = [], {}
    for precision, channels_last, _ in (configs[0], configs[3]):
        for cached in (False, True):
            amp = Precision(precision, device, channels_last)
            torch.manual_seed(0)
            student = create_model("enet", 1, 2, widths[1])
            objective = Distiller(teacher.to(device), student, preset_terms("ours")).to(device)
            source = dataset
            if cached:
                start = time.perf_counter()
                source, info = use_teacher_cache(
                    args.out / "teacher-cache", objective, teacher_file, dataset, amp, batch, False
                )
                info["seconds"] = round(time.perf_counter() - start, 2)
            loader = DataLoader(source, batch_size=batch, shuffle=True, drop_last=True)
            batches = list(itertools.islice(loader, bench.warmup + bench.steps))
            row = {"precision": precision, "channels_last": channels_last, "compile": False}
            row["teacher_cache"] = cached
            row.update(bench.run(training_step(objective, amp, batches), batch))
            plain = next(
                r
                for r in student_rows
                if r["precision"] == precision and r["channels_last"] == channels_last
            )
            if "ms_per_step" in row and "ms_per_step" in plain:
                row["over_plain_student_step"] = round(row["ms_per_step"] / plain["ms_per_step"], 2)
            rows.append(row)
    return rows, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/crossdistill-gpu-check"))
    parser.add_argument("--quick", action="store_true", help="CPU dry run at a tiny size")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per figure")
    parser.add_argument(
        "--compile",
        nargs="?",
        const="reduce-overhead",
        default=None,
        help="add torch.compile figures in this mode (default reduce-overhead: CUDA graphs)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    device = "cpu" if args.quick else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (use --quick for the CPU dry run)")
    args.size, batch, widths = (64, 2, (0.125, 0.25)) if args.quick else (384, 16, (1.0, 1.0))
    bench = Bench(device, args.steps or (2 if args.quick else 10), 1 if args.quick else 3)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    found = peak_entry(name) if device == "cuda" else None
    peak = None if found is None else found[1]
    fp32_kind = "tf32" if device == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"
    amp = "bf16" if args.quick else resolve_precision("auto", device)
    configs = [
        ("fp32", False, False),
        ("fp32", True, False),
        (amp, False, False),
        (amp, True, False),
    ]
    report: dict = {
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "size": args.size,
        "batch": batch,
        "steps": bench.steps,
        "peak": None if found is None else {"entry": found[0], "tflops": peak},
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "train": {},
    }
    torch.manual_seed(0)
    images = torch.randn(batch, 1, args.size, args.size, device=device)
    masks = (torch.rand(batch, args.size, args.size, device=device) > 0.7).long()
    batches = [{"image": images, "mask": masks}]
    nets = {"teacher": ("unetpp", widths[0]), "student": ("enet", widths[1])}
    flops = {}
    for role, (net, width) in nets.items():
        with torch.device("meta"):
            flops[role] = count_flops(create_model(net, 1, 2, width), args.size, convention="exact")
    report["gflops_forward_per_slice"] = {r: round(f / 1e9, 3) for r, f in flops.items()}
    compiled = [("fp32", False, args.compile), (amp, True, args.compile)] if args.compile else []
    timed = [(p, cl, None) for p, cl, _ in configs] + compiled
    for role, (net, width) in nets.items():
        report["train"][role] = []
        for precision, channels_last, compile_ in timed:
            objective = Distiller(None, create_model(net, 1, 2, width), {})
            step = training_step(
                objective, Precision(precision, device, channels_last, compile_), batches
            )
            row = {"precision": precision, "channels_last": channels_last, "compile": compile_}
            row.update(bench.run(step, batch))
            del objective, step
            report["train"][role].append(with_flops(row, 3 * flops[role], peak, fp32_kind))
    report["teacher_forward"] = []
    for precision, channels_last, _ in configs:
        step = forward_step(
            create_model("unetpp", 1, 2, widths[0]),
            Precision(precision, device, channels_last),
            images,
        )
        row = {"precision": precision, "channels_last": channels_last, "compile": False}
        row.update(bench.run(step, batch))
        report["teacher_forward"].append(with_flops(row, flops["teacher"], peak, fp32_kind))
    report["distill"], report["teacher_cache"] = distill_rows(
        args, bench, configs, widths, batch, report["train"]["student"]
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    print_table(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))


def print_table(report: dict) -> None:
    print(
        f"{report['device']}, torch {report['torch']}, {report['size']}², batch {report['batch']}"
    )
    if report["peak"]:
        print(f"peak dense TFLOP/s of {report['peak']['entry']}: {report['peak']['tflops']}")
    print(f"{'':<40}{'slices/s':>10}{'ms/step':>10}{'peak GiB':>10}{'TFLOP/s':>9}{'of peak':>9}")

    def line(label: str, r: dict) -> None:
        if "error" in r:
            print(f"{label:<40}{r['error']}")
            return
        mem = "" if r["peak_mem_gib"] is None else f"{r['peak_mem_gib']:.2f}"
        tf = f"{r['tflops']:.2f}" if "tflops" in r else ""
        frac = f"{r['fraction_of_peak']:.1%}" if "fraction_of_peak" in r else ""
        print(
            f"{label:<40}{r['slices_per_s']:>10.1f}{r['ms_per_step']:>10.2f}{mem:>10}{tf:>9}{frac:>9}"
        )

    def tag(r: dict) -> str:
        return (
            r["precision"]
            + (" CL" if r["channels_last"] else "")
            + (f" compiled {r['compile']}" if r["compile"] else "")
        )

    for role, rows in report["train"].items():
        for r in rows:
            line(f"train {role} {tag(r)}", r)
    for r in report["teacher_forward"]:
        line(f"teacher forward {tag(r)}", r)
    for r in report["distill"]:
        ratio = r.get("over_plain_student_step")
        what = "cached" if r["teacher_cache"] else "teacher run"
        line(f"distill, {what} {tag(r)}" + (f" ×{ratio}" if ratio else ""), r)
    info = report["teacher_cache"]
    if info:
        mib = info["bytes"] / 2**20
        verb = "built" if info["built"] else "verified and reused"
        print(f"teacher cache {mib:.0f} MiB, {verb} in {info['seconds']} s: {info['path']}")
    print(f"total {report['seconds']} s")


if __name__ == "__main__":
    main()
