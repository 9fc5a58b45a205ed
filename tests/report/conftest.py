"""Run directories the report tests read: the quickstart space, searched exhaustively and by Optuna, and a
two-point sweep over it (each made once per test session, in seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import dse
from dse.report import RunResults, load_results

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "spaces" / "quickstart.yaml"


@pytest.fixture(scope="session")
def exhaustive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "exhaustive"
    dse.run(QUICKSTART, out=out, engine="exhaustive")
    return out


@pytest.fixture(scope="session")
def optuna_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "optuna"
    dse.run(QUICKSTART, out=out, engine="optuna", trials=128, seed=3)
    return out


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    experiment = folder / "sweep.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {"name": "two-prompts", "base": str(QUICKSTART), "grid": {"workload.prompt_tokens": [512, 4096]}}
        )
    )
    return dse.sweep(experiment, out=folder / "out").directory


@pytest.fixture(scope="session")
def exhaustive(exhaustive_dir: Path) -> RunResults:
    results = load_results(exhaustive_dir)
    assert isinstance(results, RunResults)
    return results
