"""Cost of the loss terms: time and peak memory of forward + backward.

    python benchmarks/losses.py [--json] [--batch 16] [--size 384] [--device cpu|cuda]

At batch × 2 classes × size² (paper: 16 × 2 × 384²) it measures each loss (segmentation, LM,
KMM on ENet's "high" feature shape — 128 channels at size/8 — against a 512-channel teacher
feature, AAM), AAM fused by ``torch.compile`` (``aam.fused``; compiled in the warm-up runs),
a naive unfold-based AAM written here for comparison, and one forward + backward of ENet (the
student step the KD terms are added to). ``--no-fused`` leaves the compiled AAM out.

Time: median over ``--repeats`` runs after two warm-up runs (CUDA: synchronised). On a shared
CPU the numbers move with the load of other processes; the report gives the load average.
Peak memory: bytes allocated above the level at the start of the measured call, i.e.
inputs excluded, gradients of the inputs included.
  * CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
  * CPU: every allocation and free of torch's CPU allocator is recorded by
    ``torch.profiler`` (``profile_memory=True``) in a separate, untimed run; the peak is the
    maximum of the running sum of the allocation events in time order. This is the live
    tensor memory, independent of glibc's caching (which makes RSS deltas unreliable, and
    ``tracemalloc`` does not see torch's allocations at all).

``--json`` prints one JSON object with ``aam_speedup_vs_unfold`` (naive time / AAM time;
goal ≥ 3), ``aam_fused_speedup_vs_unfold`` (naive time / fused AAM time; issue 20's GPU goal
≥ 3), ``aam_memory_ratio_vs_unfold`` (AAM peak / naive peak; goal ≤ 1/3) and
``kd_terms_over_student_step`` ((LM + KMM + AAM time) / ENet step time; goal ≤ 0.25).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.losses import (
    AffinityLoss,
    KernelMatrixLoss,
    affinity_loss,
    logits_kl,
    segmentation_loss,
)
from crossdistill.losses.affinity import teacher_labels

Step = Callable[[], None]


def naive_affinity_loss(student: Tensor, teacher: Tensor, margin: float = 3.0) -> Tensor:
    """AAM via ``F.unfold`` (one copy of the probabilities per neighbour), size 1.

    Plain autograd. The teacher's labels use the same fast argmax as ``affinity_loss``
    (``Tensor.argmax(1)`` alone costs more than the whole AAM on CPU), so the comparison
    measures the pair computation only.
    """
    N, _, H, W = student.shape
    prob = torch.softmax(student.float(), dim=1).clamp(1e-4, 1.0)
    logp = prob.log()
    labels = teacher_labels(teacher).unsqueeze(1).float()

    def neighbours(x: Tensor, value: float = 0.0) -> Tensor:
        ch = x.shape[1]
        padded = F.pad(x, (1, 1, 1, 1), value=value)
        cols = F.unfold(padded, kernel_size=3).view(N, ch, 9, H, W)
        return cols[:, :, [0, 1, 2, 3, 5, 6, 7, 8]]  # (N, ch, 8, H, W)

    p_j, logp_j = neighbours(prob), neighbours(logp)
    kl = (p_j * (logp_j - logp.unsqueeze(2))).sum(1)  # KL(F_j || F_i): (N, 8, H, W)
    lab_j = neighbours(labels, value=-1.0)[:, 0]
    inside = lab_j >= 0
    same = (lab_j == labels) & inside
    diff = (lab_j != labels) & inside
    pos = (kl * same).sum() / same.sum().clamp_min(1)
    neg = (torch.relu(margin - kl) * diff).sum() / diff.sum().clamp_min(1)
    return pos + neg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step: Step, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``step`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cpu_peak_bytes(step: Step) -> int:
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            events.append((event.start_time_ns, event.extra_fields.alloc_size))
        stack.extend(event.children)
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


def peak_bytes(step: Step, device: torch.device) -> int:
    """Peak bytes allocated by ``step`` above the level when it starts (method: module doc)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    return _cpu_peak_bytes(step)


def _loss_step(loss_fn: Callable[[], Tensor], *leaves: Tensor) -> Step:
    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        loss_fn().backward()
        for leaf in leaves:
            leaf.grad = None

    return step


def _teacher_logits(batch: int, size: int, device: torch.device) -> Tensor:
    """A gland-like disc per sample (so that P− is a boundary band, as in real data)."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radius = torch.linspace(0.15, 0.3, batch).view(batch, 1, 1) * size
    inside = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).sqrt() < radius
    fg = torch.where(inside, 3.0, -3.0) + 0.5 * torch.randn(batch, size, size)
    return torch.stack([-fg, fg], dim=1).to(device)


def _student(device: torch.device) -> tuple[nn.Module, str]:
    try:
        from crossdistill.models import create_model  # type: ignore[attr-defined]

        return create_model("enet").to(device), "create_model('enet')"
    except (ImportError, AttributeError, KeyError) as err:
        print(f"[losses benchmark] create_model('enet') unavailable ({err})", file=sys.stderr)
    try:
        from crossdistill.models.enet import ENet  # type: ignore[attr-defined]

        return ENet().to(device), "crossdistill.models.enet.ENet()"
    except Exception as err:
        print(f"[losses benchmark] ENet unavailable ({err}); using a stand-in", file=sys.stderr)
    standin = nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 128, 3, stride=4, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 2, 1),
        nn.Upsample(scale_factor=8, mode="bilinear"),
    )
    return standin.to(device), "stand-in (2 convs; ENet missing)"


def run(
    batch: int, size: int, device: torch.device, repeats: int, fused: bool = True
) -> dict[str, Any]:
    torch.manual_seed(0)
    classes, fs = 2, size // 8
    logits = (0.5 * torch.randn(batch, classes, size, size, device=device)).requires_grad_()
    teacher = _teacher_logits(batch, size, device)
    masks = teacher.argmax(1)
    kmm = KernelMatrixLoss(128, 512).to(device)
    feat_s = torch.randn(batch, 128, fs, fs, device=device).requires_grad_()
    feat_t = torch.randn(batch, 512, fs, fs, device=device)
    with torch.no_grad():
        ours, naive = affinity_loss(logits, teacher), naive_affinity_loss(logits, teacher)
    assert math.isclose(float(ours), float(naive), rel_tol=1e-4), (float(ours), float(naive))
    if fused:
        z = logits.detach().clone().requires_grad_()
        value = affinity_loss(z, teacher, fused=True)
        (grad,) = torch.autograd.grad(value, z)
        z = logits.detach().clone().requires_grad_()
        (eager_grad,) = torch.autograd.grad(affinity_loss(z, teacher), z)
        value = float(value.detach())
        assert math.isclose(value, float(ours), rel_tol=1e-4), (value, float(ours))
        assert torch.allclose(grad, eager_grad, rtol=1e-3, atol=1e-9), "fused AAM gradient"

    student, student_name = _student(device)
    images = torch.randn(batch, 1, size, size, device=device)

    def student_step() -> None:
        student.zero_grad(set_to_none=True)
        out = student(images)
        out_logits = out.logits if hasattr(out, "logits") else out
        segmentation_loss(out_logits, masks).backward()
        student.zero_grad(set_to_none=True)

    steps: dict[str, Step] = {
        "segmentation": _loss_step(lambda: segmentation_loss(logits, masks), logits),
        "lm": _loss_step(lambda: logits_kl(logits, teacher), logits),
        "kmm": _loss_step(lambda: kmm(feat_s, feat_t), feat_s),
        "aam": _loss_step(lambda: affinity_loss(logits, teacher), logits),
        "aam_sizes_1_2_3": _loss_step(
            lambda: affinity_loss(logits, teacher, sizes=(1, 2, 3)), logits
        ),
        "aam_naive_unfold": _loss_step(lambda: naive_affinity_loss(logits, teacher), logits),
        **(
            {"aam_fused": _loss_step(lambda: affinity_loss(logits, teacher, fused=True), logits)}
            if fused
            else {}
        ),
        # the readings of issue 18 (goal: each within 2x of "aam")
        **{
            f"aam_stride{r}": _loss_step(
                lambda r=r: AffinityLoss(stride=r)(logits, teacher), logits
            )
            for r in (2, 4, 8)
        },
        "aam_features_high": _loss_step(
            lambda: AffinityLoss(on="features")(feat_s, teacher), feat_s
        ),
        "aam_relational": _loss_step(
            lambda: AffinityLoss(match="teacher")(logits, teacher), logits
        ),
        "enet_step": student_step,
    }
    results: dict[str, dict[str, float]] = {}
    for name, step in steps.items():
        seconds = time_step(step, device, repeats)
        peak = peak_bytes(step, device)
        results[name] = {"time_ms": 1e3 * seconds, "peak_mib": peak / 2**20}
    kd = sum(results[k]["time_ms"] for k in ("lm", "kmm", "aam"))
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch": batch,
        "size": size,
        "repeats": repeats,
        "student": student_name,
        "load_average": _load_average(),
        "memory_method": "cuda max_memory_allocated"
        if device.type == "cuda"
        else "torch.profiler allocation events (live tensor bytes)",
        "results": results,
        "aam_speedup_vs_unfold": results["aam_naive_unfold"]["time_ms"] / results["aam"]["time_ms"],
        "aam_memory_ratio_vs_unfold": results["aam"]["peak_mib"]
        / results["aam_naive_unfold"]["peak_mib"],
        **(
            {
                "aam_fused_speedup_vs_unfold": results["aam_naive_unfold"]["time_ms"]
                / results["aam_fused"]["time_ms"],
                "aam_fused_speedup_vs_aam": results["aam"]["time_ms"]
                / results["aam_fused"]["time_ms"],
            }
            if fused
            else {}
        ),
        "kd_terms_over_student_step": kd / results["enet_step"]["time_ms"],
        "aam_readings_over_aam": {
            k: results[k]["time_ms"] / results["aam"]["time_ms"]
            for k in results
            if k.startswith(("aam_stride", "aam_features", "aam_relational"))
        },
    }


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _table(report: dict[str, Any]) -> str:
    lines = [
        f"device {report['device']} ({report['threads']} threads), batch {report['batch']} × "
        f"2 × {report['size']}², median of {report['repeats']}; student: {report['student']}; "
        f"load average {report['load_average']}",
        f"{'forward + backward':<22}{'time (ms)':>12}{'peak (MiB)':>12}",
    ]
    for name, r in report["results"].items():
        lines.append(f"{name:<22}{r['time_ms']:>12.1f}{r['peak_mib']:>12.1f}")
    speed, mem = report["aam_speedup_vs_unfold"], report["aam_memory_ratio_vs_unfold"]
    share = report["kd_terms_over_student_step"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines += [
        f"AAM speed-up vs unfold: {speed:.2f}×  (goal ≥ 3: {verdict(speed >= 3)})",
        f"AAM memory / unfold:    {mem:.3f}   (goal ≤ 0.333: {verdict(mem <= 1 / 3)})",
        *(
            [
                f"fused AAM vs unfold:    {report['aam_fused_speedup_vs_unfold']:.2f}×  (goal ≥ 3 "
                f"on a GPU: {verdict(report['aam_fused_speedup_vs_unfold'] >= 3)}); vs eager "
                f"AAM: {report['aam_fused_speedup_vs_aam']:.2f}×"
            ]
            if "aam_fused_speedup_vs_unfold" in report
            else []
        ),
        f"LM+KMM+AAM / ENet step: {share:.3f}   (goal ≤ 0.25: {verdict(share <= 0.25)})",
        *(
            f"{k} / aam: {v:.2f}×  (goal ≤ 2: {verdict(v <= 2)})"
            for k, v in report["aam_readings_over_aam"].items()
        ),
        f"peak memory: {report['memory_method']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-fused", dest="fused", action="store_false", help="leave out the compiled AAM"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    report = run(args.batch, args.size, torch.device(args.device), args.repeats, args.fused)
    print(json.dumps(report) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
