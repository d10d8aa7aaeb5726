"""``predict``: segment a scan, or a folder of scans, with a trained or exported network.

INPUT is a NIfTI, MHD/NRRD file or DICOM series folder (OUTPUT is then a ``.nii.gz``/``.nii``
file, or a folder, without suffix, to write ``<input stem>.nii.gz`` into), or a folder of those
(OUTPUT is then a folder of ``<input stem>.nii.gz``; other files are ignored, every
sub-folder is read as a DICOM series). ``probabilities=True`` also writes the foreground
probability as float32 ``<stem>_prob.nii.gz``. Each mask is uint8 on the input's exact grid
(see :mod:`crossdistill.deploy.segment`). ``channel`` segments one channel of 4-D NIfTI inputs
whose 4th axis holds channels (the Medical Segmentation Decathlon stores T2 and ADC so); the
mask is on the image's 3-D grid.

An empty mask, or the mask of a scan without contrast, is still written, and its
:attr:`CaseResult.warning` says so: rarely what the user wants, yet a valid answer. A bad
single input raises :class:`InputError`. In a folder, a bad volume is recorded in
:attr:`PredictReport.failed` and the others are still done. Nothing is ever written inside
an input folder, and no input file is ever overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from crossdistill.data.io import (
    NIFTI_SUFFIXES,
    VOLUME_SUFFIXES,
    Volume,
    is_dicom_folder,
    quiet_nibabel,
    read_volume,
    volume_suffix,
)
from crossdistill.deploy.engines import Engine, open_engine
from crossdistill.deploy.segment import Segmentation, save_on_source_grid, segment_volume
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.progress import progress_bar

PROB_SUFFIX = "_prob"


@dataclass
class CaseResult:
    """One segmented input: where its mask (and probability map) went, its volume, and what
    the user should know about it (``warning``, ``None`` when nothing)."""

    input: Path
    mask: Path
    probability: Path | None
    foreground_ml: float
    warning: str | None = None


@dataclass
class PredictReport:
    """What :func:`predict` did: the written cases, and ``(input, reason)`` of each failure."""

    engine: str
    written: list[CaseResult] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def input_stem(path: Path) -> str:
    """``case01.nii.gz`` → ``case01``; a DICOM folder keeps its name."""
    suffix = volume_suffix(path) if path.is_file() else None
    return path.name[: -len(suffix)] if suffix else path.name


def probability_path(mask_path: Path) -> Path:
    """``out/case01.nii.gz`` → ``out/case01_prob.nii.gz``."""
    suffix = volume_suffix(mask_path) or ""
    return mask_path.with_name(
        mask_path.name[: len(mask_path.name) - len(suffix)] + PROB_SUFFIX + suffix
    )


def is_single_volume(path: Path) -> bool:
    """A file, or a folder of DICOM files (one series), rather than a folder of inputs."""
    return path.is_file() or is_dicom_folder(path)


def folder_inputs(folder: Path) -> tuple[list[Path], list[Path]]:
    """``(inputs, ignored)`` of a folder of inputs: volume files and sub-folders (DICOM series)
    are inputs; other files (``.raw`` companions, notes) are ignored; hidden entries skipped."""
    inputs, ignored = [], []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        (inputs if child.is_dir() or volume_suffix(child) else ignored).append(child)
    if not inputs:
        kinds = ", ".join(VOLUME_SUFFIXES)
        raise InputError(folder, f"holds no volume files ({kinds}) and no DICOM series")
    return inputs, ignored


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _refuse_writing_into(target: Path, source: Path) -> None:
    """Never overwrite the input file, nor write inside the input folder."""
    if source.is_dir() and _inside(target, source):
        raise InputError(target, f"is inside the input folder {source}; write elsewhere")
    if source.is_file() and target.resolve() == source.resolve():
        raise InputError(target, "is the input file; write the mask elsewhere")


def _single_output(source: Path, output: Path) -> Path:
    """``output`` itself when it names a NIfTI file, else ``output/<stem>.nii.gz``."""
    if any(output.name.lower().endswith(s) for s in NIFTI_SUFFIXES) and not output.is_dir():
        return output
    if output.is_dir() or (output.suffix == "" and not output.exists()):
        return output / f"{input_stem(source)}.nii.gz"
    raise InputError(output, "give the .nii.gz (or .nii) file to write, or a folder")


def predict(
    checkpoint: str | Path | Engine,
    source: str | Path,
    output: str | Path,
    engine: str | None = None,
    probabilities: bool = False,
    batch_size: int = 16,
    progress: bool = True,
    channel: int | None = None,
) -> PredictReport:
    """Segment ``source`` (a scan or a folder of scans) into ``output``.

    Args:
        checkpoint: run folder, checkpoint, exported ``.onnx``/``.pt`` file, or an
            :class:`~crossdistill.deploy.engines.Engine`.
        engine: ``torch`` or ``onnxruntime`` (default by the file: ``.onnx`` → onnxruntime).
        probabilities: also write ``<stem>_prob.nii.gz`` (float32 foreground probability).
        batch_size: slices per network call.
        channel: the channel to segment of 4-D NIfTI inputs (module docstring); ``None``:
            every input must be 3-D.
    """
    source, output = Path(source), Path(output)
    if batch_size < 1:
        raise CrossDistillError(f"--batch-size must be at least 1, got {batch_size}")
    if channel is not None and channel < 0:
        raise CrossDistillError(f"--channel must be 0 or more, got {channel}")
    if not source.exists():
        raise InputError(source, "does not exist")
    single = is_single_volume(source)
    if single:
        jobs = [(source, _single_output(source, output))]
        ignored: list[Path] = []
        for target in _targets(jobs[0][1], probabilities):
            _refuse_writing_into(target, source)
    else:
        _refuse_writing_into(output, source)
        named_file = any(output.name.lower().endswith(s) for s in NIFTI_SUFFIXES)
        if (output.exists() and not output.is_dir()) or (named_file and not output.exists()):
            raise InputError(output, "a folder of inputs needs an output folder, not a file")
        inputs, ignored = folder_inputs(source)
        jobs = [(path, output / f"{input_stem(path)}.nii.gz") for path in inputs]
    runner = checkpoint if isinstance(checkpoint, Engine) else open_engine(checkpoint, engine)
    report = PredictReport(engine=runner.name, ignored=ignored)
    claimed: dict[Path, Path] = {}
    with progress_bar(len(jobs), "predict", enabled=progress and not single) as advance:
        for path, mask_path in jobs:
            try:
                report.written.append(
                    _predict_one(
                        runner, path, mask_path, probabilities, batch_size, claimed, channel
                    )
                )
            except CrossDistillError as err:
                if single:
                    raise
                report.failed.append((path, _reason(err, path)))
            advance(status=path.name)
    return report


def _predict_one(
    engine: Engine,
    path: Path,
    mask_path: Path,
    probabilities: bool,
    batch_size: int,
    claimed: dict[Path, Path],
    channel: int | None = None,
) -> CaseResult:
    targets = _targets(mask_path, probabilities)
    for target in targets:
        if target in claimed:
            raise InputError(path, f"its output {target.name} is also that of {claimed[target]}")
    volume = _read_input(path, channel)
    result = segment_volume(engine, volume, batch_size)
    claimed.update(dict.fromkeys(targets, path))
    save_on_source_grid(result.labels, volume, mask_path)
    prob_path = targets[1] if probabilities else None
    if prob_path is not None:
        save_on_source_grid(result.foreground, volume, prob_path)
    return CaseResult(
        path,
        mask_path,
        prob_path,
        result.foreground_ml(volume),
        _mask_warning(result, volume),
    )


def _mask_warning(result: Segmentation, volume: Volume) -> str | None:
    """What the user should check about this case's mask, or ``None``: a scan without
    contrast (its mask says nothing about it), or an empty mask."""
    if np.ptp(volume.array) == 0:
        return "every voxel of the scan has the same value (no contrast): its mask is meaningless"
    if not result.labels.any():
        return "the mask is empty: nothing was segmented (is it a prostate T2 scan?)"
    return None


def _read_input(path: Path, channel: int | None) -> Volume:
    """:func:`read_volume`; a 4-D NIfTI read without ``channel`` says how to choose one."""
    try:
        return read_volume(path, channel)
    except InputError as err:
        if channel is None and err.reason.startswith("expected a 3-D") and _is_4d_nifti(path):
            raise InputError(
                path,
                f"{err.reason}; if its 4th axis holds channels (T2, ADC, ...), choose "
                "the one to segment with --channel N (0 = the first)",
            ) from None
        raise


def _is_4d_nifti(path: Path) -> bool:
    if volume_suffix(path) not in NIFTI_SUFFIXES:
        return False
    try:
        with quiet_nibabel():
            return len(nib.load(str(path)).shape) == 4
    except Exception:  # the error being reported already says what is wrong with the file
        return False


def _targets(mask_path: Path, probabilities: bool) -> list[Path]:
    return [mask_path, probability_path(mask_path)] if probabilities else [mask_path]


def _reason(err: CrossDistillError, path: Path) -> str:
    """The error's reason without a leading path (the report line names the input)."""
    if isinstance(err, InputError) and err.path == path:
        return err.reason
    return str(err)
