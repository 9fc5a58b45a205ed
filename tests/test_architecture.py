"""Architecture rules (DESIGN.md §1, STYLE.md): layers import downward only, no package reaches into another's
private modules, the cost model is numpy and the standard library, physics never leans on the engine, unit
literals live in units.py, start-up stays light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dse"
UNIT_LITERAL = re.compile(r"(?<![\w.])(1e9|1e12|1e6|1e-9|1e15|2 ?\*\* ?30|2 ?\*\* ?40|1024 ?\*\* ?[23])(?![\w.])")

LAYERS = (
    ("units", "errors", "version"),
    ("catalog",),
    ("costmodel",),
    ("scoring",),
    ("space",),
    ("search",),
    ("execute",),
    ("results",),
    ("report", "recommend", "calibrate"),
    ("cli",),
)
"""Lowest first (DESIGN.md §1: cli -> report, recommend, calibrate -> results -> execute -> search -> space ->
evaluate -> costmodel -> catalog -> units). ``scoring`` is the evaluation layer; ``errors`` and ``version`` are
leaves every layer may use. A module may import its own layer and the layers below it."""
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
SUBLAYERS = {"costmodel": (("candidates",), ("physics",), ("engine",))}
"""Inside a package, the same rule between its parts (engine builds on physics, never the reverse)."""
STDLIB = set(sys.stdlib_module_names)


def _modules() -> list[tuple[str, Path]]:
    """Every module of the package: (dotted name, path)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def _imports(path: Path, module: str) -> set[str]:
    """Dotted names a module imports, anywhere in it (lazy imports inside functions count), relative
    imports resolved."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names if base.startswith("dse")}
    return names


def _layer(dotted: str) -> str | None:
    """The top-level package (or leaf module) of ``dse.<x>...``; None for ``dse`` itself."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = _modules()


def _internal(imported: set[str]) -> set[str]:
    """The dse modules among ``imported`` that exist (``from dse.x import name`` also lists ``dse.x.name``)."""
    known = {name for name, _ in MODULES}
    return {name for name in imported if name in known}


def test_every_layer_of_the_design_that_exists_is_a_package() -> None:
    for name, rank in RANK.items():
        if rank and (PACKAGE / name).exists():
            assert (PACKAGE / name / "__init__.py").exists(), f"dse/{name} must be a package"
    top_level = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    unplaced = top_level - set(RANK) - {"__init__", "__pycache__", "_catalogs"}
    assert not unplaced, f"modules outside every layer: {sorted(unplaced)}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_layers_import_downward_only(module: str, path: Path) -> None:
    own = _layer(module)
    if own is None:  # dse/__init__.py: lazy exports only
        return
    imported = {name for name in _internal(_imports(path, module)) if _layer(name) is not None}
    upward = {name for name in imported if RANK[_layer(name)] > RANK[own]}  # type: ignore[index]
    assert not upward, f"{module} imports upward: {sorted(upward)}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_no_package_imports_another_packages_private_modules(module: str, path: Path) -> None:
    offenders = set()
    for name in _internal(_imports(path, module)):
        parts = name.split(".")
        for depth, part in enumerate(parts):
            owner = ".".join(parts[:depth])
            if part.startswith("_") and not (module == owner or module.startswith(owner + ".")):
                offenders.add(name)
    assert not offenders, f"{module} imports private modules of another package: {sorted(offenders)}"


def test_parts_of_the_cost_model_import_downward_only() -> None:
    for package, parts in SUBLAYERS.items():
        rank = {part: i for i, names in enumerate(parts) for part in names}
        for module, path in MODULES:
            if not module.startswith(f"dse.{package}.") or module.count(".") < 2:
                continue
            own = rank[module.split(".")[2]]
            for name in _internal(_imports(path, module)):
                if name.startswith(f"dse.{package}.") and name.count(".") >= 2:
                    assert rank[name.split(".")[2]] <= own, f"{module} imports {name}"


def test_costmodel_imports_numpy_and_the_standard_library_only() -> None:
    for module, path in MODULES:
        if not module.startswith("dse.costmodel"):
            continue
        outside = {
            name
            for name in _imports(path, module)
            if name.split(".")[0] not in STDLIB | {"numpy"}
            and not name.startswith(("dse.costmodel", "dse.units"))
            and name != "dse"
        }
        assert not outside, f"{module} imports {sorted(outside)}"


def test_choices_are_defined_once() -> None:
    """Engine, executor and pricing choices: one Literal each, every other list derived from it."""
    from dse.costmodel import PRICINGS, Pricing
    from dse.execute import EXECUTORS
    from dse.search import ENGINES
    from dse.space import EngineKind, ExecutorKind

    assert typing.get_args(Pricing) == PRICINGS
    assert typing.get_args(EngineKind) == ENGINES
    assert typing.get_args(ExecutorKind) == EXECUTORS
    for names in (PRICINGS, ENGINES, EXECUTORS):
        literals = [m for _, path in MODULES for m in re.findall(r"Literal\[([^\]]*)\]", path.read_text())]
        assert sum(all(f'"{n}"' in lit for n in names) for lit in literals) == 1, names


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
    heavy = "('pandas', 'plotly', 'kaleido', 'optuna', 'ray')"
    code = f"import sys, dse; dse.load_model; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_metric_names_are_written_once() -> None:
    """The space schema's Literal must list exactly the canonical metrics (a Literal cannot be derived)."""
    from dse.costmodel import METRIC_NAMES, ServingMetrics
    from dse.space import MetricName

    assert typing.get_args(MetricName) == METRIC_NAMES
    assert set(METRIC_NAMES) <= set(ServingMetrics.__dataclass_fields__)
