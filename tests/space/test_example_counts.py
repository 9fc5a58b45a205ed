"""The counts docs/spaces.md gives for each example space are the counts a run of it gives today."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import dse

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `([\w.-]+\.yaml)` \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", re.MULTILINE)


def documented() -> dict[str, tuple[int, ...]]:
    """The table of docs/spaces.md's "Example spaces": file -> (full size, after pruning, pruned, feasible)."""
    text = (ROOT / "docs" / "spaces.md").read_text(encoding="utf-8")
    return {m[1]: tuple(int(x.replace(",", "")) for x in m.groups()[1:]) for m in ROW.finditer(text)}


def test_every_example_space_is_in_the_table() -> None:
    assert set(documented()) == {p.name for p in (ROOT / "spaces").glob("*.yaml")}


@pytest.mark.parametrize("name", sorted(documented()))
def test_the_documented_counts_are_a_runs(name: str, tmp_path: Path) -> None:
    dse.run(ROOT / "spaces" / name, out=tmp_path / "run")
    counts = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))["counts"]
    got = (counts["full_space"], counts["after_pruning"], counts["pruned_combinations"], counts["feasible"])
    assert got == documented()[name], f"docs/spaces.md says {documented()[name]} for {name}; a run gives {got}"
