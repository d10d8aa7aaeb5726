"""Networks from checkpoints: a run folder or a checkpoint file → a ready ``nn.Module``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from crossdistill.engine.checkpoint import load_checkpoint, load_state_dict_strict
from crossdistill.errors import InputError
from crossdistill.models import create_model


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint file of ``path``: itself, or ``RUN/checkpoints/best.safetensors``."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise InputError(path, "run folder holds no checkpoint (checkpoints/best.safetensors)")
    if not path.exists():
        raise InputError(path, "checkpoint does not exist")
    return path


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Build the network a checkpoint describes and load its weights; returns ``(model, meta)``.

    ``meta["model"]`` holds ``name``, ``width``, ``in_channels`` and ``num_classes``.
    """
    file = checkpoint_path(path)
    ckpt = load_checkpoint(file)
    spec = ckpt.meta.get("model")
    if not isinstance(spec, dict) or "name" not in spec:
        raise InputError(file, "checkpoint does not say which network it holds (meta.model)")
    model = create_model(
        spec["name"],
        in_channels=int(spec["in_channels"]),
        num_classes=int(spec["num_classes"]),
        width=float(spec["width"]),
    )
    load_state_dict_strict(model, ckpt.model, file)
    return model.to(device).eval(), ckpt.meta
