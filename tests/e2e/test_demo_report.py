"""The demo's results.json, table and report from given run summaries."""

from __future__ import annotations

from pathlib import Path

from crossdistill.demo import PLAN, demo_results, render_report, render_table


def _summary(key: str, dice: list[float], teacher: bool) -> dict:
    summary = {
        "protocol": "cross-site",
        "model": {"name": "enet"},
        "train_sites": ["HK"],
        "per_case_dice": {f"UCL/Case0{i}": d for i, d in enumerate(dice)},
        "dice": {"mean": sum(dice) / len(dice), "std": 0.0},
        "seconds": 10.0,
    }
    if teacher:
        summary["teacher_reliability"] = {"dice": {"mean": 0.42}}
        summary["loss_terms"] = {
            "start": {"seg": 0.7, "aam": 2.0, "raw/seg": 0.7, "raw/aam": 2.2, "total": 2.7},
            "end": {"seg": 0.3, "aam": 0.8, "raw/seg": 0.3, "raw/aam": 0.9, "total": 1.1},
        }
    return summary


def test_results_table_and_verdicts():
    dice = {
        "teacher": [0.9, 0.8],
        "student_wo": [0.8, 0.8],
        "student_w": [0.1, 0.1],
        "loso_teacher": [0.85, 0.85],
        "student_w_loso": [0.803, 0.803],
        "student_in_domain": [0.9, 0.9],
        "student_w_rec": [0.85, 0.85],
    }
    summaries = {run.key: _summary(run.key, dice[run.key], run.teacher is not None) for run in PLAN}
    results = demo_results(summaries, "UCL", seed=3, quick=False, seconds=5.0)
    assert results["student_w"]["teacher_reliability"]["dice"]["mean"] == 0.42
    assert "teacher_reliability" not in results["student_wo"]
    assert results["train_seconds"] == 70.0
    table = render_table(results)
    assert "ENet w/ (ours), cross-site: -0.700 Dice against w/o (this one seed)." in table
    assert "(recommended), cross-site: +0.050 Dice against w/o (this one seed)." in table
    assert "One seed decides nothing" in table and "raised" not in table
    assert "+0.100 Dice" in table  # in-domain against w/o
    assert "Quick mode" not in table
    quick = render_table(demo_results(summaries, "UCL", seed=3, quick=True, seconds=5.0))
    assert "Quick mode shows the pipeline running" in quick
    report = render_report(results, Path("out/runs/UCL-seed3"), Path("out"))
    assert "| student_w | aam | 2.0000 | 0.8000 | 2.2000 | 0.9000 |" in report
    assert "runs/UCL-seed3/student_w/overlay.png" in report
