"""What an exported network must carry to be used without this package's training code.

Both export formats store one JSON object (``DeploymentMetadata.to_json``): ONNX files in
their ``metadata_props`` under the key ``crossdistill``, TorchScript archives as the extra
file ``crossdistill.json``. It names the network and the preprocessing its input needs::

    {"format": "crossdistill-deploy", "version": 1,
     "model": {"name": "enet", "width": 1.0, "in_channels": 1, "num_classes": 2},
     "preprocess": {"size": 384, "channels": 1, "orientation": "RAS-display",
                    "normalisation": "clip-p0.5-p99.5-zscore-per-volume"},
     "input": "image", "output": "logits", "precision": "float32"}

The graph's input ``image`` is ``(N, channels, size, size)`` float32 with a dynamic batch;
its output ``logits`` is ``(N, num_classes, size, size)``. ``channels == 3`` means 2.5D
input: slices ``z−1, z, z+1`` (edge slices repeated), see
:func:`crossdistill.data.preprocess.stack_neighbours`. ``precision`` is the arithmetic of the
graph's weights and activations: ``float32``, or ``int8`` for a statically quantised ONNX
graph (:mod:`crossdistill.deploy.quantize`; its input and output stay float32, and ``extra``
records the calibration and the measured Dice drop). Metadata without the key is float32.

``features`` (present only when exported with ``--features``) maps a tap of the network
(:mod:`crossdistill.models.taps`, e.g. ``high``) to its channel count; the graph then has one
more output per tap, ``feature_<tap>`` ``(N, channels, h, w)``, after ``logits``. A teacher
shared as such a file serves every distillation term that reads only those taps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crossdistill.data.preprocess import CLIP_PERCENTILES
from crossdistill.errors import CrossDistillError

FORMAT = "crossdistill-deploy"
VERSION = 1
METADATA_KEY = "crossdistill"  # ONNX metadata_props key
ONNX_SUFFIX = ".onnx"
TORCHSCRIPT_FILE = "crossdistill.json"  # TorchScript extra file
ORIENTATION = "RAS-display"  # rows anterior→posterior, columns right→left, slices along z
NORMALISATION = f"clip-p{CLIP_PERCENTILES[0]:g}-p{CLIP_PERCENTILES[1]:g}-zscore-per-volume"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
PRECISIONS = ("float32", "int8")
FEATURE_OUTPUT_PREFIX = "feature_"


def feature_output_name(tap: str) -> str:
    """The ONNX output name of the exported feature ``tap``."""
    return f"{FEATURE_OUTPUT_PREFIX}{tap}"


@dataclass(frozen=True)
class DeploymentMetadata:
    """The network spec and the preprocessing contract of an exported graph."""

    model: dict[str, Any]
    size: int
    channels: int
    orientation: str = ORIENTATION
    normalisation: str = NORMALISATION
    extra: dict[str, Any] = field(default_factory=dict)
    precision: str = "float32"
    features: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_checkpoint_meta(cls, meta: dict[str, Any]) -> DeploymentMetadata:
        """From a training checkpoint's metadata (``meta["model"]`` and ``meta["data"]``)."""
        model = meta.get("model")
        data = meta.get("data")
        if not isinstance(model, dict) or not isinstance(data, dict):
            raise CrossDistillError("checkpoint metadata lacks the model spec or data geometry")
        spec = {
            "name": str(model["name"]),
            "width": float(model["width"]),
            "in_channels": int(model["in_channels"]),
            "num_classes": int(model["num_classes"]),
        }
        return cls(model=spec, size=int(data["size"]), channels=int(data["channels"]))

    def to_json(self) -> str:
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model,
            "preprocess": {
                "size": self.size,
                "channels": self.channels,
                "orientation": self.orientation,
                "normalisation": self.normalisation,
            },
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "precision": self.precision,
        }
        if self.features:
            payload["features"] = self.features
        if self.extra:
            payload["extra"] = self.extra
        return json.dumps(payload, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "exported model") -> DeploymentMetadata:
        """Parse and check :meth:`to_json` output; a wrong or missing field names ``source``."""
        try:
            payload = json.loads(text)
            if payload.get("format") != FORMAT:
                raise ValueError("not crossdistill deployment metadata")
            if int(payload.get("version", 0)) > VERSION:
                raise ValueError(f"metadata version {payload['version']} is newer than {VERSION}")
            pre = payload["preprocess"]
            meta = cls(
                model=dict(payload["model"]),
                size=int(pre["size"]),
                channels=int(pre["channels"]),
                orientation=str(pre["orientation"]),
                normalisation=str(pre["normalisation"]),
                extra=dict(payload.get("extra", {})),
                precision=str(payload.get("precision", "float32")),
                features={str(k): int(v) for k, v in dict(payload.get("features", {})).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CrossDistillError(f"{source}: bad crossdistill metadata ({err})") from None
        if meta.orientation != ORIENTATION or meta.normalisation != NORMALISATION:
            raise CrossDistillError(
                f"{source}: preprocessing {meta.orientation}/{meta.normalisation} is not the one "
                "this version implements"
            )
        if meta.precision not in PRECISIONS:
            raise CrossDistillError(
                f"{source}: precision '{meta.precision}' is not one of {', '.join(PRECISIONS)}"
            )
        if meta.channels not in (1, 3) or meta.size < 8:
            raise CrossDistillError(f"{source}: bad preprocessing geometry in metadata")
        return meta

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_onnx_file(path: str | Path) -> bool:
    """Whether ``path`` names an ONNX file (by its suffix, in any case)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX
