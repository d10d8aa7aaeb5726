"""Networks: one file each, a registry, complexity counting."""

from crossdistill.models.complexity import (
    complexity_rows,
    count_flops,
    count_parameters,
    measure_latency,
)
from crossdistill.models.output import SegOutput
from crossdistill.models.registry import (
    PAPER_TABLE1,
    STUDENTS,
    TEACHERS,
    create_model,
    list_models,
    model_role,
)

__all__ = [
    "PAPER_TABLE1",
    "STUDENTS",
    "TEACHERS",
    "SegOutput",
    "complexity_rows",
    "count_flops",
    "count_parameters",
    "create_model",
    "list_models",
    "measure_latency",
    "model_role",
]
