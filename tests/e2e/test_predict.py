"""``predict``: masks land on the input's exact grid and on the right voxels, for NIfTI in any
orientation, MHD and DICOM; folders; the ONNX engine; and one-line errors for bad input.

Most tests use fixed-function engines instead of trained networks, so the expected mask is
known: a threshold network (foreground where the intensity is above the midpoint of box and
background) must give back the bright box on the file's own voxels, and a network that marks
the top-left quarter of every display slice must mark the patient's anterior-right quarter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import onnx
import pytest
import SimpleITK as sitk
import torch
from torch import nn

from conftest import tree_digest
from crossdistill.data.io import read_volume
from crossdistill.data.preprocess import normalize_intensity, stack_neighbours, volume_to_network
from crossdistill.deploy.engines import Engine, torch_engine
from crossdistill.deploy.export import export_onnx
from crossdistill.deploy.metadata import DeploymentMetadata
from crossdistill.deploy.predict import predict
from crossdistill.engine.checkpoint import save_checkpoint
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.models import create_model
from volume_files import write_dicom_series

SIZE = 32
SHAPE = (20, 16, 10)  # file voxel order; non-cubic, so a transposed axis cannot fit
BOX = (slice(2, 10), slice(2, 7), slice(1, 5))  # off-centre on every axis
SPEC = {"name": "threshold", "width": 1.0, "in_channels": 1, "num_classes": 2}


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _affine(linear: np.ndarray, origin=(-31.0, 12.5, 7.0)) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, origin
    return affine


AFFINES = {
    "ras": _affine(np.diag([0.6, 0.7, 3.0])),
    "lps": _affine(np.diag([-0.6, -0.7, 3.0])),
    "anisotropic-sagittal": _affine(np.array([[0, 0, -3.5], [0.5, 0, 0], [0, -0.9, 0]])),
    "oblique": _affine(_rotation([1, 2, 0.5], 27) @ np.diag([0.8, 0.55, 2.5])),
}


def box_image(shape=SHAPE, box=BOX) -> tuple[np.ndarray, np.ndarray]:
    """Background 100, a bright box of 1000; returns ``(image int16, box mask bool)``."""
    inside = np.zeros(shape, dtype=bool)
    inside[box] = True
    return np.where(inside, 1000, 100).astype(np.int16), inside


class Threshold(nn.Module):
    """Logits ``(0, x − t)`` on the centre channel: foreground where ``x > t``."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, x.shape[1] // 2 : x.shape[1] // 2 + 1]
        return torch.cat([torch.zeros_like(centre), 20 * (centre - self.t)], dim=1)


def threshold_engine(image: np.ndarray, channels: int = 1) -> Engine:
    """Threshold at the midpoint of the normalised box and background intensities."""
    normalised = normalize_intensity(image)
    meta = DeploymentMetadata(model=SPEC, size=SIZE, channels=channels)
    return torch_engine(Threshold((normalised.max() + normalised.min()) / 2), meta)


def fn_engine(fn, channels: int = 1) -> Engine:
    return Engine(fn, DeploymentMetadata(model=SPEC, size=SIZE, channels=channels), "test")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def check_box_mask(mask: np.ndarray, inside: np.ndarray) -> None:
    """The mask is the box, and not the box flipped along any axis."""
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert dice(mask > 0, inside) > 0.95
    for axis in range(3):
        assert dice(mask > 0, np.flip(inside, axis)) < 0.05


@pytest.mark.parametrize("name", list(AFFINES))
def test_nifti_grid_is_kept_and_mask_lands_on_the_box(tmp_path: Path, name: str) -> None:
    image, inside = box_image()
    header = nib.Nifti1Header()
    header.set_xyzt_units("mm")
    nib.save(nib.Nifti1Image(image, AFFINES[name], header), tmp_path / "scan.nii.gz")
    source = nib.load(tmp_path / "scan.nii.gz")

    report = predict(
        threshold_engine(image),
        tmp_path / "scan.nii.gz",
        tmp_path / "out" / "m.nii.gz",
        probabilities=True,
    )

    out = nib.load(tmp_path / "out" / "m.nii.gz")
    assert out.shape == source.shape
    assert np.array_equal(out.affine, source.affine)
    assert out.header.get_zooms() == source.header.get_zooms()
    assert out.header.get_data_dtype() == np.uint8
    check_box_mask(np.asanyarray(out.dataobj), inside)
    prob = nib.load(tmp_path / "out" / "m_prob.nii.gz")
    assert prob.header.get_data_dtype() == np.float32
    assert np.array_equal(prob.affine, source.affine)
    p = prob.get_fdata()
    assert p[inside].mean() > 0.9 and p[~inside].mean() < 0.1
    voxel_ml = abs(np.linalg.det(source.affine[:3, :3])) / 1000
    assert report.written[0].foreground_ml == pytest.approx(
        np.count_nonzero(np.asanyarray(out.dataobj)) * voxel_ml, rel=1e-4
    )


def test_a_nifti2_scan_gets_a_nifti2_mask_on_its_grid(tmp_path: Path) -> None:
    image, inside = box_image()
    nib.save(nib.Nifti2Image(image, AFFINES["oblique"]), tmp_path / "scan.nii.gz")

    predict(threshold_engine(image), tmp_path / "scan.nii.gz", tmp_path / "m.nii.gz")

    out = nib.load(tmp_path / "m.nii.gz")
    assert isinstance(out, nib.Nifti2Image) and out.shape == image.shape
    assert np.array_equal(out.affine, nib.load(tmp_path / "scan.nii.gz").affine)
    check_box_mask(np.asanyarray(out.dataobj), inside)


def test_a_channel_of_a_4d_decathlon_image_is_segmented_on_its_3d_grid(tmp_path: Path) -> None:
    """T2 on channel 0, ADC (the box dark) on channel 1, as the Decathlon stores them: the
    mask is the box, on the image's 3-D grid; without --channel the error says how."""
    image, inside = box_image()
    adc = np.where(inside, 10, 900).astype(np.int16)
    affine = AFFINES[next(iter(AFFINES))]
    four_d = tmp_path / "prostate_00.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([image, adc], axis=-1), affine), four_d)

    report = predict(threshold_engine(image), four_d, tmp_path / "m.nii.gz", channel=0)

    out = nib.load(tmp_path / "m.nii.gz")
    assert out.shape == image.shape and np.array_equal(out.affine, nib.load(four_d).affine)
    check_box_mask(np.asanyarray(out.dataobj), inside)
    assert report.written[0].input == four_d
    with pytest.raises(InputError, match=r"got shape \(.*, 2\); .* with --channel N"):
        predict(threshold_engine(image), four_d, tmp_path / "m2.nii.gz")
    with pytest.raises(InputError, match="has 2 channels on its 4th axis, so no channel 2"):
        predict(threshold_engine(image), four_d, tmp_path / "m2.nii.gz", channel=2)
    with pytest.raises(CrossDistillError, match="--channel must be 0 or more"):
        predict(threshold_engine(image), four_d, tmp_path / "m2.nii.gz", channel=-1)


@pytest.mark.parametrize("name", list(AFFINES))
def test_to_source_order_undoes_the_canonical_reorientation(tmp_path: Path, name: str) -> None:
    data = np.arange(np.prod(SHAPE), dtype=np.int32).reshape(SHAPE)
    nib.save(nib.Nifti1Image(data, AFFINES[name]), tmp_path / "v.nii.gz")
    volume = read_volume(tmp_path / "v.nii.gz")
    np.testing.assert_array_equal(volume.to_source_order(volume.array), data)
    # the canonical voxel and the file voxel it goes back to are at the same world point
    index = np.argwhere(volume.array == 1234)[0]
    world = volume.affine @ np.append(index, 1.0)
    np.testing.assert_allclose(AFFINES[name] @ np.append(np.argwhere(data == 1234)[0], 1.0), world)


def _world_centres(affine: np.ndarray, shape) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


@pytest.mark.parametrize("name", ["ras", "lps", "anisotropic-sagittal"])
def test_display_top_left_is_the_patients_anterior_right(tmp_path: Path, name: str) -> None:
    """Rows run anterior → posterior, columns right → left, whatever the file's order."""

    def top_left(batch: np.ndarray) -> np.ndarray:
        foreground = np.zeros((batch.shape[0], SIZE, SIZE), np.float32)
        foreground[:, : SIZE // 2, : SIZE // 2] = 1.0
        return np.stack([1 - foreground, foreground], axis=1)

    image = np.random.default_rng(0).normal(500, 50, SHAPE).astype(np.float32)
    nib.save(nib.Nifti1Image(image, AFFINES[name]), tmp_path / "scan.nii")
    predict(fn_engine(top_left), tmp_path / "scan.nii", tmp_path / "mask.nii.gz")

    mask = np.asanyarray(nib.load(tmp_path / "mask.nii.gz").dataobj).reshape(-1) > 0
    world = _world_centres(AFFINES[name], SHAPE)
    centre = world.mean(axis=0)
    assert 0.2 < mask.mean() < 0.3
    assert np.all(world[mask, 0] > centre[0])  # RAS+: x grows to the patient's right
    assert np.all(world[mask, 1] > centre[1])  # and y to the front


def test_network_input_is_the_training_preprocessing(tmp_path: Path) -> None:
    """2.5D stacks of the canonical, normalised, display-oriented, resized slices, in order."""
    seen: list[np.ndarray] = []

    def record(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        return np.zeros((batch.shape[0], 2, SIZE, SIZE), np.float32)

    image = np.random.default_rng(1).normal(300, 80, SHAPE).astype(np.float32)
    nib.save(nib.Nifti1Image(image, AFFINES["lps"]), tmp_path / "scan.nii.gz")
    predict(
        fn_engine(record, channels=3), tmp_path / "scan.nii.gz", tmp_path / "m.nii.gz", batch_size=4
    )

    slices = volume_to_network(read_volume(tmp_path / "scan.nii.gz").array, SIZE)
    expected = np.stack([stack_neighbours(slices, z, 3) for z in range(slices.shape[0])])
    assert [b.shape[0] for b in seen] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(seen), expected)


def _sitk_box(direction=None) -> tuple[sitk.Image, np.ndarray]:
    image, inside = box_image()
    itk = sitk.GetImageFromArray(image.transpose(2, 1, 0))  # sitk arrays are (Z, Y, X)
    itk.SetSpacing((0.6, 0.7, 3.0))
    itk.SetOrigin((12.0, -20.0, 5.0))
    if direction is not None:
        itk.SetDirection(tuple(direction.reshape(-1)))
    return itk, inside


@pytest.mark.parametrize("suffix", [".mhd", ".nrrd"])
def test_itk_input_keeps_its_grid_and_voxel_order(tmp_path: Path, suffix: str) -> None:
    itk, inside = _sitk_box(_rotation([0.3, 1, 0.2], 20))
    sitk.WriteImage(itk, str(tmp_path / f"scan{suffix}"))
    sitk.WriteImage(itk, str(tmp_path / "reference.nii.gz"))  # ITK's own LPS → RAS conversion
    reference = nib.load(tmp_path / "reference.nii.gz")

    predict(threshold_engine(box_image()[0]), tmp_path / f"scan{suffix}", tmp_path / "out.nii.gz")

    out = nib.load(tmp_path / "out.nii.gz")
    assert out.shape == SHAPE
    np.testing.assert_allclose(out.affine, reference.affine, atol=1e-5)
    np.testing.assert_allclose(out.header.get_zooms(), (0.6, 0.7, 3.0), rtol=1e-6)
    check_box_mask(np.asanyarray(out.dataobj), inside)


def test_dicom_series_input(tmp_path: Path) -> None:
    itk, inside = _sitk_box()
    write_dicom_series(tmp_path / "series", itk, "1.2.826.0.1.3680043.2.1125.9")
    before = tree_digest(tmp_path / "series")

    predict(threshold_engine(box_image()[0]), tmp_path / "series", tmp_path / "out")  # a folder

    out = nib.load(tmp_path / "out" / "series.nii.gz")
    assert out.shape == SHAPE
    expected = np.diag([-0.6, -0.7, 3.0, 1.0])
    expected[:3, 3] = [-12.0, 20.0, 5.0]
    np.testing.assert_allclose(out.affine, expected, atol=1e-4)
    check_box_mask(np.asanyarray(out.dataobj), inside)
    with pytest.raises(InputError, match="inside the input folder"):
        predict(threshold_engine(box_image()[0]), tmp_path / "series", tmp_path / "series")
    assert tree_digest(tmp_path / "series") == before


# --- A real (untrained, width-1/4, 2.5D) network from a checkpoint, and its ONNX export ---


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> dict[str, Path]:
    """A noisy box scan, an ENet checkpoint whose output bias splits that scan's voxels about
    in half (so masks are not trivially empty or full), and the checkpoint's ONNX export."""
    root = tmp_path_factory.mktemp("deployed")
    image, _ = box_image()
    noisy = image + np.random.default_rng(2).normal(0, 60, SHAPE)
    nib.save(nib.Nifti1Image(noisy.astype(np.float32), AFFINES["oblique"]), root / "scan.nii.gz")
    torch.manual_seed(0)
    model = create_model("enet", in_channels=3, num_classes=2, width=0.25).eval()
    slices = volume_to_network(read_volume(root / "scan.nii.gz").array, SIZE)
    batch = np.stack([stack_neighbours(slices, z, 3) for z in range(slices.shape[0])])
    with torch.no_grad():
        logits = model(torch.from_numpy(batch)).logits
        model.fullconv.bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    spec = {"name": "enet", "width": 0.25, "in_channels": 3, "num_classes": 2}
    meta = {"model": spec, "data": {"size": SIZE, "channels": 3}}
    save_checkpoint(root / "enet.safetensors", model.state_dict(), meta)
    export_onnx(root / "enet.safetensors", root / "enet.onnx")
    return {
        "scan": root / "scan.nii.gz",
        "ckpt": root / "enet.safetensors",
        "onnx": root / "enet.onnx",
    }


def test_onnx_engine_gives_the_checkpoints_mask(deployed, tmp_path: Path) -> None:
    runs = {
        "torch": (deployed["ckpt"], None),
        "onnx-file": (deployed["onnx"], None),
        "exported-on-the-fly": (deployed["ckpt"], "onnxruntime"),
    }
    masks, probs = {}, {}
    for name, (source, engine) in runs.items():
        report = predict(
            source, deployed["scan"], tmp_path / f"{name}.nii.gz", engine, probabilities=True
        )
        assert report.engine == (engine or ("onnxruntime" if name == "onnx-file" else "torch"))
        masks[name] = np.asanyarray(nib.load(tmp_path / f"{name}.nii.gz").dataobj)
        probs[name] = nib.load(tmp_path / f"{name}_prob.nii.gz").get_fdata()
    assert 0.05 < masks["torch"].mean() < 0.95
    for name in ("onnx-file", "exported-on-the-fly"):
        np.testing.assert_array_equal(masks[name], masks["torch"])
        np.testing.assert_allclose(probs[name], probs["torch"], atol=1e-4)


def test_cli_folder_does_the_good_volumes_and_reports_each_bad_one(
    deployed, tmp_path: Path
) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "good.nii.gz").write_bytes(deployed["scan"].read_bytes())
    sitk.WriteImage(_sitk_box()[0], str(scans / "other.mhd"))  # + other.raw: not an input
    write_dicom_series(scans / "series", _sitk_box()[0], "1.2.826.0.1.3680043.2.1125.10")
    (scans / "corrupt.nii.gz").write_bytes(b"not a nifti at all")
    nib.save(nib.Nifti1Image(np.zeros((12, 10), np.float32), np.eye(4)), scans / "flat.nii.gz")
    (scans / "empty").mkdir()
    sitk.WriteImage(_sitk_box()[0], str(scans / "good.nrrd"))  # same output name as good.nii.gz
    (scans / "notes.txt").write_text("not a scan")
    before = tree_digest(scans)

    args = ["--checkpoint", deployed["ckpt"], scans, tmp_path / "masks", "--probabilities"]
    proc = subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", "predict", *args, "--batch-size", "4"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )

    assert proc.returncode == 2, proc.stderr
    written = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert written == [
        "good.nii.gz",
        "good_prob.nii.gz",
        "other.nii.gz",
        "other_prob.nii.gz",
        "series.nii.gz",
        "series_prob.nii.gz",
    ]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("crossdistill: error:")]
    assert len(errors) == 4 and "Traceback" not in proc.stderr
    for name, reason in [
        ("corrupt.nii.gz", "cannot read NIfTI"),
        ("flat.nii.gz", "expected a 3-D volume"),
        ("empty", "no DICOM series"),
        ("good.nrrd", "also that of"),
    ]:
        assert any(str(scans / name) in line and reason in line for line in errors), (name, errors)
    assert "ignored 2 files that are not volumes: notes.txt, other.raw" in proc.stderr
    known = ("crossdistill: error:", "ignored ", "predict ")  # the last: the progress bar
    assert [line for line in proc.stderr.splitlines() if not line.startswith(known)] == []
    assert "3 written, 4 failed (torch)" in proc.stdout
    assert tree_digest(scans) == before
    for name, source in [
        ("good", scans / "good.nii.gz"),
        ("other", scans / "other.mhd"),
        ("series", scans / "series"),
    ]:
        grid = read_volume(source)
        out = nib.load(tmp_path / "masks" / f"{name}.nii.gz")
        assert out.shape == grid.source_shape
        np.testing.assert_allclose(out.affine, grid.source_affine, atol=1e-5)


def _onnx_without_metadata(path: Path) -> Path:
    info = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["image"], ["logits"])],
        "bare",
        [info("image", onnx.TensorProto.FLOAT, ["N", 2, SIZE, SIZE])],
        [info("logits", onnx.TensorProto.FLOAT, ["N", 2, SIZE, SIZE])],
    )
    onnx.save(onnx.helper.make_model(graph), str(path))
    return path


BAD = {
    "not a volume": (lambda d, t: [d["ckpt"], t / "notes.txt", t / "o.nii.gz"], "not a volume"),
    "missing input": (
        lambda d, t: [d["ckpt"], t / "nothing.nii.gz", t / "o.nii.gz"],
        "does not exist",
    ),
    "empty folder": (lambda d, t: [d["ckpt"], t / "empty", t / "o"], "holds no volume files"),
    "2-D image": (
        lambda d, t: [d["ckpt"], t / "flat.nii.gz", t / "o.nii.gz"],
        "expected a 3-D volume",
    ),
    "NaN and inf voxels": (  # an empty mask would be written otherwise
        lambda d, t: [d["ckpt"], t / "holes.nii.gz", t / "o.nii.gz"],
        "holes.nii.gz: 2 voxels are NaN or inf",
    ),
    "not a checkpoint": (
        lambda d, t: [t / "fake.safetensors", d["scan"], t / "o.nii.gz"],
        "not a readable safetensors",
    ),
    "onnx without metadata": (
        lambda d, t: [_onnx_without_metadata(t / "bare.onnx"), d["scan"], t / "o.nii.gz"],
        "no crossdistill metadata",
    ),
    "onnx with torch": (
        lambda d, t: [d["onnx"], d["scan"], t / "o.nii.gz", "--engine", "torch"],
        "--engine onnxruntime only",
    ),
    "unknown engine": (
        lambda d, t: [d["ckpt"], d["scan"], t / "o.nii.gz", "--engine", "tensorrt"],
        "unknown engine 'tensorrt'",
    ),
    "batch size": (
        lambda d, t: [d["ckpt"], d["scan"], t / "o.nii.gz", "--batch-size", "0"],
        "--batch-size must be at least 1",
    ),
    "output not nifti": (lambda d, t: [d["ckpt"], d["scan"], t / "o.png"], "give the .nii.gz"),
    "folder into a file": (
        lambda d, t: [d["ckpt"], t / "scans", t / "masks.nii.gz"],
        "needs an output folder",
    ),
    "overwrite input": (
        lambda d, t: [d["ckpt"], t / "copy.nii.gz", t / "copy.nii.gz"],
        "is the input file",
    ),
    "output inside input": (
        lambda d, t: [d["ckpt"], t / "scans", t / "scans" / "masks"],
        "inside the input folder",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(deployed, tmp_path: Path, run_cli, case: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((12, 10), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    holes = np.ones((12, 10, 3), np.float32)
    holes[1, 2, 0], holes[5, 5, 2] = np.nan, -np.inf
    nib.save(nib.Nifti1Image(holes, np.eye(4)), tmp_path / "holes.nii.gz")
    (tmp_path / "fake.safetensors").write_text("not a checkpoint")
    (tmp_path / "copy.nii.gz").write_bytes(deployed["scan"].read_bytes())
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "a.nii.gz").write_bytes(deployed["scan"].read_bytes())
    build, reason = BAD[case]
    checkpoint, *rest = build(deployed, tmp_path)
    before = tree_digest(tmp_path)

    code, _, err = run_cli("predict", "--checkpoint", checkpoint, *rest)

    assert code == 2
    assert err.startswith("crossdistill: error:") and len(err.strip().splitlines()) == 1, err
    assert reason in err
    assert tree_digest(tmp_path) == before  # nothing written, nothing overwritten


def test_engine_output_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(box_image()[0], AFFINES["ras"]), tmp_path / "scan.nii.gz")
    half = fn_engine(lambda b: np.zeros((b.shape[0], 2, SIZE // 2, SIZE // 2), np.float32))
    with pytest.raises(CrossDistillError, match=r"logits of shape \(10, 2, 16, 16\), expected"):
        predict(half, tmp_path / "scan.nii.gz", tmp_path / "m.nii.gz", batch_size=10)
    assert not (tmp_path / "m.nii.gz").exists()


def test_an_empty_mask_and_a_scan_without_contrast_are_written_with_a_warning(
    tmp_path: Path,
) -> None:
    image, _ = box_image()
    nib.save(nib.Nifti1Image(image, AFFINES["ras"]), tmp_path / "box.nii.gz")
    nib.save(nib.Nifti1Image(np.full(SHAPE, 7, np.int16), AFFINES["ras"]), tmp_path / "flat.nii.gz")
    background = fn_engine(
        lambda b: np.stack([np.ones_like(b[:, 0]), np.zeros_like(b[:, 0])], axis=1)
    )
    everywhere = fn_engine(
        lambda b: np.stack([np.zeros_like(b[:, 0]), np.ones_like(b[:, 0])], axis=1)
    )

    empty = predict(background, tmp_path / "box.nii.gz", tmp_path / "a.nii.gz").written[0]
    flat = predict(everywhere, tmp_path / "flat.nii.gz", tmp_path / "b.nii.gz").written[0]
    found = predict(threshold_engine(image), tmp_path / "box.nii.gz", tmp_path / "c.nii.gz")

    assert empty.foreground_ml == 0 and "the mask is empty" in empty.warning
    assert not np.asanyarray(nib.load(tmp_path / "a.nii.gz").dataobj).any()
    assert flat.foreground_ml > 0 and "same value (no contrast)" in flat.warning
    assert found.written[0].warning is None


def test_cli_prints_the_warning_on_stderr_and_exits_0(deployed, tmp_path: Path, run_cli) -> None:
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.float32), AFFINES["ras"]), tmp_path / "z.nii.gz")

    code, out, err = run_cli(
        "predict", "--checkpoint", deployed["ckpt"], tmp_path / "z.nii.gz", tmp_path / "m.nii.gz"
    )

    assert code == 0 and "ml segmented" in out
    assert err.strip() == (
        f"crossdistill: warning: {tmp_path / 'z.nii.gz'}: every voxel of the scan has the same "
        "value (no contrast): its mask is meaningless"
    )
