"""``crossdistill demo``: the whole method on the embedded synthetic sites, in minutes on a CPU.

synthetic sites → cache (128² slices; 64² with ``--quick``) → on the target site k's test
cases, both protocols of docs/design.md §6:

=====================  ==========================================  =====================
key                    what                                        trained on
=====================  ==========================================  =====================
``teacher``            UNet++ teacher (cross-site)                 k
``student_wo``         ENet without distillation (w/o)             the other sites
``student_w``          ENet distilled from ``teacher`` ("ours")    the other sites
``loso_teacher``       UNet++ teacher (leave-one-site-out)         the other sites
``student_w_loso``     ENet distilled from ``loso_teacher``        the other sites
``student_in_domain``  ENet trained on the target site itself      k
``student_w_rec``      ENet distilled from ``teacher``, the        the other sites
                       project's ``recommended`` preset
=====================  ==========================================  =====================

The recommended preset under leave-one-site-out is left out to keep the demo under 10
minutes on two cores (``benchmarks/baselines.py`` runs it). Writes ``OUT/results.json``,
``OUT/report.md`` and ``OUT/dice_bars.png``; every run keeps its own folder (curves,
overlays, checkpoints) under ``OUT/runs``. A finished run with the same configuration is
reused when the demo is run again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossdistill.atomic import write_text_atomic
from crossdistill.config import RunConfig, load_config
from crossdistill.data.sites import display_name, resolve_site
from crossdistill.errors import ConfigError
from crossdistill.eval.figures import plot_dice_bars
from crossdistill.log_finished import log_finished_run
from crossdistill.reproduce import runs as grid_runs
from crossdistill.reproduce.data import synthetic_cache
from crossdistill.reproduce.presets import DEMO_SCALE, PRESETS, Scale
from crossdistill.reproduce.runner import grid_tracking
from crossdistill.reproduce.runs import finished_summary, train_or_reuse
from crossdistill.tracking import require_backend


@dataclass(frozen=True)
class DemoRun:
    """One run of the demo."""

    key: str
    label: str
    role: str
    protocol: str
    model: str
    preset: str = "none"
    teacher: str | None = None


PLAN: tuple[DemoRun, ...] = (
    DemoRun("teacher", "UNet++ teacher, cross-site", "teacher", "cross-site", "unetpp"),
    DemoRun("student_wo", "ENet w/o distillation", "student", "cross-site", "enet"),
    DemoRun(
        "student_w",
        "ENet w/ (ours), cross-site",
        "student",
        "cross-site",
        "enet",
        "ours",
        "teacher",
    ),
    DemoRun(
        "loso_teacher",
        "UNet++ teacher, leave-one-site-out",
        "teacher",
        "leave-one-site-out",
        "unetpp",
    ),
    DemoRun(
        "student_w_loso",
        "ENet w/ (ours), leave-one-site-out",
        "student",
        "leave-one-site-out",
        "enet",
        "ours",
        "loso_teacher",
    ),
    DemoRun(
        "student_in_domain", "ENet trained on the target site", "teacher", "cross-site", "enet"
    ),
    DemoRun(
        "student_w_rec",
        "ENet w/ (recommended), cross-site",
        "student",
        "cross-site",
        "enet",
        "recommended",
        "teacher",
    ),
)
#: The distilled students, each judged against w/o.
DISTILLED = tuple(run.key for run in PLAN if run.preset != "none")

#: Per model: width and epochs in the full demo (the ``demo`` preset of ``crossdistill
#: reproduce``) and in ``--quick``; an epoch is 25 steps of 8 slices. The data and its case
#: splits stay fixed (``crossdistill.reproduce.data.DATA_SEED``); ``seed`` varies training
#: (initialisation, order, augmentation).
SCALE = {
    False: {"unetpp": DEMO_SCALE["unetpp"], "enet": DEMO_SCALE["enet"]},
    True: {"unetpp": Scale(0.0625, 4, lr_cycles=1), "enet": Scale(0.5, 4, lr_cycles=1)},
}
#: In-plane size of the cached slices: the quick demo trains on 64² slices (4× cheaper).
CACHE_SIZE = {False: 128, True: 64}
#: The sd over seeds of (recommended − w/o) test Dice at one target of the demo scale: median
#: 0.14 over the six targets (0.05–0.38) of the three-seed study in docs/results/study-h100.jsonl.
SEED_SPREAD = (0.14, "median over six targets of the three-seed demo study")
QUICK_NOTE = (
    "Quick mode shows the pipeline running end to end: 64² slices and 4 epochs leave every "
    "student undertrained, so these numbers say nothing about the methods."
)


#: Keys that the demo sets from its own options and its plan; ``--set`` may not change them.
DEMO_KEYS = (
    "name",
    "output",
    "seed",
    "target",
    "role",
    "protocol",
    "data.cache",
    "model.name",
    "distill.preset",
    "distill.teacher",
)


def check_overrides(overrides: Sequence[str]) -> None:
    """Refuse a ``--set`` of a key in :data:`DEMO_KEYS` (or a section holding one).

    Raises:
        ConfigError: naming the key.
    """
    for text in overrides:
        key = text.partition("=")[0].strip()
        if any(k == key or k.startswith(key + ".") for k in DEMO_KEYS):
            raise ConfigError(
                key,
                "the demo sets this key itself (see --out, --target, --seed; "
                "`crossdistill train` runs any configuration)",
            )


def run_config(
    base: RunConfig,
    run: DemoRun,
    runs_dir: Path,
    quick: bool,
    overrides: Sequence[str] = (),
    tracking: dict | None = None,
) -> RunConfig:
    """The configuration of one demo run: the demo preset with the run's fields, then
    ``overrides`` (``--set``) and the ``tracking`` section (``--tracking``)."""
    return grid_runs.run_config(
        base,
        name=run.key,
        output=base.output,
        role=run.role,
        protocol=run.protocol,
        model=run.model,
        scale=SCALE[quick][run.model],
        preset=run.preset,
        teacher=runs_dir / run.teacher if run.teacher else None,
        overrides=tuple(overrides),
        tracking=tracking,
    )


def run_demo(
    out: str | Path = "runs/demo",
    target: str = "S4",
    quick: bool = False,
    seed: int = 0,
    echo: Callable[[str], None] = print,
    overrides: Sequence[str] = (),
) -> dict:
    """Run the demo; returns the content of ``results.json``.

    ``overrides`` (``key.sub=value``, e.g. ``device=cuda``, ``tracking.backend=mlflow``) apply
    to every run; they are checked before any work (:func:`check_overrides`, the config's
    keys, a tracker's package). A tracked demo logs to ``tracking.uri`` (default
    ``sqlite:///OUT/mlflow.db``), experiment ``demo``, each run tagged with its target and
    seed; a run reused from an earlier demo is logged once, when the store does not hold it.
    """
    start = time.perf_counter()
    out = Path(out)
    overrides = list(overrides)
    check_overrides(overrides)
    require_backend(load_config("demo", overrides).tracking.backend)  # names a bad key
    prepared = synthetic_cache(out, CACHE_SIZE[quick], echo)
    cache_dir = prepared.cache
    echo(
        f"cache: {prepared.cache} ({prepared.slices} slices, "
        f"{'reused' if prepared.reused else 'new'})"
    )
    folder = resolve_site(target, list(prepared.sites))
    runs_dir = out / ("runs-quick" if quick else "runs") / f"{folder}-seed{seed}"
    base = load_config(
        "demo",
        [f"data.cache={cache_dir}", f"output={runs_dir}", f"seed={seed}", f"target={folder}"],
    )
    tags = {"target": folder, "seed": str(seed)}
    tracking = grid_tracking(PRESETS["demo"], overrides, out, "demo", tags)
    summaries: dict[str, dict] = {}
    for run in PLAN:
        cfg = run_config(base, run, runs_dir, quick, overrides, tracking)
        summary = finished_summary(cfg)
        if summary is None:
            echo(f"[{run.key}] {run.label}")
            summary = train_or_reuse(cfg, progress=True)  # an interrupted run resumes
        else:
            logged = " (logged to the tracker)" if log_finished_run(cfg) else ""
            echo(f"[{run.key}] reused {runs_dir / run.key}{logged}")
        summaries[run.key] = summary
    results = demo_results(summaries, folder, seed, quick, time.perf_counter() - start)
    # OUT/results.json is the latest demo; each target and seed keeps its own copy too.
    for folder_out in (out, runs_dir):
        write_text_atomic(folder_out / "results.json", json.dumps(results, indent=1))
    plot_dice_bars(
        {PLAN_BY_KEY[k].label: s for k, s in summaries.items()},
        out / "dice_bars.png",
        title=f"target {display_name(folder)}: 3-D Dice per test case",
    )
    write_text_atomic(out / "report.md", render_report(results, runs_dir, out))
    echo(render_table(results))
    echo(
        f"report: {out / 'report.md'}  results: {out / 'results.json'}  "
        f"({results['seconds']:.0f} s)"
    )
    return results


PLAN_BY_KEY = {run.key: run for run in PLAN}


def demo_results(
    summaries: dict[str, dict], target: str, seed: int, quick: bool, seconds: float
) -> dict:
    """``results.json``: per run its per-case Dice and mean, and for distilled students the
    teacher's reliability and each loss term at the start and end of training."""
    results: dict = {
        "target": target,
        "seed": seed,
        "quick": quick,
        "seconds": round(seconds, 1),  # this invocation (finished runs are reused)
        "train_seconds": round(sum(s["seconds"] for s in summaries.values()), 1),
    }
    for key, s in summaries.items():
        entry = {
            "label": PLAN_BY_KEY[key].label,
            "protocol": s["protocol"],
            "model": s["model"]["name"],
            "train_sites": s["train_sites"],
            "per_case_dice": s["per_case_dice"],
            "mean": s["dice"]["mean"],
            "std": s["dice"]["std"],
        }
        if "teacher_reliability" in s:
            entry["teacher_reliability"] = s["teacher_reliability"]
            entry["loss_terms"] = s["loss_terms"]
        results[key] = entry
    return results


def _verdicts(results: dict) -> list[str]:
    wo = results["student_wo"]["mean"]
    lines = []
    if results.get("quick"):
        lines.append(f"- {QUICK_NOTE}")
    for key in (k for k in DISTILLED if k in results):
        delta = results[key]["mean"] - wo
        lines.append(f"- {results[key]['label']}: {delta:+.3f} Dice against w/o (this one seed).")
    spread, source = SEED_SPREAD
    lines.append(
        f"- One seed decides nothing: a paired difference like these varies by ±{spread:.2f} "
        f"(sd) between seeds ({source}); `crossdistill compare` measures it over paired seeds "
        "with a 95 % CI."
    )
    gap = results["student_in_domain"]["mean"] - wo
    lines.append(
        f"- Site shift: the student trained on the target site scores {gap:+.3f} Dice against the "
        "one trained on the other sites (w/o), this seed."
    )
    return lines


def render_table(results: dict) -> str:
    """A plain-text table of the demo's rows."""
    rows = [f"{'run':<42} {'Dice':>13}  teacher Dice on student images"]
    for key in (k for k in PLAN_BY_KEY if k in results):
        r = results[key]
        reliability = r.get("teacher_reliability", {}).get("dice", {}).get("mean")
        rel = f"{reliability:.3f}" if reliability is not None else ""
        rows.append(f"{r['label']:<42} {r['mean']:.3f} ± {r['std']:.3f}  {rel}")
    return "\n".join([*rows, "", *_verdicts(results)])


def render_report(results: dict, runs_dir: Path, out: Path) -> str:
    """``report.md``: the table, the verdicts, loss terms and links to the figures."""
    lines = [
        f"# crossdistill demo — target {display_name(results['target'])}, seed {results['seed']}",
        "",
        f"{'Quick' if results['quick'] else 'Full'} demo: {results['train_seconds']:.0f} s of "
        f"training and evaluation ({results['seconds']:.0f} s in the last invocation). "
        "3-D Dice per test case of the target site (mean ± std).",
        "",
        "| run | protocol | trained on | Dice | teacher Dice on the student's training images |",
        "|---|---|---|---|---|",
    ]
    for key in (k for k in PLAN_BY_KEY if k in results):
        r = results[key]
        rel = r.get("teacher_reliability", {}).get("dice", {}).get("mean")
        lines.append(
            f"| {r['label']} | {r['protocol']} | {', '.join(r['train_sites'])} | "
            f"{r['mean']:.3f} ± {r['std']:.3f} | {'' if rel is None else f'{rel:.3f}'} |"
        )
    lines += ["", *_verdicts(results), "", "## Loss terms of the distilled students", ""]
    lines += [
        "| run | term | start (weighted) | end (weighted) | start (raw) | end (raw) |",
        "|---|---|---|---|---|---|",
    ]
    for key in (k for k in DISTILLED if k in results):
        terms = results[key]["loss_terms"]
        for term in (k for k in terms["end"] if not k.startswith("raw/") and k != "total"):
            lines.append(
                f"| {key} | {term} | {terms['start'].get(term, float('nan')):.4f} | "
                f"{terms['end'][term]:.4f} | "
                f"{terms['start'].get('raw/' + term, float('nan')):.4f} | "
                f"{terms['end'].get('raw/' + term, float('nan')):.4f} |"
            )
    rel = runs_dir.relative_to(out) if runs_dir.is_relative_to(out) else runs_dir
    lines += ["", "## Figures", "", "![Dice per method](dice_bars.png)", ""]
    for key in (k for k in PLAN_BY_KEY if k in results):
        lines.append(
            f"- {results[key]['label']}: [curves]({rel}/{key}/curves.png), "
            f"[overlay]({rel}/{key}/overlay.png)"
        )
    return "\n".join(lines) + "\n"
