"""nnU-Net raw and Decathlon layouts: detection, T2 channel, sites, labels, and the cache
they give (the same as the release layout's, case for case)."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest

from conftest import tree_digest, write_case
from crossdistill.data.cache import Cache
from crossdistill.data.io import read_volume
from crossdistill.data.layouts import find_cases
from crossdistill.data.layouts.channels import is_t2_name
from crossdistill.data.layouts.dataset_folder import MAX_JSON_BYTES
from crossdistill.data.layouts.site_map import read_site_map
from crossdistill.data.prepare import prepare
from crossdistill.data.preprocess import mask_to_network, volume_to_network
from crossdistill.errors import CrossDistillError, InputError
from layout_folders import AFFINE, channel, write_decathlon, write_nnunet, write_site_map, zones

CASES = ["prostate_00", "prostate_01", "prostate_02", "prostate_04"]
MAP = {"prostate_00": "UCL", "prostate_01": "UCL", "prostate_02": "SITEX", "prostate_04": "SITEX"}


def _expected(case: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The cached arrays of ``case`` if its ``name`` channel were a 3-D release-layout file."""
    image = volume_to_network(channel(case, name).astype(np.float32), 32).astype(np.float16)
    return image, mask_to_network((zones(case) > 0).astype(np.uint8), 32)


def _check_cache(out, name: str) -> Cache:
    cache = Cache(out)
    for case in cache.cases():
        image, mask = _expected(case.case_id, name)
        assert np.array_equal(case.image(), image), case.case_id
        assert np.array_equal(case.mask(), mask), case.case_id  # zones 1 and 2 merged
        assert case.entry.labels == (0, 1, 2)
        other, _ = _expected(case.case_id, "ADC" if name == "T2" else "T2")
        assert not np.allclose(case.image().astype(float), other.astype(float), atol=0.5)
    return cache


def test_decathlon_with_site_map(tmp_path):
    data = write_decathlon(tmp_path / "Task05_Prostate", CASES)
    (data / "imagesTs").mkdir()
    (data / "imagesTs" / "prostate_03.nii.gz").write_bytes(b"not read")
    before = tree_digest(data)
    sites = write_site_map(tmp_path / "sites.csv", MAP)
    result = prepare(data, tmp_path / "cache", size=32, sites_from=sites, progress=False)
    assert result.sites == {"SITEX": 2, "UCL": 2} and result.layout == "decathlon"
    assert any("channel 0 'T2'" in n for n in result.notes)
    assert any("imagesTs" in n and "ignored" in n for n in result.notes)
    cache = _check_cache(tmp_path / "cache", "T2")
    assert {c.case_id for c in cache.cases(["S4"])} == {"prostate_00", "prostate_01"}
    assert cache.entries[0].source.channel == 0
    assert cache.entries[0].source.image == "imagesTr/prostate_02.nii.gz"
    assert tree_digest(data) == before
    again = prepare(data, tmp_path / "cache", size=32, sites_from=sites, progress=False)
    assert again.reused
    other = prepare(data, tmp_path / "cache", 32, sites_from=sites, channel="1", progress=False)
    assert not other.reused  # another channel, another cache
    _check_cache(tmp_path / "cache", "ADC")


def test_nnunet_datasets_one_per_site_t2_by_name(tmp_path):
    write_nnunet(tmp_path / "data" / "UCL", CASES[:2], channels=("ADC", "T2"))  # T2 second
    write_nnunet(tmp_path / "data" / "SITEX", CASES[2:], version=1)
    result = prepare(tmp_path / "data", tmp_path / "cache", size=32, progress=False)
    assert result.sites == {"SITEX": 2, "UCL": 2} and result.layout == "nnunet"
    cache = _check_cache(tmp_path / "cache", "T2")
    assert cache.index["sites"]["UCL"]["label"] == "S4"
    sources = {e.case_id: e.source for e in cache.entries}
    assert sources["prostate_00"].image == "UCL/imagesTr/prostate_00_0001.nii.gz"
    assert sources["prostate_02"].image == "SITEX/imagesTr/prostate_02_0000.nii.gz"
    assert sources["prostate_00"].channel is None


def test_single_dataset_is_one_site_named_by_its_folder(tmp_path):
    data = write_nnunet(tmp_path / "Dataset005_Prostate", CASES)
    found = find_cases(data)
    assert list(found.sites) == ["Dataset005_Prostate"]
    assert [c.case_id for c in found.sites["Dataset005_Prostate"]] == CASES


def test_channel_override_by_name_and_index(tmp_path):
    data = write_decathlon(tmp_path / "Task05_Prostate", CASES[:2])
    for wanted in ("adc", 1, "1"):
        (case,) = find_cases(data, channel=wanted).sites["Task05_Prostate"][:1]
        assert case.channel == 1
    prepare(data, tmp_path / "cache", size=32, channel="ADC", progress=False)
    _check_cache(tmp_path / "cache", "ADC")


@pytest.mark.parametrize(
    "names, wanted, reason",
    [
        (("T2", "ADC"), "DWI", "no channel named 'DWI'"),
        (("T2", "ADC"), "7", "no channel 7"),
        (("FLAIR", "ADC"), None, "no T2 channel"),
        (("T2", "t2w"), None, "several T2 channels"),
    ],
)
def test_channel_errors_name_dataset_json(tmp_path, names, wanted, reason):
    data = write_decathlon(tmp_path / "d", CASES[:1], channels=names)
    with pytest.raises(InputError, match=reason) as err:
        find_cases(data, channel=wanted)
    assert err.value.path == data / "dataset.json" and "channels 0 " in str(err.value)


def test_t2_names():
    assert all(is_t2_name(n) for n in ["T2", "t2", "T2W", "t2-weighted", "T2 WI", "T2_w"])
    assert not any(is_t2_name(n) for n in ["T2*", "ADC", "T2 FLAIR", "T1", "zscore"])


def test_single_channel_is_used_whatever_its_name(tmp_path):
    data = write_decathlon(tmp_path / "d", CASES[:2], channels=("MRI",))
    found = find_cases(data)
    assert found.sites["d"][0].channel is None  # 3-D images
    assert "the only channel" in found.notes[0]
    prepare(data, tmp_path / "cache", size=32, progress=False)


def test_labels_option(tmp_path):
    data = write_decathlon(tmp_path / "d", CASES[:2])
    prepare(data, tmp_path / "a", size=32, labels=[1, 2], progress=False)
    with pytest.raises(InputError, match="label 2 is neither background") as err:
        prepare(data, tmp_path / "b", size=32, labels=[1], progress=False)
    assert err.value.path.parent.name == "labelsTr"
    assert not (tmp_path / "b" / "index.json").exists()
    with pytest.raises(CrossDistillError, match="positive integers"):
        prepare(data, tmp_path / "c", size=32, labels=[0, 1], progress=False)


def test_labels_option_rechecks_a_cache_built_without_it(tmp_path):
    data = write_decathlon(tmp_path / "d", CASES[:2])
    prepare(data, tmp_path / "cache", size=32, progress=False)
    with pytest.raises(InputError, match="label 2"):
        prepare(data, tmp_path / "cache", size=32, labels=[1], progress=False)


def test_case_missing_from_site_map(tmp_path):
    data = write_decathlon(tmp_path / "d", CASES)
    sites = write_site_map(tmp_path / "s.csv", {c: MAP[c] for c in CASES[:3]})
    with pytest.raises(InputError, match=r"case prostate_04 .* has no row") as err:
        find_cases(data, sites_from=sites)
    assert err.value.path == sites


def test_site_map_formats(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("\ufeff# exported\nSite;Case;Scanner\nUCL;prostate_00.nii.gz;x\n\nHK ; b ;y\n")
    assert read_site_map(path) == {"prostate_00": "UCL", "b": "HK"}
    path.write_text("a,UCL\nb,S9\n")
    assert read_site_map(path) == {"a": "UCL", "b": "S9"}  # unknown: a site of its own


@pytest.mark.parametrize(
    "text, reason",
    [
        ("a,UCL\na,HK\n", "line 2: case a is at site HK here, at UCL on line 1"),
        ("a,UCL\nb,.hidden\n", "line 2: a site name may not start with '.'"),
        ("a,UCL\nb,x/y\n", "line 2: a site name may not contain '/'"),
        ("a,UCL\nb\n", "line 2: expected the columns case,site"),
        ("case,site\n", "lists no case"),
    ],
)
def test_site_map_errors(tmp_path, text, reason):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=reason):
        read_site_map(path)


def test_duplicate_case_ids_across_datasets_need_distinct_names(tmp_path):
    write_nnunet(tmp_path / "data" / "A", CASES[:1])
    write_nnunet(tmp_path / "data" / "B", CASES[:1])
    assert list(find_cases(tmp_path / "data").sites) == ["A", "B"]
    sites = write_site_map(tmp_path / "s.csv", {CASES[0]: "UCL"})
    with pytest.raises(InputError, match="cannot tell the two apart"):
        find_cases(tmp_path / "data", sites_from=sites)


def test_detection_and_forced_layout(tmp_path):
    write_case(tmp_path / "release" / "UCL", "Case00")
    assert find_cases(tmp_path / "release").layout == "release"
    with pytest.raises(InputError, match="holds no nnunet dataset"):
        find_cases(tmp_path / "release", layout="nnunet")
    with pytest.raises(CrossDistillError, match="apply to nnU-Net and Decathlon"):
        find_cases(tmp_path / "release", channel="T2")
    with pytest.raises(CrossDistillError, match="unknown layout 'msd'"):
        find_cases(tmp_path / "release", layout="msd")
    assert find_cases(write_decathlon(tmp_path / "t", CASES[:1])).layout == "decathlon"
    assert find_cases(write_nnunet(tmp_path / "v1", CASES[:1], version=1)).layout == "nnunet"
    forced = find_cases(tmp_path / "t", layout="nnunet")  # a Decathlon folder read as nnU-Net
    assert not forced.sites and "label without image" in str(forced.problems[0])


def test_mixed_folder_is_refused(tmp_path):
    write_nnunet(tmp_path / "data" / "A", CASES[:1])
    write_case(tmp_path / "data" / "UCL", "Case00")
    with pytest.raises(InputError, match="not a dataset folder") as err:
        find_cases(tmp_path / "data")
    assert err.value.path.name == "UCL"


def test_decathlon_problems_and_notes(tmp_path):
    data = write_decathlon(tmp_path / "d", CASES)
    (data / "imagesTr" / "prostate_01.nii.gz").unlink()  # listed, missing
    (data / "imagesTr" / "._prostate_00.nii.gz").write_bytes(b"macOS metadata")  # hidden
    meta = json.loads((data / "dataset.json").read_text())
    meta["training"] = meta["training"][:-1] + meta["training"][:1]  # drops 04, lists 00 twice
    (data / "dataset.json").write_text(json.dumps(meta))
    found = find_cases(data)
    assert [c.case_id for c in found.sites["d"]] == ["prostate_00", "prostate_02"]
    reasons = [str(p) for p in found.problems]
    assert "prostate_01.nii.gz: listed in dataset.json (training) but missing" in reasons[0]
    assert "listed twice" in reasons[1]
    assert any("1 images not listed" in n and "prostate_04" in n for n in found.notes)
    result = prepare(data, tmp_path / "cache", size=32, skip_invalid=True, progress=False)
    assert result.sites == {"d": 2} and len(result.skipped) == 2


def test_nnunet_problems(tmp_path):
    data = write_nnunet(tmp_path / "d", CASES[:3])
    (data / "labelsTr" / "prostate_00.nii.gz").unlink()
    (data / "imagesTr" / "prostate_01_0000.nii.gz").unlink()  # T2 gone, ADC left
    (data / "imagesTr" / "notes.nii.gz").write_bytes(b"")
    found = find_cases(data)
    assert [c.case_id for c in found.sites["d"]] == ["prostate_02"]
    assert "image without label (expected labelsTr/prostate_00.nii.gz)" in str(found.problems[0])
    assert "imagesTr/prostate_01_0000.nii.gz (channel 0) is missing" in str(found.problems[1])
    assert any("1 entries not named as nnU-Net cases" in n for n in found.notes)
    assert any("numTraining is 3" in n for n in found.notes)


@pytest.mark.parametrize(
    "meta, reason",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"labels": {}}', "names no channels"),
        ('{"modality": {"zero": "T2"}}', "must map channel indices to names"),
        ('{"channel_names": {"0": "T2"}, "file_ending": ".png"}', "not a volume format"),
        ('{"modality": {"0": "T2"}, "training": [{"image": "../x.nii.gz", "label": "y"}]}',
         "not inside the dataset folder"),
        ("[" * 100000 + "]" * 100000, "not valid JSON"),
    ],
)  # fmt: skip
def test_bad_dataset_json(tmp_path, meta, reason):
    data = write_decathlon(tmp_path / "d", CASES[:1])
    (data / "dataset.json").write_text(meta)
    with pytest.raises(InputError, match=reason) as err:
        find_cases(data)
    assert err.value.path == data / "dataset.json"


def test_dataset_json_link_out_is_refused(tmp_path):
    data = write_decathlon(tmp_path / "in" / "d", CASES[:1])
    outside = tmp_path / "secret.json"
    outside.write_text((data / "dataset.json").read_text())
    (data / "dataset.json").unlink()
    (data / "dataset.json").symlink_to(outside)
    with pytest.raises(InputError, match="outside the input folder"):
        find_cases(tmp_path / "in")


def test_fifo_or_huge_dataset_json_is_refused_unread(tmp_path):
    data = write_decathlon(tmp_path / "d", CASES[:1])
    (data / "dataset.json").unlink()
    os.mkfifo(data / "dataset.json")  # reading it would block forever
    with pytest.raises(InputError, match="not a regular file"):
        find_cases(data)
    (data / "dataset.json").unlink()
    with open(data / "dataset.json", "wb") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)
    with pytest.raises(InputError, match="larger than 16 MiB"):
        find_cases(data)


def test_site_map_that_is_not_text(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"a,UCL\n\xff\xfe,HK\n")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_site_map(path)
    with pytest.raises(InputError, match="is not a regular file"):
        read_site_map(tmp_path)


def test_read_volume_picks_a_channel_of_a_4d_image(tmp_path):
    stack = np.stack([channel("c", "T2"), channel("c", "ADC")], axis=-1)
    nib.save(nib.Nifti1Image(stack, AFFINE), tmp_path / "c.nii.gz")
    for k, name in enumerate(["T2", "ADC"]):
        volume = read_volume(tmp_path / "c.nii.gz", channel=k)
        assert np.array_equal(volume.array, channel("c", name))
        assert volume.source_shape == (16, 16, 4) and np.allclose(volume.source_affine, AFFINE)
    with pytest.raises(InputError, match="has 2 channels on its 4th axis, so no channel 2"):
        read_volume(tmp_path / "c.nii.gz", channel=2)
    with pytest.raises(InputError, match="expected a 3-D volume"):
        read_volume(tmp_path / "c.nii.gz")
    nib.save(nib.Nifti1Image(stack[..., 0], AFFINE), tmp_path / "3d.nii.gz")
    with pytest.raises(InputError, match="expected a 4-D image"):
        read_volume(tmp_path / "3d.nii.gz", channel=0)
