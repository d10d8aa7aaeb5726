"""The Python API behind the command line: one function per command that trains or evaluates.

``train(config)`` trains a teacher or a plain student; with ``config.distill.teacher`` set
(or a preset other than ``none``) the same call distils a student. Every run writes into
its folder ``config.output / config.name`` (``engine.run_folder.RunFolder``): the resolved
configuration, metrics, checkpoints, evaluation, summary and figures.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossdistill.config import RunConfig, dump_config, protocol_sites
from crossdistill.data.cache import Cache
from crossdistill.data.dataset import SliceDataset
from crossdistill.data.sites import resolve_site
from crossdistill.distill import preset_terms
from crossdistill.distill.controls import build_control
from crossdistill.engine import distributed, global_batch
from crossdistill.engine.cached_teacher import (
    TeacherCachedDataset,
    check_teacher_cache,
    use_teacher_cache,
)
from crossdistill.engine.fit import FitOptions, fit
from crossdistill.engine.loading import checkpoint_path, load_model
from crossdistill.engine.optim import make_optimizer, make_scheduler
from crossdistill.engine.precision import Precision, resolve_channels_last, resolve_precision
from crossdistill.engine.run_folder import RunFolder, write_json
from crossdistill.engine.run_lock import exclusive_run
from crossdistill.engine.sharding import check_shardable
from crossdistill.errors import ConfigError, CrossDistillError
from crossdistill.eval.evaluate import evaluate_model
from crossdistill.eval.figures import plot_curves, plot_overlay
from crossdistill.eval.metrics import largest_component
from crossdistill.methods import create_objective, method_names
from crossdistill.models import create_model


def resolve_device(name: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was asked for but no GPU is available")
    return name


def run_sites(config: RunConfig, cache: Cache) -> tuple[list[str], list[str]]:
    """``(train_sites, eval_sites)`` as folders, from the protocol preset or the lists given."""
    if config.protocol != "custom":
        if config.target is None:
            raise ConfigError("target", f"protocol '{config.protocol}' needs a target site")
        target = resolve_site(config.target, cache.sites)
        return protocol_sites(config.protocol, config.role, target, cache.sites)
    if not config.train.sites:
        raise ConfigError("train.sites", "give the training sites (or a protocol and a target)")
    train_sites = cache.resolve_sites(config.train.sites)
    eval_sites = cache.resolve_sites(config.eval.sites) if config.eval.sites else train_sites
    return train_sites, eval_sites


def kd_terms(config: RunConfig) -> dict[str, dict[str, Any]]:
    """The preset's terms with ``distill.terms`` merged over them (a weight of 0 drops a term)."""
    terms = preset_terms(config.distill.preset)
    for name, options in config.distill.terms.items():
        terms[name] = {**terms.get(name, {}), **(options or {})}
    return {name: opts for name, opts in terms.items() if opts.get("weight", 1.0) != 0}


def _load_teacher(config: RunConfig, student_spec: dict, device: str):
    if config.distill.teacher is None:
        raise ConfigError("distill.teacher", f"preset '{config.distill.preset}' needs a teacher")
    teacher, meta = load_model(config.distill.teacher, device)
    spec = meta["model"]
    for key, what in (("in_channels", "input channels"), ("num_classes", "classes")):
        if int(spec[key]) != int(student_spec[key]):
            raise CrossDistillError(
                f"{checkpoint_path(config.distill.teacher)}: the teacher has {spec[key]} {what}, "
                f"the student {student_spec[key]}"
            )
    return teacher, meta


@exclusive_run  # one live run per run folder (RUN/.lock)
def train(config: RunConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train (or distil) the network of ``config``; returns the run's summary."""
    start = time.perf_counter()
    if config.distill.preset in method_names():
        raise ConfigError(
            "method", f"'{config.distill.preset}' has no teacher: use `crossdistill train --method`"
        )
    terms = kd_terms(config)
    if config.data.cache is None:
        raise ConfigError("data.cache", "give the cache folder written by `crossdistill prepare`")
    cache = Cache(config.data.cache)
    train_sites, eval_sites = run_sites(config, cache)
    device = distributed.init_from_env(resolve_device(config.device))  # torchrun: rank's GPU
    global_batch.local_batch_size(config.train.batch_size)  # it splits evenly over the ranks
    precision = resolve_precision(config.train.precision, device)
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
        teacher, teacher_meta = _load_teacher(config, spec, device)
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
    folder = RunFolder.of(config)  # written only once the config is known good
    if distributed.is_main():  # under torchrun only rank 0 writes
        folder.path.mkdir(parents=True, exist_ok=True)
        dump_config(config, folder.config)
    optimizer = make_optimizer(objective.trainable_parameters(), config.train.optimizer)
    scheduler = make_scheduler(optimizer, config.train.schedule)
    meta = {
        "model": spec,
        "data": {"size": cache.size, "channels": config.data.channels},
        "config": config.model_dump(mode="json"),
    }
    has_val = bool(cache.cases(train_sites, "val"))

    def validate(model) -> float:
        result = evaluate_model(model, cache, train_sites, "val", config.data.channels)
        return result["overall"]["dice"]["mean"]

    cache_info = None
    if config.distill.teacher_cache:
        dataset, cache_info = distributed.main_first(
            use_teacher_cache,
            teacher_cache_root(config),
            objective,
            checkpoint_path(config.distill.teacher),
            dataset,
            Precision(precision, device, channels_last),
            config.train.batch_size,
            progress,
            control,
        )
    options = FitOptions(
        epochs=config.train.epochs,
        batch_size=config.train.batch_size,
        seed=config.seed,
        steps_per_epoch=config.train.steps_per_epoch,
        val_every=config.train.val_every,
        term_grad_every=config.train.term_grad_every,
        num_workers=config.data.num_workers,
        device=device,
        progress=progress,
        precision=precision,
        channels_last=channels_last,
        compile=config.train.compile,
    )
    result = fit(
        objective,
        dataset,
        optimizer,
        scheduler,
        folder.path,
        options,
        meta,
        validate if has_val else None,
        resume,
    )
    if not distributed.is_main():  # rank 0 evaluates and reports alone; the others wait for it
        return distributed.share_from_main(None)
    best, _ = load_model(folder.best, device)
    evaluation = evaluate_model(best, cache, eval_sites, config.eval.split, config.data.channels)
    write_json(folder.evaluation, evaluation)
    summary = {
        "name": config.name,
        "role": config.role,
        "protocol": config.protocol,
        "target": config.target,
        "model": spec,
        "train_sites": train_sites,
        "eval_sites": eval_sites,
        "method": config.train.method,
        "preset": config.distill.preset,
        "terms": terms,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "val_dice": result.best_val_dice if has_val else None,
        "loss_terms": {"start": result.start_terms, "end": result.end_terms},
        "skipped_steps": result.bad_steps,
        "dice": evaluation["overall"]["dice"],
        "per_case_dice": {
            f"{site}/{case}": m["dice"]
            for site, record in evaluation["sites"].items()
            for case, m in record["cases"].items()
        },
        "seconds": round(time.perf_counter() - start, 2),
        "precision": {"autocast": precision, "channels_last": channels_last},
    }
    if cache_info is not None:
        summary["teacher_cache"] = cache_info
    if teacher is not None:
        summary["teacher"] = str(checkpoint_path(config.distill.teacher))
        summary["teacher_model"] = teacher_meta["model"]
        if control is not None:
            summary["control"] = control
        summary["teacher_reliability"] = teacher_reliability(
            teacher, cache, train_sites, config.data.channels, stored=dataset
        )
    write_json(folder.summary, summary)
    plot_curves(folder.metrics, folder.curves, title=config.name)
    plot_overlay(best, cache, eval_sites, config.eval.split, config.data.channels, folder.overlay)
    return distributed.share_from_main(summary)


def teacher_cache_root(config: RunConfig) -> Path:
    """Where ``distill.teacher_cache`` keeps its entries: the folder given, or
    ``OUTPUT/.teacher-cache`` (shared by every run of a grid writing into ``OUTPUT``; hidden, so
    that no run name can take it)."""
    value = config.distill.teacher_cache
    return Path(config.output) / ".teacher-cache" if value is True else Path(value)


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


def teacher_reliability(
    teacher, cache: Cache, sites: list[str], channels: int, stored=None
) -> dict:
    """The teacher's Dice on the student's training images (where it teaches).

    ``stored``: the training dataset; when it carries the teacher-output cache the stored
    logits are evaluated (same values within float16 rounding, no teacher run), and a
    control teacher built from the labels is given each volume's mask.
    """
    logits_of = None
    if isinstance(stored, TeacherCachedDataset):

        def logits_of(volume):
            return stored.case_logits(volume.case.site, volume.case.case_id)

    elif getattr(teacher, "needs_masks", False):

        def logits_of(volume):
            return teacher.smoothed_logits(torch.from_numpy(np.asarray(volume.mask)))

    def segment(volume):  # as segment_slices does with the teacher's own logits
        foreground = logits_of(volume).float().argmax(1) > 0
        return largest_component(foreground.numpy().astype(np.uint8))

    result = evaluate_model(
        teacher, cache, sites, "train", channels, segment=segment if logits_of else None
    )
    return {
        "dice": result["overall"]["dice"],
        "per_site": {site: record["dice"]["mean"] for site, record in result["sites"].items()},
    }


def evaluate(
    checkpoint: str | Path,
    cache_dir: str | Path,
    sites: list[str] | None,
    split: str = "test",
    out: str | Path | None = None,
) -> dict:
    """Evaluate a run folder or checkpoint on ``sites`` of a cache; writes ``evaluation.json``
    (and an overlay PNG) into ``out`` (default: the run folder, or beside the checkpoint)."""
    model, meta = load_model(checkpoint)
    cache = Cache(cache_dir)
    channels = int(meta["model"]["in_channels"])
    folders = cache.resolve_sites(sites)
    result = evaluate_model(model, cache, folders, split, channels)
    result["checkpoint"] = str(checkpoint_path(checkpoint))
    target = (
        Path(out)
        if out
        else (Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent)
    )
    target.mkdir(parents=True, exist_ok=True)
    write_json(RunFolder(target).evaluation, result)
    plot_overlay(model, cache, folders, split, channels, RunFolder(target).overlay)
    return result
