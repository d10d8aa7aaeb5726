"""The training engine end to end on tiny data: learning, resume, teacher safety, misuse."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_run_config
from crossdistill import api
from crossdistill import run as run_module
from crossdistill.engine.checkpoint import load_checkpoint, save_checkpoint
from crossdistill.errors import ConfigError, CrossDistillError


@pytest.fixture(scope="module")
def cache(engine_cache):
    return engine_cache


_config = tiny_run_config


def test_training_beats_the_empty_mask_baseline(cache, tmp_path):
    summary = api.train(_config(cache, tmp_path, "s", "train.epochs=12"), progress=False)
    # An empty prediction scores Dice 0 on every test case (all hold prostate).
    assert summary["dice"]["mean"] > 0.5, summary["dice"]
    assert sorted(summary["train_sites"]) == ["BIDMC", "HK"] and summary["eval_sites"] == ["UCL"]
    run = tmp_path / "s"
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "evaluation.json",
        "summary.json",
        "curves.png",
        "overlay.png",
    ):
        assert (run / name).is_file(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, 13))
    assert "val_dice" in json.loads(lines[-1])


def test_resume_after_interruption_gives_the_same_weights(cache, tmp_path, monkeypatch):
    api.train(_config(cache, tmp_path, "full"), progress=False)

    calls = {"n": 0}
    real = run_module.evaluate_model

    def crash_on_second_validation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies during epoch 2's validation
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "evaluate_model", crash_on_second_validation)
    with pytest.raises(KeyboardInterrupt):
        api.train(_config(cache, tmp_path, "cut"), progress=False)
    assert (
        load_checkpoint(tmp_path / "cut/checkpoints/last.safetensors").meta["state"]["epoch"] == 1
    )
    monkeypatch.setattr(run_module, "evaluate_model", real)
    with pytest.raises(CrossDistillError, match="--resume"):
        api.train(_config(cache, tmp_path, "cut"), progress=False)
    _pretend_the_first_attempt_took(tmp_path / "cut/checkpoints/last.safetensors", 1000.0)
    summary = api.train(_config(cache, tmp_path, "cut"), resume=True, progress=False)

    full = load_checkpoint(tmp_path / "full/checkpoints/last.safetensors")
    resumed = load_checkpoint(tmp_path / "cut/checkpoints/last.safetensors")
    assert resumed.meta["state"]["step"] == full.meta["state"]["step"] == 18
    for key, value in full.model.items():
        assert torch.equal(value, resumed.model[key]), key
    epochs = [
        json.loads(x)["epoch"] for x in (tmp_path / "cut/metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2, 3]
    # The time of the first attempt counts: in the resumed epochs' time_s and in the summary.
    times = [
        json.loads(x)["time_s"] for x in (tmp_path / "cut/metrics.jsonl").read_text().splitlines()
    ]
    assert times[0] < 1000.0 <= times[1] <= times[2] <= summary["seconds"]
    assert resumed.meta["train_seconds"] == times[2]


def _pretend_the_first_attempt_took(path, seconds: float) -> None:
    ckpt = load_checkpoint(path)
    meta = {**ckpt.meta, "train_seconds": seconds}
    save_checkpoint(path, ckpt.model, meta, ckpt.optimizer, ckpt.rng, ckpt.extra)


def test_distillation_leaves_the_teacher_untouched(cache, tmp_path, monkeypatch):
    api.train(_config(cache, tmp_path, "teacher", "role=teacher", "train.epochs=1"), progress=False)
    before = load_checkpoint(tmp_path / "teacher/checkpoints/best.safetensors").model
    loaded = []

    def keep_teacher(*args, **kwargs):
        model, meta = real_load(*args, **kwargs)
        loaded.append(model)
        return model, meta

    real_load = run_module.load_model
    monkeypatch.setattr(run_module, "load_model", keep_teacher)
    summary = api.train(
        _config(
            cache,
            tmp_path,
            "student",
            "train.epochs=1",
            "distill.preset=ours",
            f"distill.teacher={tmp_path / 'teacher'}",
        ),
        progress=False,
    )
    teacher_in_memory = loaded[0].state_dict()  # weights and BN running statistics
    assert all(torch.equal(before[k], teacher_in_memory[k]) for k in before)
    assert any("running_mean" in k for k in before)
    assert set(summary["terms"]) == {"aam", "kmm", "lm"}
    assert 0.0 <= summary["teacher_reliability"]["dice"]["mean"] <= 1.0
    start, end = summary["loss_terms"]["start"], summary["loss_terms"]["end"]
    for term in ("seg", "aam", "kmm", "lm", "raw/aam"):
        assert term in start and term in end
    # The distillation adapters are saved with the student's checkpoint.
    student = load_checkpoint(tmp_path / "student/checkpoints/last.safetensors")
    assert any(k.startswith("kmm") for k in student.extra)


def test_misuse_is_reported(cache, tmp_path):
    api.train(
        _config(cache, tmp_path, "t3", "role=teacher", "train.epochs=1", "data.channels=3"),
        progress=False,
    )
    with pytest.raises(CrossDistillError, match="3 input channels, the student 1"):
        api.train(
            _config(
                cache, tmp_path, "s3", "distill.preset=ours", f"distill.teacher={tmp_path / 't3'}"
            ),
            progress=False,
        )
    with pytest.raises(ConfigError, match=r"distill\.teacher"):
        api.train(_config(cache, tmp_path, "s4", "distill.preset=ours"), progress=False)
    with pytest.raises(CrossDistillError, match="unknown site 'S9'"):
        api.train(_config(cache, tmp_path, "s5", "target=S9"), progress=False)
    with pytest.raises(CrossDistillError, match=r"no index\.json"):
        api.train(_config(tmp_path, tmp_path, "s6"), progress=False)


def test_resume_drops_a_metrics_line_cut_short(tmp_path) -> None:
    from crossdistill.engine.fit import _truncate_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"epoch": 1, "val_dice": 0.5}\n{"epoch": 2, "val_dice": 0.6}\n{"epoch": 3, "va'
    )
    _truncate_metrics(path, 2)
    assert path.read_text().splitlines() == [
        '{"epoch": 1, "val_dice": 0.5}',
        '{"epoch": 2, "val_dice": 0.6}',
    ]
    _truncate_metrics(path, 1)
    assert path.read_text() == '{"epoch": 1, "val_dice": 0.5}\n'
