"""The code stays typed and linted (STYLE.md): mypy on the package, ruff on everything."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [[sys.executable, "-m", "ruff", "check", "dse", "tests", "benchmarks"], [sys.executable, "-m", "mypy", "dse"]],
    ids=["ruff", "mypy"],
)
def test_clean(command: list[str]) -> None:
    tool = command[2]
    if (
        shutil.which(tool) is None
        and subprocess.run([sys.executable, "-m", tool, "--version"], capture_output=True).returncode
    ):
        pytest.skip(f"{tool} not installed (pip install -e '.[test]')")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
