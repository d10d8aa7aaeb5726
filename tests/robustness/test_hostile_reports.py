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


FORGED_RAN = {"student": "enet", "teacher": "deeplabv3plus", "targets": "UCL"}


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
        (_edit("invocations.0.targets", "UCL"), ["no key 'student'"]),  # recorded together
        (_edit("invocations.0.last_run_s", "soon"), ["invocations.last_run_s"]),
        (
            _edit("invocations", [PLAN["invocations"][0] | FORGED_RAN]),
            ["invocations.targets is not a list"],
        ),
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


def _report(plan: dict, folder, run_cli) -> str:
    """``crossdistill report`` of ``plan`` written into ``folder``: its ``compare.md``."""
    (folder / "compare.plan.json").write_text(json.dumps(plan), encoding="utf-8")
    code, _, err = run_cli("report", folder)
    assert code == 0, err
    return (folder / "compare.md").read_text(encoding="utf-8")


def test_the_header_lists_only_the_invocations_of_its_networks_and_targets(tmp_path, run_cli):
    """Several comparisons share a folder (its teachers): an ESPNet report does not list the
    ENet invocations, nor their wall time. An invocation recorded without the keys counts."""
    plan = copy.deepcopy(PLAN)
    ran = {"machine": "m", "student": "enet", "teacher": "deeplabv3plus"}
    plan["invocations"] = [
        {"command": "legacy", "date": "d0", "machine": "m", "wall_s": 60.0},
        {**ran, "command": "enet at HK", "date": "d1", "wall_s": 120.0, "targets": ["HK"]},
        {**ran, "command": "enet at S1", "date": "d2", "wall_s": 6000.0, "targets": ["ISBI"]},
        {**ran, "command": "espnet", "date": "d3", "wall_s": 6000.0, "targets": ["UCL"]}
        | {"student": "espnet"},
    ]
    md = _report(plan, tmp_path, run_cli)
    assert "`legacy` (d0); `enet at HK` (d1) (2 other invocation(s) on this folder" in md
    assert "**wall time**: 3.0 min over 2 invocation(s)" in md


@pytest.mark.parametrize(
    ("last_runs", "text"),
    [
        ([None, None], "2.0 min over 1 invocation(s) (and 2 stopped before the end, not counted)"),
        (
            [600.0, 300.0],
            "2.0 min over 1 invocation(s), and 2 stopped before the end: at least 15.0 min, "
            "each counted until its last finished run",
        ),
        (
            [600.0, None],
            "2.0 min over 1 invocation(s), and 2 stopped before the end: at least 10.0 min, "
            "each counted until its last finished run (1 without a finished run recorded, "
            "not counted)",
        ),
    ],
)
def test_a_stopped_invocation_counts_until_its_last_finished_run(
    last_runs, text, tmp_path, run_cli
):
    plan = copy.deepcopy(PLAN)
    done = {"command": "c", "date": "d0", "machine": "m", "wall_s": 120.0}
    plan["invocations"] = [done] + [
        {**done, "date": f"d{i}", "wall_s": None, "last_run_s": s}
        for i, s in enumerate(last_runs, 1)
    ]
    assert f"**wall time**: {text}\n" in _report(plan, tmp_path, run_cli)


def test_a_plan_without_finished_runs_reports_every_target_as_missing(tmp_path, run_cli):
    md = _report(PLAN, tmp_path, run_cli)
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


_T1 = ("params_m", "paper_params_m", "params_rel_diff", "gflops", "paper_gflops")
_T1 += ("gflops_rel_diff",)

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


def test_binary_files_in_a_run_folder_are_not_its_configuration_or_epochs(tmp_path, run_cli):
    """A config.yaml of random bytes: the run is not the plan's (reported as missing); a
    metrics.jsonl with a non-UTF-8 line: the other lines are still read."""
    from crossdistill.engine.run_folder import read_metrics

    (tmp_path / "compare.plan.json").write_text(
        json.dumps({**PLAN, "configs": {"UCL/seed0/enet-wo": "0" * 64}}), encoding="utf-8"
    )
    run = tmp_path / "runs" / "UCL" / "seed0" / "enet-wo"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps(GOOD), encoding="utf-8")
    (run / "config.yaml").write_bytes(bytes(range(128, 256)) * 8)
    code, _, err = run_cli("report", tmp_path)
    assert code == 0, err
    assert "**runs**: 0 of 8 finished" in (tmp_path / "compare.md").read_text(encoding="utf-8")
    metrics = run / "metrics.jsonl"
    metrics.write_bytes(b'{"epoch": 1, "val_dice": 0.5}\n\xff\xfe\x00garbage\n{"epoch": 2}\n')
    assert [r["epoch"] for r in read_metrics(metrics)] == [1, 2]


@pytest.mark.parametrize(
    ("table1", "words"),
    [
        ({"rows": "none"}, ["rows is not a list"]),
        ({"rows": [{"label": "ENet"}]}, ["no key 'params_m'"]),
        ({"rows": [{"label": "ENet", **dict.fromkeys(_T1, 1.0), "gflops": "many"}]}, ["gflops"]),
        ({"table": 1}, ["no key 'rows'"]),
    ],
)
def test_a_forged_table1_record_is_one_line_naming_it(table1, words, tmp_path, run_cli):
    (tmp_path / "table1.json").write_text(json.dumps(table1), encoding="utf-8")
    code, _, err = run_cli("report", tmp_path)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "table1.json: not a Table 1 record" in lines[0]
    assert all(w in lines[0] for w in words), lines[0]


def test_a_run_folder_that_says_little_is_reported_without_its_overlay(tmp_path, run_cli):
    """A summary with its Dice only, a config.yaml of random bytes: one line of error for the
    config; with a plain config, the curves are drawn and the Dice printed."""
    (tmp_path / "summary.json").write_text('{"dice": {"mean": 0.5}}', encoding="utf-8")
    (tmp_path / "config.yaml").write_bytes(bytes(range(128, 256)))
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "Traceback" not in err and "cannot read the run's results" in err
    (tmp_path / "config.yaml").write_text("name: r\n", encoding="utf-8")
    code, out, err = run_cli("report", tmp_path)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == f"{tmp_path.name}: Dice 0.500"
