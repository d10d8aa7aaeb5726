"""What a grid folder remembers: per table, the options of every invocation that ran into it.

``OUT/<stem>.grid.json`` (``stem`` = ``table2``, ``table2-leave-one-site-out``,
``table4-recommended`` …) holds the table, the preset and the list of
:class:`~crossdistill.reproduce.grid.GridOptions` given so far. A table is the union of their
cells, so ``--seeds 1`` over all sites and then ``--sites S4 --seeds 3`` into the same folder
make one table with three seeds at S4. The runs are found by id under ``OUT/runs``, and
``configs`` maps each run id to the digest of the configuration the last invocation asked
for (:func:`~crossdistill.reproduce.runs.config_digest`), so that a report can tell a
finished run from one left over from other settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from crossdistill.data.sites import PAPER_FOLDERS
from crossdistill.errors import CrossDistillError, InputError
from crossdistill.reproduce.grid import Cell, GridOptions, build_grid, check_options

SUFFIX = ".grid.json"
RUNS = "runs"


def table_stem(table: int, protocol: str, method: str) -> str:
    """``table2``, with ``-leave-one-site-out`` and ``-recommended`` where they apply."""
    stem = f"table{table}"
    if protocol != "cross-site":
        stem += f"-{protocol}"
    if method != "paper":
        stem += f"-{method}"
    return stem


#: The type of each field of an invocation as a record stores it (tuples as lists).
_FIELDS = {
    "table": int,
    "sites": (list, str),
    "seeds": (list, int),
    "protocol": str,
    "method": str,
    "students": (list, str),
    "teachers": (list, str),
}


def read_record(path: Path) -> dict:
    """A ``.grid.json`` file; its ``invocations`` as :class:`GridOptions`, each checked as
    ``reproduce`` checks its options.

    Raises:
        InputError: naming the file and what is wrong with it (a record edited by hand, cut
            short or forged fails here, not deep inside a report).
    """
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        if not isinstance(record.get("preset"), str):
            raise ValueError("no preset name")
        if not isinstance(record.setdefault("configs", {}), dict):
            raise ValueError("configs is not a mapping")
        if not isinstance(record["invocations"], list) or not record["invocations"]:
            raise ValueError("no invocations")
        record["invocations"] = [_invocation(o) for o in record["invocations"]]
    except KeyError as err:
        raise InputError(path, f"not a grid record (no key {err})") from None
    except (OSError, ValueError, TypeError, CrossDistillError) as err:
        raise InputError(path, f"not a grid record ({err})") from None
    return record


def _invocation(stored: dict) -> GridOptions:
    """One stored invocation, its fields' types and values checked."""
    if not isinstance(stored, dict):
        raise ValueError(f"an invocation is not an object: {stored!r}")
    for key, value in stored.items():
        kind = _FIELDS.get(key)
        if kind is None:
            raise ValueError(f"unknown invocation field '{key}'")
        outer, inner = kind if isinstance(kind, tuple) else (kind, None)
        ok = isinstance(value, outer) and not isinstance(value, bool)
        if ok and inner is not None:
            ok = all(isinstance(v, inner) and not isinstance(v, bool) for v in value)
        if not ok:
            raise ValueError(f"invocation field '{key}' holds {value!r}")
    options = GridOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
    check_options(options)
    return options


def check_preset(out: Path, preset: str) -> None:
    """Refuse to mix presets in one grid folder (their runs would be trained again at the
    other scale, over the finished ones)."""
    for other in Path(out).glob(f"*{SUFFIX}"):
        found = read_record(other)["preset"]
        if found != preset:
            raise CrossDistillError(
                f"--out: {out} holds grids of the '{found}' preset; "
                f"use another folder for the '{preset}' preset"
            )


def add_invocation(
    out: Path, options: GridOptions, preset: str, configs: dict[str, str] | None = None
) -> Path:
    """Record ``options`` in ``out``'s grid file of this table (created if needed), with the
    configuration digests of its runs (``configs``: run id → digest; they replace earlier
    digests of the same runs)."""
    check_preset(out, preset)
    path = out / (table_stem(options.table, options.protocol, options.method) + SUFFIX)
    previous = read_record(path) if path.is_file() else {"invocations": [], "configs": {}}
    invocations = previous["invocations"]
    if options not in invocations:
        invocations.append(options)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "table": options.table,
        "preset": preset,
        "runs": RUNS,
        "invocations": [asdict(o) for o in invocations],
        "configs": {**previous.get("configs", {}), **(configs or {})},
    }
    path.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return path


def record_cells(record: dict) -> list[Cell]:
    """The union of the cells of every invocation, each (block, row, site, seed) once."""
    cells: dict[tuple, Cell] = {}
    for options in record["invocations"]:
        for cell in build_grid(options).cells:
            cells.setdefault((cell.block, cell.row, cell.site, cell.seed), cell)
    return sorted(cells.values(), key=_order(list(cells.values())))


def _order(cells: list[Cell]):
    """Blocks and rows in first-seen order, sites in the paper's order, then seeds."""
    blocks = {b: i for i, b in enumerate(dict.fromkeys(c.block for c in cells))}
    rows = {r: i for i, r in enumerate(dict.fromkeys((c.block, c.row) for c in cells))}
    papers = {f: i for i, f in enumerate(PAPER_FOLDERS)}

    def key(c: Cell) -> tuple:
        return (
            blocks[c.block],
            rows[(c.block, c.row)],
            papers.get(c.site, len(papers)),
            c.site,
            c.seed,
        )

    return key
