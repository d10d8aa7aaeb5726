"""The command line through real processes: train, distill, evaluate, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import write_case
from crossdistill.data.prepare import prepare


def crossdistill(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    for s, site in enumerate(["UCL", "HK"]):
        for c in range(4):
            write_case(root / "data" / site, f"Case{c:02d}", shape=(40, 40, 6), seed=10 * s + c)
    prepare(root / "data", root / "cache", size=32, progress=False)
    (root / "c.yaml").write_text(
        f"data: {{cache: {root / 'cache'}}}\noutput: {root / 'runs'}\ndevice: cpu\n"
        "model: {name: erfnet, width: 0.25}\n"
        "train: {epochs: 1, batch_size: 4, steps_per_epoch: 2, schedule: {name: constant}}\n"
        "protocol: cross-site\ntarget: S4\n"
    )
    return root


def test_help_lists_the_commands():
    proc = crossdistill("--help")
    assert proc.returncode == 0
    for command in (
        "synth",
        "prepare",
        "train",
        "distill",
        "evaluate",
        "models",
        "demo",
        "reproduce",
        "report",
    ):
        assert command in proc.stdout


def test_train_distill_evaluate(workspace):
    cfg = workspace / "c.yaml"
    proc = crossdistill("train", "--config", cfg, "--set", "name=teacher", "--set", "role=teacher")
    assert proc.returncode == 0, proc.stderr
    assert "teacher: Dice" in proc.stdout
    proc = crossdistill(
        "distill",
        "--config",
        cfg,
        "--set",
        "name=student",
        "--teacher",
        workspace / "runs/teacher",
        "--method",
        "aam+lm",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((workspace / "runs/student/summary.json").read_text())
    assert set(summary["terms"]) == {"aam", "lm"} and summary["train_sites"] == ["HK"]
    proc = crossdistill(
        "evaluate",
        "--checkpoint",
        workspace / "runs/student",
        "--data",
        workspace / "cache",
        "--sites",
        "S4",
        "--out",
        workspace / "eval",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((workspace / "eval/evaluation.json").read_text())
    assert list(result["sites"]) == ["UCL"] and (workspace / "eval/overlay.png").is_file()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--set", "train.epochz=1"], "config key 'train.epochz': unknown key"),
        (["train", "--set", "data.cache=/nonexistent/cache"], "/nonexistent/cache"),
        (["evaluate", "--checkpoint", "/nonexistent/run", "--data", "x"], "/nonexistent/run"),
        (["distill", "--set", "target=S9"], "unknown site 'S9'"),
    ],
)
def test_errors_are_one_line(workspace, args, expected):
    proc = crossdistill(
        *args[:1], *(["--config", workspace / "c.yaml"] if args[0] != "evaluate" else []), *args[1:]
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--set", "seed=3"], "config key 'seed': the demo sets this key itself"),
        (["--set", "data=x"], "config key 'data': the demo sets this key itself"),
        (["--set", "train.epochz=1"], "config key 'train.epochz': unknown key"),
        (["--tracking", "wandb"], "config key 'tracking.backend'"),
    ],
)
def test_demo_refuses_a_bad_setting_before_any_work(run_cli, tmp_path, args, expected):
    code, _, err = run_cli("demo", "--quick", "--out", tmp_path / "demo", *args)
    assert code == 2 and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "demo").exists()  # no data made, no run started
