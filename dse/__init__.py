"""dse: design-space exploration for LLM inference.

The public API is loaded lazily so ``import dse`` stays fast (no pandas, plotly, optuna or ray at import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dse.version import __version__

_EXPORTS = {
    "analyze": ("dse.scoring", "analyze"),
    "evaluate": ("dse.scoring", "evaluate"),
    "load_hardware": ("dse.catalog", "load_hardware"),
    "load_model": ("dse.catalog", "load_model"),
    "InputError": ("dse.errors", "InputError"),
    "load_space": ("dse.space", "load_space"),
    "recommend": ("dse.recommend", "recommend"),
    "run": ("dse.results", "run"),
    "resume": ("dse.results", "resume"),
    "sweep": ("dse.results", "sweep"),
}

if TYPE_CHECKING:
    from dse.catalog import load_hardware, load_model
    from dse.errors import InputError
    from dse.recommend import recommend
    from dse.results import resume, run, sweep
    from dse.scoring import analyze, evaluate
    from dse.space import load_space

__all__ = [
    "InputError",
    "__version__",
    "analyze",
    "evaluate",
    "load_hardware",
    "load_model",
    "load_space",
    "recommend",
    "resume",
    "run",
    "sweep",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module, attr = _EXPORTS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'dse' has no attribute {name!r}")
