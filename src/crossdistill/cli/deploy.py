"""``predict``, ``models``, ``export`` and ``benchmark``: the student in use."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crossdistill.cli.app import (
    app,
    echo,
    split_names,
)
from crossdistill.errors import CrossDistillError


@app.command()
def predict(
    input_: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="NIfTI, MHD or NRRD file, DICOM series folder, or a folder of them.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Argument(
            metavar="OUTPUT", help="Mask file (.nii.gz), or a folder for a folder of inputs."
        ),
    ],
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", help="Run folder, checkpoint, or exported .onnx file.")
    ],
    engine: Annotated[
        str | None,
        typer.Option(help="torch or onnxruntime (default: onnxruntime for .onnx, else torch)."),
    ] = None,
    probabilities: Annotated[
        bool,
        typer.Option(
            "--probabilities", help="Also write <name>_prob.nii.gz (foreground, float32)."
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Slices per network call.")] = 16,
    channel: Annotated[
        int | None,
        typer.Option(
            help="For 4-D NIfTI inputs whose 4th axis holds channels (Decathlon: 0 = T2, "
            "1 = ADC): the channel to segment."
        ),
    ] = None,
) -> None:
    """Segment a scan (or a folder of scans) into NIfTI masks on the input's exact grid."""
    from crossdistill.deploy.predict import predict as run_predict

    report = run_predict(
        checkpoint, input_, output, engine, probabilities, batch_size, channel=channel
    )
    for case in report.written:
        echo(f"{case.mask}: {case.foreground_ml:.1f} ml segmented ({case.input.name})")
        if case.warning:
            typer.echo(f"crossdistill: warning: {case.input}: {case.warning}", err=True)
    for path, reason in report.failed:
        typer.echo(f"crossdistill: error: {path}: {reason}", err=True)
    if report.ignored:
        names = ", ".join(p.name for p in report.ignored[:3])
        more = f" and {len(report.ignored) - 3} more" if len(report.ignored) > 3 else ""
        typer.echo(
            f"ignored {len(report.ignored)} files that are not volumes: {names}{more}", err=True
        )
    if report.failed or len(report.written) > 1:
        echo(f"{len(report.written)} written, {len(report.failed)} failed ({report.engine})")
    if report.failed:
        sys.exit(2)


@app.command()
def models(
    size: Annotated[int, typer.Option(help="Input side (pixels) for FLOPs and latency.")] = 384,
    latency: Annotated[bool, typer.Option("--latency", help="Add median CPU latency.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The paper's Table 1: parameters and FLOPs of the five networks beside the paper's."""
    import json

    from rich.console import Console
    from rich.table import Table

    from crossdistill.models import complexity_rows

    rows = complexity_rows(size=size, latency=latency)
    if json_:
        echo(json.dumps(rows))
        return
    table = Table(title=f"Table 1 at 1×1×{size}×{size}")
    for column in ("network", "params (M)", "paper", "Δ", "GFLOPs", "paper", "Δ"):
        table.add_column(column, justify="right", no_wrap=True)
    if latency:
        table.add_column("CPU ms (batch 1)", justify="right")
    for r in rows:
        cells = [
            r["name"],
            f"{r['params_m']:.3f}",
            f"{r['paper_params_m']:.3f}",
            f"{r['params_rel_diff']:+.1%}",
            f"{r['gflops']:.2f}",
            f"{r['paper_gflops']:.2f}",
            f"{r['gflops_rel_diff']:+.1%}",
        ]
        if latency:
            cells.append(f"{r['latency_ms']:.1f}")
        table.add_row(*cells)
    Console().print(table)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Run folder or checkpoint.")],
    out: Annotated[Path, typer.Option("--out", help="File to write (.onnx or .pt).")],
    format_: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default 17).")] = None,
    features: Annotated[
        list[str] | None,
        typer.Option(help="Also output these feature taps (e.g. high): a teacher file for KMM."),
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option(help="int8: a statically quantised ONNX graph (needs --calibration)."),
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="Prepared cache whose slices calibrate the int8 graph.")
    ] = None,
    calibration_sites: Annotated[
        list[str] | None,
        typer.Option(help="Calibration sites (default: the network's training sites)."),
    ] = None,
    calibration_slices: Annotated[
        int, typer.Option(help="Training slices drawn for calibration.")
    ] = 64,
    max_drop: Annotated[
        float, typer.Option(help="Largest Dice loss of int8 against float32 on validation cases.")
    ] = 0.005,
    force: Annotated[
        bool, typer.Option("--force", help="Write the int8 graph even if it loses more Dice.")
    ] = False,
    reduce_range: Annotated[
        bool, typer.Option(help="7-bit weights: no int16 saturation on CPUs without VNNI.")
    ] = True,
    activation_range: Annotated[
        str,
        typer.Option(help="Activation ranges: minmax (extremes) or percentile (0.01-99.99th)."),
    ] = "minmax",
) -> None:
    """Export a trained network to ONNX or TorchScript, with its preprocessing metadata;
    ``--quantize int8`` writes a calibrated int8 ONNX graph after checking its Dice."""
    from crossdistill.deploy.export import export_model

    if quantize is None:
        if calibration is not None or force:
            raise CrossDistillError("--calibration and --force apply to --quantize int8 only")
        path = export_model(
            checkpoint, out, format_.lower(), opset, split_names(features, "--features")
        )
        echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return
    from crossdistill.deploy.quantize import QUANTIZATIONS, export_int8

    if quantize.lower() not in QUANTIZATIONS:
        raise CrossDistillError(
            f"unknown --quantize '{quantize}' (known: {', '.join(QUANTIZATIONS)})"
        )
    if format_.lower() != "onnx" or opset is not None or features:
        raise CrossDistillError("--quantize int8 writes ONNX (opset 17) with the logits only")
    if calibration is None:
        raise CrossDistillError("--quantize int8 needs --calibration CACHE (a prepared cache)")
    result = export_int8(
        checkpoint,
        out,
        calibration,
        sites=split_names(calibration_sites, "--calibration-sites"),
        slices=calibration_slices,
        max_drop=max_drop,
        force=force,
        reduce_range=reduce_range,
        activation_range=activation_range.lower(),
    )
    if result.forced:
        typer.echo(
            f"crossdistill: warning: written with --force; {result.check.sentence()}", err=True
        )
    echo(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.2f} MB, int8)")
    echo(result.check.sentence())


@app.command()
def benchmark(
    size: Annotated[int, typer.Option(help="Input side (pixels), a multiple of 32.")] = 384,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    networks: Annotated[
        list[str] | None, typer.Option("--networks", help="Networks (default all five).")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed rounds (median taken).")] = 3,
    batch: Annotated[int, typer.Option(help="Batch of the throughput figures.")] = 16,
    train_batch: Annotated[int, typer.Option(help="Batch of the training steps.")] = 16,
    teacher: Annotated[str, typer.Option(help="Teacher of the distillation step.")] = (
        "deeplabv3plus"
    ),
    student: Annotated[str, typer.Option(help="Student of the training steps.")] = "enet",
    width: Annotated[float, typer.Option(help="Channel multiplier (1 = the paper's).")] = 1.0,
    training: Annotated[
        bool, typer.Option(help="Also time a distillation step against a student step.")
    ] = True,
    low_precision: Annotated[
        bool, typer.Option(help="Also time the students as int8 ONNX and in PyTorch bf16.")
    ] = True,
    bf16: Annotated[
        bool | None,
        typer.Option(
            "--bf16/--no-bf16",
            help="Time PyTorch bf16 (default: only on CPUs with AVX-512 BF16 or AMX; "
            "elsewhere it is emulated, about 10x slower than float32).",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads of PyTorch and ONNX Runtime (default torch's).")
    ] = None,
) -> None:
    """Params, FLOPs, size, CPU latency/throughput (PyTorch, ONNX Runtime) and KD step cost."""
    import json

    from rich.console import Console

    from crossdistill.deploy.benchmark import BenchmarkOptions, run_benchmark
    from crossdistill.deploy.benchmark_table import rich_table, summary_lines

    options = BenchmarkOptions(
        size=size,
        networks=split_names(networks, "--networks"),
        repeats=repeats,
        batch=batch,
        train_batch=train_batch,
        teacher=teacher,
        student=student,
        width=width,
        training=training,
        low_precision=low_precision,
        bf16=bf16,
    )
    if threads is not None:
        options.threads = threads
    result = run_benchmark(options)
    if json_:
        echo(json.dumps(result))
        return
    console = Console()
    Console(width=max(console.width, 200)).print(rich_table(result))  # no folding when piped
    for line in summary_lines(result):
        echo(line)
