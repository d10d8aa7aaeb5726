"""Checkpoints: round trip of the full state, atomic writes, refusal of foreign files."""

from __future__ import annotations

import hashlib
import pickle
import random

import numpy as np
import pytest
import torch

from crossdistill.engine.checkpoint import (
    capture_rng,
    load_checkpoint,
    load_state_dict_strict,
    restore_rng,
    save_checkpoint,
    weights_sha256,
)
from crossdistill.engine.loading import network_sha256
from crossdistill.errors import InputError


def _trained_pair():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_restores_training_exactly(tmp_path):
    model, opt = _trained_pair()
    save_checkpoint(
        tmp_path / "c.safetensors",
        model.state_dict(),
        {"epoch": 3, "step": 7},
        optimizer=opt.state_dict(),
        rng=capture_rng(),
    )
    expected_draws = (torch.rand(3), np.random.rand(3), random.random())

    ckpt = load_checkpoint(tmp_path / "c.safetensors")
    assert ckpt.meta == {"epoch": 3, "step": 7}
    clone, clone_opt = _trained_pair()
    torch.manual_seed(123)
    clone[0].weight.data.zero_()
    load_state_dict_strict(clone, ckpt.model, tmp_path)
    clone_opt.load_state_dict(ckpt.optimizer)
    restore_rng(ckpt.rng)
    assert torch.equal(torch.rand(3), expected_draws[0])
    assert np.array_equal(np.random.rand(3), expected_draws[1])
    assert random.random() == expected_draws[2]
    for a, b in zip(model.state_dict().values(), clone.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(2, 1, 8, 8)
    for m, o in ((model, opt), (clone, clone_opt)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    assert torch.equal(model[0].weight, clone[0].weight)


def test_no_temporary_files_left(tmp_path):
    model, _ = _trained_pair()
    save_checkpoint(tmp_path / "c.safetensors", model.state_dict(), {})
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InputError, match="pickled PyTorch file"):
        load_checkpoint(tmp_path / "evil.safetensors")
    assert not marker.exists()


def test_foreign_safetensors_and_shape_mismatch(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="not a crossdistill checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")
    model, _ = _trained_pair()
    state = dict(model.state_dict())
    state["0.weight"] = torch.zeros(5, 1, 3, 3)
    with pytest.raises(InputError, match=r"'0.weight' has shape \(5, 1, 3, 3\)"):
        load_state_dict_strict(model, state, tmp_path / "x")
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_the_weights_digest_sees_the_network_not_the_metadata(tmp_path):
    model, opt = _trained_pair()
    state = model.state_dict()
    first = save_checkpoint(tmp_path / "a.safetensors", state, {"config": {"epochs": 2}})
    other_meta = save_checkpoint(
        tmp_path / "run/checkpoints/best.safetensors",
        state,
        {"config": {"epochs": 2, "a_key_added_later": None}},
        optimizer=opt.state_dict(),
        rng=capture_rng(),
    )
    digest = weights_sha256(first)
    assert len(digest) == 64 and weights_sha256(other_meta) == digest
    assert network_sha256(tmp_path / "run") == digest  # a run folder: its best checkpoint
    changed = {**state, "0.bias": state["0.bias"] + 1e-6}
    assert weights_sha256(save_checkpoint(tmp_path / "b.safetensors", changed, {})) != digest
    as_half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    assert weights_sha256(save_checkpoint(tmp_path / "c.safetensors", as_half, {})) != digest
    (tmp_path / "teacher.onnx").write_bytes(b"onnx bytes")
    assert network_sha256(tmp_path / "teacher.onnx") == hashlib.sha256(b"onnx bytes").hexdigest()
    with pytest.raises(InputError, match="does not exist"):
        weights_sha256(tmp_path / "missing.safetensors")
