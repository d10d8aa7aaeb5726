"""The paper's reported numbers (3-D Dice on the target site), keyed by its site labels.

The paper names its six sites S1 … S6; the project names a site by its release folder
(:mod:`crossdistill.data.sites`: S1 = ``ISBI``, S2 = ``ISBI_1.5``, S3 = ``I2CVB``, S4 = ``UCL``,
S5 = ``BIDMC``, S6 = ``HK``). :func:`paper_value` takes a folder and returns ``None`` for a
site outside the six. Table 1 (parameters, FLOPs) lives beside the networks
(:data:`crossdistill.models.registry.PAPER_TABLE1`).

Row keys are the project's: a model name (``unetpp``, ``deeplabv3plus``) for a teacher or
for "w/ that teacher", ``none`` for the student without distillation, a distillation preset
(``lm`` … ``ours``, ``kd``, ``at``, ``emkd``, ``mskd``) or a training method (``saml``,
``drdg``). The paper's Table 2 states one set of numbers and does not say which protocol
produced them (docs/design.md §6), so the same numbers stand beside both protocols.
"""

from __future__ import annotations

from crossdistill.data.sites import site_info

SITE_LABELS = ("S1", "S2", "S3", "S4", "S5", "S6")

MODEL_LABELS = {
    "enet": "ENet",
    "espnet": "ESPNet",
    "erfnet": "ERFNet",
    "unetpp": "UNet++",
    "deeplabv3plus": "DeepLabV3+",
}

_DEEPLAB_TEACHER = (0.895, 0.886, 0.889, 0.874, 0.878, 0.885)
_ENET_WO = (0.714, 0.604, 0.539, 0.782, 0.701, 0.772)
_ENET_FROM_DEEPLAB = (0.810, 0.642, 0.734, 0.881, 0.796, 0.876)

#: Table 2: block (``teachers`` or a student) → row → Dice per site S1 … S6.
TABLE2: dict[str, dict[str, tuple[float, ...]]] = {
    "teachers": {
        "deeplabv3plus": _DEEPLAB_TEACHER,
        "unetpp": (0.901, 0.893, 0.883, 0.880, 0.869, 0.871),
    },
    "enet": {
        "none": _ENET_WO,
        "deeplabv3plus": _ENET_FROM_DEEPLAB,
        "unetpp": (0.808, 0.637, 0.684, 0.858, 0.894, 0.869),
    },
    "espnet": {
        "none": (0.703, 0.482, 0.573, 0.738, 0.745, 0.715),
        "deeplabv3plus": (0.819, 0.563, 0.604, 0.826, 0.819, 0.832),
        "unetpp": (0.837, 0.594, 0.643, 0.842, 0.836, 0.808),
    },
    "erfnet": {
        "none": (0.788, 0.720, 0.736, 0.760, 0.725, 0.694),
        "deeplabv3plus": (0.823, 0.751, 0.799, 0.869, 0.801, 0.861),
        "unetpp": (0.843, 0.746, 0.752, 0.892, 0.877, 0.852),
    },
}

#: Table 3 (ENet distilled from DeepLabV3+): ablation row → Dice per site.
TABLE3: dict[str, tuple[float, ...]] = {
    "teacher": _DEEPLAB_TEACHER,
    "none": _ENET_WO,
    "lm": (0.691, 0.571, 0.505, 0.741, 0.619, 0.721),
    "aam": (0.700, 0.599, 0.648, 0.780, 0.691, 0.740),
    "kmm": (0.698, 0.583, 0.630, 0.767, 0.690, 0.738),
    "kmm+lm": (0.763, 0.679, 0.659, 0.807, 0.769, 0.775),
    "aam+lm": (0.772, 0.691, 0.688, 0.810, 0.762, 0.798),
    "aam+kmm": (0.781, 0.611, 0.709, 0.849, 0.781, 0.816),
    "ours": _ENET_FROM_DEEPLAB,
}

#: Table 4 (ENet, DeepLabV3+ teacher): method → Dice per site. The paper lists no "w/o"
#: row there; its Table 2 value for ENet w/o is used.
TABLE4: dict[str, tuple[float, ...]] = {
    "teacher": _DEEPLAB_TEACHER,
    "none": _ENET_WO,
    "ours": _ENET_FROM_DEEPLAB,
    "kd": (0.778, 0.765, 0.761, 0.786, 0.699, 0.745),
    "at": (0.789, 0.641, 0.585, 0.816, 0.802, 0.774),
    "mskd": (0.762, 0.643, 0.532, 0.809, 0.790, 0.658),
    "emkd": (0.635, 0.524, 0.681, 0.696, 0.544, 0.711),
    "saml": (0.896, 0.875, 0.843, 0.886, 0.873, 0.883),
    "drdg": (0.709, 0.758, 0.665, 0.739, 0.857, 0.826),
}


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
