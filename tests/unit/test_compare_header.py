"""The report header's check that the arms of a (target, seed) share one teacher."""

from __future__ import annotations

from crossdistill.compare.arms import Arm
from crossdistill.compare.header import teacher_weights

W_O, KMM, OURS = Arm("none"), Arm("kmm"), Arm("ours", terms=("aam.stride=8",))


def _distilled(digest: str | None) -> dict:
    summary: dict = {"teacher": "t/checkpoints/best.safetensors"}
    if digest is not None:
        summary["teacher_weights_sha256"] = digest
    return summary


def test_same_teacher_per_target_and_seed_is_said_so():
    summaries = {
        (W_O, "UCL", 0): {},
        (KMM, "UCL", 0): _distilled("a" * 64),
        (OURS, "UCL", 0): _distilled("a" * 64),
        (KMM, "UCL", 1): _distilled("b" * 64),  # another seed, another teacher: fine
        (OURS, "UCL", 1): _distilled("b" * 64),
    }
    text = teacher_weights(summaries)
    assert text.startswith("one per (target, seed)")


def test_arms_distilled_from_other_weights_are_named():
    summaries = {
        (KMM, "UCL", 0): _distilled("a" * 64),
        (OURS, "UCL", 0): _distilled("c" * 64),
        (KMM, "UCL", 1): _distilled("b" * 64),
        (OURS, "UCL", 1): _distilled("b" * 64),
    }
    text = teacher_weights(summaries)
    assert text.startswith("**differ within a (target, seed)**")
    assert "S4 UCL seed 0: kmm (aaaaaaaa) vs ours[aam.stride=8] (cccccccc)" in text
    assert "seed 1" not in text


def test_runs_without_a_digest_are_counted_and_no_teacher_means_no_line():
    summaries = {(KMM, "UCL", 0): _distilled("a" * 64), (OURS, "UCL", 0): _distilled(None)}
    assert "1 run(s) record no teacher weights digest" in teacher_weights(summaries)
    assert teacher_weights({(W_O, "UCL", 0): {}}) is None
