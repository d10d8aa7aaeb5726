"""The distiller: frozen teacher + student + configured KD terms, and the method presets.

Three things wired by configuration (as in MMRazor's configurable distiller):

* taps (``models.taps``): where each term reads its tensors — ``"logits"`` or a key of
  ``SegOutput.features``;
* adapters: owned by the terms that need them (KMM's 1×1 conv), sized from the models'
  ``feature_channels`` at the tap, without a forward pass;
* losses (``crossdistill.losses.registry``): which terms, by name, with their options.
"""

from crossdistill.distill.distiller import Distiller
from crossdistill.distill.gating import pixel_gate
from crossdistill.distill.presets import PRESETS, preset_names, preset_terms
from crossdistill.distill.terms import DistillTerm, TermWiring, build_distill_term
from crossdistill.models.taps import LOGITS, read_tap, tap_channels

__all__ = [
    "LOGITS",
    "PRESETS",
    "DistillTerm",
    "Distiller",
    "TermWiring",
    "build_distill_term",
    "pixel_gate",
    "preset_names",
    "preset_terms",
    "read_tap",
    "tap_channels",
]
