"""The deployment benchmark: every figure present, of the right type and positive (timings are
never compared: they belong to BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crossdistill.deploy.benchmark import BenchmarkOptions, run_benchmark
from crossdistill.deploy.benchmark_table import markdown_table, summary_lines
from crossdistill.errors import CrossDistillError
from crossdistill.models import count_parameters, create_model

TINY = {"size": 32, "width": 0.25, "repeats": 1, "batch": 2, "train_batch": 2}


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def test_api_reports_every_figure_for_students_and_teachers() -> None:
    opts = BenchmarkOptions(networks=["enet", "deeplabv3+"], bf16=True, **TINY)
    result = run_benchmark(opts, progress=False)
    assert list(result["networks"]) == ["enet", "deeplabv3plus"]
    enet, deeplab = result["networks"]["enet"], result["networks"]["deeplabv3plus"]
    common = ("params", "gflops", "safetensors_bytes", "latency_ms_torch", "throughput_torch")
    for key in common:
        assert _positive(enet[key]) and _positive(deeplab[key]), key
    students_only = (
        "onnx_bytes",
        "latency_ms_onnxruntime",
        "throughput_onnxruntime",
        "onnx_int8_bytes",
        "latency_ms_onnxruntime_int8",
        "throughput_onnxruntime_int8",
        "latency_ms_torch_bf16",
        "throughput_torch_bf16",
    )
    for key in students_only:
        assert _positive(enet[key]), key
        assert key not in deeplab  # teachers run in PyTorch float32 only
    assert enet["role"] == "student" and deeplab["role"] == "teacher"
    assert enet["params"] == count_parameters(create_model("enet", width=0.25))
    # float32 weights: the safetensors file holds at least 4 bytes per parameter
    assert enet["safetensors_bytes"] >= 4 * enet["params"]

    training = result["training"]
    assert training["teacher"] == "deeplabv3plus" and training["student"] == "enet"
    assert training["terms"] == ["aam", "kmm", "lm"] and training["batch"] == 2
    assert _positive(training["student_step_ms"]) and _positive(training["distill_step_ms"])
    ratio = result["distill_step_over_student_step"]
    assert ratio == pytest.approx(training["distill_step_ms"] / training["student_step_ms"])
    goals = result["goals"]
    assert goals["enet_torch_over_enet_onnxruntime"] == pytest.approx(
        enet["latency_ms_torch"] / enet["latency_ms_onnxruntime"]
    )
    assert _positive(goals["deeplabv3plus_torch_over_enet_onnxruntime"])
    assert goals["enet_onnxruntime_over_enet_onnxruntime_int8"] == pytest.approx(
        enet["latency_ms_onnxruntime"] / enet["latency_ms_onnxruntime_int8"]
    )
    assert _positive(goals["enet_torch_over_enet_torch_bf16"])
    assert result["size"] == 32 and result["threads"] >= 1
    json.dumps(result)  # JSON-ready

    table = markdown_table(result)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and rows[1].startswith("| enet |") and "goal ≥ 20×" in table


def test_bf16_is_skipped_by_default_where_the_cpu_only_emulates_it(monkeypatch) -> None:
    import crossdistill.deploy.benchmark as benchmark

    monkeypatch.setattr(benchmark, "native_bf16", lambda: False)
    opts = BenchmarkOptions(networks=["espnet"], training=False, **TINY)
    result = run_benchmark(opts, progress=False)
    espnet = result["networks"]["espnet"]
    assert "latency_ms_torch_bf16" not in espnet and _positive(
        espnet["latency_ms_onnxruntime_int8"]
    )
    assert result["machine"]["native_bf16"] is False
    assert any("bf16 not timed" in line for line in summary_lines(result))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 48}, "multiple of 32"),
        ({"repeats": 0}, "--repeats must be at least 1"),
        ({"train_batch": 1}, "--train-batch"),
        ({"networks": ["resnet"]}, "unknown model 'resnet'"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(CrossDistillError, match=message):
        run_benchmark(BenchmarkOptions(**{**TINY, **options}), progress=False)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", "benchmark", *args],
        capture_output=True,
        text=True,
    )


def test_cli_json_and_table(run_cli) -> None:
    tiny = ["--size", "32", "--width", "0.25", "--repeats", "1", "--batch", "2"]
    done = _cli(*tiny, "--train-batch", "2", "--networks", "espnet", "--no-low-precision", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    espnet = result["networks"]["espnet"]
    assert list(result["networks"]) == ["espnet"]
    assert _positive(espnet["latency_ms_torch"]) and _positive(espnet["latency_ms_onnxruntime"])
    assert _positive(result["distill_step_over_student_step"])
    assert result["goals"] == {}  # ENet was not measured
    assert "latency_ms_onnxruntime_int8" not in espnet and "latency_ms_torch_bf16" not in espnet

    code, out, err = run_cli(
        "benchmark", *tiny, "--networks", "erfnet", "--no-training", "--no-low-precision"
    )
    assert code == 0, err
    assert "erfnet" in out and "ORT ms (b1)" in out and "training step" not in out

    code, _, err = run_cli("benchmark", "--size", "100")
    assert code == 2 and "Traceback" not in err
    assert err.strip() == "crossdistill: error: --size must be a positive multiple of 32, got 100"
