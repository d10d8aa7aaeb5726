"""Data-parallel training under torchrun (engine.distributed, engine.sharding): two gloo
processes on the CPU against one process with the same global batch."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import RandomSampler

from crossdistill import api
from crossdistill.config import load_config
from crossdistill.data.sampling import SiteBalancedSampler
from crossdistill.engine import distributed, global_batch
from crossdistill.engine.checkpoint import load_checkpoint
from crossdistill.engine.sharding import GlobalBatchDropout, check_shardable
from crossdistill.errors import ConfigError
from ddp_worker import FIT_FLOAT64, fit_float64

WORKER = Path(__file__).with_name("ddp_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _global_batches(sampler, batch_size: int) -> list[list[int]]:
    indices = list(sampler)
    return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]


@pytest.mark.parametrize("kind", ["random", "site-balanced"])
@pytest.mark.parametrize("world", [2, 4])
def test_rank_shares_make_up_the_global_batches_of_one_process(kind, world):
    sites = ["A"] * 7 + ["B"] * 5 + ["C"] * 9

    def sampler():
        generator = torch.Generator().manual_seed(11)
        if kind == "random":
            return RandomSampler(range(21), num_samples=32, generator=generator)
        return SiteBalancedSampler(sites, 4, 8, generator)

    one_process = _global_batches(sampler(), 8)
    shares = [
        _global_batches(global_batch.GlobalBatchShard(sampler(), 8, r, world), 8 // world)
        for r in range(world)
    ]
    assert all(len(s) == len(one_process) == 4 for s in shares)
    for step, batch in enumerate(one_process):
        assert [i for share in shares for i in share[step]] == batch
    assert len(global_batch.GlobalBatchShard(sampler(), 8, 1, world)) == 32 // world


def test_a_batch_size_the_processes_cannot_share_is_a_config_error(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    assert global_batch.local_batch_size(9) == 3
    with pytest.raises(ConfigError, match=r"train\.batch_size.*global batch.*3 processes"):
        global_batch.local_batch_size(8)


def test_episodic_methods_are_refused_under_torchrun(monkeypatch):
    class Episodic(nn.Module):
        balanced_sites = True

    check_shardable(Episodic())  # one process: fine
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    with pytest.raises(ConfigError, match=r"train\.method.*one process"):
        check_shardable(Episodic())


@pytest.mark.parametrize("layer", [nn.Dropout2d(0.3), nn.Dropout(0.3)])
def test_global_batch_dropout_applies_the_rows_of_the_one_process_mask(layer):
    class Rows:
        rows: tuple[int, int, int] | None = None

    x = torch.randn(8, 6, 5, 5)
    torch.manual_seed(3)
    expected = layer(x)
    shard = Rows()
    dropout = GlobalBatchDropout(layer, shard)
    parts = []
    for rank in range(2):
        torch.manual_seed(3)  # every rank holds the same RNG state
        shard.rows = (8, 4 * rank, 4 * rank + 4)
        parts.append(dropout(x[4 * rank : 4 * rank + 4]))
    assert torch.equal(torch.cat(parts), expected)
    shard.rows = None
    assert torch.equal(dropout.eval()(x), x)


@pytest.mark.parametrize("command", ["train", "distill"])
def test_the_torchrun_module_runs_the_commands(
    command, engine_cache, tmp_path, monkeypatch, capsys
):
    """``python -m crossdistill train|distill ARGS`` is the command; with 3 processes a global
    batch of 8 is refused in one line before anything is written."""
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    args = _cli_args(_overrides(engine_cache, tmp_path / "runs", "ddp"))
    monkeypatch.setattr(sys, "argv", ["crossdistill", command, *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("crossdistill", run_name="__main__")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "crossdistill: error: config key 'train.batch_size': 8 is the global batch and must be "
        "divisible by the 3 processes\n"
    )
    assert not (tmp_path / "runs").exists()


def _overrides(cache: Path, out: Path, name: str, *extra: str) -> list[str]:
    """ENet at width 1/4, global batch 8, SGD, constant learning rate."""
    return [
        f"data.cache={cache}",
        f"output={out}",
        f"name={name}",
        "device=cpu",
        "model.name=enet",
        "model.width=0.25",
        "train.batch_size=8",
        "train.steps_per_epoch=2",
        "train.schedule.name=constant",
        "train.optimizer.name=sgd",
        "train.optimizer.lr=0.01",
        "protocol=cross-site",
        "target=S4",
        *extra,
    ]


def _cli_args(overrides: list[str]) -> list[str]:
    return [arg for value in overrides for arg in ("--set", value)]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(run / "checkpoints" / "last.safetensors")
    weights = {f"model/{k}": v for k, v in ckpt.model.items()}
    weights.update({f"extra/{k}": v for k, v in ckpt.extra.items()})
    return {k: v for k, v in weights.items() if v.is_floating_point()}


def _epochs(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _torchrun(plan: dict, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    report = tmp_path / "report"
    report.mkdir()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({**plan, "report": str(report)}))
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", str(WORKER), str(plan_file)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    ranks = [json.loads((report / f"rank-{r}.json").read_text()) for r in range(2)]
    return done, ranks


def test_torchrun_two_processes_train_resume_and_distil_like_one(engine_cache, tmp_path):
    """2 gloo ranks × 4 items against 1 process × 8 items.

    * float64 (:func:`ddp_worker.fit_float64`, a distillation with AAM + KMM + LM, dropout and
      BatchNorm): the same weights to 1e-10, since each step sees the same items, the loss of
      the whole global batch, global-batch BatchNorm statistics and the same dropout masks.
    * float32, through ``cli.main``: each step's arithmetic differs from one process only in
      summation order (BatchNorm statistics, gradient all-reduce), but training amplifies it on
      this data (even one process in float32 differs from float64 by up to 8 % in a
      gradient entry after one step), so the weights are not compared; the first epoch's
      mean loss agrees to 1e-4 (a different batch would change it by ~1e-2).
    * resume: the run stopped after epoch 1 and resumed equals the uninterrupted one exactly.
    * only rank 0 writes; the summary is printed once per command.
    """
    out = tmp_path / "runs"
    fit_float64(str(engine_cache), str(out / "float64-one"))
    teacher = _overrides(engine_cache, out, "teacher", "role=teacher", "train.epochs=1")
    api.train(load_config(None, teacher), progress=False)
    kd = ["train.epochs=1", f"distill.teacher={out / 'teacher'}", "distill.preset=ours"]
    grads = "train.term_grad_every=1"
    for name, extra in (("single", ["train.epochs=1", grads]), ("single-kd", kd)):
        api.train(load_config(None, _overrides(engine_cache, out, name, *extra)), progress=False)

    plan = {
        "watch": str(out),
        "commands": [
            [FIT_FLOAT64, str(engine_cache), str(out / "float64-two")],
            ["train", *_cli_args(_overrides(engine_cache, out, "full", "train.epochs=2", grads))],
            ["train", *_cli_args(_overrides(engine_cache, out, "ddp", "train.epochs=1", grads))],
            [
                "train",
                *_cli_args(_overrides(engine_cache, out, "ddp", "train.epochs=2", grads)),
                "--resume",
            ],
            ["distill", *_cli_args(_overrides(engine_cache, out, "ddp-kd", *kd))],
        ],
    }
    done, ranks = _torchrun(plan, tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["codes"] for r in ranks] == [[0] * 5] * 2
    assert ranks[1]["writes"] == []  # only rank 0 writes
    written = {Path(p).relative_to(out).parts[0] for p in ranks[0]["writes"]}
    assert written == {"float64-two", "full", "ddp", "ddp-kd"}
    for name, count in (("full", 1), ("ddp", 2), ("ddp-kd", 1)):
        assert done.stdout.count(f"{name}: Dice") == count

    one, two = _weights(out / "float64-one"), _weights(out / "float64-two")
    assert one.keys() == two.keys() and any(k.startswith("extra/") for k in one)
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-10, rtol=1e-10, msg=key)

    resumed, full = _weights(out / "ddp"), _weights(out / "full")
    assert all(torch.equal(resumed[k], full[k]) for k in full)
    untimed = [{k: v for k, v in e.items() if k != "time_s"} for e in _epochs(out / "ddp")]
    assert untimed == [{k: v for k, v in e.items() if k != "time_s"} for e in _epochs(out / "full")]
    for ours, theirs in (("full", "single"), ("ddp-kd", "single-kd")):
        mine, reference = _epochs(out / ours)[0], _epochs(out / theirs)[0]
        assert mine["loss/total"] == pytest.approx(reference["loss/total"], rel=1e-4)
        assert mine.keys() == reference.keys()
    mine, reference = _epochs(out / "full")[0], _epochs(out / "single")[0]
    # the term gradient norms are of the all-reduced gradient, not of one rank's share;
    # float32 conditioning on this data moves them by ~3e-3
    assert mine["grad/seg"] == pytest.approx(reference["grad/seg"], rel=1e-2)
    assert {"loss/kmm", "loss/lm", "loss/aam"} <= _epochs(out / "ddp-kd")[0].keys()
