"""Table 1: parameters, FLOPs and CPU latency of the five networks, beside the paper's.

Parameters and FLOPs are counted at the paper's input (1×1×384×384, width 1; FLOPs in the
paper's convention, :mod:`crossdistill.models.complexity`); CPU latency is the median of
batch-1 forward passes at the preset's slice size (384² for ``paper``, 128² for ``demo``)
on the machine that runs the command, with its torch threads.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from crossdistill.errors import InputError
from crossdistill.models import complexity_rows, create_model
from crossdistill.models.complexity import measure_latency
from crossdistill.paper import MODEL_LABELS
from crossdistill.summary_check import number


def table1_rows(latency_size: int | None = 384) -> list[dict]:
    """One row per network; ``latency_ms`` at ``latency_size``² (``None``: not measured)."""
    rows = complexity_rows(size=384, latency=False)
    for row in rows:
        row["label"] = MODEL_LABELS[row["name"]]
        row["latency_size"] = latency_size
        row["latency_ms"] = (
            measure_latency(create_model(row["name"]), latency_size, 1, 1, 3)
            if latency_size
            else None
        )
    return rows


def render_table1(rows: list[dict]) -> str:
    """Markdown: ours beside the paper, relative differences."""
    size = rows[0].get("latency_size") if rows else None
    lines = [
        "# Table 1 — complexity of the networks",
        "",
        "1 input channel, 2 classes, width 1; parameters and FLOPs at 1×1×384×384 "
        f"(FLOPs in the paper's convention); CPU latency: median of 3 batch-1 passes at "
        f"{size}² with {torch.get_num_threads()} torch threads."
        if size
        else "",
        "",
        "| network | params (M) | paper | Δ | GFLOPs | paper | Δ | CPU latency (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        latency = f"{r['latency_ms']:.1f}" if r.get("latency_ms") is not None else "–"
        lines.append(
            f"| {r['label']} | {r['params_m']:.3f} | {r['paper_params_m']:.3f} | "
            f"{r['params_rel_diff']:+.1%} | {r['gflops']:.2f} | {r['paper_gflops']:.2f} | "
            f"{r['gflops_rel_diff']:+.1%} | {latency} |"
        )
    return "\n".join(lines) + "\n"


CSV_COLUMNS = (
    "name",
    "params_m",
    "paper_params_m",
    "params_rel_diff",
    "gflops",
    "paper_gflops",
    "gflops_rel_diff",
    "latency_size",
    "latency_ms",
)


_NUMBERS = CSV_COLUMNS[1:7]  # params_m … gflops_rel_diff: what every row must hold as a number


def read_table1(path: Path) -> list[dict]:
    """The rows of a ``table1.json``, each checked for what the table prints.

    Raises:
        InputError: naming ``path`` and the first thing missing or of the wrong type.
    """
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))["rows"]
        if not isinstance(rows, list):
            raise ValueError("rows is not a list")
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row["label"], str):
                raise ValueError(f"a row without its label: {row!r:.80}")
            for key in _NUMBERS:
                number(row[key], key)
            for key in ("latency_ms", "latency_size"):
                if row.get(key) is not None:
                    number(row[key], key)
    except KeyError as err:
        raise InputError(path, f"not a Table 1 record (no key {err})") from None
    except (OSError, ValueError, TypeError) as err:
        raise InputError(path, f"not a Table 1 record ({err})") from None
    return rows


def write_table1(out: Path, rows: list[dict]) -> list[Path]:
    """``table1.md``, ``.csv`` and ``.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "table1.json").write_text(
        json.dumps({"table": 1, "rows": rows}, indent=1), encoding="utf-8"
    )
    (out / "table1.md").write_text(render_table1(rows), encoding="utf-8")
    lines = [",".join(CSV_COLUMNS)]
    for r in rows:
        lines.append(",".join("" if r.get(c) is None else str(r[c]) for c in CSV_COLUMNS))
    (out / "table1.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [out / f"table1.{ext}" for ext in ("md", "csv", "json")]
