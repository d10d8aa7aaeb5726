"""A teacher shared as an ONNX file: frozen, run by ONNX Runtime, used like any teacher.

In the paper's setting a site shares a model, not its code or its weights in this package's
format. ``distill.teacher: model.onnx`` (a file written by ``crossdistill export``) makes
:class:`OnnxTeacher` the run's teacher: its forward feeds the batch to ONNX Runtime on the
CPU and returns a :class:`~crossdistill.models.output.SegOutput` on the batch's device,
float32, whatever autocast is active (docs/design.md §10).

It declares ``num_classes`` and ``feature_channels`` like the zoo's networks
(:mod:`crossdistill.models.taps`): the logits always, and the feature taps the file exports
(``crossdistill export --features high``). A term that reads a tap the file lacks (KMM on
``high`` from a logits-only file) is therefore refused when the distiller is built, before
training, with the usual one-line configuration error. It has no parameters: nothing to
freeze, move or checkpoint; the teacher-output cache keys it by the file's SHA-256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossdistill.deploy.metadata import INPUT_NAME, OUTPUT_NAME, feature_output_name
from crossdistill.deploy.runtime import onnx_session, session_metadata
from crossdistill.errors import InputError
from crossdistill.models.output import SegOutput


class OnnxTeacher(nn.Module):
    """The exported network ``path`` as a frozen teacher (module doc)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self._session = onnx_session(self.path, threads)
        self.meta = session_metadata(self._session, self.path)
        self.num_classes = int(self.meta.model["num_classes"])
        self.in_channels = int(self.meta.model["in_channels"])
        self.feature_channels = dict(self.meta.features)
        self._outputs = [OUTPUT_NAME, *(feature_output_name(t) for t in self.feature_channels)]

    def spec(self) -> dict:
        """The ``meta["model"]`` a checkpoint would carry (name, width, channels, classes)."""
        return dict(self.meta.model)

    def forward(self, images: torch.Tensor) -> SegOutput:
        size = self.meta.size
        if images.dim() != 4 or tuple(images.shape[1:]) != (self.in_channels, size, size):
            raise InputError(
                self.path,
                f"the teacher takes ({self.in_channels}, {size}, {size}) slices, "
                f"got {tuple(images.shape[1:])}",
            )
        batch = np.ascontiguousarray(images.detach().float().cpu().numpy())
        arrays = self._session.run(self._outputs, {INPUT_NAME: batch})
        tensors = [torch.from_numpy(a).to(images.device) for a in arrays]
        return SegOutput(tensors[0], dict(zip(self.feature_channels, tensors[1:], strict=True)))

    def extra_repr(self) -> str:
        return f"{self.path.name}, taps: logits, {', '.join(self.feature_channels) or '-'}"
