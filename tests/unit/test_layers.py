"""The package's layering (docs/design.md §8): what each layer may import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import crossdistill

PACKAGE = Path(crossdistill.__file__).parent
ENGINE_MUST_NOT_IMPORT = ("crossdistill.distill", "crossdistill.dg", "crossdistill.methods")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (``from . import x`` resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _forbidden(names: set[str]) -> list[str]:
    return sorted(
        n for n in names for bad in ENGINE_MUST_NOT_IMPORT if n == bad or n.startswith(bad + ".")
    )


def test_no_engine_module_imports_distill_or_dg():
    offenders = {
        str(path.relative_to(PACKAGE)): _forbidden(_imports(path))
        for path in sorted((PACKAGE / "engine").glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_engine_loads_neither_distill_nor_dg():
    """Not directly, and not through anything the engine imports."""
    modules = [f"crossdistill.engine.{p.stem}" for p in (PACKAGE / "engine").glob("*.py")]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert _forbidden(set(json.loads(out.stdout))) == []


def test_the_engine_reads_no_objective_internals_by_name():
    """The engine asks an objective only what ``TrainingObjective`` declares."""
    for path in (PACKAGE / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr":
                target = ast.unparse(node.args[0])
                assert "objective" not in target, f"{path.name}: getattr({target}, ...)"


def test_the_prediction_path_does_not_load_the_metrics():
    """Deployment shares evaluation's post-processing (``eval.postprocess``), not its metrics."""
    code = (
        "import json, sys\n"
        "import crossdistill.deploy.predict, crossdistill.deploy.segment\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "crossdistill.eval.postprocess" in loaded
    assert "crossdistill.eval.metrics" not in loaded
