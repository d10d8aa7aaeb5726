"""Mixed precision, grad scaling, channels-last and compile: config, step logic, training."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from conftest import tiny_run_config
from crossdistill import api
from crossdistill import run as run_module
from crossdistill.config import load_config
from crossdistill.distill import Distiller, preset_terms
from crossdistill.engine.checkpoint import load_checkpoint
from crossdistill.engine.loading import load_model
from crossdistill.engine.precision import (
    Precision,
    resolve_channels_last,
    resolve_compile,
    resolve_precision,
)
from crossdistill.errors import ConfigError
from standin_models import TinySegNet


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.precision=fp8", "train.precision"),
        ("train.precision=true", "train.precision"),
        ("train.channels_last=sometimes", "train.channels_last"),
        ("train.compile=maybe", "train.compile"),
        ("data.augment=intensity", "data.augment"),
    ],
)
def test_bad_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        load_config(None, [override])


def test_defaults_and_auto_resolution_on_the_cpu():
    config = load_config(None, [])
    assert config.train.precision == "auto" and config.train.channels_last == "auto"
    assert config.train.compile is False
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_channels_last("auto", "cpu") is False
    assert resolve_precision("bf16", "cpu") == "bf16"  # asked for explicitly: allowed
    assert resolve_channels_last(True, "cpu") is True
    with pytest.raises(ConfigError, match=r"train\.precision"):
        resolve_precision("fp8", "cpu")


def test_the_scaler_skips_a_step_whose_gradients_overflow_and_halves_its_scale():
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    amp = Precision("fp16", "cpu")
    scale = amp.scaler.get_scale()
    x = torch.ones(1, 2)
    # d/dw of 1e34·(w·x) = 1e34, times the scale 65536 > float32's max: inf gradients
    assert amp.step(layer(x).sum() * 1e34, optimizer) is False
    assert torch.equal(layer.weight, torch.tensor([[1.0, -2.0]]))
    assert amp.scaler.get_scale() == scale / 2
    optimizer.zero_grad()
    # a finite step: w ← w − lr·x exactly (the unscaled gradient of w·x is x)
    assert amp.step(layer(x).sum(), optimizer) is True
    assert torch.allclose(layer.weight, torch.tensor([[0.9, -2.1]]))
    assert amp.state_dict()["scale"] == scale / 2
    fresh = Precision("fp16", "cpu")
    fresh.load_state_dict(amp.state_dict())
    assert fresh.scaler.get_scale() == scale / 2


def test_fp32_and_bf16_step_without_a_scaler():
    for name in ("fp32", "bf16"):
        layer = nn.Linear(2, 1, bias=False)
        before = layer.weight.detach().clone()
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        amp = Precision(name, "cpu")
        assert amp.scaler is None and amp.state_dict() is None
        with amp.autocast():
            loss = layer(torch.ones(1, 2)).float().sum()
        assert amp.step(loss, optimizer) is True
        assert torch.allclose(layer.weight, before - 0.1, atol=1e-2 if name == "bf16" else 0)


def test_the_teacher_runs_under_the_students_autocast():
    torch.manual_seed(0)
    distiller = Distiller(TinySegNet(low=6, high=16), TinySegNet(), preset_terms("ours"))
    images, masks = torch.randn(2, 1, 16, 16), (torch.rand(2, 16, 16) > 0.5).long()
    with Precision("bf16", "cpu").autocast():
        out = distiller(images, masks)
    assert out.teacher_logits.dtype == torch.bfloat16 and not out.teacher_logits.requires_grad
    assert out.logits.dtype == torch.bfloat16
    assert out.total.dtype == torch.float32 and torch.isfinite(out.total)
    out.total.backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_channels_last_and_compile_are_applied_in_place(monkeypatch):
    compiled = []
    # record nn.Module.compile (in-place torch.compile) instead of importing the compiler
    monkeypatch.setattr(
        nn.Module, "compile", lambda self, *a, **k: compiled.append((self, k.get("mode")))
    )
    torch.manual_seed(0)
    distiller = Distiller(TinySegNet(low=6, high=16), TinySegNet(), preset_terms("ours"))
    keys = list(distiller.student.state_dict())
    amp = Precision("fp32", "cpu", channels_last=True, compile="reduce-overhead")
    amp.prepare(distiller)
    conv = distiller.student.down[0].weight  # (8, 6, 3, 3): the two layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert amp.inputs(torch.randn(2, 1, 8, 8)).is_contiguous(memory_format=torch.channels_last)
    assert list(distiller.student.state_dict()) == keys  # checkpoints keep their keys
    mode = "reduce-overhead"
    assert compiled == [(distiller.student, mode), (distiller.teacher, mode)]
    Precision("fp32", "cpu").prepare(distiller)
    assert len(compiled) == 2  # compile is off unless asked


@pytest.mark.parametrize(
    ("value", "mode"),
    [("false", None), ("true", "default"), ("reduce-overhead", "reduce-overhead")],
)
def test_compile_modes(value, mode):
    config = load_config(None, [f"train.compile={value}"])
    assert resolve_compile(config.train.compile) == mode


@pytest.mark.parametrize("bf16", [True, False])
def test_auto_precision_on_cuda_is_chosen_by_network(monkeypatch, bf16):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    half = "bf16" if bf16 else "fp16"
    # ENet is launch-bound and measured faster in fp32; UNet++ measured faster in bf16
    assert resolve_precision("auto", "cuda", "enet") == "fp32"
    assert resolve_precision("auto", "cuda:1", "unetpp") == half
    assert resolve_precision("auto", "cuda", "erfnet") == half  # not measured: half precision
    assert resolve_precision("auto", "cuda") == half
    assert resolve_precision("auto", "cpu", "unetpp") == "fp32"
    assert resolve_precision("fp32", "cuda", "unetpp") == "fp32"  # asked for: kept


@pytest.fixture(scope="module")
def cache(engine_cache):
    return engine_cache


def _weights(run):
    return load_checkpoint(run / "checkpoints/last.safetensors").model


def test_fp32_is_the_default_on_the_cpu_and_unchanged(cache, tmp_path):
    auto = api.train(tiny_run_config(cache, tmp_path, "auto", "train.epochs=1"), progress=False)
    fp32 = api.train(
        tiny_run_config(
            cache,
            tmp_path,
            "fp32",
            "train.epochs=1",
            "train.precision=fp32",
            "train.channels_last=false",
        ),
        progress=False,
    )
    assert auto["precision"] == fp32["precision"] == {"autocast": "fp32", "channels_last": False}
    a, b = _weights(tmp_path / "auto"), _weights(tmp_path / "fp32")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (
        "scaler"
        not in load_checkpoint(tmp_path / "auto/checkpoints/last.safetensors").meta["state"]
    )


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_on_the_cpu_when_asked(cache, tmp_path, precision):
    summary = api.train(
        tiny_run_config(
            cache, tmp_path, precision, "train.epochs=2", f"train.precision={precision}"
        ),
        progress=False,
    )
    assert summary["precision"]["autocast"] == precision
    lines = [
        json.loads(x) for x in (tmp_path / precision / "metrics.jsonl").read_text().splitlines()
    ]
    assert all(math.isfinite(x["loss/total"]) for x in lines)
    assert lines[-1]["loss/total"] < lines[0]["loss/total"] + 0.5
    state = load_checkpoint(tmp_path / precision / "checkpoints/last.safetensors").meta["state"]
    assert ("scaler" in state) == (precision == "fp16")
    model, _ = load_model(tmp_path / precision)  # an ordinary float32 checkpoint
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_an_fp16_run_resumes_with_its_grad_scale(cache, tmp_path, monkeypatch):
    extra = ["train.precision=fp16", "train.epochs=2", "train.steps_per_epoch=2"]
    api.train(tiny_run_config(cache, tmp_path, "full", *extra), progress=False)
    calls = {"n": 0}
    real = run_module.evaluate_model

    def crash_on_second_validation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "evaluate_model", crash_on_second_validation)
    with pytest.raises(KeyboardInterrupt):
        api.train(tiny_run_config(cache, tmp_path, "cut", *extra), progress=False)
    monkeypatch.setattr(run_module, "evaluate_model", real)
    cut = load_checkpoint(tmp_path / "cut/checkpoints/last.safetensors").meta["state"]
    assert cut["epoch"] == 1 and cut["scaler"]["scale"] > 0
    api.train(tiny_run_config(cache, tmp_path, "cut", *extra), resume=True, progress=False)
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    scales = [
        load_checkpoint(tmp_path / run / "checkpoints/last.safetensors").meta["state"]["scaler"]
        for run in ("full", "cut")
    ]
    assert scales[0] == scales[1]


def test_a_compiled_run_trains_to_the_eager_weights(cache, tmp_path, monkeypatch):
    """``train.compile`` for real, on the CPU: the networks go through ``torch.compile``
    (Dynamo and AOTAutograd, ``aot_eager``: no kernel generation, which a CPU test cannot
    afford; the mode is Inductor's and is dropped), train one epoch, validate and are saved;
    the weights equal the eager run's within float32 rounding and keep their keys."""
    compile_ = nn.Module.compile
    calls = []

    def aot_eager(self, *args, **kwargs):
        calls.append(kwargs.pop("mode"))
        compile_(self, *args, backend="aot_eager", **kwargs)

    overrides = ("train.epochs=1", "train.steps_per_epoch=3")
    api.train(tiny_run_config(cache, tmp_path, "eager", *overrides), progress=False)
    monkeypatch.setattr(nn.Module, "compile", aot_eager)
    config = tiny_run_config(cache, tmp_path, "compiled", *overrides, "train.compile=true")
    api.train(config, progress=False)
    assert calls == ["default"]  # the student (no teacher in this run)
    eager, compiled = _weights(tmp_path / "eager"), _weights(tmp_path / "compiled")
    assert list(compiled) == list(eager)
    assert all(torch.allclose(compiled[k].float(), eager[k].float(), atol=1e-5) for k in eager)


def test_a_machine_that_cannot_compile_the_networks_gets_one_line(cache, tmp_path, monkeypatch):
    compile_ = nn.Module.compile

    def no_compiler(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    def failing(self, *args, **kwargs):
        kwargs.pop("mode")
        compile_(self, *args, backend=no_compiler, **kwargs)

    monkeypatch.setattr(nn.Module, "compile", failing)
    config = tiny_run_config(cache, tmp_path, "c", "train.epochs=1", "train.compile=true")
    with pytest.raises(ConfigError, match=r"train\.compile") as info:
        api.train(config, progress=False)
    assert "no C++ compiler found" in str(info.value) and "set it to false" in str(info.value)
