"""Hostile input folders: absurd or negative header fields, a DICOM folder with two series,
links out of the input folder, a FIFO posing as a volume, and (the friendly case) paths with
spaces and non-ASCII letters, which must work end to end."""

from __future__ import annotations

import io
import os
import shutil

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import tree_digest, write_case
from crossdistill.data.cache import Cache
from crossdistill.data.headers import MAX_VOXELS
from crossdistill.data.io import read_volume
from crossdistill.engine.checkpoint import load_checkpoint
from crossdistill.errors import InputError
from volume_files import gdcm_keeps_the_locale, sitk_image, write_dicom_series


def _one_line(code, err, *words):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def _patch_header(path, **fields):
    """Rewrite header fields of an uncompressed NIfTI-1 file in place."""
    raw = bytearray(path.read_bytes())
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(raw)), check=False)
    for name, value in fields.items():
        header[name] = value
    raw[: header.sizeof_hdr] = header.binaryblock
    path.write_bytes(bytes(raw))


HEADERS = {
    "dims beyond MAX_VOXELS": (
        {"dim": [3, 1024, 1024, MAX_VOXELS // 2**20 + 1, 1, 1, 1, 1]},
        "absurd dimensions",
    ),
    "negative dims": ({"dim": [3, -4, 4, 4, 1, 1, 1, 1]}, "negative dimensions"),
    "eight dims": ({"dim": [7, 4, 4, 4, 2, 2, 2, 2]}, "3-D"),
    "negative pixdim": ({"pixdim": [1, 1, -0.5, 1, 1, 1, 1, 1]}, "invalid voxel spacing"),
    "NaN pixdim": ({"pixdim": [1, np.nan, 1, 1, 1, 1, 1, 1]}, "invalid voxel spacing"),
    "infinite pixdim": ({"pixdim": [1, 1, 1, np.inf, 1, 1, 1, 1]}, "invalid voxel spacing"),
}


@pytest.mark.parametrize("label", list(HEADERS))
def test_absurd_nifti_headers(label, tmp_path, run_cli):
    fields, reason = HEADERS[label]
    data = tmp_path / "data"
    for site in ("UCL", "SITEX"):
        for c in range(2):
            write_case(data / site, f"Case{c:02d}", seed=c)
    image = nib.load(data / "UCL" / "Case01.nii.gz")
    nib.save(image, data / "UCL" / "Case01.nii")
    (data / "UCL" / "Case01.nii.gz").unlink()
    _patch_header(data / "UCL" / "Case01.nii", **fields)
    with pytest.raises(InputError, match=reason):
        read_volume(data / "UCL" / "Case01.nii")
    code, _, err = run_cli("prepare", data, "--out", tmp_path / "cache", "--size", 32)
    _one_line(code, err, "Case01.nii", reason)


VOXELS = {
    "complex": (lambda: np.ones((6, 6, 3), np.complex64), "voxel type complex64 is not a real"),
    "NaN and inf": (lambda: np.array([np.nan, np.inf, 1, 2] * 27).reshape(6, 6, 3), "54 voxels"),
    "beyond float32": (lambda: np.full((6, 6, 3), 1e300), "exceed the float32 range"),
}


@pytest.mark.parametrize("label", list(VOXELS))
def test_voxels_that_are_not_finite_real_numbers(label, tmp_path):
    """Each would otherwise be cast to float32 with a warning and give an empty mask."""
    make, reason = VOXELS[label]
    path = tmp_path / "scan.nii"
    nib.save(nib.Nifti1Image(make(), np.eye(4)), path)
    with pytest.raises(InputError, match=reason):
        read_volume(path).finite_pixels()


def test_rgb_voxels_are_refused(tmp_path):
    path = tmp_path / "rgb.nii"
    nib.save(nib.Nifti1Image(np.zeros((6, 6, 3), np.float32), np.eye(4)), path)
    _patch_header(path, datatype=128, bitpix=24)  # NIFTI_TYPE_RGB24
    with pytest.raises(InputError, match=r"voxel type structured \(R, G, B\)"):
        read_volume(path)


def test_mhd_that_would_hang_or_reach_outside(tmp_path):
    (tmp_path / "data.raw").write_bytes(np.zeros(60, np.int16).tobytes())
    header = "ObjectType = Image\nNDims = {}\nDimSize = 4 5 3\nElementType = MET_SHORT\n"
    for ndims, data_file, reason in (
        ("-1", "data.raw", "invalid dimension count"),  # SimpleITK never returns on this
        ("3", "/dev/zero", "outside its folder"),
        ("3", "../../etc/hostname", "outside its folder"),
    ):
        path = tmp_path / "hostile.mhd"
        path.write_text(header.format(ndims) + f"ElementDataFile = {data_file}\n")
        with pytest.raises(InputError, match=reason):
            read_volume(path)


def test_dicom_folder_with_two_series_is_refused(tiny_sites, tmp_path, run_cli):
    """Decision: refused, not picked. Which series is the image the mask was drawn on cannot
    be told from the files; the user separates them, one series per folder."""
    series = tiny_sites / "UCL" / "Case00"
    for uid, part in (("1.2.826.0.1.3680043.2.1125.7", "a"), ("1.2.826.0.1.3680043.2.1125.8", "b")):
        write_dicom_series(tmp_path / part, sitk_image(), uid)
        for f in (tmp_path / part).iterdir():
            series.mkdir(exist_ok=True)
            shutil.move(f, series / f"{part}_{f.name}")
    (tiny_sites / "UCL" / "Case00.nii.gz").unlink()
    before = tree_digest(tiny_sites)
    code, _, err = run_cli("prepare", tiny_sites, "--out", tmp_path / "cache", "--size", 32)
    line = _one_line(code, err, "Case00", "2 DICOM series", "one series per folder")
    assert "1125.7 (5 files)" in line and "1125.8 (5 files)" in line
    assert tree_digest(tiny_sites) == before


def _drop_slice(files):
    files[2].unlink()


def _tilt_slice(files):
    """Slice 2 re-filed as a coronal one (a localizer in the series)."""
    plane = sitk.ReadImage(str(files[2]))
    plane.SetMetaData("0020|0037", "1\\0\\0\\0\\0\\-1")
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(files[2]))
    with gdcm_keeps_the_locale():
        writer.Execute(plane)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (None, None),
        (_drop_slice, "not evenly spaced: 6 mm between slices 2 and 3"),
        (_tilt_slice, "different orientations"),
    ],
)
def test_dicom_series_with_a_missing_or_foreign_slice_is_refused(damage, reason, tmp_path):
    """ITK would stack the slices on one grid, spacing (last - first) / (n - 1), in the first
    slice's orientation: a slice missing puts every slice after it at a wrong depth, and the
    mask would not lie on the scan."""
    write_dicom_series(tmp_path / "series", sitk_image(), "1.2.826.0.1.3680043.2.1125.9")
    files = sorted((tmp_path / "series").iterdir())  # sliceNNN.dcm, in position order
    if damage is None:
        assert read_volume(tmp_path / "series").spacing[2] == pytest.approx(3.0)
        return
    damage(files)
    with pytest.raises(InputError, match=reason):
        read_volume(tmp_path / "series")


def _outside_file(tiny_sites, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(tiny_sites / "UCL" / "Case01.nii.gz", outside / "Case01.nii.gz")
    (tiny_sites / "UCL" / "Case01.nii.gz").symlink_to(outside / "Case01.nii.gz")
    return outside, "Case01.nii.gz"


def _outside_site(tiny_sites, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(tiny_sites / "SITEX", outside / "SITEX")
    (tiny_sites / "SITEX").symlink_to(outside / "SITEX")
    return outside, "SITEX"


def _device(tiny_sites, tmp_path):
    (tiny_sites / "UCL" / "Case01.nii.gz").unlink()
    (tiny_sites / "UCL" / "Case01.nii.gz").symlink_to("/dev/zero")  # would never end
    return tmp_path / "elsewhere", "Case01.nii.gz"


@pytest.mark.parametrize("make", [_outside_file, _outside_site, _device])
def test_links_out_of_the_input_folder_are_refused(make, tiny_sites, tmp_path, run_cli):
    """Decision: refused (stop, or skip and list with --skip-invalid); never followed."""
    outside, name = make(tiny_sites, tmp_path)
    outside.mkdir(exist_ok=True)
    before = tree_digest(outside)
    out = tmp_path / "cache"
    code, _, err = run_cli("prepare", tiny_sites, "--out", out, "--size", 32)
    _one_line(code, err, name, "leads outside the input folder", "refused")
    assert not out.exists()
    code, _, err = run_cli("prepare", tiny_sites, "--out", out, "--size", 32, "--skip-invalid")
    assert code == 0 and "skipped" in err and "outside the input folder" in err, err
    skipped = Cache(out).index["skipped"]
    assert skipped and all(name in s["path"] and "outside" in s["reason"] for s in skipped)
    assert len(Cache(out).cases()) == 8 - len(skipped)  # the other cases were prepared
    assert tree_digest(outside) == before


def test_links_inside_the_input_folder_are_followed(tiny_sites, tmp_path, run_cli):
    shared = tiny_sites / ".shared"  # a hidden folder is not a site
    shared.mkdir()
    shutil.move(tiny_sites / "UCL" / "Case01.nii.gz", shared / "Case01.nii.gz")
    (tiny_sites / "UCL" / "Case01.nii.gz").symlink_to(shared / "Case01.nii.gz")
    code, _, err = run_cli("prepare", tiny_sites, "--out", tmp_path / "cache", "--size", 32)
    assert code == 0, err
    assert len(Cache(tmp_path / "cache").cases(["UCL"])) == 4


def test_fifo_posing_as_a_volume(tiny_sites, tmp_path, run_cli):
    fifo = tiny_sites / "UCL" / "Case01.nii.gz"
    fifo.unlink()
    os.mkfifo(fifo)  # opening it would block until a writer comes: never
    code, _, err = run_cli("prepare", tiny_sites, "--out", tmp_path / "cache", "--size", 32)
    _one_line(code, err, "Case01.nii.gz", "not a regular file")
    with pytest.raises(InputError, match="not a regular file"):
        read_volume(fifo)


def test_spaces_and_unicode_in_every_path(tmp_path, run_cli):
    root = tmp_path / "études prostate — 前列腺 ü"
    data, cache, runs = root / "données IRM", root / "cache ø", root / "runs ñ"
    assert run_cli("synth", "--out", data, "--sites", "S4,S5", "--cases-per-site", 3,
                   "--size", 32, "--slices", 6)[0] == 0  # fmt: skip
    code, out, err = run_cli("prepare", data, "--out", cache, "--size", 32)
    assert code == 0, err
    settings = {"data.cache": cache, "output": runs, "name": "élève 1 (ü)", "device": "cpu"}
    settings |= {"model.name": "erfnet", "model.width": 0.25, "train.epochs": 1}
    settings |= {"train.batch_size": 4, "train.steps_per_epoch": 2}
    settings |= {"protocol": "cross-site", "target": "S4"}
    args = [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    code, out, err = run_cli("train", *args)
    assert code == 0, err
    assert "élève 1 (ü): Dice" in out
    run = runs / "élève 1 (ü)"
    assert load_checkpoint(run / "checkpoints" / "last.safetensors").meta["state"]["epoch"] == 1
    code, _, err = run_cli("evaluate", "--checkpoint", run, "--data", cache, "--sites", "S4")
    assert code == 0, err
    assert (run / "evaluation.json").is_file()
