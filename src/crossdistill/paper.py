"""The paper's constants: its loss weights and the numbers it reports, in one place.

Everything else reads them from here: the distillation terms' default weights
(:mod:`crossdistill.losses.registry`), the paper's presets (:mod:`crossdistill.distill.presets`),
the complexity report (:mod:`crossdistill.models.complexity`) and the reproduction tables
(:mod:`crossdistill.reproduce.paper_numbers`, which maps the project's site folders to the
paper's site labels).

Tables are keyed by the project's names: a model name (``enet`` … ``deeplabv3plus``) for a
network, a teacher or "w/ that teacher"; ``none`` for the student without distillation; a
distillation preset (``lm`` … ``ours``, ``kd``, ``at``, ``emkd``, ``mskd``) or a training method
(``saml``, ``drdg``). A Dice row holds one value per site, in the order of :data:`SITE_LABELS`.
"""

from __future__ import annotations

from typing import NamedTuple

# --- the method (eq. 8): L = L_seg + λ_AAM·L_AAM + λ_KMM·L_KMM + λ_LM·L_LM -------------------

#: λ of the Logits Module (eq. 7).
LAMBDA_LM = 0.2
#: λ of the Kernel Matrix Module (eq. 5-6).
LAMBDA_KMM = 0.9
#: λ of the Adaptive Affinity Module (eq. 1-4).
LAMBDA_AAM = 0.9
#: The Adaptive Affinity Module's margin between pairs of different labels.
AAM_MARGIN = 3.0

# --- names ----------------------------------------------------------------------------------

#: The paper's six sites, S1 … S6.
SITE_LABELS = ("S1", "S2", "S3", "S4", "S5", "S6")

#: The paper's name of each network.
MODEL_LABELS = {
    "enet": "ENet",
    "espnet": "ESPNet",
    "erfnet": "ERFNet",
    "unetpp": "UNet++",
    "deeplabv3plus": "DeepLabV3+",
}

# --- Table 1: complexity --------------------------------------------------------------------


class PaperComplexity(NamedTuple):
    """One row of the paper's Table 1 (2 classes, 1 input channel, 1×1×384×384)."""

    params_m: float
    gflops: float


#: Table 1, in its order (ascending parameter count): model → parameters (M), GFLOPs.
TABLE1: dict[str, PaperComplexity] = {
    "espnet": PaperComplexity(0.183, 1.27),
    "enet": PaperComplexity(0.353, 2.2),
    "erfnet": PaperComplexity(2.06, 16.56),
    "unetpp": PaperComplexity(36.6, 621.38),
    "deeplabv3plus": PaperComplexity(56.8, 273.94),
}

# --- Tables 2-4: 3-D Dice on the target site ------------------------------------------------

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
