"""The paper's Tables 2–4 as grids of runs: what is trained, once, and which cell shows it.

A :class:`RunSpec` is one training run, named by what it is — target site, seed, network,
role, protocol, distillation preset or training method, teacher — never by its position, so
its id (``UCL/seed0/enet-ours-from-deeplabv3plus-cross-site``) is the same in every grid and
every table that needs it: Table 3's full row and Table 2's "ENet w/ DeepLabV3+" are one
run, and the N students distilled from one teacher all depend on that one teacher run. A
:class:`Cell` places a run in a table (block, row, site, seed).

Protocols (docs/design.md §6), for target site k: a teacher is trained on k (``cross-site``) or on
the other sites (``leave-one-site-out``); every student is trained on the other sites and
every run is evaluated on k's test cases. A student without a teacher (w/o, SAML, DRDG) is
therefore the same run under both protocols and its id names no protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crossdistill.errors import CrossDistillError
from crossdistill.paper import MODEL_LABELS

TABLES = (1, 2, 3, 4)
PROTOCOLS = ("cross-site", "leave-one-site-out")
#: ``--method``: the preset of the distilled rows.
METHODS = {"paper": "ours", "recommended": "recommended"}
#: Table 3's rows after the teacher and w/o: the ablation presets (``ours`` = all three terms).
ABLATION = ("lm", "aam", "kmm", "kmm+lm", "aam+lm", "aam+kmm", "ours")
#: Table 4's comparison methods: distillation presets, then teacherless training methods.
KD_BASELINES = ("kd", "at", "mskd", "emkd")
DG_BASELINES = ("saml", "drdg")


@dataclass(frozen=True)
class RunSpec:
    """One training run of a grid (a teacher, or a student with or without a teacher)."""

    site: str  # target site folder: evaluated on its test cases
    seed: int
    model: str
    role: str  # "teacher" or "student"
    protocol: str | None = None  # None: a student without teacher (same under both)
    preset: str = "none"  # distillation preset (distill.preset)
    method: str = "supervised"  # training method (train.method)
    teacher: RunSpec | None = None
    control: str | None = None  # distill.control: a control in place of the trained teacher
    terms: tuple[str, ...] = ()  # term options over the preset's: "aam.stride=8", ...

    @property
    def leaf(self) -> str:
        """The run's folder name inside ``SITE/seedN``."""
        if self.role == "teacher":
            return f"teacher-{self.model}-{self.protocol}"
        if self.teacher is not None:
            source = self.teacher.model + (f"@{self.control}" if self.control else "")
            preset = self.preset + (f"[{','.join(self.terms)}]" if self.terms else "")
            return f"{self.model}-{preset}-from-{source}-{self.protocol}"
        return f"{self.model}-{self.method if self.method != 'supervised' else 'wo'}"

    @property
    def label(self) -> str:
        """What the run is, named as a comparison's arms are: ``teacher``, ``w/o``, a training
        method (``saml``), or a preset with its term options and control
        (``ours[aam.stride=8]@untrained``)."""
        if self.role == "teacher":
            return "teacher"
        if self.teacher is not None:
            text = self.preset + (f"[{','.join(self.terms)}]" if self.terms else "")
            return text + (f"@{self.control}" if self.control else "")
        return "w/o" if self.method == "supervised" else self.method

    @property
    def id(self) -> str:
        """Stable id and folder (relative to the grid's ``runs``): ``SITE/seedN/LEAF``."""
        return f"{self.site}/seed{self.seed}/{self.leaf}"

    @property
    def depends(self) -> tuple[str, ...]:
        """Ids of the runs that must finish first (the teacher)."""
        return (self.teacher.id,) if self.teacher is not None else ()


@dataclass(frozen=True)
class Cell:
    """A run's place in a table: one (block, row) at one site for one seed."""

    block: str  # "teachers" or a student (Table 2); the student (Tables 3, 4)
    row: str  # row key (see paper_numbers)
    label: str  # row label as printed
    site: str
    seed: int
    run: RunSpec


@dataclass(frozen=True)
class GridOptions:
    """What ``crossdistill reproduce`` was asked for (site folders already resolved)."""

    table: int
    sites: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    protocol: str = "cross-site"
    method: str = "paper"
    students: tuple[str, ...] = ("enet", "espnet", "erfnet")
    teachers: tuple[str, ...] = ("deeplabv3plus", "unetpp")


@dataclass(frozen=True)
class Grid:
    """The cells of one table and the runs they need, each once, teachers before students."""

    options: GridOptions
    cells: tuple[Cell, ...]
    runs: tuple[RunSpec, ...] = field(default=())


def teacher_run(model: str, site: str, seed: int, protocol: str) -> RunSpec:
    """The teacher of ``protocol`` for target ``site``."""
    return RunSpec(site, seed, model, "teacher", protocol)


def student_run(
    model: str,
    site: str,
    seed: int,
    protocol: str,
    preset: str = "none",
    teacher: RunSpec | None = None,
    method: str = "supervised",
    control: str | None = None,
    terms: tuple[str, ...] = (),
) -> RunSpec:
    """A student on the sites other than ``site``; with a teacher, distilled with ``preset``
    under ``protocol`` (without one, ``protocol`` is not part of the run), from the trained
    teacher or from its ``control`` (``distill.controls``), with the preset's term options
    changed by ``terms`` (``"aam.stride=8"``: ``distill.terms.aam.stride``)."""
    return RunSpec(
        site,
        seed,
        model,
        "student",
        protocol if teacher is not None else None,
        preset if teacher is not None else "none",
        method,
        teacher,
        control if teacher is not None else None,
        tuple(terms) if teacher is not None else (),
    )


def _label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def _table2(o: GridOptions, site: str, seed: int) -> list[Cell]:
    preset = METHODS[o.method]
    suffix = "" if o.method == "paper" else f" ({o.method})"
    teachers = {t: teacher_run(t, site, seed, o.protocol) for t in o.teachers}
    cells = [
        Cell("teachers", t, f"{_label(t)} teacher", site, seed, run) for t, run in teachers.items()
    ]
    for s in o.students:
        cells.append(Cell(s, "none", "w/o", site, seed, student_run(s, site, seed, o.protocol)))
        for t, teacher in teachers.items():
            run = student_run(s, site, seed, o.protocol, preset, teacher)
            cells.append(Cell(s, t, f"w/ {_label(t)}{suffix}", site, seed, run))
    return cells


def _table3(o: GridOptions, site: str, seed: int) -> list[Cell]:
    student, teacher_model = o.students[0], o.teachers[0]
    teacher = teacher_run(teacher_model, site, seed, o.protocol)
    cells = [
        Cell(student, "teacher", f"{_label(teacher_model)} teacher", site, seed, teacher),
        Cell(student, "none", "student (w/o)", site, seed, student_run(student, site, seed, "")),
    ]
    rows = ABLATION + (("recommended",) if o.method == "recommended" else ())
    for preset in rows:
        label = "+" + "+".join(t.upper() for t in preset.split("+"))
        label = {"ours": "+AAM+KMM+LM (ours)", "recommended": "recommended"}.get(preset, label)
        run = student_run(student, site, seed, o.protocol, preset, teacher)
        cells.append(Cell(student, preset, label, site, seed, run))
    return cells


def _table4(o: GridOptions, site: str, seed: int) -> list[Cell]:
    student, teacher_model = o.students[0], o.teachers[0]
    teacher = teacher_run(teacher_model, site, seed, o.protocol)
    ours = METHODS[o.method]
    cells = [
        Cell(student, "teacher", f"{_label(teacher_model)} teacher", site, seed, teacher),
        Cell(student, "none", "w/o", site, seed, student_run(student, site, seed, "")),
    ]
    for preset in (ours, *KD_BASELINES):
        run = student_run(student, site, seed, o.protocol, preset, teacher)
        cells.append(
            Cell(
                student,
                preset,
                preset.upper() if preset in KD_BASELINES else preset,
                site,
                seed,
                run,
            )
        )
    for method in DG_BASELINES:
        run = student_run(student, site, seed, o.protocol, method=method)
        cells.append(Cell(student, method, method.upper(), site, seed, run))
    return cells


_BUILDERS = {2: _table2, 3: _table3, 4: _table4}


def check_options(o: GridOptions) -> None:
    """Raise :class:`CrossDistillError` naming the option that cannot make a grid."""
    if o.table not in _BUILDERS:
        raise CrossDistillError(f"--table: {o.table} has no runs (tables with runs: 2, 3, 4)")
    if o.protocol not in PROTOCOLS:
        raise CrossDistillError(f"--protocol: '{o.protocol}'; use {' or '.join(PROTOCOLS)}")
    if o.method not in METHODS:
        raise CrossDistillError(f"--method: '{o.method}'; use {' or '.join(METHODS)}")
    for option, values in (
        ("--seeds", o.seeds),
        ("--students", o.students),
        ("--teachers", o.teachers),
    ):
        if not values:
            raise CrossDistillError(f"{option}: give at least one")
    if o.table in (3, 4) and (len(o.students) > 1 or len(o.teachers) > 1):
        raise CrossDistillError(
            f"--students/--teachers: Table {o.table} distils one student from one teacher "
            "(default ENet from DeepLabV3+)"
        )


def build_grid(options: GridOptions) -> Grid:
    """Every cell of the table for every site and seed, and the runs they need."""
    check_options(options)
    cells = tuple(
        cell
        for site in options.sites
        for seed in options.seeds
        for cell in _BUILDERS[options.table](options, site, seed)
    )
    return Grid(options, cells, ordered_runs(cell.run for cell in cells))


def ordered_runs(runs) -> tuple[RunSpec, ...]:
    """Each run once (by id), every teacher before the first run that depends on it."""
    seen: dict[str, RunSpec] = {}

    def visit(run: RunSpec) -> None:
        if run.teacher is not None:
            visit(run.teacher)
        seen.setdefault(run.id, run)

    for run in runs:
        visit(run)
    return tuple(seen.values())
