"""The ``crossdistill`` command line: thin wiring over the Python API.

A user's mistake ends as one line on stderr (``crossdistill: error: <file or key>: <reason>``)
and exit code 2, never a traceback.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from crossdistill.errors import CrossDistillError
from crossdistill.monai_without_mlflow import hide_mlflow_from_monai

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Cross-site relational distillation for lightweight prostate-MRI segmentation.",
)

SitesOption = Annotated[
    list[str] | None,
    typer.Option("--sites", help="Sites (S4, UCL or folder name); repeat or separate with commas."),
]


def _split_names(values: list[str] | None, option: str) -> list[str] | None:
    """The names of a repeatable, comma-separated option; ``None`` when it was not given.

    Raises:
        CrossDistillError: the option was given but names nothing (``--targets ''``), which
            would otherwise read as "all".
    """
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise CrossDistillError(f"{option}: names nothing; leave it out for the default")
    return names


def _echo(message: str) -> None:
    typer.echo(message)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the sites into.")],
    sites: SitesOption = None,
    cases_per_site: Annotated[int, typer.Option(help="Cases per site.")] = 10,
    size: Annotated[int, typer.Option(help="In-plane matrix size (pixels).")] = 128,
    slices: Annotated[int, typer.Option(help="Slices per volume.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
) -> None:
    """Generate the multi-site prostate phantom in the release layout."""
    from crossdistill.data.synth import synthesize

    summary = synthesize(
        out,
        sites=_split_names(sites, "--sites"),
        cases_per_site=cases_per_site,
        size=size,
        slices=slices,
        seed=seed,
    )
    _echo(
        f"wrote {summary['cases']} cases of {len(summary['sites'])} sites to {out} "
        f"in {summary['seconds']:.1f} s"
    )


@app.command()
def prepare(
    data_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of site folders (release layout), an nnU-Net raw or Decathlon "
            "dataset, or a folder of such datasets (one per site)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Cache folder to write.")],
    size: Annotated[int, typer.Option(help="In-plane size of the cached slices.")] = 384,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid cases instead of stopping.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the case-level splits.")] = 0,
    val_fraction: Annotated[
        float, typer.Option(help="Fraction of each site's cases for validation.")
    ] = 0.1,
    test_fraction: Annotated[
        float, typer.Option(help="Fraction of each site's cases for testing.")
    ] = 0.2,
    layout: Annotated[
        str | None,
        typer.Option(help="release, nnunet or decathlon (default: detected)."),
    ] = None,
    sites_from: Annotated[
        Path | None,
        typer.Option(help="CSV of case,site rows: the site of each case of a dataset."),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(help="Name or index of the T2 channel in dataset.json (default: T2)."),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="Prostate label values, e.g. 1,2 (default: every label > 0)."),
    ] = None,
) -> None:
    """Validate a multi-site folder or nnU-Net/Decathlon datasets; write the memory-mapped cache."""
    from crossdistill.data.cases import parse_labels
    from crossdistill.data.prepare import prepare as run_prepare

    result = run_prepare(
        data_dir,
        out,
        size=size,
        skip_invalid=skip_invalid,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        layout=layout,
        sites_from=sites_from,
        channel=channel,
        labels=None if labels is None else parse_labels(labels),
    )
    _report_prepare(result)


def _report_prepare(result) -> None:
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    for path, reason in result.skipped:
        typer.echo(f"skipped {path}: {reason}", err=True)
    verb = "reused" if result.reused else "wrote"
    sites = ", ".join(f"{s} ({n})" for s, n in result.sites.items())
    _echo(
        f"{verb} cache {result.cache}: {sum(result.sites.values())} cases, {result.slices} slices, "
        f"{result.empty_masks} empty masks, {len(result.skipped)} skipped; sites: {sites}"
    )


ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML run configuration.")]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: key.sub=value (repeat).")
]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")]
TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking",
        help="Also log to an experiment tracker: mlflow (tracking.backend; the store is "
        "tracking.uri, default sqlite:///OUTPUT/mlflow.db). Needs crossdistill[mlflow].",
    ),
]


def _tracking_overrides(tracking: str | None) -> list[str]:
    return [] if tracking is None else [f"tracking.backend={tracking}"]


def _print_summary(summary: dict) -> None:
    from crossdistill.engine.distributed import is_main

    if not is_main():  # under torchrun rank 0 reports
        return
    dice = summary["dice"]
    sites = ", ".join(summary["eval_sites"])
    line = f"{summary['name']}: Dice {dice['mean']:.3f} ± {dice['std']:.3f} on {sites}"
    if "teacher_reliability" in summary:
        reliability = summary["teacher_reliability"]["dice"]["mean"]
        line += f"; teacher Dice on the student's images {reliability:.3f}"
    _echo(line)


@app.command()
def train(
    config: ConfigOption = None,
    method: Annotated[
        str | None,
        typer.Option(help="supervised (default), or a domain-generalisation baseline: saml, drdg."),
    ] = None,
    set_: SetOption = None,
    resume: ResumeOption = False,
    tracking: TrackingOption = None,
) -> None:
    """Train a teacher or a student without a teacher (plain, SAML or DRDG)."""
    from crossdistill.config import load_config

    overrides = list(set_ or []) + _tracking_overrides(tracking)
    if method is not None:
        overrides.append(f"train.method={method}")
    cfg = load_config(config, overrides)  # a bad key fails before the engine is imported
    from crossdistill import api

    _print_summary(api.train(cfg, resume=resume))


@app.command()
def distill(
    config: ConfigOption = None,
    teacher: Annotated[
        Path | None, typer.Option(help="Teacher run folder, checkpoint or exported .onnx file.")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="Preset: ours, recommended, none, a Table 3 row (aam+lm, ...), kd, at, emkd, mskd."
        ),
    ] = None,
    teacher_cache: Annotated[
        bool,
        typer.Option(
            "--teacher-cache",
            help="Run the teacher once and reuse its stored outputs (distill.teacher_cache); "
            "needs data.augment=geometric or false.",
        ),
    ] = False,
    set_: SetOption = None,
    resume: ResumeOption = False,
    tracking: TrackingOption = None,
) -> None:
    """Train a student distilled from a teacher checkpoint."""
    from crossdistill.config import load_config

    overrides = list(set_ or []) + _tracking_overrides(tracking)
    if teacher is not None:
        overrides.append(f"distill.teacher={teacher}")
    if teacher_cache:
        overrides.append("distill.teacher_cache=true")
    cfg = load_config(config, overrides)
    from crossdistill import api

    _print_summary(api.distill(cfg, method, resume=resume))


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Run folder or checkpoint.")],
    data: Annotated[Path, typer.Option("--data", help="Cache written by `prepare`.")],
    sites: SitesOption = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Folder for evaluation.json.")] = None,
) -> None:
    """Per-case 3-D Dice, HD95 and ASD (mm) of a network on a cache's sites."""
    from crossdistill import api

    result = api.evaluate(checkpoint, data, _split_names(sites, "--sites"), split, out)
    for site, record in result["sites"].items():
        d, h = record["dice"], record["hd95"]
        dice = f"Dice {d['mean']:.3f} ± {d['std']:.3f}"
        _echo(f"{site}: {dice}  HD95 {h['mean']:.2f} mm  ({d['n']} cases)")
    d = result["overall"]["dice"]
    _echo(f"all: Dice {d['mean']:.3f} ± {d['std']:.3f}")


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
        _echo(f"{case.mask}: {case.foreground_ml:.1f} ml segmented ({case.input.name})")
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
        _echo(f"{len(report.written)} written, {len(report.failed)} failed ({report.engine})")
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
        _echo(json.dumps(rows))
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
            checkpoint, out, format_.lower(), opset, _split_names(features, "--features")
        )
        _echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
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
        sites=_split_names(calibration_sites, "--calibration-sites"),
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
    _echo(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.2f} MB, int8)")
    _echo(result.check.sentence())


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
        networks=_split_names(networks, "--networks"),
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
        _echo(json.dumps(result))
        return
    console = Console()
    Console(width=max(console.width, 200)).print(rich_table(result))  # no folding when piped
    for line in summary_lines(result):
        _echo(line)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for data, cache and results.")] = Path(
        "runs/demo"
    ),
    target: Annotated[str, typer.Option(help="Target site (S4, UCL, ...).")] = "S4",
    quick: Annotated[bool, typer.Option("--quick", help="A smaller, faster run.")] = False,
    seed: Annotated[int, typer.Option(help="Training seed (data and splits stay fixed).")] = 0,
    set_: SetOption = None,
    tracking: TrackingOption = None,
) -> None:
    """The main job: synthetic sites → teachers → students w/o and w/ distillation → report."""
    from crossdistill.demo import run_demo

    overrides = list(set_ or []) + _tracking_overrides(tracking)
    run_demo(out, target=target, quick=quick, seed=seed, echo=_echo, overrides=overrides)


ModelsOption = Annotated[
    list[str] | None, typer.Option(help="Networks; repeat or separate with commas.")
]
# the options of a grid of runs (reproduce, compare)
JobsOption = Annotated[
    int | None,
    typer.Option(help="Runs trained at once; default 1 locally, on Ray what the cluster holds."),
]
LauncherOption = Annotated[
    str, typer.Option(help="local (processes on this machine) or ray (a Ray cluster).")
]
AddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster: auto or HOST:PORT; default: a local Ray started here."),
]
CpusPerRunOption = Annotated[
    int | None, typer.Option(help="Ray: CPUs (torch threads) per run; default 1.")
]
MaxRunsOption = Annotated[
    int | None, typer.Option(help="Start at most N runs now; the next call goes on.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print each run's state; train nothing.")
]


def _grid_call(jobs, launcher, address, cpus_per_run, set_, max_runs, dry_run, tracking) -> dict:
    """The keyword arguments that ``reproduce`` and ``compare`` share."""
    return {
        "jobs": jobs,
        "launcher": launcher,
        "launcher_options": {"address": address, "cpus_per_run": cpus_per_run},
        "overrides": list(set_ or []) + _tracking_overrides(tracking),
        "max_runs": max_runs,
        "dry_run": dry_run,
        "echo": _echo,
    }


@app.command()
def reproduce(
    table: Annotated[int, typer.Option("--table", help="The paper's table: 1, 2, 3 or 4.")],
    preset: Annotated[
        str | None,
        typer.Option(
            help="paper (GPU, real data) or demo (CPU, synthetic sites); default: "
            "paper with --data, else demo."
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="A prepared cache or a folder of sites.")
    ] = None,
    protocol: Annotated[str, typer.Option(help="cross-site or leave-one-site-out.")] = "cross-site",
    method: Annotated[
        str, typer.Option(help="paper (the paper's preset) or recommended (this project's).")
    ] = "paper",
    sites: SitesOption = None,
    students: ModelsOption = None,
    teachers: ModelsOption = None,
    seeds: Annotated[int, typer.Option(help="Seeds 0 … N-1 per site.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Grid folder (runs, tables, figures).")] = None,
    jobs: JobsOption = None,
    launcher: LauncherOption = "local",
    address: AddressOption = None,
    cpus_per_run: CpusPerRunOption = None,
    set_: SetOption = None,
    max_runs: MaxRunsOption = None,
    dry_run: DryRunOption = False,
    tracking: TrackingOption = None,
) -> None:
    """The paper's tables as resumable grids of runs, reported beside the paper's numbers."""
    from crossdistill.reproduce import reproduce as run_reproduce

    run_reproduce(
        table,
        preset=preset,
        data=data,
        protocol=protocol,
        method=method,
        sites=_split_names(sites, "--sites"),
        students=_split_names(students, "--students"),
        teachers=_split_names(teachers, "--teachers"),
        seeds=seeds,
        out=out,
        **_grid_call(jobs, launcher, address, cpus_per_run, set_, max_runs, dry_run, tracking),
    )


@app.command()
def compare(
    targets: Annotated[
        list[str] | None,
        typer.Option("--targets", help="Target sites (S4, UCL or folder); default all sites."),
    ] = None,
    student: Annotated[str, typer.Option(help="The student network.")] = "enet",
    teacher: Annotated[str, typer.Option(help="The teacher network.")] = "deeplabv3plus",
    methods: Annotated[
        str,
        typer.Option(
            help="Arms, comma-separated: distillation presets (ours, recommended, kmm+lm, ...), "
            "each optionally with term options, ours[aam.stride=8], and @untrained or "
            "@ground-truth; w/o (none) is always included."
        ),
    ] = "none,ours,recommended",
    controls: Annotated[
        str | None,
        typer.Option(help="Controls applied to every method: untrained, ground-truth."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Paired seeds 0 … N-1 (5 or more for a claim).")] = 5,
    protocol: Annotated[str, typer.Option(help="cross-site or leave-one-site-out.")] = "cross-site",
    preset: Annotated[
        str | None,
        typer.Option(help="study (CPU, default without --data), demo, or paper (default with it)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="A prepared cache or a folder of sites.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Comparison folder (runs and report).")] = None,
    jobs: JobsOption = None,
    launcher: LauncherOption = "local",
    address: AddressOption = None,
    cpus_per_run: CpusPerRunOption = None,
    metric: Annotated[
        str, typer.Option(help="Reported: val (for choosing), test, or both.")
    ] = "both",
    versus: Annotated[
        str | None,
        typer.Option(help="Also compare two arms, A:B (A − B), comma-separated pairs."),
    ] = None,
    set_: SetOption = None,
    max_runs: MaxRunsOption = None,
    dry_run: DryRunOption = False,
    tracking: TrackingOption = None,
) -> None:
    """Paired seeds, controls and 95 % CIs: does a method beat w/o, and is it the teacher?"""
    from crossdistill.compare import compare as run_compare
    from crossdistill.compare.arms import split_methods

    run_compare(
        _split_names(targets, "--targets"),
        student=student,
        teacher=teacher,
        methods=split_methods(methods),
        controls=_split_names([controls], "--controls") if controls is not None else [],
        seeds=seeds,
        protocol=protocol,
        preset=preset,
        data=data,
        out=out,
        metrics=("val", "test") if metric == "both" else (metric,),
        versus=split_methods(versus) if versus else (),
        command="crossdistill " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **_grid_call(jobs, launcher, address, cpus_per_run, set_, max_runs, dry_run, tracking),
    )


@app.command()
def report(
    path: Annotated[
        Path,
        typer.Argument(help="A run folder, or a `reproduce --out` or `compare --out` folder."),
    ],
    arms: Annotated[
        str | None,
        typer.Option(help="compare folders: report only these arms (comma-separated; w/o kept)."),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option(help="compare folders: write the report here instead of into PATH."),
    ] = None,
    versus: Annotated[
        str | None,
        typer.Option(
            help="compare folders: compare these A:B pairs (comma-separated) instead of the "
            "last `compare`'s --versus."
        ),
    ] = None,
) -> None:
    """Rebuild tables and figures from stored results (no training)."""
    from crossdistill.compare.pipeline import PLAN

    if (path / PLAN).is_file():  # a `compare --out` folder
        from crossdistill.compare import read_plan, write_comparison
        from crossdistill.compare.arms import split_methods

        chosen = split_methods(arms) if arms else None
        pairs = split_methods(versus) if versus is not None else None
        for file in write_comparison(path, read_plan(path), arms=chosen, to=to, versus=pairs):
            _echo(f"wrote {file}")
        return
    if arms or to or versus is not None:
        raise CrossDistillError("--arms, --to and --versus apply to a `compare --out` folder only")
    from crossdistill.reproduce import report as run_report

    run_report(path, echo=_echo)


def main() -> None:
    """Console entry point (also ``python -m crossdistill``, what torchrun launches): run the
    app, turning user errors (and the system's: a full disk, a read-only folder) into one line
    and exit 2."""
    hide_mlflow_from_monai()  # this process never uses MONAI's MLflow handler
    try:
        app(prog_name="crossdistill")
    except CrossDistillError as err:
        typer.echo(f"crossdistill: error: {err}", err=True)
        sys.exit(2)
    except OSError as err:  # the machine's, not the code's: a full disk, a read-only folder
        if err.errno is None:
            raise
        where = f"{err.filename}: " if err.filename else ""
        typer.echo(f"crossdistill: error: {where}{err.strerror}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
