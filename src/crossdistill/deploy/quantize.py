"""Statically quantised int8 ONNX students, calibrated on cached slices and checked by Dice.

``export_int8`` turns a trained network into an ONNX graph whose convolutions, additions and
other quantisable operators run in 8-bit integers (docs/design.md §10):

1. the float32 graph of :func:`~crossdistill.deploy.export.write_onnx`;
2. ONNX Runtime's pre-processing (shape inference, graph optimisation) and
   ``quantize_static`` in the QDQ format: uint8 activations whose ranges are read from the
   calibration slices (``activation_range``: ``minmax``, the extremes seen, by default;
   ``percentile``, the 0.01th to 99.99th percentile of each tensor's values, so that a few
   extreme values do not coarsen the step for all the others — over 17 students neither lost
   detectably less Dice on validation, BENCHMARKS.md), int8 weights with one scale per output
   channel
   (``per_channel``); ``reduce_range`` keeps the weights in 7 bits, so the uint8×int8 dot
   products of CPUs without VNNI (AVX2's ``vpmaddubsw``) cannot saturate and the graph gives
   the same results on every x86 CPU;
3. the **Dice check**: the float32 and the int8 graph, both in ONNX Runtime, segment the
   validation cases of the calibration sites (argmax, largest 3-D component, as in
   evaluation); with ``drop = mean Dice(float32) − mean Dice(int8)`` over those cases, the
   file is written only if ``drop ≤ max_drop`` (default 0.005), or with ``force``.

The calibration slices come from the **training** split of the calibration sites (by default
the sites the network was trained on, from its checkpoint's configuration), so the Dice
check's validation cases were seen neither by training nor by calibration. The graph's input
and output stay float32; its metadata says ``precision: int8`` and records the calibration and
the measured Dice (:class:`~crossdistill.deploy.metadata.DeploymentMetadata`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.config import RunConfig
from crossdistill.data.cache import Cache
from crossdistill.data.dataset import CachedVolume
from crossdistill.data.preprocess import stack_neighbours
from crossdistill.deploy.engines import Engine
from crossdistill.deploy.export import load_for_export, save_onnx_graph, write_onnx
from crossdistill.deploy.metadata import INPUT_NAME, DeploymentMetadata
from crossdistill.deploy.runtime import load_onnx
from crossdistill.engine.checkpoint import load_checkpoint
from crossdistill.engine.loading import checkpoint_path
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.eval.evaluate import evaluate_model
from crossdistill.eval.inference import network_batches
from crossdistill.eval.postprocess import largest_component
from crossdistill.run_inputs import run_sites

QUANTIZATIONS = ("int8",)
#: How each activation's range is read from the calibration slices (module doc, step 2).
ACTIVATION_RANGES = ("minmax", "percentile")
DEFAULT_ACTIVATION_RANGE = "minmax"
PERCENTILE = 99.99
DEFAULT_MAX_DROP = 0.005
DEFAULT_SLICES = 64
CALIBRATION_BATCH = 8


@dataclass(frozen=True)
class DiceCheck:
    """Mean 3-D Dice of the float32 and the int8 graph on the same cases; ``drop`` is
    float32 minus int8 (positive when quantisation loses Dice)."""

    split: str
    sites: list[str]
    cases: int
    float32: float
    int8: float
    max_drop: float

    @property
    def drop(self) -> float:
        return self.float32 - self.int8

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "sites": self.sites,
            "cases": self.cases,
            "dice_float32": round(self.float32, 6),
            "dice_int8": round(self.int8, 6),
            "drop": round(self.drop, 6),
            "max_drop": self.max_drop,
        }

    def sentence(self) -> str:
        return (
            f"Dice on {self.cases} {self.split} case(s) of {', '.join(self.sites)}: float32 "
            f"{self.float32:.4f}, int8 {self.int8:.4f} (drop {self.drop:+.4f}, "
            f"limit {self.max_drop:g})"
        )


@dataclass(frozen=True)
class Int8Export:
    """What :func:`export_int8` wrote: the file, its Dice check, and whether it was forced."""

    path: Path
    check: DiceCheck
    forced: bool


def calibration_slices(
    cache: Cache, sites: list[str], channels: int, count: int = DEFAULT_SLICES
) -> np.ndarray:
    """``count`` network inputs ``(count, channels, size, size)`` float32 from the training
    split of ``sites``: evenly spaced over all their training slices in cache order (so every
    case and every depth is represented, and the draw is the same on every call)."""
    if count < 1:
        raise CrossDistillError(f"--calibration-slices must be at least 1, got {count}")
    cases = cache.cases(sites, "train")
    positions = [(case, z) for case in cases for z in range(case.num_slices)]
    if not positions:
        raise InputError(
            cache.root, f"has no training slices of {', '.join(sites)} to calibrate with"
        )
    picks = np.unique(np.linspace(0, len(positions) - 1, min(count, len(positions))).round())
    out = []
    for index in picks.astype(int):
        case, z = positions[index]
        image = np.asarray(case.image(), dtype=np.float32)
        out.append(stack_neighbours(image, z, channels))
    return np.stack(out).astype(np.float32)


def _calibration_reader(slices: np.ndarray):
    """An ONNX Runtime ``CalibrationDataReader`` feeding ``slices`` in small batches."""
    from onnxruntime.quantization import CalibrationDataReader

    class SliceReader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(
                slices[i : i + CALIBRATION_BATCH] for i in range(0, len(slices), CALIBRATION_BATCH)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch)}

    return SliceReader()


def _check_activation_range(value: str) -> None:
    if value not in ACTIVATION_RANGES:
        raise CrossDistillError(
            f"--activation-range: expected {' or '.join(ACTIVATION_RANGES)}, got {value!r}"
        )


def quantize_onnx(
    float_file: str | Path,
    out: str | Path,
    slices: np.ndarray,
    meta: DeploymentMetadata,
    reduce_range: bool = True,
    per_channel: bool = True,
    activation_range: str = DEFAULT_ACTIVATION_RANGE,
) -> Path:
    """Quantise the float32 ONNX graph ``float_file`` (module doc, step 2) with ``slices`` as
    calibration data and write it to ``out`` with ``meta`` (its precision set to int8)."""
    _check_activation_range(activation_range)
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    percentile = activation_range == "percentile"
    method = CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax
    with tempfile.TemporaryDirectory(prefix="crossdistill-int8-") as tmp, _quiet_onnxruntime():
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "int8.onnx"
        quant_pre_process(str(float_file), str(prepared), skip_symbolic_shape=False)
        quantize_static(
            str(prepared),
            str(quantized),
            _calibration_reader(slices),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            extra_options={"CalibPercentile": PERCENTILE} if percentile else {},
        )
        save_onnx_graph(onnx.load(str(quantized)), replace(meta, precision="int8"), out)
    return out


@contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """Silence the notes that quantisation writes for every graph (ONNX Runtime's C++ logger
    on unused initialisers, Python ``logging`` on tensors it leaves in float, the percentile
    calibrator's ``print`` calls)."""
    import onnxruntime as ort

    logger = logging.getLogger()
    level = logger.level
    ort.set_default_logger_severity(3)
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
        ort.set_default_logger_severity(2)


def engine_segmenter(engine: Engine, batch_size: int = 16) -> Callable[[CachedVolume], np.ndarray]:
    """A cached volume → its binary prediction by ``engine`` (argmax, largest 3-D component),
    the segmentation that evaluation applies to a PyTorch network."""

    def segment(volume: CachedVolume) -> np.ndarray:
        channels = engine.meta.channels
        labels = [
            engine.logits(batch.numpy()).argmax(axis=1)
            for batch in network_batches(volume.image, channels, batch_size)
        ]
        return largest_component((np.concatenate(labels) > 0).astype(np.uint8))

    return segment


def dice_check(
    float_engine: Engine,
    int8_engine: Engine,
    cache: Cache,
    sites: list[str],
    max_drop: float = DEFAULT_MAX_DROP,
    split: str = "val",
) -> DiceCheck:
    """Mean 3-D Dice of both engines over the ``split`` cases of ``sites`` (module doc, step 3)."""
    if not cache.cases(sites, split):
        raise InputError(
            cache.root,
            f"has no {split} cases of {', '.join(sites)} to check the int8 model's Dice on "
            "(use --force to write it unchecked)",
        )
    means = []
    for engine in (float_engine, int8_engine):
        segment = engine_segmenter(engine)
        result = evaluate_model(None, cache, sites, split, segment=segment, metrics=("dice",))
        means.append(result["overall"]["dice"]["mean"])
    cases = result["overall"]["dice"]["n"]
    return DiceCheck(split, list(sites), int(cases), means[0], means[1], max_drop)


def training_sites(checkpoint: str | Path, cache: Cache) -> list[str]:
    """The sites of ``cache`` that the run which wrote ``checkpoint`` trained on (its
    protocol and target, or its ``train.sites``), resolved against ``cache``'s sites.

    Raises:
        InputError: the checkpoint carries no run configuration, or its sites are not in
            ``cache`` (the caller then asks for the sites explicitly).
    """
    file = checkpoint_path(checkpoint)
    raw = load_checkpoint(file).meta.get("config")
    try:
        config = RunConfig.model_validate(raw)
    except (ValueError, TypeError):
        raise InputError(
            file, "carries no run configuration to take its training sites from"
        ) from None
    try:
        return run_sites(config, cache)[0]
    except CrossDistillError as err:
        raise InputError(cache.root, f"the network's training sites: {err}") from None


def export_int8(
    checkpoint: str | Path,
    out: str | Path,
    calibration: str | Path,
    sites: list[str] | None = None,
    slices: int = DEFAULT_SLICES,
    max_drop: float = DEFAULT_MAX_DROP,
    force: bool = False,
    reduce_range: bool = True,
    activation_range: str = DEFAULT_ACTIVATION_RANGE,
) -> Int8Export:
    """Export ``checkpoint`` as an int8 ONNX graph at ``out`` (module doc).

    Args:
        calibration: a prepared cache holding the calibration sites at the network's size.
        sites: calibration sites (default: the sites the network was trained on).
        slices: calibration slices drawn from those sites' training cases.
        max_drop: the largest Dice loss (float32 − int8) on their validation cases that is
            accepted.
        force: write the file even if the check fails (the result says so).
        reduce_range: 7-bit weights (module doc).
        activation_range: ``percentile`` or ``minmax`` (module doc).

    Raises:
        CrossDistillError: the Dice drop exceeds ``max_drop`` and ``force`` is not set
            (nothing is written), or the calibration cache does not fit the network.
    """
    _check_activation_range(activation_range)
    if max_drop < 0:
        raise CrossDistillError(f"--max-drop must be ≥ 0, got {max_drop}")
    import onnx

    module, meta = load_for_export(checkpoint)
    cache = Cache(calibration)
    if cache.size != meta.size:
        raise InputError(
            cache.root, f"holds {cache.size}² slices; the network takes {meta.size}² inputs"
        )
    if sites:
        names = cache.resolve_sites(sites)
    else:
        try:
            names = training_sites(checkpoint, cache)
        except CrossDistillError as err:
            raise CrossDistillError(f"{err} (name the calibration sites)") from None
    data = calibration_slices(cache, names, meta.channels, slices)
    with tempfile.TemporaryDirectory(prefix="crossdistill-int8-") as tmp:
        float_file = write_onnx(module, meta, Path(tmp) / "float32.onnx")
        int8_file = quantize_onnx(
            float_file,
            Path(tmp) / "int8.onnx",
            data,
            meta,
            reduce_range,
            activation_range=activation_range,
        )
        engines = [Engine(*load_onnx(f), "onnxruntime") for f in (float_file, int8_file)]
        check = dice_check(*engines, cache, names, max_drop)
        if not check.passed and not force:
            other = next(r for r in ACTIVATION_RANGES if r != activation_range)
            raise CrossDistillError(
                f"int8 model not written: it loses too much Dice. {check.sentence()}; "
                f"--activation-range {other} may lose less, --force writes it anyway"
            )
        extra = dict(meta.extra)
        extra["quantization"] = {
            "scheme": "static QDQ: uint8 activations, int8 per-channel weights",
            "activation_range": activation_range
            + (f" {100 - PERCENTILE:g}-{PERCENTILE:g}" if activation_range == "percentile" else ""),
            "reduce_range": reduce_range,
            "calibration": {"cache": cache.root.name, "sites": names, "slices": len(data)},
            "dice_check": {**check.as_dict(), "forced": not check.passed},
        }
        int8_meta = replace(meta, extra=extra, precision="int8")
        path = save_onnx_graph(onnx.load(str(int8_file)), int8_meta, out)
    return Int8Export(path, check, forced=not check.passed)
