"""A full disk while writing a checkpoint or the cache: one clear line naming the file, no
temporary or half-written file left, the previous checkpoint or cache intact.

Two ways to fill the disk: a real size-limited tmpfs (needs root to mount; skipped without)
and, everywhere, a writer that fails with ENOSPC half-way through its file.
"""

from __future__ import annotations

import errno
import shutil
import subprocess

import numpy as np
import pytest
import torch
from safetensors import SafetensorError

from conftest import tiny_run_config, tree_digest, write_case
from crossdistill.data.cache import Cache
from crossdistill.engine import checkpoint
from crossdistill.engine.checkpoint import load_checkpoint, save_checkpoint
from crossdistill.errors import InputError


@pytest.fixture
def small_disk(tmp_path):
    """``mount(size)`` → a folder on a tmpfs of ``size`` bytes, unmounted afterwards."""
    mounted = []

    def mount(size: int):
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root); the ENOSPC writer tests run")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _state(numel: int) -> dict[str, torch.Tensor]:
    return {"w": torch.arange(numel, dtype=torch.float32)}


def _assert_previous_kept(path, numel):
    assert load_checkpoint(path).model["w"].numel() == numel
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file


def test_checkpoint_on_a_full_tmpfs(small_disk):
    path = small_disk(256 * 1024) / "c.safetensors"
    save_checkpoint(path, _state(1000), {"epoch": 1})
    with pytest.raises(InputError, match="No space left on device") as err:
        save_checkpoint(path, _state(100_000), {"epoch": 2})  # 400 kB on a 256 kB disk
    assert err.value.path == path and "unchanged" in str(err.value)
    _assert_previous_kept(path, 1000)


def test_checkpoint_writer_failing_half_way(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _state(1000), {"epoch": 1})

    def half_then_enospc(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"\0" * 4096)
        raise SafetensorError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", half_then_enospc)
    with pytest.raises(InputError, match="No space left on device") as err:
        save_checkpoint(path, _state(2000), {"epoch": 2})
    assert err.value.path == path
    _assert_previous_kept(path, 1000)


def test_training_on_a_full_disk_stops_with_one_line(engine_cache, small_disk, run_cli):
    out = small_disk(1024 * 1024)  # best.safetensors (0.6 MB) fits, last.safetensors does not
    cfg = tiny_run_config(engine_cache, out, "full", "train.epochs=1")
    args = [f"data.cache={engine_cache}", f"output={out}", "name=full", "device=cpu"]
    args += [f"{k}={v}" for k, v in (("model.name", "erfnet"), ("model.width", 0.25))]
    args += ["train.epochs=1", "train.batch_size=8", "train.steps_per_epoch=2"]
    args += ["protocol=cross-site", "target=S4"]
    code, _, err = run_cli("train", *[a for item in args for a in ("--set", item)])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and cfg.name == "full", err
    assert str(out / "full/checkpoints/last.safetensors") in lines[0]
    assert "No space left on device" in lines[0]
    assert sorted(p.name for p in (out / "full/checkpoints").iterdir()) == ["best.safetensors"]
    load_checkpoint(out / "full/checkpoints/best.safetensors")


def _sites(root, cases_per_site):
    for s, site in enumerate(["UCL", "SITEX"]):
        for c in range(cases_per_site):
            write_case(root / site, f"Case{c:02d}", seed=10 * s + c)


def _assert_cache_failed_cleanly(code, err, out, before, data, data_before):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "No space left on device" in lines[0] and ".npy" in lines[0], lines[0]
    assert tree_digest(out) == before  # the previous cache, byte for byte
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left
    assert len(Cache(out).cases()) == 4
    assert tree_digest(data) == data_before


def test_prepare_on_a_full_tmpfs_keeps_the_previous_cache(tmp_path, small_disk, run_cli):
    data, out = tmp_path / "data", small_disk(128 * 1024) / "cache"
    _sites(data, 2)  # 4 cases: about 80 kB of cache
    assert run_cli("prepare", data, "--out", out, "--size", 32)[0] == 0
    before = tree_digest(out)
    shutil.rmtree(data)
    _sites(data, 5)  # 10 cases: no room beside the previous cache
    data_before = tree_digest(data)
    code, _, err = run_cli("prepare", data, "--out", out, "--size", 32)
    _assert_cache_failed_cleanly(code, err, out, before, data, data_before)


def test_prepare_writer_failing_half_way(tmp_path, monkeypatch, run_cli):
    data, out = tmp_path / "data", tmp_path / "cache"
    _sites(data, 2)
    assert run_cli("prepare", data, "--out", out, "--size", 32)[0] == 0
    before = tree_digest(out)
    write_case(data / "UCL", "Case07", seed=7)
    data_before = tree_digest(data)
    real, calls = np.save, []

    def enospc_on_third(file, array, *args, **kwargs):
        calls.append(file)
        if len(calls) == 3:
            with open(file, "wb") as handle:
                handle.write(b"\x93NUMPY")  # half a file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", enospc_on_third)
    code, _, err = run_cli("prepare", data, "--out", out, "--size", 32)
    assert str(calls[2]) in err
    _assert_cache_failed_cleanly(code, err, out, before, data, data_before)
