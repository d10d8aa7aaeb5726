"""One training run: build what a configuration asks for, then execute it (docs/design.md §7).

:func:`build_run` checks the configuration and builds the data, the networks, the teacher (or
its control) and the training objective, writing nothing; :meth:`Run.execute` writes the run
folder (:class:`~crossdistill.engine.run_folder.RunFolder`): the configuration, the
teacher-output cache, the training (``engine.fit``), the evaluation of the best checkpoint,
the summary and the figures, and reports them to the run's tracker (``tracking``; on rank 0,
nothing by default). ``api.train`` is ``build_run(config).execute()`` under the run
lock; benchmarks that time a run's pieces build them the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crossdistill.config import RunConfig, dump_config
from crossdistill.data.cache import Cache
from crossdistill.data.dataset import SliceDataset
from crossdistill.deploy.metadata import is_onnx_file
from crossdistill.distill.controls import build_control
from crossdistill.distill.presets import resolved_terms
from crossdistill.engine import distributed, global_batch
from crossdistill.engine.cached_teacher import check_teacher_cache, use_teacher_cache
from crossdistill.engine.fit import FitOptions, FitResult, fit
from crossdistill.engine.loading import checkpoint_path, load_model, network_sha256
from crossdistill.engine.objective import TrainingObjective
from crossdistill.engine.onnx_teacher import OnnxTeacher
from crossdistill.engine.optim import make_optimizer, make_scheduler
from crossdistill.engine.precision import (
    Precision,
    resolve_channels_last,
    resolve_compile,
    resolve_precision,
)
from crossdistill.engine.run_folder import RunFolder, write_json
from crossdistill.engine.sharding import check_shardable
from crossdistill.engine.tracking import NULL_TRACKER, Tracker
from crossdistill.errors import ConfigError, CrossDistillError, InputError
from crossdistill.eval.evaluate import evaluate_model
from crossdistill.eval.figures import plot_curves, plot_overlay
from crossdistill.methods import create_objective, method_names
from crossdistill.models import create_model
from crossdistill.models.registry import canonical_name
from crossdistill.run_inputs import open_run_inputs
from crossdistill.run_summary import RunSummary, summarise, teacher_reliability
from crossdistill.tracking import final_metrics, open_tracker, require_backend


def resolve_device(name: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was asked for but no GPU is available")
    return name


def kd_terms(config: RunConfig) -> dict[str, dict[str, Any]]:
    """The preset's terms with ``distill.terms`` merged over them (a weight of 0 drops a term)."""
    return resolved_terms(config.distill.preset, config.distill.terms)


def teacher_cache_root(config: RunConfig) -> Path:
    """Where ``distill.teacher_cache`` keeps its entries: the folder given, or
    ``OUTPUT/.teacher-cache`` (shared by every run of a grid writing into ``OUTPUT``; hidden, so
    that no run name can take it)."""
    value = config.distill.teacher_cache
    return Path(config.output) / ".teacher-cache" if value is True else Path(value)


@dataclass
class Run:
    """A configured run, built and checked, with nothing written yet (:func:`build_run`)."""

    config: RunConfig
    folder: RunFolder
    cache: Cache
    train_sites: list[str]
    eval_sites: list[str]
    device: str
    precision: str
    channels_last: bool
    spec: dict[str, Any]  # the student: name, width, in_channels, num_classes
    terms: dict[str, dict[str, Any]]
    objective: TrainingObjective
    dataset: SliceDataset
    teacher: nn.Module | None = None
    teacher_meta: dict[str, Any] | None = None
    control: dict[str, Any] | None = None
    tracker: Tracker = NULL_TRACKER
    started: float = field(default_factory=time.perf_counter)

    def open_teacher_cache(self, progress: bool = True) -> dict[str, Any] | None:
        """With ``distill.teacher_cache``, open (or build) the teacher-output cache and train
        on it; returns what it is (path, built, taps, bytes), else None."""
        if not self.config.distill.teacher_cache:
            return None
        self.dataset, info = distributed.main_first(
            use_teacher_cache,
            teacher_cache_root(self.config),
            self.objective,
            checkpoint_path(self.config.distill.teacher),
            self.dataset,
            Precision(self.precision, self.device, self.channels_last),
            self.config.train.batch_size,
            progress,
            self.control,
        )
        return info

    def optimizer_and_scheduler(self) -> tuple[torch.optim.Optimizer, Any]:
        """The configured optimizer over the objective's trainable parameters, its schedule."""
        optimizer = make_optimizer(
            self.objective.trainable_parameters(), self.config.train.optimizer
        )
        return optimizer, make_scheduler(optimizer, self.config.train.schedule)

    def fit_options(self, progress: bool = True) -> FitOptions:
        train = self.config.train
        return FitOptions(
            epochs=train.epochs,
            batch_size=train.batch_size,
            seed=self.config.seed,
            steps_per_epoch=train.steps_per_epoch,
            val_every=train.val_every,
            term_grad_every=train.term_grad_every,
            num_workers=self.config.data.num_workers,
            device=self.device,
            progress=progress,
            precision=self.precision,
            channels_last=self.channels_last,
            compile=resolve_compile(train.compile),
        )

    def validation_dice(self, model: nn.Module) -> float:
        """Mean Dice of ``model`` on the training sites' validation cases."""
        result = evaluate_model(
            model, self.cache, self.train_sites, "val", self.config.data.channels, metrics=("dice",)
        )
        return result["overall"]["dice"]["mean"]

    def execute(self, resume: bool = False, progress: bool = True) -> RunSummary:
        """Train, evaluate the best checkpoint on the evaluation sites, write the summary and
        figures; returns the summary (under torchrun every rank gets rank 0's). The tracker
        hears of it all and is ended ``FINISHED``, or ``FAILED`` / ``KILLED`` on an error."""
        try:
            summary = self._execute(resume, progress)
        except KeyboardInterrupt:
            self.tracker.end("KILLED")
            raise
        except BaseException:
            self.tracker.end("FAILED")
            raise
        self.tracker.end("FINISHED")
        return summary

    def _execute(self, resume: bool, progress: bool) -> RunSummary:
        config, folder = self.config, self.folder
        if distributed.is_main():  # under torchrun only rank 0 writes
            folder.path.mkdir(parents=True, exist_ok=True)
            dump_config(config, folder.config)
        optimizer, scheduler = self.optimizer_and_scheduler()
        meta = {
            "model": self.spec,
            "data": {"size": self.cache.size, "channels": config.data.channels},
            "config": config.model_dump(mode="json"),
        }
        has_val = bool(self.cache.cases(self.train_sites, "val"))
        cache_info = self.open_teacher_cache(progress)
        result: FitResult = fit(
            self.objective,
            self.dataset,
            optimizer,
            scheduler,
            folder.path,
            self.fit_options(progress),
            meta,
            self.validation_dice if has_val else None,
            resume,
            self.tracker,
        )
        if not distributed.is_main():  # rank 0 evaluates and reports alone; the others wait
            return distributed.share_from_main(None)
        best, _ = load_model(folder.best, self.device)
        evaluation = evaluate_model(
            best, self.cache, self.eval_sites, config.eval.split, config.data.channels
        )
        write_json(folder.evaluation, evaluation)
        summary = summarise(self, result, evaluation, has_val)
        if cache_info is not None:
            summary["teacher_cache"] = cache_info
        if self.teacher is not None:
            summary["teacher"] = str(checkpoint_path(config.distill.teacher))
            summary["teacher_weights_sha256"] = network_sha256(config.distill.teacher)
            summary["teacher_model"] = self.teacher_meta["model"]
            if self.control is not None:
                summary["control"] = self.control
            summary["teacher_reliability"] = teacher_reliability(
                self.teacher, self.cache, self.train_sites, config.data.channels, self.dataset
            )
        write_json(folder.summary, summary)
        plot_curves(folder.metrics, folder.curves, title=config.name)
        plot_overlay(
            best,
            self.cache,
            self.eval_sites,
            config.eval.split,
            config.data.channels,
            folder.overlay,
        )
        self.tracker.log_final(
            final_metrics(summary, evaluation),
            [folder.curves, folder.overlay, folder.evaluation, folder.summary, folder.config],
        )
        return distributed.share_from_main(summary)


def build_run(config: RunConfig, inputs: tuple[Cache, list[str], list[str]] | None = None) -> Run:
    """Check ``config`` and build its run; nothing is written (a bad configuration leaves no
    trace). Under torchrun this also joins the process group (``engine.distributed``).
    ``inputs``: ``open_run_inputs(config)`` if the caller has it already (not read twice).

    Raises:
        ConfigError: a key with a bad or missing value (named).
        CrossDistillError: a teacher that does not fit the student, a cache that cannot serve.
    """
    started = time.perf_counter()
    if config.distill.preset in method_names():
        raise ConfigError(
            "distill.preset",
            f"'{config.distill.preset}' is a training method, not a preset: "
            "use `crossdistill train --method` (train.method)",
        )
    terms = kd_terms(config)
    require_backend(config.tracking.backend)  # a missing package fails before any work
    cache, train_sites, eval_sites = inputs or open_run_inputs(config)
    device = distributed.init_from_env(resolve_device(config.device))  # torchrun: rank's GPU
    global_batch.local_batch_size(config.train.batch_size)  # it splits evenly over the ranks
    precision = resolve_precision(config.train.precision, device, canonical_name(config.model.name))
    channels_last = resolve_channels_last(config.train.channels_last, device)
    spec = {
        "name": config.model.name,
        "width": config.model.width,
        "in_channels": config.data.channels,
        "num_classes": config.model.num_classes,
    }
    torch.manual_seed(config.seed)
    student = create_model(spec["name"], spec["in_channels"], spec["num_classes"], spec["width"])
    teacher = teacher_meta = None
    if terms or config.distill.teacher is not None:
        teacher, teacher_meta = _load_teacher(config, spec, cache.size, device)
    dataset = SliceDataset(
        cache, train_sites, "train", config.data.channels, config.data.augment, config.seed
    )
    control = None
    if config.distill.control is not None:
        teacher, control = _control_teacher(config, teacher, teacher_meta, dataset, device)
    objective = create_objective(
        config.train.method,
        student,
        train_sites,
        spec["in_channels"],
        config.train.method_options,
        teacher=teacher,
        terms=terms,
    )
    if config.distill.teacher_cache:
        check_teacher_cache(objective, config.data.augment)
    check_shardable(objective)  # under torchrun: not an episodic method
    return Run(
        config=config,
        folder=RunFolder.of(config),
        cache=cache,
        train_sites=train_sites,
        eval_sites=eval_sites,
        device=device,
        precision=precision,
        channels_last=channels_last,
        spec=spec,
        terms=terms,
        objective=objective,
        dataset=dataset,
        teacher=teacher,
        teacher_meta=teacher_meta,
        control=control,
        tracker=open_tracker(config, terms) if distributed.is_main() else NULL_TRACKER,
        started=started,
    )


def _load_teacher(config: RunConfig, student_spec: dict, size: int, device: str):
    """The frozen teacher of ``distill.teacher`` (a run folder, a checkpoint, or an exported
    ONNX file: ``engine.onnx_teacher``) and its checkpoint-style metadata, checked against
    the student's channels and classes (and, for an ONNX file, its fixed input size)."""
    if config.distill.teacher is None:
        raise ConfigError("distill.teacher", f"preset '{config.distill.preset}' needs a teacher")
    if is_onnx_file(config.distill.teacher):
        teacher = OnnxTeacher(config.distill.teacher)
        meta = {"model": teacher.spec(), "data": {"size": teacher.meta.size}}
        if teacher.meta.size != size:
            raise InputError(
                config.distill.teacher,
                f"the teacher takes {teacher.meta.size}² slices, the cache holds {size}²",
            )
    else:
        teacher, meta = load_model(config.distill.teacher, device)
    spec = meta["model"]
    for key, what in (("in_channels", "input channels"), ("num_classes", "classes")):
        if int(spec[key]) != int(student_spec[key]):
            raise CrossDistillError(
                f"{checkpoint_path(config.distill.teacher)}: the teacher has {spec[key]} {what}, "
                f"the student {student_spec[key]}"
            )
    return teacher, meta


def _control_teacher(config: RunConfig, teacher, teacher_meta: dict, dataset, device: str):
    """The control of ``distill.control`` in place of the trained ``teacher``, and what it
    is (``distill.controls``): the teacher run's architecture at its seed's initialisation."""
    if teacher is None:
        raise ConfigError("distill.control", "a control replaces a teacher: set distill.teacher")
    seed = (teacher_meta.get("config") or {}).get("seed")
    if not isinstance(seed, int):
        raise CrossDistillError(
            f"{checkpoint_path(config.distill.teacher)}: the checkpoint does not record the "
            "teacher's seed (meta.config.seed), which distill.control needs"
        )
    return build_control(
        config.distill.control,
        teacher,
        teacher_meta["model"],
        seed,
        dataset.unaugmented(),
        config.distill.control_epsilon,
        device,
    )
