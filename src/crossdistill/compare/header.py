"""The header of a comparison's report: the networks and their parameter ratio, what was run,
where, and for how long (docs/design.md §3, ``crossdistill compare``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crossdistill.compare.arms import Arm, CompareOptions, shared_runs
from crossdistill.data.sites import display_name
from crossdistill.models import create_model


def parameter_count(name: str, width: float) -> int:
    """Parameters of network ``name`` at ``width`` (1 input channel, 2 classes)."""
    return sum(p.numel() for p in create_model(name, 1, 2, width).parameters())


def _networks(plan: dict, summaries: Mapping) -> dict[str, dict]:
    """Student and teacher as trained (``--set model.width=…`` included), else as planned."""
    models = {role: dict(v) for role, v in plan["models"].items()}
    for summary in summaries.values():
        if summary.get("model") is not None:
            models["student"]["width"] = summary["model"]["width"]
        if summary.get("epochs") is not None:
            models["student"]["epochs"] = summary["epochs"]
        if summary.get("teacher_model") is not None:
            models["teacher"]["width"] = summary["teacher_model"]["width"]
            break
    return models


def concerns(invocation: Mapping, o: CompareOptions) -> bool:
    """Whether ``invocation`` may have trained runs of the comparison ``o``: it ran ``o``'s
    student and teacher at one of ``o``'s targets. One recorded without those keys (before
    they existed) counts."""
    if "targets" not in invocation:
        return True
    return (invocation["student"], invocation["teacher"]) == (o.student, o.teacher) and bool(
        set(invocation["targets"]) & set(o.targets)
    )


def _commands(invocations: Sequence[Mapping]) -> str:
    """Each distinct command once, in order of first use, with the dates it was run."""
    dates: dict[str, list[str]] = {}
    for invocation in invocations:
        dates.setdefault(invocation["command"], []).append(invocation["date"])
    return "; ".join(f"`{command}` ({', '.join(when)})" for command, when in dates.items())


def teacher_weights(summaries: Mapping[tuple[Arm, str, int], Mapping]) -> str | None:
    """Whether the distilled arms of each (target, seed) were distilled from the same teacher
    weights (``teacher_weights_sha256`` of their summaries); ``None`` without distilled runs.

    Arms of one (target, seed) distilled from different weights (a teacher trained again, on
    another CPU, between their runs) are named: their difference is not the method's alone.
    """
    digests: dict[tuple[str, int], dict[str, list[str]]] = {}
    unrecorded = 0
    for (arm, target, seed), summary in summaries.items():
        if summary.get("teacher") is None:
            continue
        digest = summary.get("teacher_weights_sha256")
        if not isinstance(digest, str):
            unrecorded += 1
            continue
        digests.setdefault((target, seed), {}).setdefault(digest, []).append(arm.label)
    if not digests and not unrecorded:
        return None
    mixed = [
        f"{display_name(target)} seed {seed}: "
        + " vs ".join(f"{', '.join(sorted(arms))} ({d[:8]})" for d, arms in by_digest.items())
        for (target, seed), by_digest in sorted(digests.items())
        if len(by_digest) > 1
    ]
    if mixed:
        text = (
            "**differ within a (target, seed)**, so those differences mix the teacher with the "
            "method: " + "; ".join(mixed)
        )
    else:
        text = "one per (target, seed): every distilled arm records the same teacher weights"
    if unrecorded:
        text += f" ({unrecorded} run(s) record no teacher weights digest, not checked)"
    return text


def report_header(plan: dict, summaries: Mapping, total: int, by_run: Mapping) -> dict[str, str]:
    """The report's header; ``by_run``: the finished summaries by run id (a run that two arms
    report counts once in the training time)."""
    o: CompareOptions = plan["options"]
    m = _networks(plan, summaries)
    finished = len(summaries)
    params = {role: parameter_count(v["name"], v["width"]) for role, v in m.items()}
    ratio = params["teacher"] / params["student"]
    recorded = plan.get("invocations", [])
    invocations = [i for i in recorded if concerns(i, o)]
    header = {
        "networks": (
            f"student {m['student']['name']} (width {m['student']['width']:g}, "
            f"{params['student'] / 1e6:.3f} M parameters, {m['student']['epochs']} epochs), "
            f"teacher {m['teacher']['name']} (width {m['teacher']['width']:g}, "
            f"{params['teacher'] / 1e6:.3f} M, {m['teacher']['epochs']} epochs); "
            f"teacher/student parameter ratio **{ratio:.1f}×**"
        ),
        "protocol": o.protocol,
        "targets": ", ".join(display_name(t) for t in o.targets),
        "seeds": f"{len(o.seeds)} ({', '.join(map(str, o.seeds))}), paired: every arm of a "
        "(target, seed) has the same data, split and seed",
        "preset": f"{plan['preset']}; data {plan['data']}"
        + (f"; overrides {' '.join(plan['overrides'])}" if plan.get("overrides") else ""),
        "runs": f"{finished} of {total} finished with the asked configuration",
        "held-out data": "settings are chosen on the source sites' validation Dice only; "
        "the target sites' test cases are for this report",
    }
    weights = teacher_weights(summaries)
    if weights is not None:
        header["teacher weights"] = weights
    shared = shared_runs(o)
    if shared:
        header["shared runs"] = "; ".join(
            f"{arm} reports the runs of {other} (no term reads the teacher's logits, the only "
            "thing in which the ground-truth control differs from the untrained one)"
            for arm, other in shared.items()
        )
    seconds = sum(float(s.get("seconds") or 0) for s in by_run.values())
    header["training time"] = (
        f"{seconds / 3600:.2f} h summed over the {len(by_run)} finished student runs (their "
        "own timers; teachers not included)"
    )
    if invocations:
        header["commands"] = _commands(invocations)
        header["machine"] = invocations[-1]["machine"]
        header["wall time"] = _wall_time(invocations)
        others = len(recorded) - len(invocations)
        if others:
            header["commands"] += (
                f" ({others} other invocation(s) on this folder, of other networks or targets, "
                "not listed)"
            )
    return header


def _wall_time(invocations: Sequence[Mapping[str, Any]]) -> str:
    """The invocations' wall time. One stopped before the end (``wall_s`` null) counts until
    its latest finished run where that was recorded (``last_run_s``): a lower bound."""
    ended = [i for i in invocations if i.get("wall_s") is not None]
    text = f"{sum(i['wall_s'] for i in ended) / 60:.1f} min over {len(ended)} invocation(s)"
    stopped = [i for i in invocations if i.get("wall_s") is None]
    if not stopped:
        return text
    timed = [i["last_run_s"] for i in stopped if i.get("last_run_s") is not None]
    untimed = len(stopped) - len(timed)
    if not timed:
        return f"{text} (and {untimed} stopped before the end, not counted)"
    return (
        f"{text}, and {len(stopped)} stopped before the end: at least {sum(timed) / 60:.1f} min, "
        "each counted until its last finished run"
        + (f" ({untimed} without a finished run recorded, not counted)" if untimed else "")
    )
