"""Volume readers: NIfTI (any orientation), MHD, NRRD and DICOM series agree on array and grid."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from crossdistill.data.io import read_volume
from crossdistill.errors import InputError
from volume_files import SHAPE, SPACING, reference, sitk_image, write_dicom_series


def _expected_ras_affine() -> np.ndarray:
    """An identity-direction LPS image is, in RAS+, flipped along x and y."""
    affine = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])
    affine[:3, 3] = [-10.0, 20.0, 5.0]
    return affine


def _check_canonical(volume, reference: np.ndarray) -> None:
    assert volume.array.shape == SHAPE
    assert np.allclose(np.diag(volume.affine)[:3], SPACING)  # RAS+: positive diagonal
    assert np.allclose(volume.spacing, SPACING)
    assert np.array_equal(volume.array, reference)


def test_nifti_is_reoriented_to_ras(tmp_path):
    data = reference()
    nib.save(nib.Nifti1Image(data, _expected_ras_affine()), tmp_path / "v.nii.gz")
    volume = read_volume(tmp_path / "v.nii.gz")
    _check_canonical(volume, data[::-1, ::-1, :])
    assert np.allclose(volume.source_affine, _expected_ras_affine())
    # The world position of a voxel does not change with the reorientation.
    world = volume.source_affine @ np.array([2, 3, 4, 1.0])
    i, j, k = 2, 3, 4
    assert np.allclose(
        volume.affine @ np.array([SHAPE[0] - 1 - i, SHAPE[1] - 1 - j, k, 1.0]), world
    )


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti2_reads_as_nifti1_and_its_bad_spacing_is_named(tmp_path, suffix):
    """NIfTI-2 (a 540-byte header, what some converters write for large images) is read as
    NIfTI-1 is; its stored spacing is checked like NIfTI-1's, not misread as one."""
    data = reference()
    nib.save(nib.Nifti2Image(data, _expected_ras_affine()), tmp_path / f"v{suffix}")
    _check_canonical(read_volume(tmp_path / f"v{suffix}"), data[::-1, ::-1, :])
    bad = tmp_path / "bad.nii"  # nibabel repairs pixdim on saving: patch the stored header
    nib.save(nib.Nifti2Image(data, np.eye(4)), bad)
    raw = bytearray(bad.read_bytes())
    header = nib.Nifti2Header.from_fileobj(io.BytesIO(bytes(raw)))
    header["pixdim"][1:4] = [1.0, 0.0, 1.0]
    header["qform_code"] = header["sform_code"] = 0
    raw[: header.sizeof_hdr] = header.binaryblock
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="invalid voxel spacing"):
        read_volume(bad)


@pytest.mark.parametrize("suffix", [".mhd", ".nrrd", ".nii.gz"])
def test_itk_formats_match_nifti_grid(tmp_path, suffix):
    path = tmp_path / f"v{suffix}"
    sitk.WriteImage(sitk_image(), str(path))
    volume = read_volume(path)
    _check_canonical(volume, reference()[::-1, ::-1, :])
    assert np.allclose(volume.source_affine, _expected_ras_affine(), atol=1e-5)


def test_dicom_series(tmp_path):
    write_dicom_series(tmp_path / "series", sitk_image(), "1.2.826.0.1.3680043.2.1125.2")
    volume = read_volume(tmp_path / "series")
    _check_canonical(volume, reference()[::-1, ::-1, :])


def test_dicom_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM series"):
        read_volume(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    write_dicom_series(mixed / "a", sitk_image(), "1.2.826.0.1.3680043.2.1125.3")
    write_dicom_series(mixed / "b", sitk_image(), "1.2.826.0.1.3680043.2.1125.4")
    for f in (mixed / "b").iterdir():
        f.rename(mixed / f"b_{f.name}")
    for f in (mixed / "a").iterdir():
        f.rename(mixed / f"a_{f.name}")
    with pytest.raises(InputError, match="2 DICOM series"):
        read_volume(mixed)


@pytest.mark.parametrize(
    ("name", "compress", "advice"),
    [("v.nii", True, "rename it to .nii.gz"), ("v.nii.gz", False, "rename it to .nii")],
)
def test_a_nifti_whose_compression_contradicts_its_name_says_how_to_rename_it(
    tmp_path, name, compress, advice
):
    nib.save(
        nib.Nifti1Image(reference(), np.eye(4)),
        tmp_path / ("src.nii.gz" if compress else "src.nii"),
    )
    (tmp_path / name).write_bytes(
        (tmp_path / ("src.nii.gz" if compress else "src.nii")).read_bytes()
    )
    with pytest.raises(InputError, match=advice + "$") as err:
        read_volume(tmp_path / name)
    assert str(tmp_path / name) in str(err.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [("junk.nii.gz", b"not a nifti" * 40), ("junk.nii", gzip.compress(b"not a nifti" * 40))],
    ids=["plain-bytes-named-gz", "gzip-bytes-named-nii"],  # gzip stamps the time: no bytes in ids
)
def test_a_file_that_is_no_nifti_gets_no_rename_advice(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match="cannot read NIfTI") as err:
        read_volume(tmp_path / name)
    assert "rename" not in str(err.value)


def test_not_a_volume(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a volume"):
        read_volume(tmp_path / "notes.txt")


def test_absurd_header_dimensions(tmp_path):
    path = tmp_path / "huge.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), path)
    raw = bytearray(path.read_bytes())
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(path.read_bytes()))
    header.set_data_shape((30000, 30000, 30000))
    raw[: header.sizeof_hdr] = header.binaryblock
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="absurd dimensions"):
        read_volume(path)


def test_negative_spacing_in_header(tmp_path):
    path = tmp_path / "neg.nii"
    image = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4))
    image.header["pixdim"][1:4] = [1.0, -1.0, 0.0]
    nib.save(image, path)
    raw = bytearray(path.read_bytes())
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(path.read_bytes()))
    header["pixdim"][1:4] = [1.0, 0.0, 1.0]
    header["qform_code"] = 0
    header["sform_code"] = 0
    raw[: header.sizeof_hdr] = header.binaryblock
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="spacing"):
        read_volume(path)
