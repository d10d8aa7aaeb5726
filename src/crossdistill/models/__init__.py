"""Networks: one file each on a common base, a registry, complexity counting.

``PAPER_TABLE1`` is the paper's Table 1, :data:`crossdistill.paper.TABLE1`.
"""

from crossdistill.models.base import SegmentationNetwork
from crossdistill.models.complexity import (
    complexity_rows,
    count_flops,
    count_parameters,
    measure_latency,
)
from crossdistill.models.output import SegOutput
from crossdistill.models.registry import (
    STUDENTS,
    TEACHERS,
    create_model,
    list_models,
    model_role,
)
from crossdistill.paper import TABLE1 as PAPER_TABLE1

__all__ = [
    "PAPER_TABLE1",
    "STUDENTS",
    "TEACHERS",
    "SegOutput",
    "SegmentationNetwork",
    "complexity_rows",
    "count_flops",
    "count_parameters",
    "create_model",
    "list_models",
    "measure_latency",
    "model_role",
]
