"""The scales of a grid: ``paper`` (the paper's networks and schedule, GPU), ``demo``
(width-reduced networks, a few hundred steps, 128² synthetic slices, CPU) and ``study``
(CPU-sized, with teachers ≥ 10× their students' parameters, on a phantom of its own).

A preset names the packaged run configuration every run starts from (``configs/paper.yaml``,
``configs/demo.yaml``), the in-plane size of the cache it prepares, and per network its
width multiplier, number of epochs and, for short runs, how many whole learning-rate cycles
the run spans. The demo scale of UNet++ and ENet is the one
``crossdistill demo`` uses; the other three networks get widths of about the same cost per
step at 128² (0.03–0.3 GFLOPs a slice). ERFNet at that width learns more slowly than the
other two students (after 12 epochs its validation Dice was still rising, 0.43 → 0.61 over the
last four, and it scored 0.05 on S1) and gets twice their epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from crossdistill.errors import CrossDistillError


@dataclass(frozen=True)
class Scale:
    """A network's size and training length in a preset.

    ``lr_cycles``: the number of whole CyclicLR cycles the run spans, so that it ends at the
    base learning rate: step size = epochs × steps_per_epoch / (2 · lr_cycles). ``None`` keeps
    the configuration's step size (the paper's 2000 iterations, whatever the run's length).
    """

    width: float
    epochs: int
    lr_cycles: int | None = None


@dataclass(frozen=True)
class GridPreset:
    """How big every run of a grid is."""

    name: str
    config: str  # the packaged run configuration
    cache_size: int  # in-plane size of the cached slices
    scales: MappingProxyType  # model name -> Scale
    synthetic: bool  # without --data: the synthetic sites
    cases_per_site: int = 10  # of the synthetic sites
    data_seed: int = 0  # generator and split seed of the synthetic sites


DEMO_SCALE = MappingProxyType(
    {
        "unetpp": Scale(0.0625, 8, lr_cycles=1),
        "deeplabv3plus": Scale(0.0625, 8, lr_cycles=1),
        "enet": Scale(0.5, 12, lr_cycles=1),
        "espnet": Scale(1.0, 12, lr_cycles=1),
        "erfnet": Scale(0.25, 24, lr_cycles=1),  # 12 epochs: val Dice still climbing
    }
)
PAPER_SCALE = MappingProxyType({name: Scale(1.0, 100) for name in DEMO_SCALE})
#: A real capacity gap on a CPU (docs/design.md §3): DeepLabV3+ at 1/8 has 1.18 M parameters, 12.7×
#: ENet at 1/2 (0.093 M), 26× ESPNet at 1/2 (0.045 M), 34× ERFNet at 1/8 (0.034 M); UNet++ at
#: 1/4 has 2.29 M but costs 3.4× DeepLabV3+'s step. Students span one whole learning-rate
#: cycle of 24 epochs (ERFNet 48): at 12, the length of the first study
#: (docs/results/compare-study-enet), ENet's source-site validation Dice was still rising —
#: 0.78 after 12 epochs against 0.86 after 24, whose last four epochs stay within 0.02
#: (docs/results/study-preset-probe-epochs.json, one seed).
STUDY_SCALE = MappingProxyType(
    {
        "deeplabv3plus": Scale(0.125, 8, lr_cycles=1),
        "unetpp": Scale(0.25, 8, lr_cycles=1),
        "enet": Scale(0.5, 24, lr_cycles=1),
        "espnet": Scale(0.5, 24, lr_cycles=1),
        "erfnet": Scale(0.125, 48, lr_cycles=1),
    }
)

PRESETS = {
    "paper": GridPreset("paper", "paper", 384, PAPER_SCALE, synthetic=False),
    "demo": GridPreset("demo", "demo", 128, DEMO_SCALE, synthetic=True),
    # its own phantom (20 cases a site, generator seed 2026): no choice was made on it
    "study": GridPreset(
        "study", "study", 128, STUDY_SCALE, synthetic=True, cases_per_site=20, data_seed=2026
    ),
}


def get_preset(name: str) -> GridPreset:
    """The preset called ``name``; raises naming the known ones."""
    if name not in PRESETS:
        raise CrossDistillError(f"--preset: unknown preset '{name}'; use {', '.join(PRESETS)}")
    return PRESETS[name]
