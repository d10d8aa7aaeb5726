"""A teacher shared as an exported ONNX file: the same KD losses as the PyTorch teacher it was
exported from, its feature taps only when exported, and a distillation run end to end."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from conftest import tiny_run_config
from crossdistill.api import train
from crossdistill.deploy.export import export_onnx
from crossdistill.distill import Distiller
from crossdistill.engine.checkpoint import save_checkpoint
from crossdistill.engine.onnx_teacher import OnnxTeacher
from crossdistill.errors import ConfigError
from crossdistill.models import create_model

SIZE = 32


@pytest.fixture(scope="module")
def teacher_files(tmp_path_factory) -> tuple[torch.nn.Module, Path, Path]:
    """A DeepLabV3+ at width 1/8 with non-trivial batch-norm statistics, its checkpoint
    exported twice: logits only, and with the ``high`` feature."""
    root = tmp_path_factory.mktemp("onnx-teacher")
    torch.manual_seed(0)
    teacher = create_model("deeplabv3plus", width=0.125)
    for module in teacher.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    spec = {"name": "deeplabv3plus", "width": 0.125, "in_channels": 1, "num_classes": 2}
    checkpoint = root / "teacher.safetensors"
    save_checkpoint(
        checkpoint, teacher.state_dict(), {"model": spec, "data": {"size": SIZE, "channels": 1}}
    )
    logits_only = export_onnx(checkpoint, root / "teacher.onnx")
    with_high = export_onnx(checkpoint, root / "teacher-high.onnx", features=["high"])
    return teacher.eval(), logits_only, with_high


def _losses(teacher: torch.nn.Module, terms: dict) -> dict[str, float]:
    torch.manual_seed(3)
    student = create_model("enet", width=0.25)
    distiller = Distiller(teacher, student, copy.deepcopy(terms)).train()
    torch.manual_seed(4)
    images = torch.randn(4, 1, SIZE, SIZE)
    masks = (torch.rand(4, SIZE, SIZE) > 0.7).long()
    out = distiller(images, masks)
    out.total.backward()  # gradients flow to the student through an ONNX teacher's targets
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    return {name: float(value.detach()) for name, value in out.raw.items()}


@pytest.mark.parametrize(
    "terms",
    [
        {"lm": {"weight": 0.2}},
        {"aam": {"weight": 0.9, "stride": 4}},
        {"kmm": {"weight": 0.9}, "lm": {"weight": 0.2}},
    ],
    ids=["lm", "aam", "kmm+lm"],
)
def test_same_losses_as_the_pytorch_teacher(teacher_files, terms) -> None:
    teacher, _, with_high = teacher_files
    expected = _losses(teacher, terms)
    got = _losses(OnnxTeacher(with_high), terms)
    assert set(got) == set(expected) == {"seg", *terms}
    for name in expected:
        assert got[name] == pytest.approx(expected[name], abs=1e-4), name


def test_a_feature_term_needs_the_exported_feature(teacher_files) -> None:
    teacher, logits_only, with_high = teacher_files
    assert OnnxTeacher(logits_only).feature_channels == {}
    assert OnnxTeacher(with_high).feature_channels == {"high": teacher.feature_channels["high"]}
    with pytest.raises(ConfigError, match="has no feature 'high'; it has: logits"):
        Distiller(OnnxTeacher(logits_only), create_model("enet", width=0.25), {"kmm": {}})


def test_distill_run_from_an_onnx_teacher(
    teacher_files, engine_cache: Path, tmp_path: Path, run_cli
):
    _, logits_only, _ = teacher_files
    config = tiny_run_config(
        engine_cache,
        tmp_path,
        "from-onnx",
        f"distill.teacher={logits_only}",
        "distill.preset=lm",
        "distill.teacher_cache=true",
        "data.augment=geometric",
        "train.epochs=1",
    )
    summary = train(config, progress=False)
    assert summary["teacher"] == str(logits_only) and summary["terms"]["lm"]["weight"] == 0.2
    assert (tmp_path / "from-onnx" / "checkpoints" / "best.safetensors").is_file()

    # KMM from a logits-only file: one line before training, nothing trained
    code, _, err = run_cli(
        "distill",
        "--teacher",
        str(logits_only),
        "--set",
        f"data.cache={engine_cache}",
        "--set",
        f"output={tmp_path}",
        "--set",
        "name=kmm",
        "--set",
        "distill.preset=kmm",
        "--set",
        "target=S4",
        "--set",
        "protocol=cross-site",
    )
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "no feature 'high'" in err and not (tmp_path / "kmm" / "checkpoints").exists()
