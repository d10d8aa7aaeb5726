"""Export a trained network to ONNX or TorchScript, carrying its deployment metadata.

The exported graph maps ``image`` ``(N, C, size, size)`` float32 (dynamic ``N``) to ``logits``
``(N, num_classes, size, size)``; the networks' :class:`~crossdistill.models.output.SegOutput`
is reduced to its logits by :class:`LogitsOnly`. The network is exported in eval mode, so
batch norm uses its running statistics and is folded into the preceding convolution, and
constant sub-graphs are folded; ONNX graphs then get the value-keeping rewrites of
:mod:`crossdistill.deploy.onnx_rewrite` (PReLU, max-pool indices), which ONNX Runtime runs
faster. The metadata contract is :mod:`crossdistill.deploy.metadata`.

ONNX uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): it
needs no extra package and exports all five networks; torch warns that it is deprecated,
which is silenced here.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from crossdistill.atomic import replaced_atomically
from crossdistill.deploy.metadata import (
    INPUT_NAME,
    METADATA_KEY,
    ONNX_SUFFIX,
    OUTPUT_NAME,
    TORCHSCRIPT_FILE,
    DeploymentMetadata,
    feature_output_name,
)
from crossdistill.deploy.onnx_rewrite import optimise_for_onnxruntime
from crossdistill.engine.loading import checkpoint_path, load_model
from crossdistill.errors import CrossDistillError, InputError

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17


class LogitsOnly(nn.Module):
    """A network whose forward returns only ``SegOutput.logits`` (what a deployed graph needs)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.network(image).logits


class LogitsAndFeatures(nn.Module):
    """A network whose forward returns ``(logits, *features[tap] for tap in taps)``: an
    exported teacher that also serves feature terms (KMM)."""

    def __init__(self, network: nn.Module, taps: list[str]) -> None:
        super().__init__()
        self.network = network
        self.taps = list(taps)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network(image)
        return (out.logits, *(out.features[tap] for tap in self.taps))


def with_features(
    module: LogitsOnly, meta: DeploymentMetadata, taps: list[str]
) -> tuple[nn.Module, DeploymentMetadata]:
    """``module``'s network exporting the feature ``taps`` too, and the metadata declaring
    them (channels from the network's ``feature_channels``)."""
    declared = dict(getattr(module.network, "feature_channels", None) or {})
    unknown = [t for t in taps if t not in declared]
    if unknown:
        known = ", ".join(declared) or "none"
        raise CrossDistillError(f"--features: the network has no feature '{unknown[0]}' ({known})")
    features = {tap: int(declared[tap]) for tap in dict.fromkeys(taps)}
    wrapped = LogitsAndFeatures(module.network, list(features)).eval()
    return wrapped, replace(meta, features=features)


def load_for_export(checkpoint: str | Path) -> tuple[nn.Module, DeploymentMetadata]:
    """The eval-mode network of a run folder or checkpoint, wrapped in :class:`LogitsOnly`,
    and its deployment metadata (model spec and the training data's size and channels)."""
    model, meta = load_model(checkpoint)
    try:
        deploy_meta = DeploymentMetadata.from_checkpoint_meta(meta)
    except (CrossDistillError, KeyError, TypeError, ValueError) as err:
        raise InputError(checkpoint_path(checkpoint), f"cannot export: {err}") from None
    return LogitsOnly(model).eval(), deploy_meta


def example_input(meta: DeploymentMetadata, batch: int = 2) -> torch.Tensor:
    """A random input of the graph's shape (batch 2, so no size-1 dimension is specialised)."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, meta.channels, meta.size, meta.size, generator=generator)


def _file_to_write(out: str | Path, suffix: str) -> Path:
    """``out`` as a path, its folder made; a folder given instead of a file is refused."""
    out = Path(out)
    if out.is_dir():
        raise InputError(out, f"is a folder; give the {suffix} file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def write_onnx(
    module: nn.Module, meta: DeploymentMetadata, out: str | Path, opset: int | None = None
) -> Path:
    """Export ``module`` (image → logits, then one map per ``meta.features`` tap) to ONNX at
    ``out`` with ``meta`` in metadata_props."""
    import onnx

    _file_to_write(out, ONNX_SUFFIX)
    outputs = [OUTPUT_NAME, *(feature_output_name(tap) for tap in meta.features)]
    with tempfile.TemporaryDirectory(prefix="crossdistill-onnx-") as tmp:
        traced = Path(tmp) / "traced.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation, Slice folding notes
            torch.onnx.export(
                module.eval(),
                (example_input(meta),),
                str(traced),
                input_names=[INPUT_NAME],
                output_names=outputs,
                dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]},
                opset_version=opset or DEFAULT_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        graph = onnx.load(str(traced))
    optimise_for_onnxruntime(graph)
    return save_onnx_graph(graph, meta, out)


def save_onnx_graph(graph, meta: DeploymentMetadata, out: str | Path) -> Path:
    """Check the ONNX ``graph`` (an ``onnx.ModelProto``) and write it to ``out`` atomically,
    with ``meta`` as its crossdistill metadata (replacing any it had)."""
    import onnx

    out = _file_to_write(out, ONNX_SUFFIX)
    kept = [entry for entry in graph.metadata_props if entry.key != METADATA_KEY]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
    graph.producer_name = "crossdistill"
    onnx.checker.check_model(graph, full_check=True)
    with replaced_atomically(out) as tmp:
        onnx.save(graph, str(tmp))
    return out


def write_torchscript(module: nn.Module, meta: DeploymentMetadata, out: str | Path) -> Path:
    """Trace ``module`` (image → logits) to a TorchScript archive at ``out`` with ``meta`` as
    the extra file ``crossdistill.json``."""
    out = _file_to_write(out, ".pt")
    with replaced_atomically(out) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit deprecation notes
        traced = torch.jit.trace(module.eval(), example_input(meta), check_trace=False)
        traced = torch.jit.freeze(traced)
        torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_FILE: meta.to_json()})
    return out


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    opset: int | None = None,
    features: list[str] | None = None,
) -> Path:
    """Export a run folder or checkpoint to an ONNX file; returns its path. ``features``
    (taps such as ``high``) become extra outputs, so the file can serve as a teacher for
    feature terms."""
    module, meta = load_for_export(checkpoint)
    if features:
        module, meta = with_features(module, meta, features)
    return write_onnx(module, meta, out, opset)


def export_torchscript(checkpoint: str | Path, out: str | Path) -> Path:
    """Export a run folder or checkpoint to a TorchScript archive; returns its path."""
    module, meta = load_for_export(checkpoint)
    return write_torchscript(module, meta, out)


def export_model(
    checkpoint: str | Path,
    out: str | Path,
    fmt: str = "onnx",
    opset: int | None = None,
    features: list[str] | None = None,
) -> Path:
    """``export_onnx`` or ``export_torchscript`` by ``fmt`` (``onnx`` or ``torchscript``)."""
    if fmt == "onnx":
        return export_onnx(checkpoint, out, opset, features)
    if fmt == "torchscript":
        if opset is not None or features:
            raise CrossDistillError("--opset and --features apply to ONNX export only")
        return export_torchscript(checkpoint, out)
    raise CrossDistillError(f"unknown export format '{fmt}' (known: {', '.join(FORMATS)})")
