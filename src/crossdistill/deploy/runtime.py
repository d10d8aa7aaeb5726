"""Run an exported graph: an ONNX file in ONNX Runtime, or a TorchScript archive.

Each loader returns ``(run, metadata)``: ``run`` maps a float32 array ``(N, C, size, size)``
to the logits ``(N, num_classes, size, size)`` as a NumPy array, and ``metadata`` is the
graph's :class:`~crossdistill.deploy.metadata.DeploymentMetadata`. Neither needs this
package's networks or training code.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from crossdistill.deploy.metadata import (
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    TORCHSCRIPT_FILE,
    DeploymentMetadata,
    feature_output_name,
    is_onnx_file,
)
from crossdistill.errors import InputError

LogitsFn = Callable[[np.ndarray], np.ndarray]


def session_options(threads: int | None = None):
    """ONNX Runtime options: every graph optimisation (constant folding, Conv+BN and
    Conv+activation fusion, layout transforms) and ``threads`` intra-op threads (default
    ``torch.get_num_threads()``, so PyTorch and ONNX Runtime are compared on equal terms)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def onnx_session(path: str | Path, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU with :func:`session_options`."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ONNX file does not exist")
    try:
        return ort.InferenceSession(
            str(path), session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises its own untyped errors for bad graphs
        raise InputError(path, f"not a loadable ONNX model ({_short(err)})") from None


def session_metadata(session, path: str | Path) -> DeploymentMetadata:
    """The crossdistill metadata of the ONNX file ``path`` open in ``session``, checked
    against the graph: its input name, and one output per declared feature."""
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise InputError(path, "ONNX model carries no crossdistill metadata (not exported by us)")
    meta = DeploymentMetadata.from_json(props[METADATA_KEY], str(path))
    input_name = session.get_inputs()[0].name
    if input_name != INPUT_NAME:
        raise InputError(path, f"ONNX input is '{input_name}', expected '{INPUT_NAME}'")
    outputs = {o.name for o in session.get_outputs()}
    missing = [t for t in meta.features if feature_output_name(t) not in outputs]
    if OUTPUT_NAME not in outputs or missing:
        lacking = OUTPUT_NAME if OUTPUT_NAME not in outputs else feature_output_name(missing[0])
        raise InputError(path, f"ONNX graph has no output '{lacking}' that its metadata declares")
    return meta


def load_onnx(path: str | Path, threads: int | None = None) -> tuple[LogitsFn, DeploymentMetadata]:
    """An ONNX file exported by :func:`crossdistill.deploy.export.export_onnx`."""
    session = onnx_session(path, threads)
    meta = session_metadata(session, path)

    def run(batch: np.ndarray) -> np.ndarray:
        feed = {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}
        return session.run([OUTPUT_NAME], feed)[0]

    return run, meta


def load_torchscript(path: str | Path) -> tuple[LogitsFn, DeploymentMetadata]:
    """A TorchScript archive exported by :func:`crossdistill.deploy.export.export_torchscript`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "TorchScript file does not exist")
    extra = {TORCHSCRIPT_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as err:  # torch.jit raises RuntimeError or its own types for bad archives
        raise InputError(path, f"not a loadable TorchScript archive ({_short(err)})") from None
    if not extra[TORCHSCRIPT_FILE]:
        raise InputError(path, f"TorchScript archive carries no {TORCHSCRIPT_FILE}")
    meta = DeploymentMetadata.from_json(extra[TORCHSCRIPT_FILE], str(path))
    module.eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            return module(x).numpy()

    return run, meta


def load_exported(path: str | Path) -> tuple[LogitsFn, DeploymentMetadata]:
    """:func:`load_onnx` for ``*.onnx``, else :func:`load_torchscript`."""
    if is_onnx_file(path):
        return load_onnx(path)
    return load_torchscript(path)


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."
