"""Non-finite loss: NaN injected into the batches of chosen epochs. A bad step is skipped with
a warning and leaves no trace in the network (BatchNorm statistics included); after
``MAX_BAD_STEPS`` consecutive bad steps, across epochs, the run stops with one clear line and
its last good checkpoint stays loadable."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_run_config
from crossdistill import api
from crossdistill.data.dataset import SliceDataset
from crossdistill.engine import fit
from crossdistill.engine.checkpoint import load_checkpoint


def _poison_epochs(monkeypatch, epochs: set[int] | None) -> None:
    """Every image of the given epochs (0-based; ``None``: from the second epoch on) is NaN."""
    real = SliceDataset.__getitem__

    def poisoned(self, index):
        item = real(self, index)
        if (self.epoch >= 1) if epochs is None else (self.epoch in epochs):
            item["image"] = torch.full_like(item["image"], float("nan"))
        return item

    monkeypatch.setattr(SliceDataset, "__getitem__", poisoned)


def _record_saves(monkeypatch) -> list[tuple[str, int, dict]]:
    """``(file name, epoch, model tensors)`` of every checkpoint the loop writes."""
    saved = []
    real = fit.save_checkpoint

    def record(path, model, meta, **kwargs):
        copy = {k: v.detach().clone() for k, v in model.items()}
        saved.append((path.name, meta["state"]["epoch"], copy))
        return real(path, model, meta, **kwargs)

    monkeypatch.setattr(fit, "save_checkpoint", record)
    return saved


def test_bad_steps_are_skipped_without_a_trace(engine_cache, tmp_path, monkeypatch):
    _poison_epochs(monkeypatch, {1})
    saved = _record_saves(monkeypatch)
    with pytest.warns(UserWarning, match="non-finite loss at step") as caught:
        summary = api.train(tiny_run_config(engine_cache, tmp_path, "nan"), progress=False)
    assert summary["skipped_steps"] == 6
    assert sum("non-finite loss" in str(w.message) for w in caught) == 6
    rows = [json.loads(x) for x in (tmp_path / "nan/metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_steps"] for r in rows] == [0, 6, 0]
    last = {epoch: model for name, epoch, model in saved if name == "last.safetensors"}
    assert sorted(last) == [1, 2, 3]
    for key, value in last[1].items():  # epoch 2 changed nothing, running statistics included
        assert torch.equal(value, last[2][key]), key
    assert any("running_mean" in k for k in last[2])
    assert any(not torch.equal(last[2][k], last[3][k]) for k in last[3])  # epoch 3 trained
    assert all(torch.isfinite(v.float()).all() for v in last[3].values())
    assert summary["dice"]["mean"] == summary["dice"]["mean"]  # not NaN


def test_consecutive_bad_steps_stop_the_run(engine_cache, tmp_path, monkeypatch, run_cli):
    _poison_epochs(monkeypatch, None)  # epoch 1 is good, every later step is NaN
    settings = {
        "data.cache": engine_cache,
        "output": tmp_path,
        "name": "stop",
        "device": "cpu",
        "model.name": "erfnet",
        "model.width": 0.25,
        "train.epochs": 8,
        "train.batch_size": 8,
        "train.steps_per_epoch": 6,
        "train.schedule.name": "constant",
        "protocol": "cross-site",
        "target": "S4",
    }
    args = [a for key, value in settings.items() for a in ("--set", f"{key}={value}")]
    with pytest.warns(UserWarning, match="non-finite loss"):
        code, _, err = run_cli("train", *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == (
        f"crossdistill: error: the loss was non-finite for {fit.MAX_BAD_STEPS} consecutive "
        "steps; stopped (the last checkpoint is kept)"
    )
    # 6 good steps, then 6 bad per epoch: the 20th bad step comes in the fifth epoch.
    last = load_checkpoint(tmp_path / "stop/checkpoints/last.safetensors")
    best = load_checkpoint(tmp_path / "stop/checkpoints/best.safetensors")
    assert last.meta["state"]["epoch"] == 4 and last.meta["state"]["step"] == 6
    assert best.meta["state"]["epoch"] == 1
    for key, value in best.model.items():  # the weights of the last good step, finite
        assert torch.equal(value, last.model[key]) and torch.isfinite(value.float()).all()
