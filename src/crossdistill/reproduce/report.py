"""``crossdistill report``: tables and figures rebuilt from stored results, no training.

For a grid folder (``crossdistill reproduce --out OUT``): every ``OUT/<stem>.grid.json``
becomes ``<stem>.md``, ``.csv``, ``.json`` and its figures (``<stem>_dice.png``; Table 3 also
``<stem>_heatmap.png``; per student ``<stem>_overlay_<student>.png``), from the runs'
``summary.json`` and checkpoints; ``table1.json`` is rendered again. For a single run folder:
its ``curves.png`` and ``overlay.png`` are drawn again and its summary returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from crossdistill.data.cache import Cache
from crossdistill.data.sites import display_name
from crossdistill.engine.loading import load_model
from crossdistill.engine.run_folder import RunFolder
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.eval.figures import plot_curves, plot_overlay
from crossdistill.reproduce.figures import plot_dice_bars, plot_heatmap, plot_overlays
from crossdistill.reproduce.record import SUFFIX, read_record, record_cells
from crossdistill.reproduce.runner import load_summaries
from crossdistill.reproduce.runs import holds_config
from crossdistill.reproduce.table1 import read_table1, write_table1
from crossdistill.reproduce.tables import aggregate, render_csv, render_markdown
from crossdistill.summary_check import checked_summary

_TITLES = {
    2: "Table 2 — students without and with distillation, per target site",
    3: "Table 3 — ablation of the distillation terms",
    4: "Table 4 — comparison with other distillation and domain-generalisation methods",
}


def current_summaries(runs_dir: Path, record: dict, ids: list[str]) -> tuple[dict, list[str]]:
    """The summaries of ``ids`` whose run folder holds the configuration the grid last asked
    for (``record["configs"]``; a record without digests trusts every summary), and the ids
    of finished runs left out because their configuration differs (stale results)."""
    summaries = load_summaries(runs_dir, ids)
    wanted = record.get("configs") or {}
    stale = []
    for run_id in list(summaries):
        if run_id not in wanted:
            continue
        if not holds_config(runs_dir / run_id, wanted[run_id]):
            stale.append(run_id)
            del summaries[run_id]
    return summaries, stale


def _header(record: dict, cells, summaries: dict, stale: list[str]) -> list[str]:
    first = record["invocations"][0]
    runs = {c.run.id for c in cells}
    seeds: dict[str, set[int]] = {}
    for c in cells:
        seeds.setdefault(c.site, set()).add(c.seed)
    counts = ", ".join(f"{display_name(site)}: {len(s)}" for site, s in seeds.items())
    method = (
        "the paper's (ours)"
        if first.method == "paper"
        else f"`{first.method}` (beside it, the paper's value for its own method)"
    )
    lines = [
        f"# {_TITLES[record['table']]}",
        "",
        f"Preset `{record['preset']}`, protocol `{first.protocol}`, method {method}. "
        "3-D Dice on the target site's test cases (largest connected component kept); "
        "cell: ours, mean ± std over seeds (paper's value, ours − paper). The paper's numbers "
        "are its Table "
        f"{record['table']}; it does not say which protocol produced them.",
        "",
        f"Seeds per site: {counts}. Runs finished: {len(runs & set(summaries))} of {len(runs)}.",
    ]
    if stale:
        shown = ", ".join(sorted(stale)[:3]) + (" …" if len(stale) > 3 else "")
        lines += [
            "",
            f"**Left out: {len(stale)} finished run(s) whose configuration is not the one this "
            f"grid last asked for** ({shown}); running the same `reproduce` command again "
            "trains them with it.",
        ]
    return lines


def write_table(out: Path, record_path: Path, overlays: bool = True) -> list[Path]:
    """Render one grid record of ``out`` from its runs' results; returns the files written."""
    record = read_record(record_path)
    stem = record_path.name[: -len(SUFFIX)]
    runs_dir = out / record.get("runs", "runs")
    cells = record_cells(record)
    summaries, stale = current_summaries(runs_dir, record, [c.run.id for c in cells])
    entries = aggregate(record["table"], cells, summaries)
    first = record["invocations"][0]
    written = [out / f"{stem}.{ext}" for ext in ("md", "csv", "json")]
    written[0].write_text(
        render_markdown(record["table"], entries, _header(record, cells, summaries, stale)),
        encoding="utf-8",
    )
    written[1].write_text(render_csv(entries), encoding="utf-8")
    written[2].write_text(
        json.dumps(
            {
                "table": record["table"],
                "preset": record["preset"],
                "protocol": first.protocol,
                "method": first.method,
                "entries": [e.record() for e in entries],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    if not summaries:
        return written
    title = f"{stem} ({record['preset']} preset, {first.protocol})"
    written.append(plot_dice_bars(entries, out / f"{stem}_dice.png", title, record["table"]))
    if record["table"] == 3:
        written.append(plot_heatmap(entries, out / f"{stem}_heatmap.png", title))
    if overlays:
        shown = [c for c in cells if c.run.id in summaries]
        for block in dict.fromkeys(c.block for c in shown if c.block != "teachers"):
            path = plot_overlays(
                [c for c in shown if c.block == block],
                runs_dir,
                out / f"{stem}_overlay_{block}.png",
                f"{stem}, {block}",
            )
            if path is not None:
                written.append(path)
    return written


def report_run(folder: Path) -> dict:
    """Redraw a run folder's ``curves.png`` and ``overlay.png``; returns its summary."""
    files = RunFolder(folder)
    try:
        summary = checked_summary(files.summary, files.read_summary())
        config = yaml.safe_load(files.config.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise InputError(folder, f"cannot read the run's results ({err})") from None
    plot_curves(files.metrics, files.curves, title=str(summary.get("name", "")))
    try:
        cache = Cache(config["data"]["cache"])
        sites, split = [str(s) for s in summary["eval_sites"]], str(config["eval"]["split"])
    except (KeyError, TypeError, CrossDistillError):
        return summary  # the cache has moved (or the folder says too little): no overlay
    model, meta = load_model(folder)
    plot_overlay(model, cache, sites, split, int(meta["model"]["in_channels"]), files.overlay)
    return summary


def report(path: str | Path, echo: Callable[[str], None] = print) -> list[Path]:
    """Rebuild what ``path`` (a grid folder or a run folder) reports; returns the files."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "folder does not exist")
    if RunFolder(path).finished():
        summary = report_run(path)
        sites = summary.get("eval_sites")
        where = f" on {', '.join(map(str, sites))}" if isinstance(sites, list) else ""
        dice = summary["dice"]
        spread = dice.get("std")
        spread = f" ± {spread:.3f}" if isinstance(spread, int | float) else ""
        echo(f"{summary.get('name', path.name)}: Dice {dice['mean']:.3f}{spread}{where}")
        return [RunFolder(path).curves, RunFolder(path).overlay]
    records = sorted(path.glob(f"*{SUFFIX}"))
    written: list[Path] = []
    if (path / "table1.json").is_file():
        written += write_table1(path, read_table1(path / "table1.json"))
    for record in records:
        written += write_table(path, record)
    if not written:
        raise InputError(
            path,
            "neither a run folder (summary.json) nor a reproduce folder "
            f"(table1.json or *{SUFFIX})",
        )
    for file in written:
        echo(f"wrote {file}")
    return written
