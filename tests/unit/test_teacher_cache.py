"""Teacher-output cache: equal to running the teacher (within fp16), reuse, staleness, damage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from conftest import tiny_run_config
from crossdistill import api
from crossdistill.data.augment import warp_maps
from crossdistill.data.dataset import SliceDataset
from crossdistill.distill import Distiller, preset_terms
from crossdistill.engine.cached_teacher import (
    TeacherCachedDataset,
    cached_teacher_outputs,
    use_teacher_cache,
)
from crossdistill.engine.checkpoint import load_checkpoint, save_checkpoint
from crossdistill.engine.loading import load_model
from crossdistill.engine.precision import Precision
from crossdistill.engine.teacher_cache import cache_key, open_or_build
from crossdistill.errors import ConfigError, CrossDistillError
from crossdistill.models import create_model
from crossdistill.models.output import SegOutput

FP16 = 2.0**-11  # float16's relative rounding error
SITES = ["HK", "BIDMC"]  # the student's training sites of tiny_run_config (target UCL)


@pytest.fixture(scope="module")
def teacher(engine_cache, tmp_path_factory):
    """A teacher trained for two short epochs on UCL (its run folder)."""
    out = tmp_path_factory.mktemp("teacher")
    config = tiny_run_config(engine_cache, out, "teacher", "role=teacher", "train.epochs=2")
    api.train(config, progress=False)
    return out / "teacher"


def _student_config(cache, out, name, teacher, *extra):
    return tiny_run_config(
        cache,
        out,
        name,
        "model.name=espnet",
        "distill.preset=ours",
        f"distill.teacher={teacher}",
        "data.augment=false",
        *extra,
    )


def _cached_dataset(cache, teacher_dir, root, augment=False, terms="ours"):
    teacher, _ = load_model(teacher_dir)
    student = create_model("espnet", 1, 2, 0.25)
    distiller = Distiller(teacher, student, preset_terms(terms))
    dataset = SliceDataset(cache, SITES, "train", augment=augment, seed=3)
    teacher_file = teacher_dir / "checkpoints/best.safetensors"
    wrapped, info = use_teacher_cache(
        root, distiller, teacher_file, dataset, Precision(), batch_size=8, progress=False
    )
    return distiller, wrapped, info


def test_a_batch_gives_the_same_loss_terms_with_and_without_the_cache(
    engine_cache, teacher, tmp_path
):
    distiller, dataset, info = _cached_dataset(engine_cache, teacher, tmp_path)
    assert info["built"] and info["taps"] == ["logits", "high"]
    batch = next(iter(DataLoader(dataset, batch_size=8, shuffle=True)))
    cached = cached_teacher_outputs(batch, "cpu")
    direct = distiller.teacher_forward(batch["image"])
    for got, want in [
        (cached.logits, direct.logits),
        (cached.features["high"], direct.features["high"]),
    ]:
        assert got.dtype == torch.float32 and got.shape == want.shape
        assert torch.allclose(got, want, rtol=FP16, atol=1e-6)
    distiller.eval()  # no balance-step counters moving between the two calls
    with torch.no_grad():
        plain = distiller(batch["image"], batch["mask"])
        from_cache = distiller(batch["image"], batch["mask"], teacher_outputs=cached)
    for name in ("seg", "lm", "kmm"):
        assert math.isclose(plain.raw[name], from_cache.raw[name], rel_tol=1e-3), name
    # AAM labels pixels by the teacher's argmax: a near-tie may flip under fp16 rounding
    assert math.isclose(plain.raw["aam"], from_cache.raw["aam"], rel_tol=2e-2)


def test_distilling_with_the_cache_gives_near_identical_weights(engine_cache, teacher, tmp_path):
    extra = ["train.optimizer.name=sgd", "train.epochs=2", "train.steps_per_epoch=3"]
    plain = api.train(
        _student_config(engine_cache, tmp_path, "plain", teacher, *extra), progress=False
    )
    cached = api.train(
        _student_config(
            engine_cache, tmp_path, "cached", teacher, *extra, "distill.teacher_cache=true"
        ),
        progress=False,
    )
    assert "teacher_cache" not in plain and cached["teacher_cache"]["built"]
    torch.manual_seed(0)  # the run's seed: the student's initial weights
    init = create_model("espnet", 1, 2, 0.25).state_dict()
    a = load_checkpoint(tmp_path / "plain/checkpoints/last.safetensors").model
    b = load_checkpoint(tmp_path / "cached/checkpoints/last.safetensors").model
    moved = max(float((a[k] - init[k]).abs().max()) for k in a if a[k].is_floating_point())
    differ = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    assert moved > 1e-2 and differ < 1e-2 * moved, (moved, differ)
    for term in ("seg", "raw/lm", "raw/kmm"):
        assert math.isclose(
            plain["loss_terms"]["end"][term], cached["loss_terms"]["end"][term], rel_tol=1e-3
        )


def test_a_second_student_reuses_the_cache_without_running_the_teacher(
    engine_cache, teacher, tmp_path, monkeypatch
):
    first = api.train(
        _student_config(
            engine_cache, tmp_path, "a", teacher, "train.epochs=1", "distill.teacher_cache=true"
        ),
        progress=False,
    )

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran although its outputs are cached")

    monkeypatch.setattr(Distiller, "teacher_forward", no_teacher)
    second = api.train(
        _student_config(
            engine_cache,
            tmp_path,
            "b",
            teacher,
            "train.epochs=1",
            "distill.teacher_cache=true",
            "model.name=enet",
        ),
        progress=False,
    )
    assert first["teacher_cache"]["built"] and not second["teacher_cache"]["built"]
    assert first["teacher_cache"]["path"] == second["teacher_cache"]["path"]
    assert str(tmp_path / ".teacher-cache") in second["teacher_cache"]["path"]


def test_a_new_teacher_checkpoint_gets_a_new_entry(engine_cache, teacher, tmp_path):
    _, _, first = _cached_dataset(engine_cache, teacher, tmp_path / "tc")
    ckpt = load_checkpoint(teacher / "checkpoints/best.safetensors")
    # the same weights written with other metadata (a later release's config) read the entry
    same = tmp_path / "teacher1/checkpoints/best.safetensors"
    save_checkpoint(same, ckpt.model, {**ckpt.meta, "config": {"written_by": "a later release"}})
    _, _, again = _cached_dataset(engine_cache, same.parents[1], tmp_path / "tc")
    assert not again["built"] and again["path"] == first["path"]
    changed = tmp_path / "teacher2/checkpoints/best.safetensors"
    exploding = {k: v * 1.5 if k.endswith("weight") else v for k, v in ckpt.model.items()}
    save_checkpoint(changed, exploding, ckpt.meta)  # its outputs exceed float16's range
    with pytest.raises(CrossDistillError, match="float16 range"):
        _cached_dataset(engine_cache, changed.parents[1], tmp_path / "tc")
    last = [k for k in ckpt.model if k.endswith("weight")][-1]
    save_checkpoint(changed, {**ckpt.model, last: ckpt.model[last] * 1.5}, ckpt.meta)
    distiller, dataset, second = _cached_dataset(engine_cache, changed.parents[1], tmp_path / "tc")
    assert second["built"] and second["path"] != first["path"]
    item = dataset[5]
    direct = distiller.teacher_forward(item["image"][None])
    assert torch.allclose(item["teacher"]["logits"].float(), direct.logits[0], rtol=FP16, atol=1e-6)


def _entry_files(info):
    folder = Path(info["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    return folder, manifest


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "key"])
def test_a_damaged_entry_is_rebuilt_never_read(engine_cache, teacher, tmp_path, damage):
    _, _, info = _cached_dataset(engine_cache, teacher, tmp_path)
    folder, manifest = _entry_files(info)
    logits = folder / manifest["arrays"]["logits"]["file"]
    if damage == "truncate":
        logits.write_bytes(logits.read_bytes()[:-100])
    elif damage == "flip":
        data = bytearray(logits.read_bytes())
        data[-3] ^= 0xFF
        logits.write_bytes(bytes(data))
    elif damage == "manifest":
        (folder / "manifest.json").unlink()
    else:
        manifest["key"]["precision"] = "bf16"
        (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="rebuilding"):
        distiller, dataset, again = _cached_dataset(engine_cache, teacher, tmp_path)
    assert again["built"] and again["path"] == info["path"]
    item = dataset[len(dataset) - 1]  # the flipped bytes are in the last item's logits
    direct = distiller.teacher_forward(item["image"][None])
    assert torch.allclose(item["teacher"]["logits"].float(), direct.logits[0], rtol=FP16, atol=1e-6)


def test_an_interrupted_build_leaves_nothing_behind(engine_cache, teacher, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = nn.Module.__call__

    class BuildCrashError(Exception):
        pass

    def crash_on_second_batch(self, *args, **kwargs):
        if self.__class__.__name__ == "ERFNet":
            calls["n"] += 1
            if calls["n"] == 2:
                raise BuildCrashError
        return real(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "__call__", crash_on_second_batch)
    with pytest.raises(BuildCrashError):
        _cached_dataset(engine_cache, teacher, tmp_path / "tc")
    monkeypatch.setattr(nn.Module, "__call__", real)
    assert list((tmp_path / "tc").iterdir()) == []
    _, _, info = _cached_dataset(engine_cache, teacher, tmp_path / "tc")
    assert info["built"] and [p.name for p in (tmp_path / "tc").iterdir()] == [
        info["path"].rsplit("/", 1)[1]
    ]


def test_intensity_augmentation_is_refused_before_anything_is_written(
    engine_cache, teacher, tmp_path
):
    with pytest.raises(ConfigError, match=r"data\.augment.*intensity"):
        api.train(
            _student_config(
                engine_cache,
                tmp_path,
                "s",
                teacher,
                "data.augment=true",
                "distill.teacher_cache=true",
            ),
            progress=False,
        )
    assert not (tmp_path / "s").exists() and not (tmp_path / ".teacher-cache").exists()
    with pytest.raises(ConfigError, match=r"distill\.teacher_cache.*needs distill\.teacher"):
        api.train(
            tiny_run_config(engine_cache, tmp_path, "w", "distill.teacher_cache=true"),
            progress=False,
        )


def test_cli_distill_with_teacher_cache(engine_cache, teacher, tmp_path, run_cli):
    common = [
        "distill",
        "--teacher",
        str(teacher),
        "--teacher-cache",
        *("--set", f"data.cache={engine_cache}", "--set", f"output={tmp_path}"),
        *("--set", "protocol=cross-site", "--set", "target=S4", "--set", "device=cpu"),
        *("--set", "model.name=espnet", "--set", "model.width=0.25", "--set", "train.epochs=1"),
        *("--set", "train.steps_per_epoch=2", "--set", "train.batch_size=4"),
    ]
    code, out, err = run_cli(*common, "--set", "name=ok", "--set", "data.augment=geometric")
    assert code == 0, err
    assert "ok: Dice" in out
    summary = json.loads((tmp_path / "ok/summary.json").read_text())
    assert summary["teacher_cache"]["built"] and (tmp_path / ".teacher-cache").is_dir()
    code, out, err = run_cli(*common, "--set", "name=bad")
    assert code == 2 and "data.augment" in err and "intensity" in err
    assert len(err.strip().splitlines()) == 1


class PointwiseTeacher(nn.Module):
    """A per-pixel affine network (1×1 convolutions, no activation): it commutes with every
    bilinear warp of its input."""

    def __init__(self):
        super().__init__()
        self.num_classes = 2
        self.feature_channels = {"low": 3}
        self.features = nn.Conv2d(1, 3, 1)
        self.head = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        low = self.features(x)
        return SegOutput(self.head(low), {"low": low})


def test_geometric_augmentation_moves_the_cached_maps_with_the_image(engine_cache, tmp_path):
    torch.manual_seed(0)
    teacher_net = PointwiseTeacher().eval()
    dataset = SliceDataset(engine_cache, SITES, "train", augment="geometric", seed=5)
    teacher_file = save_checkpoint(tmp_path / "teacher.safetensors", {"w": torch.ones(2)}, {})
    key = cache_key(teacher_file, dataset, ["logits", "low"], "fp32")
    outputs, built = open_or_build(
        tmp_path / "tc", key, lambda x, _masks: teacher_net(x), dataset, Precision(), 8, False
    )
    assert built
    loader = DataLoader(TeacherCachedDataset(dataset, outputs), batch_size=16, shuffle=True)
    batch = next(iter(loader))
    assert batch["theta"].shape == (16, 2, 3)
    cached = cached_teacher_outputs(batch, "cpu")
    with torch.no_grad():
        direct = teacher_net(batch["image"])  # the teacher on the augmented images
    assert torch.allclose(cached.logits, direct.logits, rtol=4 * FP16, atol=1e-3)
    assert torch.allclose(cached.features["low"], direct.features["low"], rtol=4 * FP16, atol=1e-3)


def test_one_warp_moves_maps_of_every_resolution_alike():
    torch.manual_seed(0)
    theta = torch.tensor(
        [[[0.9, -0.3, 0.05], [0.3, 0.9, -0.02]], [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]
    )

    def ramp(size):  # f(u, v) = 2u − v + 0.5 at pixel centres, u, v ∈ (−1, 1)
        c = (torch.arange(size) + 0.5) / size * 2 - 1
        v, u = torch.meshgrid(c, c, indexing="ij")
        return (2 * u - v + 0.5).expand(2, 1, size, size).clone()

    fine, coarse = warp_maps(ramp(64), theta), warp_maps(ramp(8), theta)
    # the coarse warp equals the fine warp averaged over each 8×8 block (a ramp stays a ramp)
    inner = slice(2, 6)  # away from the border, where padding breaks the ramp
    pooled = F.avg_pool2d(fine, 8)
    assert torch.allclose(coarse[..., inner, inner], pooled[..., inner, inner], atol=1e-5)
    # a flip is exact at any resolution
    noise = torch.randn(1, 4, 8, 8)
    assert torch.allclose(warp_maps(noise, theta[1:]), torch.flip(noise, dims=[-1]), atol=1e-6)


def test_item_order_of_the_cache_is_the_dataset_order(engine_cache, teacher, tmp_path):
    distiller, dataset, _ = _cached_dataset(engine_cache, teacher, tmp_path)
    plain = dataset.dataset
    images = torch.stack([plain[i]["image"] for i in range(len(plain))])
    direct = distiller.teacher_forward(images)
    stored = np.load(next((tmp_path).glob("*/logits.npy")), mmap_mode="r", allow_pickle=False)
    assert stored.dtype == np.float16 and stored.shape == tuple(direct.logits.shape)
    assert torch.allclose(
        torch.from_numpy(np.array(stored)).float(), direct.logits, rtol=FP16, atol=1e-6
    )


def test_loader_workers_read_the_same_maps(engine_cache, teacher, tmp_path):
    _, dataset, _ = _cached_dataset(engine_cache, teacher, tmp_path)
    one = next(iter(DataLoader(dataset, batch_size=6)))
    two = next(iter(DataLoader(dataset, batch_size=6, num_workers=2)))
    for tap in ("logits", "high"):
        assert torch.equal(one["teacher"][tap], two["teacher"][tap])
    assert dataset.item_sites() == dataset.dataset.item_sites()  # the dataset's attributes
