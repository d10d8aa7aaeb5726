"""Inference engines: whatever maps a ``(B, C, size, size)`` float32 batch to logits.

An :class:`Engine` pairs that function with the preprocessing contract of the network
(:class:`~crossdistill.deploy.metadata.DeploymentMetadata`: size, channels), so the caller
never needs to know whether PyTorch or ONNX Runtime runs the graph:

- ``torch``: a training checkpoint or run folder, run eagerly (or any ``nn.Module``
  returning ``SegOutput``, see :func:`torch_engine`);
- ``onnxruntime``: an exported ``.onnx`` file (its metadata carries the preprocessing), or a
  checkpoint exported on the fly to a temporary ONNX file.

An exported TorchScript archive (``.pt``) runs with the ``torch`` engine.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossdistill.deploy.metadata import DeploymentMetadata, is_onnx_file
from crossdistill.errors import CrossDistillError, InputError

ENGINES = ("torch", "onnxruntime")
TORCHSCRIPT_SUFFIXES = (".pt", ".ts")


@dataclass(frozen=True)
class Engine:
    """``run(batch)``: ``(B, channels, size, size)`` float32 → logits ``(B, K, size, size)``."""

    run: Callable[[np.ndarray], np.ndarray]
    meta: DeploymentMetadata
    name: str

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """``run`` with the output's shape checked against the contract (one clear error)."""
        out = np.asarray(self.run(np.ascontiguousarray(batch, dtype=np.float32)))
        size = self.meta.size
        if out.ndim != 4 or out.shape[0] != batch.shape[0] or out.shape[2:] != (size, size):
            raise CrossDistillError(
                f"the {self.name} network returned logits of shape {tuple(out.shape)}, "
                f"expected ({batch.shape[0]}, K, {size}, {size})"
            )
        return out


def torch_engine(model: nn.Module, meta: DeploymentMetadata, device: str = "cpu") -> Engine:
    """An engine running ``model`` in eval mode without gradients; its forward returns a
    ``SegOutput`` (the zoo's networks) or the logits tensor (``LogitsOnly``)."""
    model = model.to(device).eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(torch.from_numpy(batch).to(device))
            logits = out.logits if hasattr(out, "logits") else out
            return logits.float().cpu().numpy()

    return Engine(run, meta, "torch")


def open_engine(source: str | Path, engine: str | None = None, device: str = "cpu") -> Engine:
    """The engine for a run folder, checkpoint, ``.onnx`` file or TorchScript ``.pt`` archive.

    ``engine=None`` picks ``onnxruntime`` for ``.onnx`` files and ``torch`` otherwise;
    ``onnxruntime`` with a checkpoint exports it to a temporary ONNX file first.
    """
    from crossdistill.deploy.runtime import load_onnx, load_torchscript

    source = Path(source)
    is_onnx = is_onnx_file(source)
    engine = (engine or ("onnxruntime" if is_onnx else "torch")).lower()
    if engine not in ENGINES:
        raise CrossDistillError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    if is_onnx:
        if engine != "onnxruntime":
            raise InputError(source, "an ONNX file runs with --engine onnxruntime only")
        run, meta = load_onnx(source)
        return Engine(run, meta, "onnxruntime")
    if source.suffix.lower() in TORCHSCRIPT_SUFFIXES:
        if engine != "torch":
            raise InputError(source, "a TorchScript archive runs with --engine torch only")
        run, meta = load_torchscript(source)
        return Engine(run, meta, "torch")
    if engine == "torch":
        from crossdistill.deploy.export import load_for_export

        module, meta = load_for_export(source)
        return torch_engine(module, meta, device)
    from crossdistill.deploy.export import export_onnx

    with tempfile.TemporaryDirectory(prefix="crossdistill-onnx-") as tmp:
        run, meta = load_onnx(export_onnx(source, Path(tmp) / "model.onnx"))
    return Engine(run, meta, "onnxruntime")
