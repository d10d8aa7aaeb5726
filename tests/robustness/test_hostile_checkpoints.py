"""Hostile checkpoints: a pickle carrying code (``.pt``, ``.pth``, or renamed ``.safetensors``)
is refused and never unpickled; a safetensors file whose shapes do not fit, whose header
lies, or whose metadata asks for an absurd network is refused with one clear line."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from crossdistill.engine.checkpoint import load_checkpoint, save_checkpoint
from crossdistill.engine.loading import load_model
from crossdistill.errors import InputError
from crossdistill.models import create_model


class Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickles(folder: Path, marker: Path) -> list[Path]:
    payload = {"model": Payload(marker), "state_dict": {"w": torch.zeros(2)}}
    files = []
    for name in ("evil.pt", "evil.pth", "evil.safetensors"):
        torch.save(payload, folder / name)  # a zip archive holding a pickle
        files.append(folder / name)
    for protocol in (2, 5):  # bare pickles
        (folder / f"bare{protocol}.safetensors").write_bytes(pickle.dumps(payload, protocol))
        files.append(folder / f"bare{protocol}.safetensors")
    return files


def test_pickled_checkpoints_are_refused_and_never_run(tmp_path, engine_cache, run_cli):
    marker = tmp_path / "code-ran"
    for path in _pickles(tmp_path, marker):
        with pytest.raises(InputError, match=r"pickled PyTorch file.*refused") as err:
            load_checkpoint(path)
        assert err.value.path == path
        code, _, out = run_cli("evaluate", "--checkpoint", path, "--data", engine_cache)
        assert code == 2 and len(out.strip().splitlines()) == 1 and "pickle" in out, out
    protocol0 = tmp_path / "text.pth"
    protocol0.write_bytes(pickle.dumps(Payload(marker), 0))  # an ASCII pickle: no magic
    with pytest.raises(InputError, match="not a readable safetensors checkpoint"):
        load_checkpoint(protocol0)
    assert not marker.exists()


def _checkpoint(path: Path, width: float, meta_width=None) -> Path:
    model = create_model("erfnet", 1, 2, width)
    spec = {"name": "erfnet", "width": meta_width or width, "in_channels": 1, "num_classes": 2}
    return save_checkpoint(path, model.state_dict(), {"model": spec})


def test_weights_that_do_not_fit_the_network(tmp_path, engine_cache, run_cli):
    path = _checkpoint(tmp_path / "narrow.safetensors", 0.25, meta_width=0.5)
    with pytest.raises(InputError, match=r"weights do not fit the network: '.*' has shape"):
        load_model(path)
    code, _, err = run_cli("evaluate", "--checkpoint", path, "--data", engine_cache)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "has shape" in err, err


@pytest.mark.parametrize(
    "field, value",
    [("width", 1e6), ("width", "wide"), ("in_channels", 10**9), ("num_classes", 2.5), ("x", 1)],
)
def test_absurd_network_in_the_metadata(tmp_path, field, value):
    path = _checkpoint(tmp_path / "c.safetensors", 0.25)
    ckpt = load_checkpoint(path)
    spec = {**ckpt.meta["model"], field: value}
    if field == "x":
        spec.pop("name")
    save_checkpoint(path, ckpt.model, {"model": spec})
    with pytest.raises(InputError, match=r"meta\.model"):  # refused before building anything
        load_model(path)


def _raw_safetensors(path: Path, header: dict, data: bytes, length: int | None = None) -> Path:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob) if length is None else length) + blob + data)
    return path


def test_safetensors_headers_that_lie(tmp_path):
    meta = {"crossdistill": json.dumps({"format": "crossdistill-checkpoint", "version": 1})}
    cases = {
        "shape beyond the data": _raw_safetensors(
            tmp_path / "a.safetensors",
            {
                "__metadata__": meta,
                "model/w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 16]},
            },
            bytes(16),
        ),
        "offsets beyond the file": _raw_safetensors(
            tmp_path / "b.safetensors",
            {
                "__metadata__": meta,
                "model/w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]},
            },
            bytes(16),
        ),
        "header length beyond the file": _raw_safetensors(
            tmp_path / "c.safetensors", {}, b"", length=1 << 60
        ),
        "unknown dtype": _raw_safetensors(
            tmp_path / "d.safetensors",
            {"model/w": {"dtype": "X99", "shape": [4], "data_offsets": [0, 16]}},
            bytes(16),
        ),
    }
    for path in cases.values():
        with pytest.raises(InputError, match="not a readable safetensors checkpoint"):
            load_checkpoint(path)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(InputError, match="not a crossdistill checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
