"""Architecture rules (DESIGN.md §1, STYLE.md): import direction, light start-up, unit literals in one place."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dse"
UNIT_LITERAL = re.compile(r"(?<![\w.])(1e9|1e12|1e6|1e-9|1e15|2 ?\*\* ?30|2 ?\*\* ?40|1024 ?\*\* ?[23])(?![\w.])")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0] if not node.module.startswith("dse.") else node.module)
    return names


def test_costmodel_imports_numpy_and_catalog_only() -> None:
    allowed = {
        "numpy",
        "__future__",
        "collections",
        "dataclasses",
        "typing",
        "enum",
        "functools",
        "math",
        "dse",
        "dse.catalog",
        "dse.units",
    }
    for path in (PACKAGE / "costmodel").glob("*.py"):
        extra = {n for n in _imports(path) if n not in allowed and not n.startswith("dse.costmodel")}
        assert not extra, f"{path.name} imports {extra}"


def test_catalog_does_not_import_upper_layers() -> None:
    for path in (PACKAGE / "catalog").glob("*.py"):
        upper = {n for n in _imports(path) if n.startswith(("dse.costmodel", "dse.scoring", "dse.analysis", "dse.cli"))}
        assert not upper, f"{path.name} imports {upper}"


def test_unit_literals_live_in_units_py() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "units.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if UNIT_LITERAL.search(code):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_import_dse_is_light() -> None:
    code = "import sys, dse; dse.load_model; print([m for m in ('pandas','plotly','optuna','ray') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_metric_names_are_written_once() -> None:
    """The space schema's Literal must list exactly the canonical metrics (a Literal cannot be derived)."""
    import typing

    from dse.costmodel import METRIC_NAMES, ServingMetrics
    from dse.space import MetricName

    assert typing.get_args(MetricName) == METRIC_NAMES
    assert set(METRIC_NAMES) <= set(ServingMetrics.__dataclass_fields__)
