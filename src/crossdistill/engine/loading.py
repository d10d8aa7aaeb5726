"""Networks from checkpoints: a run folder or a checkpoint file → a ready ``nn.Module``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from crossdistill.data.io import file_sha256
from crossdistill.deploy.metadata import is_onnx_file
from crossdistill.engine.checkpoint import load_checkpoint, load_state_dict_strict, weights_sha256
from crossdistill.engine.run_folder import RunFolder
from crossdistill.errors import InputError
from crossdistill.models import create_model


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint file of ``path``: itself, or a run folder's best (else last) one."""
    path = Path(path)
    if path.is_dir():
        folder = RunFolder(path)
        for file in (folder.best, folder.last):
            if file.is_file():
                return file
        where = folder.best.relative_to(path)
        raise InputError(path, f"run folder holds no checkpoint ({where})")
    if not path.exists():
        raise InputError(path, "checkpoint does not exist")
    return path


def network_sha256(path: str | Path) -> str:
    """What identifies the network of ``path`` (a run folder, a checkpoint, an exported ONNX
    file): a checkpoint's :func:`~crossdistill.engine.checkpoint.weights_sha256`, an ONNX
    file's bytes. Two runs that trained the same weights have the same digest.

    Raises:
        InputError: the file is missing or unreadable.
    """
    file = checkpoint_path(path)
    return file_sha256(file) if is_onnx_file(file) else weights_sha256(file)


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Build the network a checkpoint describes and load its weights; returns ``(model, meta)``.

    ``meta["model"]`` holds ``name``, ``width``, ``in_channels`` and ``num_classes``.
    """
    file = checkpoint_path(path)
    ckpt = load_checkpoint(file)
    spec = model_spec(file, ckpt.meta)
    model = create_model(
        spec["name"],
        in_channels=spec["in_channels"],
        num_classes=spec["num_classes"],
        width=spec["width"],
    )
    load_state_dict_strict(model, ckpt.model, file)
    return model.to(device).eval(), ckpt.meta


# What a checkpoint's meta.model may ask for; anything beyond is a broken or hostile file
# (a width of 1e6 would allocate the network before its weights could be compared).
SPEC_RANGES = {"in_channels": (int, 1, 16), "num_classes": (int, 2, 256), "width": (float, 0, 8)}


def model_spec(file: Path, meta: dict) -> dict:
    """``meta["model"]`` checked: a name, and numbers of the right type within ``SPEC_RANGES``.

    Raises:
        InputError: naming the checkpoint and the offending field.
    """
    spec = meta.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InputError(file, "checkpoint does not say which network it holds (meta.model)")
    out = {"name": spec["name"]}
    for key, (kind, low, high) in SPEC_RANGES.items():
        value = spec.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or kind(value) != value or not low <= value <= high or value == 0:
            raise InputError(file, f"meta.model.{key} is {value!r}, not a valid value")
        out[key] = kind(value)
    return out
