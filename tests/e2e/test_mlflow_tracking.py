"""Runs tracked in MLflow, end to end: a real tracking server on a free local port, tiny runs
logged to it and read back with ``MlflowClient``; the local default store; a server that is
not there, or that dies in the middle of a run.

One server serves the module (its start is the main cost): it is started before the first
test and waited for only by the tests that need it; the last test kills it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import TINY_OVERRIDES, tiny_run_config
from crossdistill import api
from crossdistill import tracking as tracking_module
from crossdistill.engine import fit as fit_module
from crossdistill.engine.checkpoint import save_checkpoint

mlflow_tracking = pytest.importorskip("mlflow.tracking")
MlflowClient = mlflow_tracking.MlflowClient

FOLDER = ("config.yaml", "metrics.jsonl", "evaluation.json", "summary.json", "curves.png")
SHORT = ("train.epochs=2", "train.steps_per_epoch=1", "train.batch_size=4")
ONE_EPOCH = (*SHORT[1:], "train.epochs=1")
#: MLflow's SQLite store on SQLAlchemy 2.1: its own deprecation, nothing of this project's
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader:DeprecationWarning")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``mlflow server`` on a free port, SQLite store and artifacts in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.store = f"sqlite:///{root / 'server.db'}"
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.store]
        command += ["--artifacts-destination", str(root / "artifacts"), "--workers", "1"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(root / "server.log", "w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait_up(self, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return self.uri
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"mlflow server not up after {timeout} s")

    def kill(self) -> None:
        """Its whole process group (the CLI, uvicorn), at once."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture(scope="module", autouse=True)
def server(tmp_path_factory):
    started = Server(tmp_path_factory.mktemp("mlflow-server"))
    yield started
    started.kill()


@pytest.fixture
def server_uri(server):
    return server.wait_up()


@pytest.fixture(scope="module")
def teacher(engine_cache, tmp_path_factory):
    """A tiny untracked teacher run."""
    out = tmp_path_factory.mktemp("teacher")
    cfg = tiny_run_config(engine_cache, out, "t", "role=teacher", *ONE_EPOCH)
    api.train(cfg, progress=False)
    return out / "t"


def _only_run(client: MlflowClient, experiment: str):
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1
    return found, runs[0]


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_local_store_by_default_and_a_resumed_run_goes_on_in_its_mlflow_run(engine_cache, tmp_path):
    cfg = tiny_run_config(engine_cache, tmp_path, "r", "tracking.backend=mlflow", *SHORT)
    first = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})})
    api.train(first, progress=False)
    api.train(cfg, resume=True, progress=False)  # epoch 2, as after an interruption
    assert (tmp_path / "mlflow.db").is_file()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment, run = _only_run(client, "crossdistill")
    assert experiment.artifact_location == (tmp_path / "mlflow-artifacts").as_uri()
    assert run.info.status == "FINISHED" and run.info.run_name == "r"
    assert _steps(client, run.info.run_id, "loss/seg") == [1, 2]
    note = json.loads((tmp_path / "r" / "tracking.json").read_text())
    assert note["run_id"] == run.info.run_id
    assert (tmp_path / "mlflow-artifacts").is_dir()


def test_an_epoch_logged_before_a_kill_is_not_logged_twice_on_resume(
    engine_cache, tmp_path, monkeypatch
):
    """Killed between epoch 2's metrics line (logged) and its checkpoint: the resumed run
    repeats epoch 2, and MLflow keeps one point for it."""
    cfg = tiny_run_config(
        engine_cache, tmp_path, "r", "tracking.backend=mlflow", *SHORT, "train.val_every=2"
    )
    writes = []  # epoch 1: last; epoch 2: best, then last — the third write dies

    def save_then_die_at_the_third(path, *args, **kwargs):
        writes.append(path)
        if len(writes) == 3:
            raise KeyboardInterrupt("killed before epoch 2's checkpoint")
        return save_checkpoint(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(fit_module, "save_checkpoint", save_then_die_at_the_third)
        with pytest.raises(KeyboardInterrupt):
            api.train(cfg, progress=False)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _, run = _only_run(client, "crossdistill")
    assert _steps(client, run.info.run_id, "loss/seg") == [1, 2]
    api.train(cfg, resume=True, progress=False)
    _, run = _only_run(client, "crossdistill")
    assert run.info.status == "FINISHED"
    assert _steps(client, run.info.run_id, "loss/seg") == [1, 2]
    assert _steps(client, run.info.run_id, "val_dice") == [2]


def test_a_server_that_is_not_there_costs_one_line_and_seconds(engine_cache, tmp_path, capsys):
    dead = (f"tracking.uri=http://127.0.0.1:{_free_port()}", "tracking.backend=mlflow")
    cfg = tiny_run_config(engine_cache, tmp_path, "r", *dead, *ONE_EPOCH)
    start = time.perf_counter()
    tracking_module.open_tracker(cfg, {}).start(0)
    assert time.perf_counter() - start < 10  # short retries, not MLflow's minutes
    api.train(cfg, progress=False)
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 2 and all(
        w.startswith("crossdistill: warning: MLflow") for w in warnings
    )
    assert all((tmp_path / "r" / name).is_file() for name in FOLDER)


def test_a_distilled_run_logs_config_epochs_terms_dice_and_files(
    engine_cache, teacher, server_uri, tmp_path, run_cli
):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data: {{cache: {engine_cache}}}\noutput: {tmp_path}\nname: s\ndevice: cpu\n"
        "protocol: cross-site\ntarget: S4\nmodel: {name: erfnet, width: 0.25}\n"
        "train: {epochs: 2, batch_size: 4, steps_per_epoch: 1, schedule: {name: constant}}\n"
    )
    code, out, err = run_cli(
        "distill", "--config", config, "--teacher", teacher, "--method", "kmm+lm",
        "--tracking", "mlflow", "--set", f"tracking.uri={server_uri}",
        "--set", "tracking.experiment=study", "--set", "tracking.tags.owner=me",
    )  # fmt: skip
    assert code == 0 and "warning" not in err, err
    assert out.splitlines()[-1].startswith("s: Dice")  # no MLflow line on stdout
    client = MlflowClient(server_uri)
    _, run = _only_run(client, "study")
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert params["train.epochs"] == "2" and params["model.name"] == "erfnet"
    assert params["kd.lm.weight"] == "0.2" and params["kd.kmm.feature"] == "high"
    assert (tags["method"], tags["role"], tags["owner"]) == ("kmm+lm", "student", "me")
    for key in ("loss/lm", "loss/kmm", "loss/raw/lm", "loss/raw/kmm", "loss/seg", "lr"):
        assert _steps(client, run.info.run_id, key) == [1, 2], key
    evaluation = json.loads((tmp_path / "s" / "evaluation.json").read_text())
    assert metrics["test/site_dice/UCL"] == evaluation["sites"]["UCL"]["dice"]["mean"]
    assert "teacher_dice_on_student_images" in metrics
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"curves.png", "overlay.png", "evaluation.json", "summary.json"} <= files
    assert run.info.status == "FINISHED"


def test_a_grid_is_one_experiment_its_runs_tagged(engine_cache, server_uri, tmp_path):
    from crossdistill.compare import compare

    out = tmp_path / "cmp-grid"
    tracked = (*TINY_OVERRIDES, "tracking.backend=mlflow", f"tracking.uri={server_uri}")
    compare(
        ["S4"],
        teacher="unetpp",
        methods=["none", "lm"],
        seeds=1,
        preset="study",
        data=engine_cache,
        out=out,
        overrides=tracked,
        max_runs=2,
        echo=lambda line: None,
    )  # the teacher and w/o only (lm's tags: tests/unit/test_tracking_hook.py)
    client = MlflowClient(server_uri)
    experiment = client.get_experiment_by_name("cmp-grid")
    runs = client.search_runs([experiment.experiment_id])
    tags = {r.data.tags["method"]: r.data.tags for r in runs}
    assert set(tags) == {"teacher", "w/o"}
    wo = tags["w/o"]
    assert (wo["table"], wo["target"], wo["seed"], wo["grid"]) == ("compare", "UCL", "0", str(out))
    assert wo["run"] == "UCL/seed0/enet-wo" == wo["mlflow.runName"]
    assert not (out / "mlflow.db").exists()  # the server's store, not the local one


def test_a_run_finished_untracked_is_logged_once_from_its_folder(
    engine_cache, server_uri, tmp_path
):
    from crossdistill.log_finished import log_finished_run

    api.train(tiny_run_config(engine_cache, tmp_path, "r", *SHORT), progress=False)
    at = ("tracking.backend=mlflow", f"tracking.uri={server_uri}")
    tracked = tiny_run_config(engine_cache, tmp_path, "r", *SHORT, *at, "tracking.experiment=late")
    assert log_finished_run(tracked) is True
    client = MlflowClient(server_uri)
    _, run = _only_run(client, "late")
    assert run.info.status == "FINISHED" and run.info.run_name == "r"
    assert run.data.params["train.epochs"] == "2" and run.data.tags["method"] == "w/o"
    assert _steps(client, run.info.run_id, "loss/seg") == [1, 2]
    evaluation = json.loads((tmp_path / "r" / "evaluation.json").read_text())
    assert run.data.metrics["test/dice"] == evaluation["overall"]["dice"]["mean"]
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"curves.png", "summary.json"} <= files
    assert log_finished_run(tracked) is False  # its note names it: not a second time
    assert len(client.search_runs([run.info.experiment_id])) == 1
    elsewhere = tiny_run_config(
        engine_cache, tmp_path, "r", *SHORT, *at, "tracking.experiment=elsewhere"
    )
    assert log_finished_run(elsewhere) is True  # an experiment that does not hold it yet
    assert json.loads((tmp_path / "r" / "tracking.json").read_text())["experiment"] == "elsewhere"
    assert not (tmp_path / "mlflow.db").exists()


def test_a_grid_given_tracking_later_logs_the_runs_it_reuses(engine_cache, server_uri, tmp_path):
    from crossdistill.compare import compare

    out = tmp_path / "later"
    call = dict(teacher="unetpp", methods=["none", "lm"], seeds=1, preset="study")
    call["data"] = engine_cache
    compare(["S4"], out=out, overrides=TINY_OVERRIDES, echo=lambda line: None, max_runs=2, **call)
    lines: list[str] = []  # the teacher and w/o trained untracked; lm not yet
    tracked = (*TINY_OVERRIDES, "tracking.backend=mlflow", f"tracking.uri={server_uri}")
    compare(["S4"], out=out, overrides=tracked, echo=lines.append, max_runs=0, **call)
    assert any(line.startswith("logged 2 reused run(s) to later") for line in lines), lines
    client = MlflowClient(server_uri)
    experiment = client.get_experiment_by_name("later")
    runs = {r.data.tags["method"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"teacher", "w/o"}
    wo = runs["w/o"]
    assert wo.data.tags["run"] == "UCL/seed0/enet-wo" and wo.data.tags["table"] == "compare"
    assert wo.info.status == "FINISHED" and "test/dice" in wo.data.metrics
    lines.clear()
    compare(["S4"], out=out, overrides=tracked, echo=lines.append, max_runs=0, **call)
    assert not any(line.startswith("logged") for line in lines)


def test_a_server_killed_mid_run_leaves_the_run_and_its_folder_whole(
    engine_cache, server, server_uri, tmp_path, capsys, monkeypatch
):
    """Last in the module: kills the module's server after the run's first epoch."""
    log_epoch = tracking_module.MlflowTracker.log_epoch

    def then_kill(self, record):
        log_epoch(self, record)
        if record["epoch"] == 1:
            server.kill()

    monkeypatch.setattr(tracking_module.MlflowTracker, "log_epoch", then_kill)
    uri = ("tracking.backend=mlflow", f"tracking.uri={server_uri}", "tracking.experiment=kill")
    cfg = tiny_run_config(engine_cache, tmp_path, "r", *uri, *SHORT)
    summary = api.train(cfg, progress=False)
    assert summary["epochs"] == 2 and all((tmp_path / "r" / f).is_file() for f in FOLDER)
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("crossdistill: warning: MLflow"), warning
    client = MlflowClient(server.store)  # what the server stored before it died
    _, run = _only_run(client, "kill")
    assert _steps(client, run.info.run_id, "loss/seg") == [1] and run.info.status == "RUNNING"
