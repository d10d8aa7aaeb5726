"""The paper's Dice for one cell of its Tables 2–4, looked up by the project's site folder.

The paper names its six sites S1 … S6; the project names a site by its release folder
(:mod:`crossdistill.data.sites`: S1 = ``ISBI``, S2 = ``ISBI_1.5``, S3 = ``I2CVB``, S4 = ``UCL``,
S5 = ``BIDMC``, S6 = ``HK``). :func:`paper_value` takes a folder and returns ``None`` for a
site outside the six.

The tables, their row keys and the labels are :mod:`crossdistill.paper`'s (importable from
here too). The paper's Table 2 states one set of numbers and does not say which protocol
produced them (docs/design.md §6), so the same numbers stand beside both protocols.
"""

from __future__ import annotations

from crossdistill.data.sites import site_info
from crossdistill.paper import MODEL_LABELS, SITE_LABELS, TABLE2, TABLE3, TABLE4

__all__ = [
    "MODEL_LABELS",
    "SITE_LABELS",
    "TABLE2",
    "TABLE3",
    "TABLE4",
    "paper_value",
    "site_label",
]


def site_label(folder: str) -> str | None:
    """``"S4"`` for the folder ``UCL``; ``None`` for a site outside the paper's six."""
    label = site_info(folder).label
    return label if label in SITE_LABELS else None


def paper_value(table: int, block: str, row: str, folder: str) -> float | None:
    """The paper's Dice for one cell, or ``None`` where the paper reports none.

    A distilled student of Table 2 has the teacher's name as ``row`` whatever the method, so
    ``--method recommended`` is set beside the paper's own method there; in Table 4 the
    ``recommended`` row takes the value of ``ours``; Table 3 has no value for it (it is no
    ablation row). Table 3 and 4 cells ignore ``block`` (always ENet from DeepLabV3+).
    """
    label = site_label(folder)
    if label is None:
        return None
    if table == 2:
        values = TABLE2.get(block, {}).get(row)
    elif table in (3, 4):
        source = TABLE3 if table == 3 else TABLE4
        values = source.get("ours" if row == "recommended" and table == 4 else row)
    else:
        values = None
    return None if values is None else values[SITE_LABELS.index(label)]
