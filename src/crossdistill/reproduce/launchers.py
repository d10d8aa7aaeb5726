"""Launchers: how the runs of a grid are executed, one strategy per class.

The runner (:mod:`crossdistill.reproduce.runner`) decides *what* runs and *when* (a run
only once its teacher has finished); a launcher only executes. Its contract:

- ``slots`` — how many jobs may run at once;
- ``submit(job) -> handle`` — start one :class:`Job`;
- ``wait(handles) -> [(handle, JobResult), ...]`` — block until at least one has finished;
- ``close()`` — release workers (also on ``with``-exit);
- ``description`` — one line on what it runs on (printed by ``reproduce``; may be empty).

A :class:`Job` is plain, picklable data and :func:`execute_job` is the function to run for
it anywhere (a thread, a process, a cluster node); it never raises for a failed run but
returns the error in its :class:`JobResult`, so one broken run does not stop a grid. A new
launcher is one more module with a :class:`Launcher` subclass, named in :data:`LAUNCHERS` as
``"module:Class"`` (imported only when asked for, so its package stays optional). Its
keyword options are ``reproduce``'s launcher options (``--address``, ``--cpus-per-run``), and
its classmethod ``check(jobs, **options)`` validates them before any work is done
(:mod:`.launcher_ray` is one: ``--launcher ray``).
"""

from __future__ import annotations

import importlib
import inspect
import multiprocessing
import os
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from crossdistill.errors import CrossDistillError
from crossdistill.worker_init import init_worker


@dataclass(frozen=True)
class Job:
    """One run to execute: its resolved configuration (JSON form), whether it resumes, and
    whether its finished folder is kept when its teacher (trained again) has the weights the
    run was distilled from (``keep_if_same_teacher``)."""

    id: str
    config: dict[str, Any]
    resume: bool
    depends: tuple[str, ...] = ()
    keep_if_same_teacher: bool = False


@dataclass(frozen=True)
class JobResult:
    """What a job ended with: its summary, or the error that stopped it; ``kept``: the run
    was not trained, its finished folder kept (:attr:`Job.keep_if_same_teacher`)."""

    id: str
    summary: dict | None
    error: str | None
    seconds: float
    kept: bool = False


def execute_job(job: Job, progress: bool = False) -> JobResult:
    """Train the job's run (see :func:`crossdistill.reproduce.runs.train_run`), or keep it
    (:func:`~crossdistill.reproduce.runs.kept_summary`); a failure is returned, with the
    traceback written to ``RUN/error.log``."""
    from crossdistill.config import RunConfig
    from crossdistill.reproduce.runs import kept_summary, run_dir, train_run

    start = time.perf_counter()
    cfg = RunConfig.model_validate(job.config)
    try:
        kept = kept_summary(cfg) if job.keep_if_same_teacher else None
        if kept is not None:
            return JobResult(job.id, kept, None, time.perf_counter() - start, kept=True)
        summary = train_run(cfg, job.resume, progress)
    except Exception as err:  # reported by the runner; the other runs go on
        folder = run_dir(cfg)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        reason = str(err) if isinstance(err, CrossDistillError) else f"{type(err).__name__}: {err}"
        return JobResult(job.id, None, reason, time.perf_counter() - start)
    return JobResult(job.id, summary, None, time.perf_counter() - start)


class Launcher(ABC):
    """Executes jobs (module docstring)."""

    slots: int = 1
    description: str = ""

    @classmethod  # noqa: B027 (optional: most launchers take no options)
    def check(cls, jobs: int | None = None, **options: Any) -> None:
        """Raise :class:`CrossDistillError` for options this launcher cannot run with."""

    @abstractmethod
    def submit(self, job: Job) -> Any:
        """Start ``job``; returns a handle for :meth:`wait`."""

    @abstractmethod
    def wait(self, handles: list[Any]) -> list[tuple[Any, JobResult]]:
        """Block until at least one of ``handles`` has finished; return those finished."""

    def close(self) -> None:  # noqa: B027 (optional: most launchers hold nothing)
        """Release the launcher's workers."""

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FutureLauncher(Launcher):
    def wait(self, handles: list[Future]) -> list[tuple[Future, JobResult]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        finished = []
        for future in done:
            try:
                finished.append((future, future.result()))
            except Exception as err:  # the worker process itself died
                finished.append((future, JobResult("?", None, f"worker died: {err!r}", 0.0)))
        return finished


class SequentialLauncher(_FutureLauncher):
    """One run after the other in this process (with its progress bar)."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        future.set_result(execute_job(job, self.progress))
        return future


class ProcessPoolLauncher(_FutureLauncher):
    """Up to ``jobs`` runs at once, each in its own (spawned) process with
    ``cpu_count // jobs`` torch threads unless ``threads`` is given."""

    def __init__(self, jobs: int, threads: int | None = None) -> None:
        self.slots = jobs
        threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        self._pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(threads, os.getpid()),
        )

    def submit(self, job: Job) -> Future:
        return self._pool.submit(execute_job, job)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def local_launcher(jobs: int | None = None, progress: bool = True) -> Launcher:
    """``jobs`` 1 (default): :class:`SequentialLauncher`; more: :class:`ProcessPoolLauncher`."""
    return SequentialLauncher(progress) if (jobs or 1) == 1 else ProcessPoolLauncher(jobs)


#: name -> factory ``(jobs=..., **options) -> Launcher``, or its import path
#: ``"package.module:name"`` (imported only when asked for: optional dependencies).
LAUNCHERS: dict[str, Callable[..., Launcher] | str] = {
    "local": local_launcher,
    "ray": "crossdistill.reproduce.launcher_ray:RayLauncher",
}


def register_launcher(name: str, factory: Callable[..., Launcher] | str) -> None:
    """Make ``--launcher NAME`` available."""
    LAUNCHERS[name] = factory


def _factory(name: str) -> Callable[..., Launcher]:
    factory = LAUNCHERS[name]
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory


def check_launcher(name: str, jobs: int | None = None, **options: Any) -> None:
    """Raise :class:`CrossDistillError` for an unknown launcher, a bad ``--jobs``, an option
    the launcher does not take, or one its ``check`` refuses."""
    if name not in LAUNCHERS:
        raise CrossDistillError(f"--launcher: unknown '{name}'; known: {', '.join(LAUNCHERS)}")
    if jobs is not None and jobs < 1:
        raise CrossDistillError(f"--jobs: must be at least 1, got {jobs}")
    factory = _factory(name)
    accepted = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for option in options:
        if option not in accepted and not takes_any:
            flag = "--" + option.replace("_", "-")
            raise CrossDistillError(f"{flag}: not an option of --launcher {name}")
    check = getattr(factory, "check", None)
    if check is not None:
        check(jobs, **options)


def make_launcher(name: str = "local", jobs: int | None = None, **options: Any) -> Launcher:
    """The launcher called ``name`` for ``jobs`` parallel runs (``None``: its default)."""
    check_launcher(name, jobs, **options)
    return _factory(name)(jobs=jobs, **options)
