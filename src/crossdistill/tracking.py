"""Runs tracked in MLflow (docs/design.md §7, "Tracking"): the engine's tracking hook
(:mod:`crossdistill.engine.tracking`) implemented for ``tracking.backend: mlflow``.

A tracked run logs, into experiment ``tracking.experiment`` (default ``crossdistill``; a
grid names one per grid) at ``tracking.uri`` (default: the SQLite store
``sqlite:///OUTPUT/mlflow.db``, its artifacts in ``OUTPUT/mlflow-artifacts``):

- params: the resolved configuration as dotted keys (``train.optimizer.lr``), and every KD
  term with its weight and options as resolved from the preset (``kd.lm.weight``);
- tags: role, model, method, protocol, target, seed, then ``tracking.tags`` over them;
- metrics, step = epoch: every number of the epoch's ``metrics.jsonl`` line (``lr``,
  ``loss/<term>``, ``loss/raw/<term>``, ``grad/<term>``, ``val_dice``, ...); at the end the
  evaluation (:func:`final_metrics`: overall and per-site Dice, HD95, ASD);
- artifacts: ``curves.png``, ``overlay.png``, ``evaluation.json``, ``summary.json``,
  ``config.yaml``.

The MLflow run id is noted in ``RUN/tracking.json``, so a resumed run goes on in the same
MLflow run; an epoch that the interrupted attempt had logged before its checkpoint (a kill
between the two) is not logged again when the resumed run repeats it. ``mlflow`` is imported
only here and only when tracking is on. Tracking never fails a run: the first error (a
server down, a refused value) prints one warning line and turns the tracker off, and the
client's retries and timeout are kept short while it logs (:data:`CLIENT_SETTINGS`), so a
dead server costs seconds, once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crossdistill.config import RunConfig
from crossdistill.engine.run_folder import RunFolder
from crossdistill.engine.tracking import NULL_TRACKER, Tracker
from crossdistill.errors import CrossDistillError

MLFLOW_MISSING = "tracking with MLflow needs the mlflow package: pip install 'crossdistill[mlflow]'"
DEFAULT_EXPERIMENT = "crossdistill"
STORE, ARTIFACTS = "mlflow.db", "mlflow-artifacts"

#: MLflow's HTTP client while this module calls it, where the environment does not say
#: otherwise: 2 retries (0 s, then 2 s apart), 10 s per request, no waiting on Retry-After,
#: no run URLs printed on stdout.
CLIENT_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")  # MLflow keys: these characters only
_BATCH = 100  # params per log_batch call (MLflow's limit)
EVERY_EPOCH = "step"  # a number in every metrics.jsonl line: its history says which epochs are in


def require_backend(backend: str) -> None:
    """Fail before any work when ``backend``'s package is missing.

    Raises:
        CrossDistillError: one line naming what to install.
    """
    if backend == "mlflow":
        _mlflow_client()


def local_store(folder: str | Path) -> str:
    """The default store of runs written into ``folder``: ``sqlite:///FOLDER/mlflow.db``."""
    return "sqlite:///" + (Path(folder).absolute() / STORE).as_posix()


def open_tracker(config: RunConfig, terms: Mapping[str, Mapping[str, Any]]) -> Tracker:
    """The tracker of ``config.tracking`` for the run of ``config`` with KD ``terms`` (the
    resolved ones); it contacts nobody before ``start``.

    Raises:
        CrossDistillError: the backend's package is missing.
    """
    tracking = config.tracking
    if tracking.backend == "none":
        return NULL_TRACKER
    require_backend(tracking.backend)
    params = flatten(config.model_dump(mode="json", exclude={"tracking"}))
    if terms:
        params.update(flatten({"kd": terms}))
    return MlflowTracker(
        uri=tracking.uri or local_store(config.output),
        experiment=tracking.experiment or DEFAULT_EXPERIMENT,
        run_name=tracking.run_name or config.name,
        params=params,
        tags={**run_tags(config), **{k: str(v) for k, v in tracking.tags.items()}},
        note=RunFolder.of(config).tracking,
    )


def prepare_experiment(uri: str, experiment: str) -> bool:
    """Create ``experiment`` at ``uri`` (and the store) if needed, before a grid starts its
    runs, so parallel runs do not race to; False, after one warning line, if it failed."""
    client = _mlflow_client()
    return _safely(
        uri,
        lambda: _experiment_id(client(tracking_uri=uri), uri, experiment),
        "the grid's runs go on",
    )


def run_tags(config: RunConfig) -> dict[str, str]:
    """What the run is, as tags; ``method`` is the distillation preset (``@control``), the
    training method, ``teacher`` or ``w/o``."""
    if config.distill.preset != "none":
        control = config.distill.control
        method = config.distill.preset + (f"@{control}" if control else "")
    elif config.train.method != "supervised":
        method = config.train.method
    else:
        method = "teacher" if config.role == "teacher" else "w/o"
    tags = {"role": config.role, "model": config.model.name, "method": method}
    tags.update(protocol=config.protocol, seed=str(config.seed))
    if config.target is not None:
        tags["target"] = config.target
    return tags


def final_metrics(summary: Mapping[str, Any], evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The end of a run as metrics: ``<split>/dice`` (mean over the cases), ``dice_std``,
    ``hd95``, ``asd``, ``<split>/site_dice/<site>`` (each site's mean), ``best_val_dice``,
    ``best_epoch``, ``seconds`` and, distilled, ``teacher_dice_on_student_images``."""
    split, overall = evaluation["split"], evaluation["overall"]
    metrics = {
        f"{split}/dice": overall["dice"]["mean"],
        f"{split}/dice_std": overall["dice"]["std"],
    }
    metrics.update({f"{split}/{m}": overall[m]["mean"] for m in ("hd95", "asd") if m in overall})
    for site, record in evaluation["sites"].items():
        metrics[f"{split}/site_dice/{site}"] = record["dice"]["mean"]
    if summary.get("val_dice") is not None:
        metrics["best_val_dice"] = summary["val_dice"]
    metrics["best_epoch"] = summary["best_epoch"]
    metrics["seconds"] = summary["seconds"]
    if "teacher_reliability" in summary:
        metrics["teacher_dice_on_student_images"] = summary["teacher_reliability"]["dice"]["mean"]
    return {key: float(value) for key, value in metrics.items()}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"lr": 0.01}}`` → ``{"train.lr": "0.01"}``; leaves as JSON (strings as
    they are, an empty mapping as ``{}``), cut to 500 characters (MLflow's oldest limit)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[f"{prefix}{key}"] = text[:500]
    return flat


def epoch_numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of one ``metrics.jsonl`` line but its ``epoch`` (the step they are at)."""
    return {
        k: float(v)
        for k, v in record.items()
        if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)
    }


class MlflowTracker:
    """One run's reports to MLflow (module docstring); every call is a no-op once one failed."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        note: Path,
    ) -> None:
        self.uri, self.experiment, self.run_name = uri, experiment, run_name
        self.params, self.tags, self.note = dict(params), dict(tags), note
        self.run_id: str | None = None
        self._client: Any = None
        self._off = False
        self._logged_epochs: set[int] = set()  # by the interrupted attempt of a resumed run

    def start(self, epoch: int) -> None:
        self._call(self._start, epoch, needs_run=False)

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        if int(record["epoch"]) in self._logged_epochs:
            return
        self._call(self._log, epoch_numbers(record), int(record["epoch"]))

    def log_final(self, metrics: Mapping[str, float], artifacts: Sequence[Path]) -> None:
        self._call(self._final, metrics, [Path(p) for p in artifacts])

    def log_finished(
        self,
        records: Sequence[Mapping[str, Any]],
        metrics: Mapping[str, float],
        artifacts: Sequence[Path],
    ) -> bool:
        """Log, after the fact, a run that finished while this store did not hear of it
        (trained untracked, or tracked elsewhere): its epochs ``records``, final ``metrics``
        and ``artifacts``, then ``FINISHED``. A run that its note says this store holds as
        finished is left alone; one it holds unfinished (a kill between the last epoch and
        the end) gets what it misses. True when something was logged."""
        logged: list[bool] = []
        self._call(self._log_finished, records, metrics, artifacts, logged, needs_run=False)
        return bool(logged) and not self._off

    def end(self, status: str) -> None:
        self._call(lambda: self._client.set_terminated(self.run_id, status))

    def _call(self, fn: Callable[..., None], *args: Any, needs_run: bool = True) -> None:
        if self._off or (needs_run and self.run_id is None):
            return
        self._off = not _safely(self.uri, lambda: fn(*args))

    def _start(self, epoch: int) -> None:
        from mlflow.entities import Param

        self._client = _mlflow_client()(tracking_uri=self.uri)
        self.run_id = self._resumable() if epoch > 0 else None
        if self.run_id is not None:
            self._client.update_run(self.run_id, status="RUNNING")
            history = self._client.get_metric_history(self.run_id, _key(EVERY_EPOCH))
            self._logged_epochs = {m.step for m in history}
            return
        experiment_id = _experiment_id(self._client, self.uri, self.experiment)
        tags = {_key(k): v[:5000] for k, v in self.tags.items()}
        run = self._client.create_run(experiment_id, tags=tags, run_name=self.run_name)
        self.run_id = run.info.run_id
        self.note.write_text(
            json.dumps({"uri": self.uri, "experiment": self.experiment, "run_id": self.run_id})
        )
        params = [Param(_key(k), v) for k, v in self.params.items()]
        for i in range(0, len(params), _BATCH):
            self._client.log_batch(self.run_id, params=params[i : i + _BATCH])

    def _log_finished(
        self,
        records: Sequence[Mapping[str, Any]],
        metrics: Mapping[str, float],
        artifacts: Sequence[Path],
        logged: list[bool],
    ) -> None:
        self._client = _mlflow_client()(tracking_uri=self.uri)
        known = self._resumable()
        if known is not None and self._client.get_run(known).info.status == "FINISHED":
            return
        self._start(len(records))
        for record in records:
            if int(record["epoch"]) not in self._logged_epochs:
                self._log(epoch_numbers(record), int(record["epoch"]))
        self._final(metrics, [Path(p) for p in artifacts])
        self._client.set_terminated(self.run_id, "FINISHED")
        logged.append(True)

    def _resumable(self) -> str | None:
        """The MLflow run of the interrupted attempt, when its note names this store."""
        try:
            note = json.loads(self.note.read_text())
        except (OSError, ValueError):
            return None
        if note.get("uri") != self.uri or note.get("experiment") != self.experiment:
            return None
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_run(note["run_id"]).info.run_id
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def _log(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(_key(k), v, now, step) for k, v in metrics.items()]
        self._client.log_batch(self.run_id, metrics=batch)

    def _final(self, metrics: Mapping[str, float], artifacts: list[Path]) -> None:
        self._log(metrics, 0)
        for path in artifacts:
            if path.is_file():
                self._client.log_artifact(self.run_id, str(path))


def _experiment_id(client: Any, uri: str, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in the cwd
        location = (Path(uri.removeprefix("sqlite:///")).absolute().parent / ARTIFACTS).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # created meanwhile by a parallel run
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _key(name: str) -> str:
    return _BAD_KEY.sub("_", name)[:250]


def _mlflow_client() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise CrossDistillError(MLFLOW_MISSING) from None
    return MlflowClient


@contextmanager
def client_settings() -> Iterator[None]:
    """:data:`CLIENT_SETTINGS` in the environment (those it does not set already), and
    MLflow's own log quiet but for warnings (no "Creating initial MLflow database tables")."""
    added = {k: v for k, v in CLIENT_SETTINGS.items() if k not in os.environ}
    os.environ.update(added)
    log = logging.getLogger("mlflow")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)
        for key in added:
            os.environ.pop(key, None)


def _safely(uri: str, call: Callable[[], Any], what: str = "the run goes on") -> bool:
    """Run ``call`` under :func:`client_settings`; on an error, one warning line (``what``
    without it) and False."""
    try:
        with client_settings():
            call()
    except Exception as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        if len(reason) > 240:
            reason = f"{reason[:150]} … {reason[-80:]}"
        sys.stderr.write(
            f"crossdistill: warning: MLflow tracking at {uri} stopped, {what} without it: "
            f"{reason}\n"
        )
        sys.stderr.flush()
        return False
    return True
