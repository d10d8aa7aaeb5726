"""Keep MONAI's import from loading MLflow in this package's own processes.

``import monai`` imports every MONAI submodule, among them ``monai.handlers.mlflow_handler``,
which imports MLflow whenever it is installed (``crossdistill[mlflow]``, the dev set-up): about
2 s of every process that trains or evaluates (a quarter of MONAI's import on the 2-core test
machine), in each grid worker and each CLI call of the test suite. Nothing here uses MONAI's
handlers. :func:`hide_mlflow_from_monai` makes MLflow look missing to imports made *while
MONAI's package is initialising* (its handler then falls back to a placeholder); MLflow
imported at any other time, as :mod:`crossdistill.tracking` does for a tracked run, is found
as usual. It is installed by the command line (:func:`crossdistill.cli.main`) and by grid
workers only, never by ``import crossdistill``, so a program that imports this package keeps
MONAI as it is.
"""

from __future__ import annotations

import importlib.abc
import sys
from importlib.machinery import ModuleSpec


class _MlflowHiddenFromMonai(importlib.abc.MetaPathFinder):
    """Raises ``ModuleNotFoundError`` for ``mlflow`` (and its submodules) while ``monai``
    is half-imported; passes every other lookup on."""

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if fullname.partition(".")[0] == "mlflow" and _monai_initialising():
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _monai_initialising() -> bool:
    monai = sys.modules.get("monai")
    return bool(getattr(getattr(monai, "__spec__", None), "_initializing", False))


def hide_mlflow_from_monai() -> None:
    """Install the finder first on ``sys.meta_path`` (once; a no-op once MONAI is imported)."""
    if "monai" in sys.modules:
        return
    if not any(isinstance(f, _MlflowHiddenFromMonai) for f in sys.meta_path):
        sys.meta_path.insert(0, _MlflowHiddenFromMonai())
