"""``crossdistill reproduce`` / ``report``: grids, run states, tables, resuming a grid."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crossdistill.config import dump_config, load_config
from crossdistill.engine.checkpoint import save_checkpoint
from crossdistill.engine.loading import network_sha256
from crossdistill.engine.optim import make_scheduler
from crossdistill.errors import CrossDistillError
from crossdistill.reproduce import report, reproduce
from crossdistill.reproduce.grid import GridOptions, build_grid, student_run, teacher_run
from crossdistill.reproduce.launchers import (
    Job,
    JobResult,
    Launcher,
    SequentialLauncher,
    make_launcher,
    register_launcher,
)
from crossdistill.reproduce.presets import DEMO_SCALE, Scale
from crossdistill.reproduce.record import add_invocation
from crossdistill.reproduce.runner import plan_runs, run_grid
from crossdistill.reproduce.runs import config_digest, spec_config
from crossdistill.reproduce.table1 import table1_rows, write_table1

STUDENTS = ("enet", "espnet", "erfnet")
TEACHERS = ("deeplabv3plus", "unetpp")


def _ids(options: GridOptions) -> list[str]:
    return [run.id for run in build_grid(options).runs]


def test_run_ids_are_named_by_what_they_are_not_by_order():
    grid = build_grid(GridOptions(2, ("UCL", "HK"), (0, 1), students=STUDENTS, teachers=TEACHERS))
    shuffled = GridOptions(
        2, ("HK", "UCL"), (1, 0), students=STUDENTS[::-1], teachers=TEACHERS[::-1]
    )
    ids = [run.id for run in grid.runs]
    assert sorted(ids) == sorted(_ids(shuffled))
    assert len(ids) == len(set(ids)) == 2 * 2 * (2 + 3 + 3 * 2)
    assert "UCL/seed1/espnet-ours-from-unetpp-cross-site" in ids
    assert "HK/seed0/teacher-deeplabv3plus-cross-site" in ids
    assert "HK/seed0/erfnet-wo" in ids
    recommended = _ids(GridOptions(2, ("UCL",), method="recommended"))
    assert "UCL/seed0/enet-recommended-from-deeplabv3plus-cross-site" in recommended
    assert "UCL/seed0/enet-wo" in recommended  # w/o does not depend on the method
    loso = _ids(GridOptions(2, ("UCL",), protocol="leave-one-site-out"))
    assert "UCL/seed0/teacher-unetpp-leave-one-site-out" in loso
    assert "UCL/seed0/enet-wo" in loso  # ... nor on the protocol


def test_students_share_one_teacher_run_which_comes_first():
    grid = build_grid(GridOptions(2, ("UCL", "HK"), (0, 1), students=STUDENTS, teachers=TEACHERS))
    position = {run.id: i for i, run in enumerate(grid.runs)}
    teachers = [run for run in grid.runs if run.role == "teacher"]
    assert len(teachers) == 2 * 2 * 2  # one per teacher model, site and seed
    for teacher in teachers:
        students = [run for run in grid.runs if run.depends == (teacher.id,)]
        assert sorted(s.model for s in students) == sorted(STUDENTS)
        assert all(position[teacher.id] < position[s.id] for s in students)
    for run in grid.runs:
        assert all(position[d] < position[run.id] for d in run.depends)
    cells = [c for c in grid.cells if c.block == "enet" and c.site == "UCL" and c.seed == 0]
    assert [(c.row, c.label) for c in cells] == [
        ("none", "w/o"),
        ("deeplabv3plus", "w/ DeepLabV3+"),
        ("unetpp", "w/ UNet++"),
    ]


def test_tables_3_and_4_reuse_table_2_runs():
    t2 = set(_ids(GridOptions(2, ("UCL",))))
    t3 = build_grid(GridOptions(3, ("UCL",), students=("enet",), teachers=("deeplabv3plus",)))
    t4 = build_grid(GridOptions(4, ("UCL",), students=("enet",), teachers=("deeplabv3plus",)))
    assert [c.row for c in t3.cells] == [
        "teacher",
        "none",
        "lm",
        "aam",
        "kmm",
        "kmm+lm",
        "aam+lm",
        "aam+kmm",
        "ours",
    ]
    shared = {
        "UCL/seed0/teacher-deeplabv3plus-cross-site",
        "UCL/seed0/enet-wo",
        "UCL/seed0/enet-ours-from-deeplabv3plus-cross-site",
    }
    assert shared <= t2 & {r.id for r in t3.runs} & {r.id for r in t4.runs}
    dg = [r for r in t4.runs if r.method != "supervised"]
    assert [(r.method, r.depends, r.leaf) for r in dg] == [
        ("saml", (), "enet-saml"),
        ("drdg", (), "enet-drdg"),
    ]
    assert [c.row for c in t4.cells][2:7] == ["ours", "kd", "at", "mskd", "emkd"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (GridOptions(3, ("UCL",), students=("enet", "erfnet")), "Table 3 distils one student"),
        (GridOptions(2, ("UCL",), protocol="both"), "--protocol"),
        (GridOptions(2, ("UCL",), method="best"), "--method"),
        (GridOptions(5, ("UCL",)), "--table"),
    ],
)
def test_bad_grid_options_are_named(options, message):
    with pytest.raises(CrossDistillError, match=message):
        build_grid(options)


def test_run_configuration_of_a_spec(tmp_path):
    base = load_config("demo", ["data.cache=/data/cache"])
    teacher = teacher_run("unetpp", "UCL", 2, "leave-one-site-out")
    student = student_run("erfnet", "UCL", 2, "leave-one-site-out", "kd", teacher)
    scales = {"unetpp": Scale(0.125, 3), "erfnet": Scale(0.25, 5)}
    cfg = spec_config(student, base, tmp_path, scales, ["train.epochs=1"])
    assert Path(cfg.output) / cfg.name == tmp_path / student.id
    assert (cfg.role, cfg.protocol, cfg.target, cfg.seed) == (
        "student",
        "leave-one-site-out",
        "UCL",
        2,
    )
    assert (cfg.model.name, cfg.model.width, cfg.train.epochs) == ("erfnet", 0.25, 1)
    assert cfg.distill.preset == "kd" and cfg.distill.teacher == tmp_path / teacher.id
    alone = spec_config(student_run("erfnet", "UCL", 2, "x", method="saml"), base, tmp_path, scales)
    assert (alone.protocol, alone.train.method, alone.distill.teacher) == (
        "cross-site",
        "saml",
        None,
    )


@pytest.mark.parametrize("model", sorted(DEMO_SCALE))
def test_demo_runs_end_at_the_base_learning_rate(model, tmp_path):
    """A demo run spans whole learning-rate cycles, so its last weights are not taken at a
    cycle's peak (300 steps with the paper-style step size of 100 ended at 0.0055)."""
    base = load_config("demo", ["data.cache=/data/cache"])
    cfg = spec_config(student_run(model, "UCL", 0, "cross-site"), base, tmp_path, DEMO_SCALE)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.train.optimizer.lr)
    scheduler = make_scheduler(optimizer, cfg.train.schedule)
    lrs = []
    for _ in range(cfg.train.epochs * cfg.train.steps_per_epoch):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert max(lrs) == pytest.approx(cfg.train.schedule.max_lr, rel=0.05)
    assert lrs[-1] == pytest.approx(cfg.train.schedule.base_lr)


def test_whole_cycles_need_a_cyclic_schedule_of_known_length(tmp_path):
    base = load_config("demo", ["data.cache=/data/cache", "train.schedule.name=constant"])
    with pytest.raises(CrossDistillError, match=r"train\.schedule"):
        spec_config(student_run("enet", "UCL", 0, "cross-site"), base, tmp_path, DEMO_SCALE)


def _grid_plan(tmp_path, **changes):
    grid = build_grid(GridOptions(2, ("UCL",), students=("enet",), teachers=("unetpp",)))
    base = load_config(
        "demo", ["data.cache=/data/cache", *[f"{k}={v}" for k, v in changes.items()]]
    )
    return plan_runs(grid.runs, base, tmp_path, dict(DEMO_SCALE))


def test_plan_skips_finished_resumes_interrupted_restarts_changed(tmp_path):
    planned = _grid_plan(tmp_path)
    assert [(p.spec.leaf, p.state) for p in planned] == [
        ("teacher-unetpp-cross-site", "new"),
        ("enet-wo", "new"),
        ("enet-ours-from-unetpp-cross-site", "new"),
    ]
    teacher, alone, distilled = planned
    for p in planned:
        folder = tmp_path / p.spec.id
        folder.mkdir(parents=True)
        dump_config(p.config, folder / "config.yaml")
    (tmp_path / teacher.spec.id / "summary.json").write_text("{}")
    (tmp_path / teacher.spec.id / "checkpoints").mkdir()
    (tmp_path / teacher.spec.id / "checkpoints/best.safetensors").write_bytes(b"")
    (tmp_path / distilled.spec.id / "checkpoints").mkdir()
    (tmp_path / distilled.spec.id / "checkpoints/last.safetensors").write_bytes(b"")
    other = alone.config.model_copy(update={"seed": 7})
    dump_config(other, tmp_path / alone.spec.id / "config.yaml")
    states = [(p.state, p.why) for p in _grid_plan(tmp_path)]
    assert states == [
        ("done", ""),
        ("restart", "its configuration changed"),
        ("resume", "interrupted"),
    ]
    # A teacher without its checkpoint (restored from its summary) is trained again only
    # when a run still to train needs it; the interrupted student then starts again.
    (tmp_path / teacher.spec.id / "checkpoints/best.safetensors").unlink()
    states = [(p.state, p.why) for p in _grid_plan(tmp_path)]
    assert states[0] == ("restart", "its checkpoint is missing and a run to train needs it")
    assert states[2] == ("restart", "its teacher is trained again")
    (tmp_path / distilled.spec.id / "summary.json").write_text("{}")
    assert [p.state for p in _grid_plan(tmp_path)] == ["done", "restart", "done"]
    # A finished student of a teacher trained again is checked when it records the teacher
    # weights it was distilled from, else trained again.
    (tmp_path / teacher.spec.id / "summary.json").unlink()
    states = [(p.state, p.why) for p in _grid_plan(tmp_path)]
    assert states[0] == ("restart", "interrupted before its first checkpoint")
    assert states[2] == ("restart", "its teacher is trained again")
    summary = {"teacher_weights_sha256": "0" * 64}
    (tmp_path / distilled.spec.id / "summary.json").write_text(json.dumps(summary))
    states = [(p.state, p.why) for p in _grid_plan(tmp_path)]
    assert states[2] == ("check", "its teacher is trained again; kept if to the same weights")


def test_finished_student_of_a_teacher_trained_again_earlier_is_trained_again(tmp_path):
    """A teacher trained again by an earlier call (other weights now) makes the finished
    students that record the old weights train again; same weights, or no record, keep them."""
    teacher, alone, distilled = _grid_plan(tmp_path)
    for p in (teacher, alone, distilled):
        folder = tmp_path / p.spec.id
        folder.mkdir(parents=True)
        dump_config(p.config, folder / "config.yaml")
        (folder / "summary.json").write_text("{}")
    best = tmp_path / teacher.spec.id / "checkpoints/best.safetensors"
    save_checkpoint(best, {"w": torch.ones(2)}, {"epoch": 1})
    summary = tmp_path / distilled.spec.id / "summary.json"
    summary.write_text(json.dumps({"teacher_weights_sha256": network_sha256(best)}))
    assert [p.state for p in _grid_plan(tmp_path)] == ["done", "done", "done"]
    save_checkpoint(best, {"w": torch.zeros(2)}, {"epoch": 1})  # trained again, other weights
    states = [(p.state, p.why) for p in _grid_plan(tmp_path)]
    assert states == [
        ("done", ""),
        ("done", ""),
        ("restart", "its teacher now holds other weights than it was distilled from"),
    ]
    summary.write_text("{}")  # a summary from before the record: nothing to compare
    assert [p.state for p in _grid_plan(tmp_path)] == ["done", "done", "done"]


class _ScriptedLauncher(Launcher):
    """Records the order of submission; runs named in ``fail`` fail."""

    def __init__(self, slots: int, fail: set[str]):
        self.slots, self.fail, self.order, self.max_running, self.running = slots, fail, [], 0, 0

    def submit(self, job: Job):
        self.order.append(job.id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        return job.id

    def wait(self, handles):
        self.running -= 1
        done = handles[0]
        if done in self.fail:
            return [(done, JobResult(done, None, "boom", 0.0))]
        return [(done, JobResult(done, {"dice": {"mean": 0.5, "std": 0.1}}, None, 1.0))]


def test_runner_respects_dependencies_slots_failures_and_max_runs(tmp_path):
    grid = build_grid(GridOptions(2, ("UCL", "HK"), students=("enet",), teachers=("unetpp",)))
    planned = plan_runs(grid.runs, load_config("demo"), tmp_path, dict(DEMO_SCALE))
    launcher = _ScriptedLauncher(2, fail={"UCL/seed0/teacher-unetpp-cross-site"})
    outcome = run_grid(planned, launcher, echo=lambda _: None)
    assert launcher.max_running == 2
    position = {run: i for i, run in enumerate(launcher.order)}
    assert (
        position["HK/seed0/teacher-unetpp-cross-site"]
        < position["HK/seed0/enet-ours-from-unetpp-cross-site"]
    )
    assert outcome.failed == {"UCL/seed0/teacher-unetpp-cross-site": "boom"}
    assert outcome.not_run == ["UCL/seed0/enet-ours-from-unetpp-cross-site"]
    assert len(outcome.trained) == 4
    limited = run_grid(planned, _ScriptedLauncher(1, set()), echo=lambda _: None, max_runs=2)
    assert len(limited.trained) == 2 and len(limited.not_run) == 4


def test_launchers_by_name():
    register_launcher("inline", "crossdistill.reproduce.launchers:local_launcher")
    with make_launcher("inline", jobs=1, progress=False) as launcher:
        assert isinstance(launcher, SequentialLauncher)
    with pytest.raises(CrossDistillError, match="--launcher: unknown 'slurm'"):
        make_launcher("slurm")
    with pytest.raises(CrossDistillError, match="--jobs"):
        make_launcher("local", jobs=0)


def _fake_summary(folder: Path, dice: float, reliability: float | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"name": folder.name, "dice": {"mean": dice, "std": 0.05, "n": 2}}
    if reliability is not None:
        summary["teacher_reliability"] = {"dice": {"mean": reliability}}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_table_from_stored_summaries(tmp_path, run_cli):
    """UCL (S4) with seeds 0 and 1, HK (S6) with seed 0: two invocations, one table."""
    options = dict(students=("enet",), teachers=("deeplabv3plus",))
    add_invocation(tmp_path, GridOptions(2, ("UCL", "HK"), (0,), **options), "demo")
    add_invocation(tmp_path, GridOptions(2, ("UCL",), (0, 1), **options), "demo")
    runs = tmp_path / "runs"
    for seed, wo, w, rel in ((0, 0.70, 0.60, 0.3), (1, 0.80, 0.64, 0.5)):
        _fake_summary(runs / f"UCL/seed{seed}/enet-wo", wo)
        _fake_summary(runs / f"UCL/seed{seed}/enet-ours-from-deeplabv3plus-cross-site", w, rel)
        _fake_summary(runs / f"UCL/seed{seed}/teacher-deeplabv3plus-cross-site", 0.9)
    _fake_summary(runs / "HK/seed0/enet-wo", 0.60)  # HK's teacher and w/ are not finished
    code, out, err = run_cli("report", tmp_path)
    assert code == 0, err
    assert f"wrote {tmp_path / 'table2.md'}" in out
    md = (tmp_path / "table2.md").read_text(encoding="utf-8")
    # w/o: UCL 0.75 ± 0.0707 (paper 0.782); HK 0.60 (paper 0.772); mean 0.675 vs 0.777
    assert (
        "| w/o | 0.750 ± 0.071 (paper 0.782, -0.032) | 0.600 (paper 0.772, -0.172) | "
        "0.675 (paper 0.777, -0.102) |"
    ) in md
    assert "| w/ DeepLabV3+ | 0.620 ± 0.028 (paper 0.881, -0.261) | – |" in md
    assert "| w/ DeepLabV3+ | 0.400 | – | 0.400 |" in md  # the teacher's reliability
    assert "Seeds per site: S4 UCL: 2, S6 HK: 1. Runs finished: 7 of 9." in md
    rows = {
        (r["block"], r["row"], r["site"]): r
        for r in json.loads((tmp_path / "table2.json").read_text(encoding="utf-8"))["entries"]
    }
    assert rows[("enet", "none", "UCL")]["dice"] == [0.70, 0.80]
    assert rows[("enet", "none", "UCL")]["std"] == pytest.approx(0.0707107, abs=1e-6)
    assert rows[("teachers", "deeplabv3plus", "UCL")]["paper"] == 0.874
    csv_lines = (tmp_path / "table2.csv").read_text(encoding="utf-8").splitlines()
    assert "enet,none,w/o,UCL,S4,2,0.7500,0.0707,0.7820,-0.0320,,0;1,0.7000;0.8000" in csv_lines
    assert (tmp_path / "table2_dice.png").stat().st_size > 0


def test_report_leaves_out_runs_trained_with_other_settings(tmp_path, run_cli):
    """A finished run whose config.yaml is not the one the grid last asked for (the preset
    changed since) is not reported as the grid's result."""
    base = load_config("demo", ["data.cache=/data/cache"])
    runs = tmp_path / "runs"
    options = GridOptions(2, ("UCL",), (0,), students=("enet",), teachers=("deeplabv3plus",))
    planned = plan_runs(build_grid(options).runs, base, runs, dict(DEMO_SCALE))
    add_invocation(tmp_path, options, "demo", {p.spec.id: config_digest(p.config) for p in planned})
    for p in planned:
        _fake_summary(runs / p.spec.id, 0.8 if p.spec.role == "teacher" else 0.7)
        cfg = p.config
        if p.spec.leaf == "enet-wo":  # trained before the schedule changed
            cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 3})})
        dump_config(cfg, runs / p.spec.id / "config.yaml")
    code, _out, err = run_cli("report", tmp_path)
    assert code == 0, err
    md = (tmp_path / "table2.md").read_text(encoding="utf-8")
    assert "Left out: 1 finished run(s) whose configuration is not the one" in md
    assert "UCL/seed0/enet-wo" in md
    assert "| w/o | – | – |" in md
    assert "| DeepLabV3+ teacher | 0.800 (paper 0.874, -0.074) |" in md


def test_table1_written_and_rebuilt(tmp_path):
    rows = table1_rows(latency_size=None)
    assert [r["label"] for r in rows] == ["ESPNet", "ENet", "ERFNet", "UNet++", "DeepLabV3+"]
    write_table1(tmp_path, rows)
    md = (tmp_path / "table1.md").read_text(encoding="utf-8")
    enet = rows[1]
    assert f"| ENet | {enet['params_m']:.3f} | 0.353 | {enet['params_rel_diff']:+.1%} |" in md
    (tmp_path / "table1.md").unlink()
    report(tmp_path, echo=lambda _: None)
    assert (tmp_path / "table1.md").read_text(encoding="utf-8") == md


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--table", "2", "--preset", "paper"), "--data: the paper preset needs"),
        (("--table", "2", "--preset", "gpu"), "--preset: unknown preset 'gpu'"),
        (("--table", "2", "--set", "train.epoch=3"), "config key 'train.epoch': unknown key"),
        (("--table", "3", "--students", "enet,erfnet"), "Table 3 distils one student"),
    ],
)
def test_bad_reproduce_options_are_one_line(args, message, run_cli, tmp_path):
    code, _, err = run_cli("reproduce", *args, "--out", tmp_path / "out")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "data").exists()


def test_one_grid_folder_holds_one_preset(run_cli, tmp_path):
    add_invocation(tmp_path, GridOptions(2, ("UCL",)), "demo")
    code, _, err = run_cli("reproduce", "--table", "3", "--preset", "paper", "--out", tmp_path)
    assert code == 2 and "holds grids of the 'demo' preset" in err


def test_report_of_a_folder_without_results(run_cli, tmp_path):
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "neither a run folder" in err


TINY = (
    "--set",
    "model.width=0.25",
    "--set",
    "train.epochs=1",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.steps_per_epoch=2",
    "--set",
    "train.schedule.name=constant",
)


def _reproduce_cli(cache: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        "--table",
        "2",
        "--preset",
        "demo",
        "--data",
        cache,
        "--out",
        out,
        "--sites",
        "S4",
        "--students",
        "enet",
        "--teachers",
        "unetpp",
        *TINY,
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "crossdistill.cli", "reproduce", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_grid_stopped_after_its_first_run_continues(engine_cache, tmp_path):
    """A grid stopped after its first run (``--max-runs 1``) goes on where it stopped, with
    two runs in parallel (``--jobs 2``); a run interrupted after its last checkpoint resumes."""
    out = tmp_path / "grid"
    grid = {"preset": "demo", "data": engine_cache, "sites": ["S4"], "students": ["enet"]}
    grid |= {"teachers": ["unetpp"], "out": out, "overrides": TINY[1::2]}
    lines: list[str] = []
    reproduce(2, **grid, max_runs=1, echo=lines.append)  # in this process: no import cost
    runs = out / "runs" / "UCL" / "seed0"
    teacher = runs / "teacher-unetpp-cross-site" / "summary.json"
    assert teacher.is_file() and not (runs / "enet-wo").exists()
    assert any("0 runs reused, 1 trained, 0 failed, 2 left to run" in line for line in lines)
    stamp = teacher.stat().st_mtime_ns

    second = _reproduce_cli(engine_cache, out, "--jobs", "2")
    assert second.returncode == 0, second.stderr
    assert "1 runs reused, 2 trained, 0 failed, 0 left to run" in second.stdout
    assert teacher.stat().st_mtime_ns == stamp
    distilled = runs / "enet-ours-from-unetpp-cross-site" / "summary.json"
    assert json.loads(distilled.read_text(encoding="utf-8"))["teacher"].startswith(
        str(teacher.parent)
    )
    assert "| w/ UNet++ |" in (out / "table2.md").read_text(encoding="utf-8")
    assert (out / "table2_overlay_enet.png").is_file()

    # enet-wo killed after its last checkpoint, before writing its summary
    (runs / "enet-wo" / "summary.json").unlink()
    stamp = distilled.stat().st_mtime_ns
    lines = []
    result = reproduce(2, **grid, echo=lines.append)
    assert "[1/1] resume UCL/seed0/enet-wo (interrupted)" in lines
    assert result["trained"] == ["UCL/seed0/enet-wo"] and len(result["reused"]) == 2
    assert (runs / "enet-wo" / "summary.json").is_file()
    assert distilled.stat().st_mtime_ns == stamp

    # `report` on one run folder draws its figures again from its files
    for figure in ("curves.png", "overlay.png"):
        (runs / "enet-wo" / figure).unlink()
    assert report(runs / "enet-wo", echo=lines.append) == [
        runs / "enet-wo" / "curves.png",
        runs / "enet-wo" / "overlay.png",
    ]
    assert all((runs / "enet-wo" / f).stat().st_size > 0 for f in ("curves.png", "overlay.png"))
    assert lines[-1].startswith("enet-wo: Dice ")

    # the teacher's folder lost (a fresh checkout): it is trained again, to the same weights
    # on the CPU, and the student distilled from it is kept, not trained again
    recorded = json.loads(distilled.read_text(encoding="utf-8"))["teacher_weights_sha256"]
    assert recorded == network_sha256(teacher.parent)
    shutil.rmtree(teacher.parent)
    lines = []
    result = reproduce(2, **grid, echo=lines.append)
    assert result["trained"] == ["UCL/seed0/teacher-unetpp-cross-site"]
    assert "UCL/seed0/enet-ours-from-unetpp-cross-site" in result["reused"]
    assert any(line.startswith("kept   UCL/seed0/enet-ours-from-unetpp") for line in lines)
    assert distilled.stat().st_mtime_ns == stamp and network_sha256(teacher.parent) == recorded
