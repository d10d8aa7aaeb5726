"""The site map of ``--sites-from CSV``: which site each case of an nnU-Net or Decathlon
dataset comes from.

One row per case, ``case,site`` (commas; ``;`` or tabs when the file uses no comma). A
header row naming the columns ``case`` and ``site`` is optional (with one, other columns
are ignored and the two may come in any order); blank rows and rows starting with ``#`` are
skipped. A case is named by its id (``prostate_00``); a volume suffix is dropped
(``prostate_00.nii.gz``). A site name is what a site folder of the release layout could
be called (:func:`crossdistill.data.sites.site_name_problem`): ``UCL`` or ``S4``-like
names of the paper keep their meaning there, any other names a site of its own. Rows for
cases not on disk are ignored; a case on disk without a row, a case given two sites, a
site name that cannot be one: an :class:`InputError` naming the CSV.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from crossdistill.data.cases import CaseFiles
from crossdistill.data.io import volume_suffix
from crossdistill.data.layouts.bounded_read import read_bounded
from crossdistill.data.sites import site_name_problem
from crossdistill.errors import InputError

MAX_CSV_BYTES = 64 << 20


def read_site_map(path: str | Path) -> dict[str, str]:
    """``{case id: site}`` from a CSV file.

    Raises:
        InputError: naming the file (and the line) when it cannot be read or is malformed.
    """
    path = Path(path)
    rows = _rows(path, _read_text(path))
    columns = (0, 1)
    if rows and {"case", "site"} <= {cell.strip().lower() for cell in rows[0][1]}:
        header = [cell.strip().lower() for cell in rows[0][1]]
        columns = (header.index("case"), header.index("site"))
        rows = rows[1:]
    sites: dict[str, tuple[str, int]] = {}
    for line, cells in rows:
        if len(cells) <= max(columns):
            raise InputError(path, f"line {line}: expected the columns case,site, got {cells}")
        case, site = (cells[c].strip() for c in columns)
        case = Path(case).name if case else case  # a file name or path: its case id
        case = case[: len(case) - len(volume_suffix(Path(case)) or "")]
        problem = site_name_problem(site)
        if not case or problem:
            raise InputError(path, f"line {line}: {problem or 'the case name is empty'}")
        if case in sites and sites[case][0] != site:
            first_site, first_line = sites[case]
            raise InputError(
                path,
                f"line {line}: case {case} is at site {site} here, at {first_site} on line "
                f"{first_line}",
            )
        sites.setdefault(case, (site, line))
    if not sites:
        raise InputError(path, "the site map lists no case (expected rows case,site)")
    return {case: site for case, (site, _) in sites.items()}


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(path, "site map does not exist")
    if not path.is_file():
        raise InputError(path, "the site map is not a regular file")
    blob = read_bounded(path, MAX_CSV_BYTES, "not a site map")
    try:
        return blob.decode("utf-8-sig")  # a BOM from a spreadsheet is dropped
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None


def _rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of the non-blank, non-comment rows."""
    lines = text.splitlines()
    first = next((n for n in lines if n.strip() and not n.lstrip().startswith("#")), "")
    delimiter = next((d for d in ",;\t" if d in first), ",")
    try:
        reader = csv.reader(lines, delimiter=delimiter)
        rows = [(reader.line_num, cells) for cells in reader]
    except csv.Error as err:
        raise InputError(path, f"not a CSV file ({err})") from None
    return [
        (line, cells)
        for line, cells in rows
        if any(c.strip() for c in cells) and not cells[0].lstrip().startswith("#")
    ]


def assign_sites(cases: list[CaseFiles], site_map: dict[str, str], path: Path) -> list[CaseFiles]:
    """``cases`` with the site the map gives each.

    Raises:
        InputError: naming the CSV, for the first case it does not list, or naming a case's
            file when two datasets hold cases of the same id (the map cannot tell them apart).
    """
    placed: dict[str, CaseFiles] = {}
    out = []
    for case in cases:
        if case.case_id not in site_map:
            raise InputError(path, f"case {case.case_id} ({case.image}) has no row in the site map")
        if case.case_id in placed:
            raise InputError(
                case.image,
                f"case {case.case_id} is also in {placed[case.case_id].image}; the site map "
                "names cases by id and cannot tell the two apart",
            )
        placed[case.case_id] = case
        out.append(replace(case, site=site_map[case.case_id]))
    return out
