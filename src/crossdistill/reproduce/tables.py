"""Tables 2–4 from run summaries: ours (mean ± std over seeds) beside the paper's numbers.

For every cell (block, row, target site) ``ours`` is the mean over seeds of the run's 3-D
Dice on the target's test cases (itself the mean over cases), with the sample standard
deviation over seeds (``n ≥ 2``); ``diff = ours − paper``. The ``mean`` column averages the
per-site means over the sites that have a result, and the paper's numbers over the same
sites. Beside every distilled student: the teacher's Dice on the student's training images
(its reliability where it teaches), mean over seeds.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict, dataclass

from crossdistill.data.sites import display_name
from crossdistill.paper import MODEL_LABELS
from crossdistill.reproduce.grid import Cell
from crossdistill.reproduce.paper_numbers import paper_value, site_label

MEAN = "mean"  # the site column of the averages


@dataclass(frozen=True)
class Entry:
    """One cell of a table, aggregated over seeds."""

    block: str
    row: str
    label: str
    site: str  # a site folder, or MEAN
    dice: tuple[float, ...]  # per seed (or, for MEAN, per site)
    seeds: tuple[int, ...]
    reliability: tuple[float, ...]
    paper: float | None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.dice) if self.dice else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.dice) if len(self.dice) >= 2 and self.site != MEAN else None

    @property
    def diff(self) -> float | None:
        return None if self.mean is None or self.paper is None else self.mean - self.paper

    @property
    def teacher_reliability(self) -> float | None:
        return statistics.fmean(self.reliability) if self.reliability else None

    def record(self) -> dict:
        """JSON/CSV fields."""
        fields = asdict(self)
        fields.update(
            site_label=site_label(self.site) if self.site != MEAN else MEAN,
            n=len(self.dice),
            mean=self.mean,
            std=self.std,
            diff=self.diff,
            teacher_reliability=self.teacher_reliability,
        )
        return fields


def aggregate(table: int, cells: list[Cell], summaries: dict[str, dict]) -> list[Entry]:
    """Per (block, row, site) the seeds' Dice; then per (block, row) the mean over sites."""
    groups: dict[tuple[str, str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.block, cell.row, cell.site), []).append(cell)
    entries = []
    for (block, row, site), group in groups.items():
        done = [(c, summaries[c.run.id]) for c in group if c.run.id in summaries]
        reliability = [
            s["teacher_reliability"]["dice"]["mean"] for _, s in done if "teacher_reliability" in s
        ]
        entries.append(
            Entry(
                block,
                row,
                group[0].label,
                site,
                tuple(s["dice"]["mean"] for _, s in done),
                tuple(c.seed for c, _ in done),
                tuple(reliability),
                paper_value(table, block, row, site),
            )
        )
    return entries + _averages(entries)


def _averages(entries: list[Entry]) -> list[Entry]:
    out = []
    rows: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        rows.setdefault((e.block, e.row), []).append(e)
    for (block, row), group in rows.items():
        have = [e for e in group if e.mean is not None]
        papers = [e.paper for e in have]
        out.append(
            Entry(
                block,
                row,
                group[0].label,
                MEAN,
                tuple(e.mean for e in have),
                (),
                tuple(e.teacher_reliability for e in have if e.teacher_reliability is not None),
                statistics.fmean(papers) if papers and None not in papers else None,
            )
        )
    return out


def format_cell(e: Entry | None) -> str:
    """``0.812 ± 0.010 (paper 0.810, +0.002)``; ``–`` for a cell with no finished run."""
    if e is None or e.mean is None:
        return "–"
    text = f"{e.mean:.3f}" + (f" ± {e.std:.3f}" if e.std is not None else "")
    if e.paper is not None:
        text += f" (paper {e.paper:.3f}, {e.diff:+.3f})"
    return text


def block_title(table: int, block: str) -> str:
    """``Teachers``, ``ENet students`` (Table 2) or ``ENet``."""
    if block == "teachers":
        return "Teachers"
    name = MODEL_LABELS.get(block, block)
    return f"{name} students" if table == 2 else f"{name}"


def render_markdown(table: int, entries: list[Entry], header: list[str]) -> str:
    """The table as Markdown: ``header`` lines, then one table per block (rows × sites)."""
    sites = list(dict.fromkeys(e.site for e in entries if e.site != MEAN))
    index = {(e.block, e.row, e.site): e for e in entries}
    lines = [*header, ""]
    for block in dict.fromkeys(e.block for e in entries):
        rows = list(dict.fromkeys((e.row, e.label) for e in entries if e.block == block))
        lines += [f"## {block_title(table, block)}", ""]
        lines.append("| | " + " | ".join(display_name(s) for s in sites) + " | mean |")
        lines.append("|---" * (len(sites) + 2) + "|")
        for row, label in rows:
            cells = [format_cell(index.get((block, row, s))) for s in [*sites, MEAN]]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        reliable = [
            (row, label)
            for row, label in rows
            if any(index.get((block, row, s)) and index[(block, row, s)].reliability for s in sites)
        ]
        if reliable:
            lines.append("Teacher's Dice on the student's training images (mean over seeds):")
            lines.append("")
            lines.append("| | " + " | ".join(display_name(s) for s in sites) + " | mean |")
            lines.append("|---" * (len(sites) + 2) + "|")
            for row, label in reliable:
                values = [index.get((block, row, s)) for s in [*sites, MEAN]]
                lines.append(
                    f"| {label} | "
                    + " | ".join(
                        f"{v.teacher_reliability:.3f}"
                        if v and v.teacher_reliability is not None
                        else "–"
                        for v in values
                    )
                    + " |"
                )
            lines.append("")
    return "\n".join(lines)


CSV_FIELDS = (
    "block",
    "row",
    "label",
    "site",
    "site_label",
    "n",
    "mean",
    "std",
    "paper",
    "diff",
    "teacher_reliability",
    "seeds",
    "dice",
)


def render_csv(entries: list[Entry]) -> str:
    """One line per cell and per row average (``site`` = ``mean``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for e in entries:
        record = e.record()
        record["seeds"] = ";".join(map(str, e.seeds))
        record["dice"] = ";".join(f"{d:.4f}" for d in e.dice)
        for key in ("mean", "std", "paper", "diff", "teacher_reliability"):
            record[key] = "" if record[key] is None else f"{record[key]:.4f}"
        writer.writerow(record)
    return buffer.getvalue()
