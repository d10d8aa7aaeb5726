"""A comparison folder edited by hand, cut short or forged: ``crossdistill report`` ends in one
line naming the file, and a plan whose runs are all missing still gives a well-formed report."""

from __future__ import annotations

import copy
import json

import pytest

from crossdistill.errors import InputError
from crossdistill.summary_check import checked_summary

PLAN = {
    "preset": "study",
    "data": "nowhere",
    "options": {
        "targets": ["UCL", "HK"],
        "seeds": [0, 1],
        "student": "enet",
        "teacher": "deeplabv3plus",
        "arms": ["none", "kmm"],
        "protocol": "cross-site",
    },
    "models": {
        "student": {"name": "enet", "width": 0.5, "epochs": 24},
        "teacher": {"name": "deeplabv3plus", "width": 0.125, "epochs": 24},
    },
    "overrides": [],
    "versus": [],
    "configs": {},
    "invocations": [
        {"command": "crossdistill compare", "date": "d", "machine": "m", "wall_s": 1.0}
    ],
}


def _edit(path: str, value):
    plan = copy.deepcopy(PLAN)
    *parents, last = path.split(".")
    node = plan
    for key in parents:
        node = node[key] if not key.isdigit() else node[int(key)]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return plan


@pytest.mark.parametrize(
    ("plan", "words"),
    [
        (_edit("models", KeyError), ["no key 'models'"]),
        (_edit("models.student.width", "half"), ["models.student.width"]),
        (_edit("versus", [["kmm"]]), ["versus"]),
        (_edit("invocations.0.command", KeyError), ["no key 'command'"]),
        (_edit("options.arms", ["none", "nonsense"]), ["nonsense"]),
        (["a", "list"], ["not a JSON object"]),
    ],
)
def test_a_forged_plan_is_one_line_naming_it(plan, words, tmp_path, run_cli):
    (tmp_path / "compare.plan.json").write_text(json.dumps(plan), encoding="utf-8")
    code, _, err = run_cli("report", tmp_path)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "compare.plan.json: not a comparison plan" in lines[0]
    assert all(w in lines[0] for w in words), lines[0]


def test_a_plan_without_finished_runs_reports_every_target_as_missing(tmp_path, run_cli):
    (tmp_path / "compare.plan.json").write_text(json.dumps(PLAN), encoding="utf-8")
    code, _, err = run_cli("report", tmp_path)
    assert code == 0, err
    md = (tmp_path / "compare.md").read_text(encoding="utf-8")
    assert "**runs**: 0 of 8 finished" in md
    assert "| arm | UCL | HK | mean | teacher Dice where it teaches |\n|---|---|---|---|---|" in md
    assert "| kmm | – | – | – | – |" in md


GOOD = {"dice": {"mean": 0.8}, "epochs": 24, "model": {"width": 0.5}, "val_dice": 0.7}


@pytest.mark.parametrize(
    ("summary", "reason"),
    [
        ({**GOOD, "dice": {}}, "no 'mean'"),
        ({**GOOD, "dice": {"mean": "0.8"}}, "dice.mean is not a number"),
        ({**GOOD, "val_dice": True}, "val_dice is not a number"),
        ({**GOOD, "teacher_model": {}}, "no 'width'"),
        ({**GOOD, "epochs": "24"}, "epochs is not a number"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_a_forged_run_summary_is_named(summary, reason, tmp_path):
    path = tmp_path / "summary.json"
    with pytest.raises(InputError, match=reason) as err:
        checked_summary(path, summary)
    assert str(path) in str(err.value)
    assert checked_summary(path, {**GOOD, "val_dice": None}) == {**GOOD, "val_dice": None}


GRID = {"table": 2, "preset": "demo", "invocations": [{"table": 2, "sites": ["UCL", "HK"]}]}


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({**GRID, "invocations": []}, ["no invocations"]),
        ({**GRID, "invocations": [{"table": 2, "sites": ["UCL"], "seeds": 1}]}, ["'seeds'"]),
        ({**GRID, "invocations": [{"table": 9, "sites": ["UCL"]}]}, ["--table: 9"]),
        ({**GRID, "invocations": [{"table": 2, "sites": ["UCL"], "x": 1}]}, ["'x'"]),
        ({"table": 2, "invocations": GRID["invocations"]}, ["no preset"]),
        ([1], ["not a JSON object"]),
    ],
)
def test_a_forged_grid_record_is_one_line_naming_it(record, words, tmp_path, run_cli):
    (tmp_path / "table2.grid.json").write_text(json.dumps(record), encoding="utf-8")
    code, _, err = run_cli("report", tmp_path)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "table2.grid.json: not a grid record" in lines[0]
    assert all(w in lines[0] for w in words), lines[0]


def test_a_forged_run_summary_in_a_grid_is_one_line_naming_it(tmp_path, run_cli):
    (tmp_path / "table2.grid.json").write_text(json.dumps(GRID), encoding="utf-8")
    forged = tmp_path / "runs" / "UCL" / "seed0" / "enet-wo" / "summary.json"
    forged.parent.mkdir(parents=True)
    forged.write_text('{"dice": {"mean": "high"}}', encoding="utf-8")
    code, _, err = run_cli("report", tmp_path)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "summary.json: not a run summary" in lines[0] and "dice.mean" in lines[0]
    forged.write_text("{cut sho", encoding="utf-8")  # not JSON: taken as unfinished
    code, _, err = run_cli("report", tmp_path)
    assert code == 0, err
