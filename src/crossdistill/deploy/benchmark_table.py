"""The deployment benchmark's result (:func:`crossdistill.deploy.benchmark.run_benchmark`) as
a rich table for the terminal and as Markdown for BENCHMARKS.md."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    "network",
    "params (M)",
    "GFLOPs",
    "safetensors (MB)",
    "ONNX (MB)",
    "torch ms (b1)",
    "ORT ms (b1)",
    "torch img/s (b{batch})",
    "ORT img/s (b{batch})",
)


def _cell(row: dict[str, Any], key: str, fmt: str, scale: float = 1.0) -> str:
    value = row.get(key)
    return "–" if value is None else format(value * scale, fmt)


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """One list of cells per network, in :data:`COLUMNS` order."""
    return [
        [
            name,
            _cell(row, "params", ".3f", 1e-6),
            _cell(row, "gflops", ".2f"),
            _cell(row, "safetensors_bytes", ".2f", 1e-6),
            _cell(row, "onnx_bytes", ".2f", 1e-6),
            _cell(row, "latency_ms_torch", ".1f"),
            _cell(row, "latency_ms_onnxruntime", ".1f"),
            _cell(row, "throughput_torch", ".2f"),
            _cell(row, "throughput_onnxruntime", ".2f"),
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
    return lines


def rich_table(result: dict[str, Any]):
    """A :class:`rich.table.Table` of the result."""
    from rich.table import Table

    title = (
        f"Deployment benchmark at {result['size']}², {result['threads']} CPU thread(s), "
        f"median of {result['repeats']} round(s)"
    )
    table = Table(title=title)
    for index, column in enumerate(COLUMNS):
        justify = "left" if index == 0 else "right"
        table.add_column(column.format(batch=result["batch"]), justify=justify, no_wrap=index == 0)
    for cells in table_rows(result):
        table.add_row(*cells)
    return table


def markdown_table(result: dict[str, Any]) -> str:
    """The same table in Markdown, followed by the summary lines."""
    header = [c.format(batch=result["batch"]) for c in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(result)]
    return "\n".join(lines + [""] + [f"- {line}" for line in summary_lines(result)])
