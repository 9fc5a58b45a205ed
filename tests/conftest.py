"""Shared fixtures: the minimal custom hardware of DESIGN.md §4; hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import Phase, settings

settings.register_profile("mutation", derandomize=True, phases=[Phase.explicit, Phase.generate])
"""For mutation runs (docs/mutation-testing.md): the same examples every run, and no shrinking of a failure
(a mutant only needs to fail)."""
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

MINIMAL_HARDWARE = """\
id: my-gpu
name: My GPU
memory_gb: 48                 # 1e9 bytes
memory_bandwidth_gb_s: 768    # 1e9 bytes/s
peak_tflops: {fp16: 154.8, int8: 309.7}   # dense
"""


@pytest.fixture
def minimal_hardware(tmp_path: Path) -> str:
    """Path to the minimal custom-hardware YAML of DESIGN.md §4."""
    path = tmp_path / "my-gpu.yaml"
    path.write_text(MINIMAL_HARDWARE)
    return str(path)
