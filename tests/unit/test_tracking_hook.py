"""Tracking without a tracker: the ``tracking`` config section, what a tracked run would log,
the engine's calls of its hook, and the one-line failure when mlflow is not installed.

None of these needs mlflow; runs against MLflow stores: tests/e2e/test_mlflow_tracking.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_run_config
from crossdistill import run as run_module
from crossdistill.config import load_config
from crossdistill.engine.tracking import NULL_TRACKER
from crossdistill.errors import ConfigError, CrossDistillError
from crossdistill.reproduce.grid import student_run, teacher_run
from crossdistill.reproduce.presets import get_preset
from crossdistill.reproduce.runner import grid_tracking
from crossdistill.reproduce.runs import config_digest, spec_tracking
from crossdistill.tracking import MLFLOW_MISSING, final_metrics, flatten, run_tags


def test_the_section_defaults_to_no_tracking_and_names_bad_keys():
    assert load_config().tracking.backend == "none"
    cfg = load_config(None, ["tracking.backend=mlflow", "tracking.uri=http://host:5000"])
    assert (cfg.tracking.backend, cfg.tracking.uri) == ("mlflow", "http://host:5000")
    for override, key in [
        ("tracking.backend=wandb", "tracking.backend"),
        ("tracking.uri=runs/mlflow.db", "tracking.uri"),
        ("tracking.url=http://x", "tracking.url"),
        ("tracking.tags=[a]", "tracking.tags"),
    ]:
        with pytest.raises(ConfigError, match=f"'{key}'"):
            load_config(None, [override])


def test_tracking_is_not_part_of_what_a_grid_run_is():
    plain = load_config(None, ["seed=3"])
    tracked = load_config(None, ["seed=3", "tracking.backend=mlflow", "tracking.tags.x=1"])
    assert config_digest(plain) == config_digest(tracked)  # a finished run stays finished


def test_params_tags_and_final_metrics():
    cfg = load_config(None, ["train.sites=[A, B]", "distill.preset=kmm+lm", "target=S4"])
    params = flatten(cfg.model_dump(mode="json"))
    assert params["train.optimizer.lr"] == "0.01" and params["train.sites"] == '["A", "B"]'
    assert params["distill.terms"] == "{}" and params["name"] == "run"
    assert run_tags(cfg)["method"] == "kmm+lm"
    teacher = load_config(None, ["role=teacher"])
    assert run_tags(teacher) | {"seed": "0"} == run_tags(teacher)
    assert run_tags(teacher)["method"] == "teacher"
    evaluation = {
        "split": "test",
        "overall": {"dice": {"mean": 0.5, "std": 0.1}, "hd95": {"mean": 3.0}},
        "sites": {"UCL": {"dice": {"mean": 0.6}}, "HK": {"dice": {"mean": 0.4}}},
    }
    summary = {"val_dice": 0.7, "best_epoch": 2, "seconds": 9.5}
    assert final_metrics(summary, evaluation) == {
        "test/dice": 0.5,
        "test/dice_std": 0.1,
        "test/hd95": 3.0,
        "test/site_dice/UCL": 0.6,
        "test/site_dice/HK": 0.4,
        "best_val_dice": 0.7,
        "best_epoch": 2.0,
        "seconds": 9.5,
    }


def test_a_grid_names_one_experiment_and_tags_each_run(tmp_path):
    preset = get_preset("demo")
    assert grid_tracking(preset, [], tmp_path, "g", {"table": "table3"}) is None
    overrides = ["tracking.backend=mlflow", "tracking.tags.owner=me"]
    section = grid_tracking(preset, overrides, tmp_path, "g", {"table": "table3"}, prepare=False)
    assert section["uri"] == f"sqlite:///{tmp_path}/mlflow.db" and section["experiment"] == "g"
    teacher = teacher_run("unetpp", "UCL", 1, "cross-site")
    student = student_run("enet", "UCL", 1, "cross-site", "ours", teacher, control="untrained")
    run = spec_tracking(student, section)
    assert run["run_name"] == student.id
    assert run["tags"] == {
        "target": "UCL",
        "seed": 1,
        "method": "ours@untrained",
        "run": student.id,
        "grid": str(tmp_path),
        "table": "table3",
        "owner": "me",
    }
    assert spec_tracking(teacher, section)["tags"]["method"] == "teacher"


class Recorder:
    """A tracker that writes down what the engine tells it."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, epoch):
        self.calls.append(("start", epoch))

    def log_epoch(self, record):
        self.calls.append(("epoch", record["epoch"], "loss/seg" in record))

    def log_final(self, metrics, artifacts):
        self.calls.append(("final", "test/dice" in metrics, sorted(p.name for p in artifacts)))

    def end(self, status):
        self.calls.append(("end", status))


def test_the_engine_calls_the_hook_in_order(engine_cache, tmp_path, monkeypatch):
    cfg = tiny_run_config(engine_cache, tmp_path, "r", "train.epochs=2", "train.steps_per_epoch=1")
    run = run_module.build_run(cfg)
    assert run.tracker is NULL_TRACKER  # tracking off by default
    run.tracker = Recorder()
    run.execute(progress=False)
    artifacts = ["config.yaml", "curves.png", "evaluation.json", "overlay.png", "summary.json"]
    assert run.tracker.calls == [
        ("start", 0),
        ("epoch", 1, True),
        ("epoch", 2, True),
        ("final", True, artifacts),
        ("end", "FINISHED"),
    ]

    monkeypatch.setattr(run_module, "open_tracker", lambda config, terms: "a tracker")
    assert run_module.build_run(cfg).tracker == "a tracker"
    monkeypatch.setattr(run_module.distributed, "is_main", lambda: False)
    assert run_module.build_run(cfg).tracker is NULL_TRACKER  # only rank 0 logs


def test_a_failed_run_ends_its_tracked_run_failed(engine_cache, tmp_path):
    cfg = tiny_run_config(engine_cache, tmp_path, "r", "train.epochs=1", "train.steps_per_epoch=1")
    run = run_module.build_run(cfg)
    run.execute(progress=False)
    again = run_module.build_run(cfg)  # the folder holds a run: refused before training
    again.tracker = Recorder()
    with pytest.raises(CrossDistillError, match="holds a run already"):
        again.execute(progress=False)
    assert again.tracker.calls == [("end", "FAILED")]


_SUBPROCESS = """
import contextlib, io, json, sys
# MONAI imports mlflow itself when it is installed (monai.handlers): import MONAI without it,
# so that what is checked is whether crossdistill imports mlflow
sys.modules["mlflow"] = None
import monai
del sys.modules["mlflow"]
import crossdistill.api, crossdistill.cli, crossdistill.compare, crossdistill.reproduce
lazy = "mlflow" not in sys.modules
sys.modules["mlflow"] = None  # from here `import mlflow` fails, as when it is not installed
from crossdistill import cli
results = []
for argv in json.loads(sys.argv[1]):
    sys.argv, err, code = ["crossdistill", *argv], io.StringIO(), 0
    with contextlib.redirect_stderr(err):
        try:
            cli.main()
        except SystemExit as exit_:
            code = exit_.code
    results.append([code, err.getvalue()])
print(json.dumps([lazy, results]))
"""


def test_mlflow_is_imported_for_tracking_only_and_if_missing_fails_in_one_line(
    engine_cache, tmp_path
):
    """Importing the package leaves mlflow alone; without mlflow, ``--tracking mlflow`` ends
    before any work with one line naming what to install (one process, to spare its start)."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data: {{cache: {engine_cache}}}\noutput: {tmp_path / 'runs'}\ndevice: cpu\n"
        "protocol: cross-site\ntarget: S4\n"
    )
    grid = ["--data", str(engine_cache), "--out", str(tmp_path / "g"), "--tracking", "mlflow"]
    commands = [
        ["train", "--config", str(config), "--tracking", "mlflow"],
        ["reproduce", "--table", "3", *grid],
        ["compare", "--targets", "S4", "--methods", "none,lm", *grid],
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    lazy, results = json.loads(proc.stdout.splitlines()[-1])  # after the grids' first line
    assert lazy
    for code, err in results:
        assert code == 2 and err == f"crossdistill: error: {MLFLOW_MISSING}\n", err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "g").exists()
    engine = Path(run_module.__file__).parent / "engine"
    imports = re.compile(r"^\s*(import|from)\s+mlflow\b", re.MULTILINE)
    assert not [p.name for p in engine.glob("*.py") if imports.search(p.read_text("utf-8"))]
