"""Writing a comparison: ``compare.md`` (what a reader needs, in words that match the
intervals), ``compare.csv`` (one row per difference), ``compare.json`` (everything, with every
run's values) and ``forest-<metric>.png``.

The text says "better" only where a 95 % CI lies above 0, "worse" where it lies below 0, and
"no detectable difference" otherwise (:mod:`.stats`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from crossdistill.compare.arms import Arm
from crossdistill.compare.curves import plot_val_curves
from crossdistill.compare.forest import plot_forest
from crossdistill.compare.results import (
    METRICS,
    Comparison,
    arm_values,
    comparisons,
    reliability,
    run_values,
)
from crossdistill.compare.stats import (
    BETTER,
    LEVEL,
    MIN_PAIRS_FOR_CLAIM,
    RESAMPLES,
    WORSE,
    Difference,
)

METRIC_TITLES = {
    "val": "Validation Dice on the source sites (for choosing)",
    "test": "Test Dice on the target site (looked at once, for the report)",
}


def _ci(d: Difference) -> str:
    if math.isnan(d.low):
        return "n/a"
    return f"[{d.low:+.3f}, {d.high:+.3f}]"


def _verdict(d: Difference) -> str:
    """The verdict, marked provisional below the pairs a claim needs."""
    if d.provisional and d.verdict in (BETTER, WORSE):
        return f"{d.verdict} (provisional: {d.n} < {MIN_PAIRS_FOR_CLAIM} pairs)"
    return d.verdict


def _row(comp: Comparison, where: str, d: Difference) -> str:
    return (
        f"| {comp.a} − {comp.b} | {where} | {d.mean:+.3f} | {_ci(d)} | "
        f"{d.wins}/{d.ties}/{d.losses} | {_verdict(d)} |"
    )


def _sentence(comp: Comparison) -> str:
    p = comp.pooled
    assert p is not None
    what = {
        "better": f"**{comp.a} is better than {comp.b}**",
        "worse": f"**{comp.a} is worse than {comp.b}**",
    }.get(p.verdict, f"{comp.a} and {comp.b}: {p.verdict}")
    targets = [t for t, d in comp.per_target.items() if d.verdict in ("better", "worse")]
    detail = (
        "; at single targets the CI excludes 0 at "
        + ", ".join(f"{t} ({comp.per_target[t].verdict})" for t in targets)
        if targets
        else "; at no single target does the CI exclude 0"
    )
    if p.provisional and p.verdict in (BETTER, WORSE):
        what += f" (provisional: {p.n} pairs, fewer than the {MIN_PAIRS_FOR_CLAIM} a claim needs)"
    if len(comp.per_target) == 1:
        [target] = comp.per_target
        return f"- {what}: Δ {p.mean:+.3f}, 95 % CI {_ci(p)} over {p.n} pairs, at {target} alone."
    return f"- {what}: pooled Δ {p.mean:+.3f}, 95 % CI {_ci(p)} over {p.n} pairs{detail}."


def _arm_table(labels: list[str], values: dict, targets: list[str], rel: dict) -> list[str]:
    head = "| arm | " + " | ".join(targets) + " | mean | teacher Dice where it teaches |"
    lines = [head, "|" + "---|" * (len(targets) + 3)]
    for label in labels:
        cells, means = [], []
        for t in targets:
            seeds = values.get(label, {}).get(t, {})
            if seeds:
                v = np.array(list(seeds.values()))
                cells.append(
                    f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f} ({len(v)})"
                )
                means.append(v.mean())
            else:
                cells.append("–")
        r = rel.get(label, {})
        teach = ", ".join(f"{t} {r[t]:.2f}" for t in targets if t in r) or "–"
        mean = f"{np.mean(means):.3f}" if means else "–"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} | {teach} |")
    return lines


def write_report(
    out: Path,
    arms: tuple[Arm, ...],
    summaries: Mapping[tuple[Arm, str, int], Mapping],
    header: Mapping[str, str],
    metrics: tuple[str, ...] = METRICS,
    run_ids: Mapping[tuple[Arm, str, int], str] | None = None,
    run_folders: Mapping[tuple[Arm, str, int], Path] | None = None,
    versus: tuple[tuple[str, str], ...] = (),
    targets: Sequence[str] | None = None,
) -> list[Path]:
    """Write the comparison of ``summaries`` ((arm, target, seed) → ``summary.json``) into
    ``out``; ``header`` holds the lines printed above the tables (name → text);
    ``run_folders`` (of the finished runs) give the validation curves; ``versus`` adds
    comparisons between two arms (labels) to those with w/o and with the controls;
    ``targets``: the columns of the arm tables (default: the targets with finished runs)."""
    out = Path(out)
    comps = [c for c in comparisons(arms, summaries, versus=versus) if c.metric in metrics]
    if targets is None:
        targets = list(dict.fromkeys(t for (_, t, _) in summaries))
    targets = list(targets)
    labels = [a.label for a in arms]
    rel = reliability(summaries)
    lines = ["# Paired comparison", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += [
        f"- **statistics**: per target, the mean of the paired differences over seeds with a "
        f"Student-t {LEVEL:.0%} CI; pooled, the union of a percentile bootstrap over the "
        f"(target, seed) pairs ({RESAMPLES} resamples, seed 0) and the Student-t interval of "
        "the same pairs (the bootstrap alone is too narrow for few pairs). 'better' only where "
        "the CI excludes 0; wins/ties/losses count the pairs.",
        "",
    ]
    files = []
    for metric in metrics:
        values = arm_values(summaries, metric)
        metric_comps = [c for c in comps if c.metric == metric]
        lines += [f"## {METRIC_TITLES[metric]}", ""]
        lines += ["Mean ± sd over seeds (number of seeds):", ""]
        lines += _arm_table(labels, values, targets, rel if metric == "test" else {})
        lines += ["", "| comparison | target | Δ mean | 95 % CI | wins/ties/losses | verdict |"]
        lines += ["|---|---|---|---|---|---|"]
        for comp in metric_comps:
            lines += [_row(comp, t, d) for t, d in comp.per_target.items()]
            if comp.pooled is not None and len(comp.per_target) > 1:
                lines.append(_row(comp, "**pooled**", comp.pooled))
        lines += ["", "What the intervals say:", ""]
        lines += [_sentence(c) for c in metric_comps if c.pooled is not None]
        if metric_comps:
            png = plot_forest(
                metric_comps, out / f"forest-{metric}.png", title=METRIC_TITLES[metric]
            )
            files.append(png)
            lines += ["", f"![Δ Dice, {metric}]({png.name})", ""]
    if run_folders:
        png = plot_val_curves(
            run_folders, out / "curves-val.png", "mean over seeds (range shaded); (n) = seeds"
        )
        if png is not None:
            files.append(png)
            lines += [
                "## Validation curves",
                "",
                "Whether each arm had stopped rising when training ended:",
                "",
                f"![validation Dice per epoch]({png.name})",
                "",
            ]
    md = out / "compare.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    files.insert(0, md)
    files.insert(1, _write_csv(out / "compare.csv", comps))
    files.insert(2, _write_json(out / "compare.json", comps, summaries, header, run_ids))
    return files


def _write_csv(path: Path, comps: list[Comparison]) -> Path:
    fields = ["metric", "a", "b", "target", "n", "mean", "low", "high", "wins", "ties"]
    fields += ["losses", "verdict", "ci"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for c in comps:
            rows = list(c.per_target.items()) + ([("pooled", c.pooled)] if c.pooled else [])
            for target, d in rows:
                numbers = [f"{d.mean:.6f}", f"{d.low:.6f}", f"{d.high:.6f}"]
                counts = [d.wins, d.ties, d.losses]
                writer.writerow(
                    [c.metric, c.a, c.b, target, d.n, *numbers, *counts, d.verdict, d.method]
                )
    return path


def _write_json(path, comps, summaries, header, run_ids) -> Path:
    runs = [
        {
            "arm": arm.label,
            "target": target,
            "seed": seed,
            "id": (run_ids or {}).get((arm, target, seed)),
            **run_values(s),
            "teacher_reliability": (s.get("teacher_reliability") or {}).get("dice", {}).get("mean"),
            "control": s.get("control"),
            "seconds": s.get("seconds"),
        }
        for (arm, target, seed), s in summaries.items()
    ]
    payload = {
        "header": dict(header),
        "comparisons": [
            {
                "a": c.a,
                "b": c.b,
                "metric": c.metric,
                "per_target": {t: d.as_dict() for t, d in c.per_target.items()},
                "pooled": c.pooled.as_dict() if c.pooled else None,
            }
            for c in comps
        ],
        "runs": runs,
    }
    path.write_text(json.dumps(payload, indent=1, allow_nan=True), encoding="utf-8")
    return path
