"""Post-processing of a predicted segmentation: keep its largest 3-D connected component.

Shared by evaluation (:mod:`crossdistill.eval.inference`) and deployment
(:mod:`crossdistill.deploy.segment`), so a deployed model's masks are those it was scored on.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms.utils import get_largest_connected_component_mask


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 3-D connected component (26-connectivity) of a binary mask.

    ``mask``: any shape, any dtype, nonzero is foreground. Returns a uint8 array of the
    same shape in {0, 1}; an empty mask is returned empty. MONAI labels components with
    scikit-image on the CPU.
    """
    if not mask.any():
        return mask.astype(np.uint8)
    kept = get_largest_connected_component_mask(torch.from_numpy(mask.astype(bool)), connectivity=3)
    return np.asarray(kept, dtype=np.uint8)
