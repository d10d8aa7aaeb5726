"""The training loop: epochs of optimizer steps, validation, checkpoints, metrics.

Reproducibility: item order in epoch ``e`` comes from a generator seeded by ``(seed, e)``,
augmentation from ``(seed, e, index)`` (see :class:`SliceDataset`), and every checkpoint
holds the torch / numpy / Python RNG states, the optimizer and the schedule, so a run
resumed from the checkpoint of epoch ``e`` ends with the same weights on the CPU as an
uninterrupted run.

Numerics: the forward pass runs under ``FitOptions.precision`` (autocast, grad scaler, whose
state is checkpointed; channels-last; compile: :mod:`crossdistill.engine.precision`). A batch
that carries stored teacher maps (``distill --teacher-cache``,
:mod:`crossdistill.engine.cached_teacher`) hands them to the objective instead of running
the teacher.

Several processes (``torchrun``, :mod:`crossdistill.engine.distributed`): each rank loads its
share of every global batch of ``FitOptions.batch_size`` items, the shares are gathered, and
the objective runs through :func:`~crossdistill.engine.sharding.shard_objective` (networks on
the rank's rows, DDP); only rank 0 validates, writes and reports to the tracker, and all ranks
resume from its files.

Tracking (:mod:`crossdistill.engine.tracking`): the loop calls ``tracker.start`` once its
checks have passed and the state is restored, and ``tracker.log_epoch`` with every line of
``metrics.jsonl``; the run (:mod:`crossdistill.run`) logs the rest and ends it.

Run folder (:class:`~crossdistill.engine.run_folder.RunFolder`): ``metrics.jsonl`` gets one
JSON object per epoch, ``checkpoints/last.safetensors`` the full state every epoch and
``checkpoints/best.safetensors`` the best validation Dice so far (both atomic).

Time: checkpoints also hold ``train_seconds``, the loop's time for the epochs they contain, so
a resumed run's ``time_s`` (in ``metrics.jsonl``) and :attr:`FitResult.earlier_seconds` count
the attempts before it; the part of an epoch lost to an interruption is not counted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, RandomSampler

from crossdistill.data.batch_keys import BatchKeys
from crossdistill.data.dataset import SliceDataset
from crossdistill.data.sampling import SiteBalancedSampler
from crossdistill.engine import distributed, global_batch
from crossdistill.engine.cached_teacher import cached_teacher_outputs
from crossdistill.engine.checkpoint import (
    capture_rng,
    load_checkpoint,
    load_state_dict_strict,
    restore_rng,
    save_checkpoint,
)
from crossdistill.engine.nonfinite import NonFiniteGuard
from crossdistill.engine.objective import TrainingObjective
from crossdistill.engine.precision import Precision
from crossdistill.engine.run_folder import RunFolder
from crossdistill.engine.sharding import shard_objective
from crossdistill.engine.tracking import NULL_TRACKER, Tracker
from crossdistill.errors import CrossDistillError
from crossdistill.faults import fault_point
from crossdistill.progress import progress_bar

MAX_BAD_STEPS = 20  # consecutive non-finite losses before the run stops


@dataclass
class FitOptions:
    """How to run the loop (from the run configuration)."""

    epochs: int
    batch_size: int
    seed: int = 0
    steps_per_epoch: int | None = None
    val_every: int = 1
    num_workers: int = 0
    device: str = "cpu"
    progress: bool = True
    start_window: int = 10  # steps averaged for the "start of training" loss terms
    term_grad_every: int = 0  # every k steps, log each loss term's gradient norm (0 = never)
    precision: str = "fp32"  # fp32, bf16 or fp16 autocast (see engine.precision)
    channels_last: bool = False
    compile: str | None = None  # torch.compile mode (engine.precision.resolve_compile)


@dataclass
class FitResult:
    """What the loop did: epochs run, best validation Dice and loss terms at start and end."""

    epochs: int
    steps: int
    best_val_dice: float
    best_epoch: int
    start_terms: dict[str, float] = field(default_factory=dict)
    end_terms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # this attempt's loop
    bad_steps: int = 0
    earlier_seconds: float = 0.0  # the loop's time for the epochs that earlier attempts kept


def fit(
    objective: TrainingObjective,
    dataset: SliceDataset,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    run_dir: Path,
    options: FitOptions,
    meta: dict[str, Any],
    validate: Callable[[nn.Module], float] | None = None,
    resume: bool = False,
    tracker: Tracker = NULL_TRACKER,
) -> FitResult:
    """Train ``objective.student`` (and ``objective.auxiliary``) on ``dataset``.

    Args:
        meta: JSON fields stored in every checkpoint (model spec, config, ...).
        validate: returns the validation Dice of the student; the best epoch is kept.
        resume: continue from ``RUN/checkpoints/last.safetensors`` if it exists.
        tracker: told of the start and of every epoch's metrics (on rank 0 only).

    Raises:
        CrossDistillError: the run folder already holds a run and ``resume`` is false, or
            the loss stayed non-finite for ``MAX_BAD_STEPS`` consecutive steps.
    """
    main = distributed.is_main()  # under torchrun only rank 0 writes (engine.distributed)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(run_dir)
    last = folder.last
    state = {"epoch": 0, "step": 0, "best": -math.inf, "best_epoch": -1, "start_terms": {}}
    earlier_seconds = 0.0
    if last.exists() and not resume:
        raise CrossDistillError(f"{run_dir}: holds a run already; use --resume or another name")
    if resume and last.exists():
        state, earlier_seconds = _restore(last, objective, optimizer, scheduler)
    if main:
        _truncate_metrics(folder.metrics, state["epoch"])
    if len(dataset) == 0:
        raise CrossDistillError("the training split holds no slices")
    objective.to(options.device)
    amp = Precision(options.precision, options.device, options.channels_last, options.compile)
    amp.prepare(objective)
    amp.load_state_dict(state.pop("scaler", None))
    step = shard_objective(objective, options.device)  # DDP under torchrun, else objective
    if main:
        tracker.start(state["epoch"])
    start_time = time.perf_counter()

    def elapsed() -> float:
        return earlier_seconds + time.perf_counter() - start_time

    end_terms: dict[str, float] = {}
    bad_total = 0
    steps = steps_per_epoch(options, len(dataset))
    show = options.progress and main
    with (
        amp.compile_errors(),
        progress_bar(options.epochs * steps, "train", enabled=show) as advance,
    ):
        advance(state["epoch"] * steps)
        for epoch in range(state["epoch"], options.epochs):
            sums, count, bad, grads = _run_epoch(
                objective, dataset, optimizer, scheduler, options, epoch, state, advance, amp, step
            )
            bad_total += bad
            end_terms = {k: v / max(count, 1) for k, v in sums.items()}
            record = {
                "epoch": epoch + 1,
                "step": state["step"],
                "lr": optimizer.param_groups[0]["lr"],
            }
            record.update({f"loss/{k}": v for k, v in end_terms.items()})
            record.update({f"grad/{k}": v for k, v in grads.items()})
            record["skipped_steps"] = bad
            if validate is not None and (
                (epoch + 1) % options.val_every == 0 or epoch + 1 == options.epochs
            ):
                dice = float(distributed.on_main(validate, objective.student))
                record["val_dice"] = dice
                if dice > state["best"]:
                    state["best"], state["best_epoch"] = dice, epoch + 1
                    best_state = state | {"epoch": epoch + 1}
                    _save(folder.best, objective, None, None, meta, best_state, elapsed())
            state["epoch"] = epoch + 1
            epoch_end = elapsed()  # the epoch's time_s and its checkpoint's train_seconds
            record["time_s"] = round(epoch_end, 3)
            if main:
                with open(folder.metrics, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
                tracker.log_epoch(record)
            if amp.scaler is not None:
                state["scaler"] = amp.state_dict()
            _save(last, objective, optimizer, scheduler, meta, state, epoch_end)
    if validate is None or state["best_epoch"] < 0:
        _save(folder.best, objective, None, None, meta, state, elapsed())
    return FitResult(
        epochs=state["epoch"],
        steps=state["step"],
        best_val_dice=state["best"],
        best_epoch=state["best_epoch"],
        start_terms=state["start_terms"],
        end_terms=end_terms,
        seconds=time.perf_counter() - start_time,
        bad_steps=bad_total,
        earlier_seconds=earlier_seconds,
    )


def steps_per_epoch(options: FitOptions, num_slices: int) -> int:
    """``options.steps_per_epoch``, or one pass over the slices (at least one step)."""
    return options.steps_per_epoch or max(1, num_slices // options.batch_size)


def _run_epoch(objective, dataset, optimizer, scheduler, options, epoch, state, advance, amp, step):
    dataset.set_epoch(epoch)
    generator = torch.Generator().manual_seed(options.seed * 100003 + epoch)
    num_batches = steps_per_epoch(options, len(dataset))
    num_samples = num_batches * options.batch_size
    if objective.balanced_sites:
        sampler = SiteBalancedSampler(
            dataset.item_sites(), num_batches, options.batch_size, generator
        )
    else:
        sampler = RandomSampler(
            dataset,
            replacement=num_samples > len(dataset),
            num_samples=num_samples,
            generator=generator,
        )
    loader = DataLoader(
        dataset,
        batch_size=global_batch.local_batch_size(options.batch_size),
        sampler=global_batch.shard_sampler(sampler, options.batch_size),
        num_workers=options.num_workers,
        drop_last=True,
    )
    objective.train()
    grad_norms: dict[str, list[float]] = {}
    sums: dict[str, float] = {}
    count = bad = 0
    start_window: list[dict[str, float]] = []
    guard = NonFiniteGuard([objective.student, objective.auxiliary], state, MAX_BAD_STEPS)
    for batch in loader:
        batch = global_batch.gather_batch(batch, options.device)  # the global batch
        images = amp.inputs(batch[BatchKeys.IMAGE].to(options.device, non_blocking=True))
        masks = batch[BatchKeys.MASK].to(options.device, non_blocking=True)
        guard.before_forward()
        cached = cached_teacher_outputs(batch, options.device)  # distill --teacher-cache
        with amp.autocast():
            extra = {} if cached is None else {"teacher_outputs": cached}
            out = step(images, masks, sites=batch[BatchKeys.SITE], **extra)
        if not guard.accept(out.total, state["step"]):
            bad += 1
            optimizer.zero_grad(set_to_none=True)
            advance(status="non-finite loss, skipped")
            continue
        if options.term_grad_every and state["step"] % options.term_grad_every == 0:
            for name, norm in term_gradient_norms(out.terms, objective.student).items():
                grad_norms.setdefault(name, []).append(norm)
        optimizer.zero_grad(set_to_none=True)
        amp.step(out.total, optimizer, scheduler)
        state["step"] += 1
        fault_point("train-step")
        values = out.detached()
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value
        count += 1
        if epoch == 0 and len(start_window) < options.start_window:
            start_window.append(values)
            state["start_terms"] = {
                k: sum(v[k] for v in start_window) / len(start_window) for k in values
            }
        advance(status=f"epoch {epoch + 1} loss {values['total']:.4f}")
    grads = {k: sum(v) / len(v) for k, v in grad_norms.items()}
    return sums, count, bad, grads


def term_gradient_norms(terms: dict[str, torch.Tensor], student: nn.Module) -> dict[str, float]:
    """``‖∂ term / ∂θ_student‖₂`` of every (weighted) loss term, the graph kept for backward."""
    params = [p for p in student.parameters() if p.requires_grad]
    norms = {}
    for name, value in terms.items():
        if not value.requires_grad:
            norms[name] = 0.0
            continue
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        grads = distributed.mean_over_ranks(grads)  # each rank holds W x its rows' share
        norms[name] = float(
            torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None) + 0.0)
        )
    return norms


def _save(path, objective, optimizer, scheduler, meta, state, seconds: float) -> None:
    if not distributed.is_main():
        return
    fields = {**meta, "state": dict(state), "train_seconds": round(seconds, 3)}
    if scheduler is not None:
        fields["scheduler"] = scheduler.state_dict()
    save_checkpoint(
        path,
        objective.student.state_dict(),
        fields,
        optimizer=optimizer.state_dict() if optimizer is not None else None,
        rng=capture_rng() if optimizer is not None else None,
        extra=objective.auxiliary.state_dict(),
    )


def _restore(path: Path, objective, optimizer, scheduler) -> tuple[dict, float]:
    """The loop's state and its ``train_seconds`` (0 in checkpoints written before them)."""
    ckpt = load_checkpoint(path)
    load_state_dict_strict(objective.student, ckpt.model, path)
    if ckpt.extra or len(objective.auxiliary.state_dict()):
        load_state_dict_strict(objective.auxiliary, ckpt.extra, path)
    if ckpt.optimizer is None or "scheduler" not in ckpt.meta:
        raise CrossDistillError(f"{path}: holds no training state to resume from")
    optimizer.load_state_dict(ckpt.optimizer)
    scheduler.load_state_dict(ckpt.meta["scheduler"])
    restore_rng(ckpt.rng)
    state = dict(ckpt.meta["state"])
    state["best"] = float(state["best"]) if state["best"] is not None else -math.inf
    seconds = ckpt.meta.get("train_seconds", 0.0)
    return state, float(seconds) if isinstance(seconds, int | float) else 0.0


def _truncate_metrics(path: Path, epoch: int) -> None:
    """Keep the metrics of the epochs that the resumed state has already done.

    A line cut short (the process killed or the disk full while appending it) is dropped.
    """
    if not path.exists():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("epoch", math.inf) <= epoch:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))
