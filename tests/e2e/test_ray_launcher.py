"""``reproduce --launcher ray``: a grid on a local 2-CPU Ray gives the local launcher's
outputs and resumes; failures come back as results; without Ray, one line on installing it."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from conftest import TINY_OVERRIDES, tiny_run_config
from crossdistill.errors import CrossDistillError
from crossdistill.reproduce import reproduce
from crossdistill.reproduce.launchers import Job, check_launcher, make_launcher

NO_RAY = "ray is not installed (pip install 'crossdistill[ray]')"
TINY = TINY_OVERRIDES
GRID = {"preset": "demo", "sites": ["S4"], "students": ["enet"], "teachers": ["unetpp"]}


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for this module's tests, shut down after them."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    from crossdistill.reproduce.launcher_ray import LOCAL_RAY_SYSTEM_CONFIG

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        _system_config=LOCAL_RAY_SYSTEM_CONFIG,  # as the launcher's own local Ray
    )
    yield ray
    ray.shutdown()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_without_ray_the_launcher_says_how_to_install_it(run_cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, _, err = run_cli(
        "reproduce", "--table", "2", "--launcher", "ray", "--out", tmp_path / "g"
    )
    assert code == 2
    assert err.strip().splitlines() == [
        "crossdistill: error: --launcher ray: Ray is not installed; "
        "install it with pip install 'crossdistill[ray]'"
    ]
    assert not (tmp_path / "g").exists()  # refused before any work


def test_launcher_options_belong_to_their_launcher(run_cli, tmp_path):
    code, _, err = run_cli("reproduce", "--table", "2", "--address", "auto", "--out", tmp_path)
    assert code == 2 and "--address: not an option of --launcher local" in err
    with pytest.raises(CrossDistillError, match="--jobs: must be at least 1"):
        check_launcher("ray", 0)


def test_ray_options_are_checked_before_any_work(tmp_path):
    pytest.importorskip("ray", reason=NO_RAY)
    with pytest.raises(CrossDistillError, match="--cpus-per-run: must be at least 1, got 0"):
        reproduce(2, out=tmp_path / "g", launcher="ray", launcher_options={"cpus_per_run": 0})
    assert not (tmp_path / "g").exists()


def test_no_cluster_at_the_address_is_one_line():
    ray = pytest.importorskip("ray", reason=NO_RAY)
    if ray.is_initialized() or os.environ.get("RAY_ADDRESS"):
        pytest.skip("a Ray is already running for this process")
    if Path("/tmp/ray/ray_current_cluster").exists():
        pytest.skip("a Ray cluster runs on this machine (ray start)")
    try:
        launcher = make_launcher("ray", address="auto")
    except CrossDistillError as err:
        assert str(err).startswith("--address auto: cannot reach a Ray cluster (")
        assert "\n" not in str(err)
        return
    launcher.close()  # `auto` found the Ray that another test (another worker) started
    pytest.skip("a Ray cluster started on this machine meanwhile (another test's)")


def test_the_local_ray_runs_tasks_at_the_drivers_priority():
    """Ray nices its workers to 15 by default: beside other work at normal priority (another
    grid, a test suite) a run then got ~4 % of a core. The launcher's local Ray does not."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    if ray.is_initialized():
        pytest.skip("a Ray is already running for this process")
    with make_launcher("ray", cpus_per_run=1):
        worker_niceness = ray.get(ray.remote(lambda: os.nice(0)).remote())
    assert worker_niceness == os.nice(0)
    assert not ray.is_initialized()  # the launcher stopped the Ray it started


def test_grid_on_ray_matches_local_launcher_and_resumes(engine_cache, tmp_path, request, run_cli):
    """The first two runs (a teacher and a student without one) run side by side on a Ray
    the launcher starts and stops; the next invocation, on a Ray started by the caller,
    reuses them and trains the distilled student. Files and run configurations equal the
    local launcher's."""
    pytest.importorskip("ray", reason=NO_RAY)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    result = reproduce(2, data=engine_cache, out=local, overrides=TINY, echo=lambda _: None, **GRID)
    assert len(result["trained"]) == 3

    args = ["--table", "2", "--preset", "demo", "--data", engine_cache, "--out", on_ray]
    args += ["--sites", "S4", "--students", "enet", "--teachers", "unetpp", "--max-runs", "2"]
    args += [a for key in TINY for a in ("--set", key)]
    code, out, err = run_cli("reproduce", *args, "--launcher", "ray", "--cpus-per-run", "1")
    assert code == 0, err
    assert "local Ray: " in out and "1 CPU each" in out
    assert "0 runs reused, 2 trained, 0 failed, 1 left to run" in out

    request.getfixturevalue("local_ray")  # started only now: one Ray at a time
    lines: list[str] = []
    second = reproduce(
        2, data=engine_cache, out=on_ray, overrides=TINY, launcher="ray", echo=lines.append, **GRID
    )
    assert (
        "Ray initialised by the caller: 2 CPUs, 0 GPUs; up to 2 runs at once, 1 CPU each" in lines
    )
    assert second["trained"] == ["UCL/seed0/enet-ours-from-unetpp-cross-site"]
    assert sorted(second["reused"]) == [
        "UCL/seed0/enet-wo",
        "UCL/seed0/teacher-unetpp-cross-site",
    ]
    assert _files(on_ray) == _files(local)
    for config in (local / "runs").rglob("config.yaml"):
        twin = on_ray / config.relative_to(local)
        expected = config.read_text(encoding="utf-8").replace(str(local), str(on_ray))
        assert twin.read_text(encoding="utf-8") == expected


def test_failed_runs_come_back_as_results(local_ray, engine_cache, tmp_path):
    """A run that fails in training, one whose job cannot even be read, and a worker that
    imports another crossdistill than the driver all end as results, not exceptions."""
    from crossdistill.reproduce.launcher_ray import run_on_worker

    missing = tmp_path / "no-cache"
    broken = tiny_run_config(missing, tmp_path / "runs", "broken")
    with make_launcher("ray", cpus_per_run=1) as launcher:
        assert launcher.slots == 2
        handles = [
            launcher.submit(Job("broken", broken.model_dump(mode="json"), resume=False)),
            launcher.submit(Job("unreadable", {"model": {"name": 5}}, resume=False)),
        ]
        results = {}
        while handles:
            for handle, result in launcher.wait(handles):
                handles.remove(handle)
                results[result.id] = result
    assert results["broken"].summary is None and str(missing) in results["broken"].error
    assert (tmp_path / "runs" / "broken" / "error.log").is_file()
    assert results["unreadable"].error.startswith("Ray task failed: ")

    node = local_ray.get_runtime_context().get_node_id()
    job = Job("elsewhere", broken.model_dump(mode="json"), resume=False)
    result = local_ray.get(local_ray.remote(run_on_worker).remote(job, 1, node, "/elsewhere"))
    assert "imports crossdistill from" in result.error and "/elsewhere" in result.error
