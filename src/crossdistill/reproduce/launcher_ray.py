"""``--launcher ray``: a grid's runs as Ray tasks, one GPU each when the cluster has GPUs.

Ray is an optional dependency (``pip install 'crossdistill[ray]'``), imported only here and
only when this launcher is asked for. Without ``address`` (``--address``) the launcher starts
a local Ray on this machine, its workers at normal priority (not Ray's default niceness 15),
and stops it when the grid is done; ``auto`` or ``HOST:PORT`` (or ``ray://HOST:PORT``) joins
a running cluster; a Ray already initialised by the calling program (``ray.init(...)`` before
:func:`crossdistill.reproduce.reproduce`) is used as it is.

Each run is one task that runs :func:`~crossdistill.reproduce.launchers.execute_job`, the
function the process pool runs, with ``cpus_per_run`` CPUs (its torch threads) and, when the
cluster has GPUs and the run's ``device`` is not ``cpu``, one GPU (Ray sets
``CUDA_VISIBLE_DEVICES``, so ``device: auto`` or ``cuda`` is that GPU). A task is tried once:
a failed run comes back as a :class:`JobResult` with its error, a dead worker too, and the
next invocation resumes the run from its last checkpoint like any interrupted run.

The workers must run this package's code and see the grid's files: on a local Ray they
inherit the driver's environment (and a worker on the driver's node refuses to run if it
imports ``crossdistill`` from another folder than the driver); a multi-node cluster needs
crossdistill and its dependencies installed alike on every node, and ``OUT`` and the data
cache on a filesystem that every node mounts at the same path (a student reads its
teacher's checkpoint from ``OUT/runs``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import crossdistill
from crossdistill.errors import CrossDistillError
from crossdistill.reproduce.launchers import (
    Job,
    JobResult,
    Launcher,
    execute_job,
)
from crossdistill.worker_init import limit_torch_threads

INSTALL_HINT = "pip install 'crossdistill[ray]'"

#: The system configuration of the local Ray this launcher starts. Ray runs its workers at
#: niceness 15 by default, so on a machine with other work at normal priority (another grid,
#: a test suite) a run got about 4 % of a core and a minute's run took hours; the runs *are*
#: the user's work, so they run at the driver's priority. A cluster joined with ``--address``
#: keeps its own setting (``RAY_worker_niceness`` when it was started).
LOCAL_RAY_SYSTEM_CONFIG = {"worker_niceness": 0}


def import_ray() -> ModuleType:
    """The ``ray`` module; raises one line saying how to install it when it is missing."""
    try:
        import ray
    except ImportError as err:
        raise CrossDistillError(
            f"--launcher ray: Ray is not installed; install it with {INSTALL_HINT}"
        ) from err
    return ray


def run_on_worker(job: Job, threads: int, driver_node: str, driver_package: str) -> JobResult:
    """What a Ray task runs: :func:`execute_job` with ``threads`` torch threads, after
    checking that a worker on the driver's node imports the driver's ``crossdistill``."""
    import ray

    package = str(Path(crossdistill.__file__).parent)
    if ray.get_runtime_context().get_node_id() == driver_node and package != driver_package:
        return JobResult(
            job.id,
            None,
            f"the Ray worker imports crossdistill from {package}, the driver from "
            f"{driver_package}; start Ray from the driver's environment",
            0.0,
        )
    limit_torch_threads(threads)
    return execute_job(job)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


class RayLauncher(Launcher):
    """Runs jobs as Ray tasks (module docstring). ``jobs`` caps the runs in flight; by
    default as many as the cluster holds at once: its GPUs (when it has any, each run also
    taking ``cpus_per_run`` CPUs), else its CPUs // ``cpus_per_run``."""

    def __init__(
        self,
        jobs: int | None = None,
        address: str | None = None,
        cpus_per_run: int | None = None,
    ) -> None:
        self.check(jobs, address=address, cpus_per_run=cpus_per_run)
        ray = import_ray()
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            try:
                local = {"_system_config": LOCAL_RAY_SYSTEM_CONFIG} if address is None else {}
                ray.init(address=address, logging_level=logging.WARNING, **local)
            except (OSError, RuntimeError, ValueError) as err:  # ConnectionError, TimeoutError
                raise CrossDistillError(
                    f"--address {address}: cannot reach a Ray cluster ({_one_line(err)})"
                ) from err
        self.cpus_per_run = cpus_per_run or 1
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        by_cpus = cpus // self.cpus_per_run
        self.slots = jobs or max(1, min(by_cpus, gpus) if gpus else by_cpus)
        self.gpus_per_run = 1 if gpus else 0
        self._driver = (
            ray.get_runtime_context().get_node_id(),
            str(Path(crossdistill.__file__).parent),
        )
        self._task = ray.remote(run_on_worker)
        self._running: dict[Any, str] = {}  # object ref -> job id
        where = "Ray initialised by the caller"
        if self._started:
            where = "local Ray" if address is None else f"Ray at {address}"
        each = f"{self.cpus_per_run} CPU" + (" and 1 GPU" if gpus else "")
        self.description = (
            f"{where}: {cpus} CPUs, {gpus} GPUs; up to {self.slots} runs at once, {each} each"
        )

    @classmethod
    def check(
        cls, jobs: int | None = None, address: str | None = None, cpus_per_run: int | None = None
    ) -> None:
        """Ray is installed and ``cpus_per_run`` is at least 1."""
        import_ray()
        if cpus_per_run is not None and cpus_per_run < 1:
            raise CrossDistillError(f"--cpus-per-run: must be at least 1, got {cpus_per_run}")
        if address is not None and not address.strip():
            raise CrossDistillError("--address: empty; use auto or HOST:PORT")

    def submit(self, job: Job) -> Any:
        gpus = self.gpus_per_run if job.config.get("device") != "cpu" else 0
        task = self._task.options(num_cpus=self.cpus_per_run, num_gpus=gpus, max_retries=0)
        ref = task.remote(job, self.cpus_per_run, *self._driver)
        self._running[ref] = job.id
        return ref

    def wait(self, handles: list[Any]) -> list[tuple[Any, JobResult]]:
        self._ray.wait(handles, num_returns=1)
        done, _ = self._ray.wait(handles, num_returns=len(handles), timeout=0)
        finished = []
        for ref in done:
            job_id = self._running.pop(ref, "?")
            try:
                finished.append((ref, self._ray.get(ref)))
            except self._ray.exceptions.RayError as err:  # job unreadable, worker or node died
                reason = f"Ray task failed: {_one_line(err)}"
                finished.append((ref, JobResult(job_id, None, reason, 0.0)))
        return finished

    def close(self) -> None:
        """Cancel the runs still in flight (they resume next time); stop a Ray started here."""
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
