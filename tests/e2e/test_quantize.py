"""int8 export: a calibrated graph that agrees with the float one, carries its precision and
Dice check in its metadata, runs in predict, and is refused when it loses too much Dice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import tiny_run_config
from crossdistill.api import train
from crossdistill.data.cache import Cache
from crossdistill.deploy.engines import open_engine
from crossdistill.deploy.export import export_onnx
from crossdistill.deploy.metadata import METADATA_KEY
from crossdistill.deploy.quantize import calibration_slices, export_int8
from crossdistill.errors import CrossDistillError
from crossdistill.eval.inference import network_batches


@pytest.fixture(scope="module")
def trained_run(engine_cache: Path, tmp_path_factory) -> Path:
    """An ERFNet at width 1/2 trained 18 steps on HK and BIDMC (target UCL): Dice ≈ 0.6."""
    out = tmp_path_factory.mktemp("int8")
    config = tiny_run_config(engine_cache, out, "erfnet", "model.width=0.5")
    train(config, progress=False)
    return out / "erfnet"


def _labels(engine, cache: Cache) -> np.ndarray:
    volumes = [np.asarray(c.image(), np.float32) for c in cache.cases(None, "test")]
    return np.concatenate(
        [engine.logits(b.numpy()).argmax(1) for v in volumes for b in network_batches(v, 1, 16)]
    )


def test_int8_graph_agrees_with_float_and_records_its_check(
    trained_run: Path, engine_cache: Path, tmp_path: Path
) -> None:
    result = export_int8(trained_run, tmp_path / "student.int8.onnx", engine_cache, max_drop=1.0)
    float_file = export_onnx(trained_run, tmp_path / "student.onnx")

    int8, float32 = open_engine(result.path), open_engine(float_file)
    assert int8.meta.precision == "int8" and float32.meta.precision == "float32"
    agreement = (_labels(int8, Cache(engine_cache)) == _labels(float32, Cache(engine_cache))).mean()
    assert agreement >= 0.99
    ops = {node.op_type for node in onnx.load(str(result.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert result.path.stat().st_size < float_file.stat().st_size

    # the training sites of the cross-site student, its validation cases, its measured Dice
    quant = int8.meta.extra["quantization"]
    assert sorted(quant["calibration"]["sites"]) == ["BIDMC", "HK"]
    assert quant["calibration"]["sites"] == result.check.sites
    train_slices = sum(c.num_slices for c in Cache(engine_cache).cases(["HK", "BIDMC"], "train"))
    assert quant["calibration"]["slices"] == min(64, train_slices) and quant["reduce_range"]
    assert quant["activation_range"] == "minmax"
    check = quant["dice_check"]
    assert check["split"] == "val" and check["cases"] == 2 and check["forced"] is False
    assert check["drop"] == pytest.approx(check["dice_float32"] - check["dice_int8"], abs=1e-5)
    assert result.check.float32 > 0.3  # a trained network: the check compares real masks
    payload = json.loads(
        {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}[METADATA_KEY]
    )
    assert payload["precision"] == "int8"


def test_calibration_slices_come_from_training_cases_only(engine_cache: Path) -> None:
    cache = Cache(engine_cache)
    slices = calibration_slices(cache, ["HK"], channels=3, count=10)
    assert slices.shape == (10, 3, 32, 32) and slices.dtype == np.float32
    train_images = np.concatenate([np.asarray(c.image()) for c in cache.cases(["HK"], "train")])
    held_out = np.concatenate([np.asarray(c.image()) for c in cache.cases(["HK"], "val")])
    centre = slices[:, 1].astype(np.float16)
    assert all(any(np.array_equal(s, t) for t in train_images) for s in centre)
    assert not any(np.array_equal(s, t) for s in centre for t in held_out)
    # every training slice at most once, even when more are asked for
    assert len(calibration_slices(cache, ["HK"], 1, count=10_000)) == len(train_images)


def test_guard_refuses_a_graph_that_loses_dice_and_force_writes_it(
    trained_run: Path, engine_cache: Path, tmp_path: Path
) -> None:
    # one calibration slice: activation ranges from an edge slice clip the others
    out = tmp_path / "bad.onnx"
    with pytest.raises(CrossDistillError, match="int8 model not written") as info:
        export_int8(trained_run, out, engine_cache, slices=1, max_drop=0.0)
    assert "--force" in str(info.value) and "\n" not in str(info.value)
    assert "--activation-range percentile may lose less" in str(info.value)
    assert not out.exists() and not list(tmp_path.iterdir())

    forced = export_int8(trained_run, out, engine_cache, slices=1, max_drop=0.0, force=True)
    assert forced.forced and out.is_file() and forced.check.drop > 0
    assert open_engine(out).meta.extra["quantization"]["dice_check"]["forced"] is True


def test_cli_writes_runs_and_refuses(
    trained_run: Path, engine_cache: Path, tmp_path: Path, run_cli
) -> None:
    common = ["--checkpoint", str(trained_run), "--quantize", "int8"]
    base = [*common, "--out", str(tmp_path / "m.onnx"), "--max-drop", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "crossdistill", "export", *base, "--calibration", str(engine_cache)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "int8" in done.stdout and "Dice on 2 val case(s) of BIDMC, HK" in done.stdout

    refused = tmp_path / "refused.onnx"
    code, _, err = run_cli(
        "export",
        *common,
        *("--out", str(refused), "--calibration", str(engine_cache)),
        *("--calibration-slices", "1", "--max-drop", "0"),
    )
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "int8 model not written" in err and not refused.exists()

    for args, message in [
        (base, "needs --calibration"),
        ([*base, "--calibration", str(tmp_path / "nowhere")], "cache folder does not exist"),
        ([*base, "--calibration", str(engine_cache), "--calibration-sites", "Mars"], "Mars"),
        ([*base, "--calibration", str(engine_cache), "--format", "torchscript"], "ONNX"),
        ([*base, "--calibration", str(engine_cache), "--max-drop", "-1"], "--max-drop"),
        (
            [*base, "--calibration", str(engine_cache), "--activation-range", "median"],
            "--activation-range: expected minmax or percentile, got 'median'",
        ),
    ]:
        code, _, err = run_cli("export", *args)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
