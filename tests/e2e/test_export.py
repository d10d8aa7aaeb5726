"""ONNX and TorchScript export: same logits as PyTorch, metadata carried, bad input refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from crossdistill.deploy.export import export_model, export_onnx, export_torchscript
from crossdistill.deploy.metadata import METADATA_KEY, DeploymentMetadata
from crossdistill.deploy.runtime import load_exported, load_onnx, load_torchscript
from crossdistill.engine.checkpoint import save_checkpoint
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.models import create_model, list_models

SIZE = 32


def write_checkpoint(
    path: Path, name: str, channels: int = 1, size: int = SIZE, with_data: bool = True
) -> torch.nn.Module:
    """A width-0.25 network with non-trivial batch-norm statistics, saved as a checkpoint."""
    torch.manual_seed(0)
    model = create_model(name, in_channels=channels, num_classes=2, width=0.25)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # eval-mode BN must not be identity
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    meta = {"model": {"name": name, "width": 0.25, "in_channels": channels, "num_classes": 2}}
    if with_data:
        meta["data"] = {"size": size, "channels": channels}
    save_checkpoint(path, model.state_dict(), meta)
    return model.eval()


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).logits.numpy()


@pytest.mark.parametrize("name", list_models())
def test_onnx_and_torchscript_give_the_pytorch_logits(tmp_path: Path, name: str) -> None:
    channels = 3 if name == "enet" else 1  # one 2.5D network
    model = write_checkpoint(tmp_path / "ckpt.safetensors", name, channels)
    onnx_file = export_onnx(tmp_path / "ckpt.safetensors", tmp_path / "out" / f"{name}.onnx")
    ts_file = export_torchscript(tmp_path / "ckpt.safetensors", tmp_path / "out" / f"{name}.pt")
    onnx.checker.check_model(onnx.load(str(onnx_file)), full_check=True)

    x = np.random.default_rng(1).standard_normal((3, channels, SIZE, SIZE)).astype(np.float32)
    expected = torch_logits(model, x)
    assert expected.shape == (3, 2, SIZE, SIZE)
    for load, file in ((load_onnx, onnx_file), (load_torchscript, ts_file)):
        run, meta = load(file)
        assert meta == DeploymentMetadata(
            model={"name": name, "width": 0.25, "in_channels": channels, "num_classes": 2},
            size=SIZE,
            channels=channels,
        )
        # batch size is dynamic: 3 here, 2 at export; and batch 1
        np.testing.assert_allclose(run(x), expected, rtol=0, atol=1e-4)
        np.testing.assert_allclose(run(x[:1]), expected[:1], rtol=0, atol=1e-4)


def test_onnx_graph_names_and_metadata(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "ckpt.safetensors", "espnet")
    graph = onnx.load(str(export_onnx(tmp_path / "ckpt.safetensors", tmp_path / "m.onnx")))
    assert [i.name for i in graph.graph.input] == ["image"]
    assert [o.name for o in graph.graph.output] == ["logits"]
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, SIZE, SIZE]
    props = {p.key: p.value for p in graph.metadata_props}
    payload = json.loads(props[METADATA_KEY])
    assert payload["preprocess"]["size"] == SIZE and payload["model"]["name"] == "espnet"
    assert payload["input"] == "image" and payload["output"] == "logits"


def test_run_folder_is_accepted_and_format_dispatch(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors", "erfnet")
    path = export_model(tmp_path / "run", tmp_path / "erf.pt", "torchscript")
    _, meta = load_exported(path)
    assert meta.model["name"] == "erfnet"
    with pytest.raises(CrossDistillError, match="unknown export format 'tflite'"):
        export_model(tmp_path / "run", tmp_path / "erf.tfl", "tflite")


def test_checkpoint_without_data_geometry_is_refused(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "c.safetensors", "enet", with_data=False)
    with pytest.raises(InputError, match=re.escape("c.safetensors: cannot export")):
        export_onnx(tmp_path / "c.safetensors", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_foreign_onnx_and_corrupt_archives_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.onnx"
    tensor = onnx.helper.make_tensor_value_info
    node = onnx.helper.make_node("Relu", ["image"], ["logits"])
    graph = onnx.helper.make_graph(
        [node],
        "foreign",
        [tensor("image", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
        [tensor("logits", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
    )
    onnx.save(onnx.helper.make_model(graph), str(foreign))
    with pytest.raises(InputError, match="carries no crossdistill metadata"):
        load_onnx(foreign)
    (tmp_path / "junk.pt").write_bytes(b"not a zip archive")
    with pytest.raises(InputError, match=re.escape("junk.pt: not a loadable TorchScript archive")):
        load_torchscript(tmp_path / "junk.pt")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match=re.escape("junk.onnx: not a loadable ONNX model")):
        load_onnx(tmp_path / "junk.onnx")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", *args], capture_output=True, text=True
    )


def test_cli_export_and_bad_checkpoint(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "ckpt.safetensors", "enet")
    done = _cli(
        "export",
        "--checkpoint",
        str(tmp_path / "ckpt.safetensors"),
        "--out",
        str(tmp_path / "e.onnx"),
    )
    assert done.returncode == 0, done.stderr
    assert "e.onnx" in done.stdout and (tmp_path / "e.onnx").is_file()

    (tmp_path / "bad.safetensors").write_bytes(b"this is not a checkpoint")
    bad = _cli(
        "export",
        "--checkpoint",
        str(tmp_path / "bad.safetensors"),
        "--format",
        "torchscript",
        "--out",
        str(tmp_path / "bad.pt"),
    )
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crossdistill: error: ")
    assert "bad.safetensors" in lines[0] and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.pt").exists()
