"""MONAI imported without MLflow in this package's processes; MLflow still there for tracking."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

CHECK = """
import sys
from crossdistill.monai_without_mlflow import hide_mlflow_from_monai
if sys.argv[1] == "hide":
    hide_mlflow_from_monai()
import monai.losses
print("mlflow" in sys.modules)
import mlflow  # a tracked run imports it after MONAI
print(mlflow.__name__)
"""


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs crossdistill[mlflow]")
def test_monai_is_imported_without_mlflow_which_stays_importable():
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, "hide"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "mlflow"]
