"""The ``dse`` command line: parse, call the Python API, render. Bad input -> message and exit code 2."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dse.cli._app import app

__all__ = ["INTERRUPTED", "app", "main"]

INTERRUPTED = 130
"""Exit code of a command stopped by Ctrl-C (128 + SIGINT, the shells' convention)."""


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``dse.cli._app.main``). The command line is loaded here, not when this package is
    imported, so that Ctrl-C while it loads (the first half second) also ends with "interrupted" and exit code
    130, not a traceback."""
    try:
        from dse.cli._app import main as run_command

        return run_command(argv)
    except KeyboardInterrupt:  # while loading, or outside the commands (they say so themselves)
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def __getattr__(name: str) -> Any:
    if name == "app":
        from dse.cli._app import app

        return app
    raise AttributeError(f"module 'dse.cli' has no attribute {name!r}")
