"""`crossdistill compare` end to end: arms, resume, skip finished runs, the report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_OVERRIDES, tree_digest
from crossdistill.compare import compare, read_plan, write_comparison
from crossdistill.compare.arms import Arm, parse_arms
from crossdistill.errors import CrossDistillError

TINY = TINY_OVERRIDES


def _compare_cli(cache: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["--data", cache, "--out", out, "--preset", "study", "--targets", "S4"]
    args += ["--methods", "none,lm", "--controls", "ground-truth", "--seeds", "2"]
    for override in TINY:
        args += ["--set", override]
    return subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", "compare", *map(str, [*args, *extra])],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_compare_help_lists_its_options():
    result = subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", "compare", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0
    for option in ("--targets", "--methods", "--controls", "--seeds", "--protocol", "--jobs"):
        assert option in result.stdout


def test_arms_from_methods_and_controls():
    arms = parse_arms(["recommended", "kmm+lm", "lm@untrained"], ["ground-truth"])
    assert arms == (
        Arm("none"),
        Arm("recommended"),
        Arm("kmm+lm"),
        Arm("lm", "untrained"),
        Arm("recommended", "ground-truth"),
        Arm("kmm+lm", "ground-truth"),
    )
    assert [a.label for a in arms[:2]] == ["w/o", "recommended"]


def test_arms_with_term_options_name_their_runs_and_set_the_terms(tmp_path):
    from crossdistill.compare.arms import CompareOptions, compare_runs, split_methods
    from crossdistill.config import load_config
    from crossdistill.reproduce.presets import get_preset
    from crossdistill.reproduce.runs import spec_config

    methods = split_methods("none,ours[aam.stride=8, aam.margin=1.5],lm+kmm")
    arms = parse_arms(methods, ["untrained"])
    assert [a.label for a in arms] == [
        "w/o",
        "ours[aam.stride=8,aam.margin=1.5]",
        "kmm+lm",
        "ours[aam.stride=8,aam.margin=1.5]@untrained",
        "kmm+lm@untrained",
    ]
    assert parse_arms([a.label if a.method != "none" else "none" for a in arms]) == arms
    runs = compare_runs(CompareOptions(("UCL",), (0,), "enet", "deeplabv3plus", arms))
    spec = runs[(arms[3], "UCL", 0)]
    assert spec.id == (
        "UCL/seed0/enet-ours[aam.stride=8,aam.margin=1.5]-from-deeplabv3plus@untrained-cross-site"
    )
    cfg = spec_config(spec, load_config("study"), tmp_path, get_preset("study").scales)
    assert cfg.distill.terms == {"aam": {"stride": 8, "margin": 1.5}}
    assert cfg.distill.control == "untrained" and cfg.distill.preset == "ours"

    # a list value keeps its commas: AAM's neighbourhood sizes with adaptive weights
    (listed,) = parse_arms(split_methods("ours[aam.sizes=[1, 2, 3];aam.adaptive=true],none"))[1:]
    assert listed.label == "ours[aam.sizes=[1,2,3],aam.adaptive=true]"
    assert parse_arms([listed.label])[1] == listed
    spec = compare_runs(CompareOptions(("UCL",), (0,), "enet", "deeplabv3plus", (listed,)))
    cfg = spec_config(
        spec[(listed, "UCL", 0)], load_config("study"), tmp_path, get_preset("study").scales
    )
    assert cfg.distill.terms == {"aam": {"sizes": [1, 2, 3], "adaptive": True}}


@pytest.mark.parametrize(
    ("methods", "controls", "message"),
    [
        (["nope"], [], "--methods: unknown method 'nope'"),
        (["lm@teacherless"], [], "--methods: unknown control 'teacherless'"),
        (["none@untrained"], [], "w/o has no teacher and no terms"),
        (["none"], [], "at least one method besides none"),
        (["lm"], ["random"], "--controls: unknown control 'random'"),
        (["kmm+lm[aam.stride=8]"], [], "'aam' is not a term of 'kmm\\+lm'"),
        (["ours[aam=8]"], [], "TERM.OPTION=VALUE"),
        (["ours[aam.stride=8"], [], "cannot read"),
        (["ours[aam.stride=8]]"], [], "cannot read"),
        (["ours[aam.sizes=[1,2]@untrained"], [], "cannot read"),
    ],
)
def test_bad_arms_are_named(methods, controls, message):
    with pytest.raises(CrossDistillError, match=message):
        parse_arms(methods, controls)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--methods", "none,bogus"), "--methods: unknown method 'bogus'"),
        (("--seeds", "0"), "--seeds must be ≥ 1"),
        (("--protocol", "sideways"), "--protocol: 'sideways'"),
        (("--student", "resnet"), "resnet"),
        (("--metric", "auc"), "--metric"),
        (("--set", "train.epoch=3"), "config key 'train.epoch': unknown key"),
        # an option given with no names must not read as "all sites"
        (("--targets", ""), "--targets: names nothing"),
        (("--targets", " , "), "--targets: names nothing"),
        (("--controls", ""), "--controls: names nothing"),
        # term options are checked on untrained networks before any run (teachers first)
        (("--methods", "kmm[kmm.foo=1]", "--dry-run"), "'distill.terms.kmm.foo': unknown option"),
        (("--methods", "ours[aam.stride=3]", "--dry-run"), "'distill.terms.aam.stride': stride"),
    ],
)
def test_bad_compare_options_are_one_line(args, message, run_cli, tmp_path):
    code, _, err = run_cli("compare", "--out", tmp_path / "c", "--methods", "none,lm", *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_compare_trains_resumes_skips_and_reports_intervals(engine_cache, tmp_path, run_cli):
    out = tmp_path / "cmp"
    arms = {"methods": ["none", "lm"], "controls": ["ground-truth"], "seeds": 2}
    grid = {**arms, "preset": "study", "data": engine_cache, "out": out, "overrides": TINY}
    lines: list[str] = []
    compare(["S4"], **grid, max_runs=2, echo=lines.append)  # in this process: no import cost
    assert any("0 runs reused, 2 trained, 0 failed, 6 left to run" in line for line in lines)
    (first,) = json.loads((out / "compare.plan.json").read_text(encoding="utf-8"))["invocations"]
    assert first["trained"] == 2 and 0 < first["last_run_s"] <= first["wall_s"]

    second = _compare_cli(engine_cache, out, "--jobs", "2")
    assert second.returncode == 0, second.stderr
    assert "2 runs reused, 6 trained, 0 failed, 0 left to run" in second.stdout
    runs = out / "runs" / "UCL"
    control = runs / "seed1" / "enet-lm-from-deeplabv3plus@ground-truth-cross-site"
    summary = json.loads((control / "summary.json").read_text(encoding="utf-8"))
    assert summary["control"]["name"] == "ground-truth"

    # a run killed before its summary resumes; the others are skipped
    (runs / "seed0" / "enet-wo" / "summary.json").unlink()
    lines = []
    result = compare(["S4"], **grid, echo=lines.append)
    assert "[1/1] resume UCL/seed0/enet-wo (interrupted)" in lines
    assert result["trained"] == ["UCL/seed0/enet-wo"] and len(result["reused"]) == 7

    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "| comparison | target | Δ mean | 95 % CI | wins/ties/losses | verdict |" in md
    assert "| lm − w/o | UCL |" in md and "| lm − lm@ground-truth | UCL |" in md
    assert "**pooled**" not in md  # one target: its own interval, no pooled row
    assert "teacher/student parameter ratio" in md and "wall time" in md
    assert md.count("`crossdistill.compare (Python API)` (") == 1  # run twice, named once
    rows = list(csv.DictReader((out / "compare.csv").open(encoding="utf-8")))
    assert {"low", "high", "verdict"} <= set(rows[0])
    assert {r["a"] for r in rows} == {"lm", "lm@ground-truth"}
    payload = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    first = payload["comparisons"][0]
    assert len(payload["runs"]) == 6 and first["pooled"] == first["per_target"]["UCL"]
    assert (out / "forest-test.png").stat().st_size > 0

    # `crossdistill report` rebuilds it from the stored runs
    (out / "compare.md").unlink()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", "report", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (out / "compare.md").read_text(encoding="utf-8") == md

    # one folder of runs serves several reports: a subset of the arms, written elsewhere
    write_comparison(out, read_plan(out), arms=["lm"], to=tmp_path / "only-lm")
    subset = (tmp_path / "only-lm" / "compare.md").read_text(encoding="utf-8")
    assert "| lm − w/o | UCL |" in subset and "@ground-truth" not in subset
    with pytest.raises(CrossDistillError, match=r"--arms: kmm not in this comparison"):
        write_comparison(out, read_plan(out), arms=["kmm"])
    # and other pairs than the last `compare --versus` asked for
    code, _, err = run_cli("report", out, "--to", tmp_path / "vs", "--versus", "none:lm")
    assert code == 0, err
    assert "| w/o − lm | UCL |" in (tmp_path / "vs" / "compare.md").read_text(encoding="utf-8")
    assert "| w/o − lm |" not in md
    code, _, err = run_cli("report", out, "--versus", "lm:kmm")
    assert code == 2 and "--versus: 'lm:kmm' is not A:B" in err


def test_a_dry_run_lists_the_runs_and_makes_nothing(run_cli, tmp_path):
    """No synthetic sites are made, no plan is written: the runs are listed from the sites
    the grid would make."""
    out = tmp_path / "cmp"
    args = ("--targets", "S4", "--seeds", "2", "--methods", "none,lm", "--controls", "untrained")
    code, stdout, err = run_cli("compare", *args, "--out", out, "--dry-run")
    assert code == 0, err
    assert "not made by a dry run" in stdout
    listed = [line.split()[1] for line in stdout.splitlines() if line.startswith("new ")]
    assert (
        len(listed) == 8 and "UCL/seed1/enet-lm-from-deeplabv3plus@untrained-cross-site" in listed
    )
    assert not out.exists() or not any(out.iterdir())


def test_a_dry_run_on_a_release_folder_lists_its_sites_and_prepares_nothing(
    run_cli, tiny_sites, tmp_path
):
    before = tree_digest(tiny_sites)
    out = tmp_path / "cmp"
    args = ("--data", tiny_sites, "--targets", "SITEX", "--seeds", "1", "--methods", "none,lm")
    code, stdout, err = run_cli("compare", *args, "--out", out, "--dry-run")
    assert code == 0, err
    assert "(not made by a dry run)" in stdout
    listed = {line.split()[1] for line in stdout.splitlines() if line.startswith("new ")}
    assert listed == {
        "SITEX/seed0/enet-wo",
        "SITEX/seed0/teacher-deeplabv3plus-cross-site",
        "SITEX/seed0/enet-lm-from-deeplabv3plus-cross-site",
    }
    assert not out.exists() or not any(out.iterdir())
    assert tree_digest(tiny_sites) == before
    code, _, err = run_cli("compare", "--data", tiny_sites, "--targets", "S1", "--dry-run")
    assert code == 2 and "S1" in err and "Traceback" not in err


def test_a_ground_truth_control_of_features_alone_reports_the_untrained_runs(
    engine_cache, tmp_path, run_cli
):
    """KMM reads the teacher's features only, where the two controls are the same network:
    its ground-truth arm is not trained again, and the report says whose runs it shows."""
    out = tmp_path / "cmp"
    grid = ("--data", engine_cache, "--targets", "S4", "--seeds", "2", "--preset", "study")
    args = (*grid, "--methods", "none,kmm", "--controls", "untrained,ground-truth", "--out", out)
    code, stdout, err = run_cli("compare", *args, "--dry-run")
    assert code == 0, err
    listed = {line.split()[1] for line in stdout.splitlines() if line.startswith("new ")}
    assert listed == {
        f"UCL/seed{s}/{leaf}"
        for s in (0, 1)
        for leaf in (
            "enet-wo",
            "teacher-deeplabv3plus-cross-site",
            "enet-kmm-from-deeplabv3plus-cross-site",
            "enet-kmm-from-deeplabv3plus@untrained-cross-site",
        )
    }
    code, _, err = run_cli("compare", *args, "--max-runs", "0")  # the plan, no training
    assert code == 0, err
    for seed, (wo, kmm, untrained) in enumerate(((0.70, 0.74, 0.71), (0.80, 0.83, 0.78))):
        for leaf, dice in (("enet-wo", wo), ("enet-kmm-from-deeplabv3plus-cross-site", kmm)):
            _stored_summary(out / "runs" / "UCL" / f"seed{seed}" / leaf, dice)
        leaf = "enet-kmm-from-deeplabv3plus@untrained-cross-site"
        _stored_summary(out / "runs" / "UCL" / f"seed{seed}" / leaf, untrained)
    plan = {**read_plan(out), "configs": {}}  # these summaries stand for the runs' own
    write_comparison(out, plan, metrics=["test"])
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "kmm@ground-truth reports the runs of kmm@untrained" in md
    assert "| kmm@ground-truth | 0.745 ± 0.049 (2) |" in md
    payload = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    by_pair = {(c["a"], c["b"]): c["per_target"] for c in payload["comparisons"]}
    assert by_pair[("kmm", "kmm@ground-truth")] == by_pair[("kmm", "kmm@untrained")]
    assert by_pair[("kmm", "kmm@untrained")]["UCL"]["mean"] == pytest.approx(0.04)
    # once the terms read the teacher's logits, the ground-truth control is its own run
    code, stdout, err = run_cli(
        "compare", *grid, "--methods", "kmm@ground-truth", "--out", tmp_path / "b",
        "--set", "distill.terms.kmm.feature=logits", "--dry-run",
    )  # fmt: skip
    assert code == 0, err
    assert "UCL/seed0/enet-kmm-from-deeplabv3plus@ground-truth-cross-site" in stdout


def _stored_summary(folder: Path, dice: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"dice": {"mean": dice, "std": 0.0, "n": 4}, "val_dice": dice, "seconds": 1.0}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
