"""The deployment benchmark's result (:func:`crossdistill.deploy.benchmark.run_benchmark`) as
a rich table for the terminal and as Markdown for BENCHMARKS.md."""

from __future__ import annotations

from typing import Any

#: (header, key, format, scale) of each figure column, after the network's name
COLUMNS = (
    ("params (M)", "params", ".3f", 1e-6),
    ("GFLOPs", "gflops", ".2f", 1.0),
    ("safetensors (MB)", "safetensors_bytes", ".2f", 1e-6),
    ("ONNX (MB)", "onnx_bytes", ".2f", 1e-6),
    ("ONNX int8 (MB)", "onnx_int8_bytes", ".2f", 1e-6),
    ("torch ms (b1)", "latency_ms_torch", ".1f", 1.0),
    ("torch bf16 ms (b1)", "latency_ms_torch_bf16", ".1f", 1.0),
    ("ORT ms (b1)", "latency_ms_onnxruntime", ".1f", 1.0),
    ("ORT int8 ms (b1)", "latency_ms_onnxruntime_int8", ".1f", 1.0),
    ("torch img/s (b{batch})", "throughput_torch", ".2f", 1.0),
    ("ORT img/s (b{batch})", "throughput_onnxruntime", ".2f", 1.0),
    ("ORT int8 img/s (b{batch})", "throughput_onnxruntime_int8", ".2f", 1.0),
)


def _columns(result: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    """The columns that at least one network has a figure for."""
    rows = result["networks"].values()
    return [c for c in COLUMNS if any(row.get(c[1]) is not None for row in rows)]


def headers(result: dict[str, Any]) -> list[str]:
    """``network`` and the headers of :func:`_columns`, with the throughput batch filled in."""
    return ["network"] + [c[0].format(batch=result["batch"]) for c in _columns(result)]


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """One list of cells per network, in :func:`headers` order (``–`` where a network has
    no such figure: teachers run in PyTorch float32 only)."""
    columns = _columns(result)
    return [
        [name]
        + [
            "–" if row.get(key) is None else format(row[key] * scale, fmt)
            for _, key, fmt, scale in columns
        ]
        for name, row in result["networks"].items()
    ]


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The training-side figures and the goal ratios, one sentence each."""
    lines = []
    if "training" in result:
        t = result["training"]
        lines.append(
            f"training step, batch {t['batch']} at {result['size']}²: {t['student']} alone "
            f"{t['student_step_ms']:.0f} ms, distilled from {t['teacher']} ({t['preset']}: "
            f"{', '.join(t['terms'])}) {t['distill_step_ms']:.0f} ms — "
            f"{result['distill_step_over_student_step']:.2f}×"
        )
    goals = result.get("goals", {})
    if "deeplabv3plus_torch_over_enet_onnxruntime" in goals:
        lines.append(
            "DeepLabV3+ (torch) / ENet (ONNX Runtime) latency at batch 1: "
            f"{goals['deeplabv3plus_torch_over_enet_onnxruntime']:.1f}× (goal ≥ 20×)"
        )
    if "enet_torch_over_enet_onnxruntime" in goals:
        lines.append(
            "ENet torch / ENet ONNX Runtime latency at batch 1: "
            f"{goals['enet_torch_over_enet_onnxruntime']:.2f}× (goal ≥ 1.3×)"
        )
    if "enet_onnxruntime_over_enet_onnxruntime_int8" in goals:
        lines.append(
            "ENet ONNX Runtime float32 / int8 latency at batch 1: "
            f"{goals['enet_onnxruntime_over_enet_onnxruntime_int8']:.2f}× (goal ≥ 2×)"
        )
    if "enet_torch_over_enet_torch_bf16" in goals:
        lines.append(
            "ENet torch float32 / bf16 latency at batch 1: "
            f"{goals['enet_torch_over_enet_torch_bf16']:.2f}×"
        )
    elif result.get("machine", {}).get("native_bf16") is False:
        lines.append(
            "PyTorch bf16 not timed: this CPU has no AVX-512 BF16 or AMX (--bf16 forces it)"
        )
    return lines


def rich_table(result: dict[str, Any]):
    """A :class:`rich.table.Table` of the result."""
    from rich.table import Table

    title = (
        f"Deployment benchmark at {result['size']}², {result['threads']} CPU thread(s), "
        f"median of {result['repeats']} round(s)"
    )
    table = Table(title=title)
    for index, column in enumerate(headers(result)):
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    for cells in table_rows(result):
        table.add_row(*cells)
    return table


def markdown_table(result: dict[str, Any]) -> str:
    """The same table in Markdown, followed by the summary lines."""
    header = headers(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(result)]
    return "\n".join(lines + [""] + [f"- {line}" for line in summary_lines(result)])
