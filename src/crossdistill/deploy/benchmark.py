"""What a student saves against a teacher, in numbers: size, FLOPs, CPU speed, training cost.

For each network: parameters, FLOPs (:func:`crossdistill.models.count_flops`, the paper's
convention), size on disk (safetensors bytes of the state dict; for the students also the
ONNX file), CPU latency at batch 1 and throughput at batch ``batch`` in PyTorch eager
(``inference_mode``) and, for the students, ONNX Runtime (:func:`~crossdistill.deploy.runtime.
session_options`: every graph optimisation, as many intra-op threads as torch uses). And the
training side: one distillation step (frozen teacher forward + student forward/backward +
Adam step + the KD terms of a preset, through the project's distiller) against one plain
student step on the same batch.

Every timed case is warmed up, then the cases are timed **round-robin** — one run of each
case per round, ``repeats`` rounds — and each figure is the median over rounds. Load from
other processes thus hits all cases alike, and ratios between figures hold on a noisy
machine even when the absolute times move. Before each timed run the benchmark pauses
``SETTLE_S``: after a run, ONNX Runtime's and OpenMP's worker threads spin-wait for more work
for a while, and a case timed straight after another engine's run shares the cores with them
(ENet in PyTorch at 384², 2 threads: 90 ms right after an ONNX Runtime run, 52–55 ms after a
50 ms pause, 52 ms in a process without ONNX Runtime).

PyTorch bf16 is timed only where the CPU computes in bf16 (AVX-512 BF16 or AMX, see
:func:`native_bf16`) unless asked for: elsewhere oneDNN emulates it, and ENet at 384² took
2.08 s in bf16 against 0.21 s in float32 (AVX2-only 2-core EPYC, 2026-12-05), which no user
would ship and which made a three-student benchmark run for over half an hour.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

from crossdistill.deploy.export import LogitsOnly, write_onnx
from crossdistill.deploy.metadata import INPUT_NAME, DeploymentMetadata
from crossdistill.deploy.quantize import quantize_onnx
from crossdistill.deploy.runtime import onnx_session
from crossdistill.distill import preset_terms
from crossdistill.errors import CrossDistillError
from crossdistill.methods import create_objective
from crossdistill.models import count_flops, count_parameters, create_model
from crossdistill.models.base import SIDE_MULTIPLE
from crossdistill.models.registry import STUDENTS, canonical_name, list_models

#: Pause (seconds) before each timed run, so the previous case's spinning threads are idle.
SETTLE_S = 0.05


@dataclass
class BenchmarkOptions:
    """What to measure; the defaults are the paper's geometry (384², batch 16, ``ours``)."""

    size: int = 384
    networks: list[str] | None = None  # default: all five
    repeats: int = 3
    warmup: int = 1
    batch: int = 16  # throughput batch
    train_batch: int = 16
    teacher: str = "deeplabv3plus"
    student: str = "enet"
    preset: str = "ours"
    width: float = 1.0  # < 1 only for quick checks
    training: bool = True
    low_precision: bool = True  # students also as int8 ONNX and in PyTorch bf16
    bf16: bool | None = None  # PyTorch bf16 too; None: only where native_bf16()
    threads: int = field(default_factory=torch.get_num_threads)

    def check(self) -> None:
        if self.size < SIDE_MULTIPLE or self.size % SIDE_MULTIPLE:
            raise CrossDistillError(
                f"--size must be a positive multiple of {SIDE_MULTIPLE}, got {self.size}"
            )
        for name, value in (("repeats", self.repeats), ("batch", self.batch)):
            if value < 1:
                raise CrossDistillError(f"--{name} must be at least 1, got {value}")
        if self.train_batch < 2:
            raise CrossDistillError("--train-batch must be at least 2 (batch norm in training)")
        if self.threads < 1:
            raise CrossDistillError(f"--threads must be at least 1, got {self.threads}")
        if self.warmup < 0:
            raise CrossDistillError(f"--warmup must be ≥ 0, got {self.warmup}")


Case = Callable[[], object]


def _time_round_robin(cases: dict[str, Case], warmup: int, repeats: int, advance) -> dict:
    """Median milliseconds of each case, timed one run per case per round."""
    for case in cases.values():
        for _ in range(warmup):
            case()
        advance(status="warm-up")
    times: dict[str, list[float]] = {key: [] for key in cases}
    for round_ in range(repeats):
        for key, case in cases.items():
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            case()
            times[key].append((time.perf_counter() - start) * 1e3)
        advance(status=f"round {round_ + 1}/{repeats}")
    return {key: statistics.median(values) for key, values in times.items()}


def _inference_cases(name: str, model: torch.nn.Module, opts: BenchmarkOptions, tmp: Path):
    """Static figures of ``name`` and its timed inference cases (torch, and ORT for students)."""
    generator = torch.Generator().manual_seed(0)
    inputs = {
        b: torch.randn(b, 1, opts.size, opts.size, generator=generator) for b in (1, opts.batch)
    }
    with torch.device("meta"):
        meta_model = create_model(name, width=opts.width)
    row: dict[str, Any] = {
        "role": "student" if name in STUDENTS else "teacher",
        "params": count_parameters(model),
        "gflops": count_flops(meta_model, opts.size, 1) / 1e9,
        "safetensors_bytes": len(safetensors_bytes(model.state_dict())),
    }
    module = LogitsOnly(model).eval()

    def torch_case(x: torch.Tensor, autocast: torch.dtype | None = None) -> Case:
        def run() -> object:
            with torch.inference_mode(), torch.autocast("cpu", autocast, enabled=bool(autocast)):
                return module(x)

        return run

    cases = {(name, "torch", b): torch_case(x) for b, x in inputs.items()}
    if name not in STUDENTS:
        return row, cases
    if opts.low_precision and (native_bf16() if opts.bf16 is None else opts.bf16):
        for b, x in inputs.items():
            cases[(name, "torch_bf16", b)] = torch_case(x, torch.bfloat16)
    spec = {"name": name, "width": opts.width, "in_channels": 1, "num_classes": 2}
    meta = DeploymentMetadata(model=spec, size=opts.size, channels=1)
    files = {"onnxruntime": write_onnx(module, meta, tmp / f"{name}.onnx")}
    row["onnx_bytes"] = files["onnxruntime"].stat().st_size
    if opts.low_precision:
        # speed only: calibrated on the timed inputs (a real export calibrates on cached
        # slices and checks Dice, see crossdistill.deploy.quantize)
        calibration = inputs[opts.batch].numpy()
        int8 = quantize_onnx(files["onnxruntime"], tmp / f"{name}.int8.onnx", calibration, meta)
        files["onnxruntime_int8"] = int8
        row["onnx_int8_bytes"] = int8.stat().st_size
    for engine, file in files.items():
        session = onnx_session(file, opts.threads)
        for b, x in inputs.items():
            feed = {INPUT_NAME: x.numpy()}
            cases[(name, engine, b)] = lambda session=session, feed=feed: session.run(None, feed)
    return row, cases


def _training_cases(opts: BenchmarkOptions) -> tuple[dict[str, Any], dict[str, Case]]:
    """One plain student step and one distillation step on the same batch (both Adam)."""
    teacher = create_model(opts.teacher, width=opts.width)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(opts.train_batch, 1, opts.size, opts.size, generator=generator)
    yy, xx = torch.meshgrid(torch.arange(opts.size), torch.arange(opts.size), indexing="ij")
    disc = ((yy - opts.size / 2) ** 2 + (xx - opts.size / 2) ** 2) < (opts.size / 5) ** 2
    masks = disc.long().expand(opts.train_batch, -1, -1).contiguous()

    def step_case(terms: dict, with_teacher: bool) -> Case:
        torch.manual_seed(0)
        student = create_model(opts.student, width=opts.width)
        objective = create_objective(
            "supervised",
            student,
            [],
            1,
            teacher=teacher if with_teacher else None,
            terms=terms,
        ).train()
        optimizer = torch.optim.Adam(list(objective.trainable_parameters()), lr=1e-4)

        def step() -> object:
            optimizer.zero_grad(set_to_none=True)
            loss = objective(images, masks).total
            loss.backward()
            optimizer.step()
            return loss

        return step

    terms = preset_terms(opts.preset)
    info = {
        "teacher": opts.teacher,
        "student": opts.student,
        "preset": opts.preset,
        "terms": sorted(terms),
        "batch": opts.train_batch,
        "optimizer": "adam",
    }
    cases = {"student_step": step_case({}, False), "distill_step": step_case(terms, True)}
    return info, cases


def run_benchmark(opts: BenchmarkOptions | None = None, progress: bool = True) -> dict[str, Any]:
    """Measure every figure of the module doc; returns a JSON-ready dict.

    Keys: ``networks`` (name → ``params``, ``gflops``, ``safetensors_bytes``,
    ``latency_ms_torch``, ``throughput_torch`` in images/s at ``batch``, and for the students
    ``onnx_bytes``, ``latency_ms_onnxruntime``, ``throughput_onnxruntime``, and unless
    ``low_precision`` is off ``onnx_int8_bytes``, ``latency_ms_onnxruntime_int8``,
    ``throughput_onnxruntime_int8`` (static int8 QDQ graph) and ``latency_ms_torch_bf16``,
    ``throughput_torch_bf16`` (autocast to bfloat16 on the CPU; by default only where
    :func:`native_bf16`, see ``machine.native_bf16``)), ``training``
    (``student_step_ms``, ``distill_step_ms``, teacher, student, terms, batch),
    ``distill_step_over_student_step``, ``goals`` (:func:`goal_ratios`), the options, the
    machine and the load average before and after.
    """
    from crossdistill.progress import progress_bar

    opts = opts or BenchmarkOptions()
    opts.check()
    names = [canonical_name(n) for n in (opts.networks or list_models())]
    opts = replace(opts, teacher=canonical_name(opts.teacher), student=canonical_name(opts.student))
    load_before = _load_average()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(opts.threads)
    rows: dict[str, dict[str, Any]] = {}
    cases: dict[Any, Case] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="crossdistill-bench-") as tmp:
            torch.manual_seed(0)
            for name in names:
                rows[name], network_cases = _inference_cases(
                    name, create_model(name, width=opts.width).eval(), opts, Path(tmp)
                )
                cases.update(network_cases)
            training: dict[str, Any] = {}
            if opts.training:
                training, train_cases = _training_cases(opts)
                cases.update(train_cases)
            with progress_bar(len(cases) + opts.repeats, "benchmark", enabled=progress) as advance:
                timings = _time_round_robin(cases, opts.warmup, opts.repeats, advance)
    finally:
        torch.set_num_threads(previous_threads)
    for (name, engine, batch), ms in ((k, v) for k, v in timings.items() if isinstance(k, tuple)):
        if batch == 1:
            rows[name][f"latency_ms_{engine}"] = ms
        if batch == opts.batch:
            rows[name][f"throughput_{engine}"] = opts.batch / (ms / 1e3)
    result: dict[str, Any] = {
        "size": opts.size,
        "batch": opts.batch,
        "width": opts.width,
        "repeats": opts.repeats,
        "warmup": opts.warmup,
        "threads": opts.threads,
        "machine": _machine(),
        "load_average": {"before": load_before, "after": _load_average()},
        "networks": rows,
    }
    if opts.training:
        training["student_step_ms"] = timings["student_step"]
        training["distill_step_ms"] = timings["distill_step"]
        result["training"] = training
        result["distill_step_over_student_step"] = timings["distill_step"] / timings["student_step"]
    result["goals"] = goal_ratios(rows)
    return result


def goal_ratios(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The speed goals as measured at batch 1: ENet in ONNX Runtime against DeepLabV3+ and
    against ENet, both in PyTorch eager (goals ≥ 20 and ≥ 1.3); ENet's float32 ONNX graph
    against its int8 graph (goal ≥ 2), and PyTorch float32 against bf16."""
    enet = rows.get("enet", {})
    enet_ort = enet.get("latency_ms_onnxruntime")
    goals: dict[str, float] = {}
    if enet_ort and enet.get("latency_ms_onnxruntime_int8"):
        goals["enet_onnxruntime_over_enet_onnxruntime_int8"] = (
            enet_ort / enet["latency_ms_onnxruntime_int8"]
        )
    if enet.get("latency_ms_torch_bf16"):
        goals["enet_torch_over_enet_torch_bf16"] = (
            enet["latency_ms_torch"] / enet["latency_ms_torch_bf16"]
        )
    if enet_ort:
        if "deeplabv3plus" in rows:
            goals["deeplabv3plus_torch_over_enet_onnxruntime"] = (
                rows["deeplabv3plus"]["latency_ms_torch"] / enet_ort
            )
        goals["enet_torch_over_enet_onnxruntime"] = rows["enet"]["latency_ms_torch"] / enet_ort
    return goals


def _load_average() -> float | None:
    """The 1-minute load average (other jobs on the machine), where the OS reports one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _machine() -> dict[str, Any]:
    import onnxruntime

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "native_bf16": native_bf16(),
    }


def native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX-512 BF16 or AMX tiles) for oneDNN to use."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
