"""Runs killed at random moments (SIGKILL, SIGINT twice, SIGHUP, SIGTERM), checkpoints included, then resumed:
no candidate lost, none evaluated twice, and the final pareto.csv byte-identical to an uninterrupted run with
the same seed, for both engines and both executors."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import dse

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "spaces" / "quickstart.yaml"


def _space(tmp_path: Path) -> Path:
    """The quickstart space in small chunks and small Optuna batches, saved after nearly every chunk: many
    chunks, many checkpoints, so that kills land inside the writes too."""
    path = tmp_path / "space.yaml"
    text = QUICKSTART.read_text().replace("objectives:", "engine: {batch_size: 16}\nobjectives:")
    path.write_text(text + "execution: {chunk_size: 64, checkpoint_s: 0.02}\n")
    return path


def _launch(first: bool, out: Path, space: Path, engine: str, executor: str, keep: str) -> subprocess.Popen[str]:
    """``dse run`` as a user starts it, or ``dse run --resume``."""
    start = [
        "run",
        str(space),
        "--out",
        str(out),
        "--engine",
        engine,
        "--trials",
        "240",
        "--seed",
        "11",
        "--keep",
        keep,
    ]
    argv = start if first else ["run", "--resume", str(out)]
    return subprocess.Popen(
        [sys.executable, "-m", "dse.cli", *argv, "--executor", executor],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )


def _saved(out: Path) -> int:
    """When trials.parquet was last replaced (0: never)."""
    try:
        return (out / "trials.parquet").stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _interrupt(proc: subprocess.Popen[str], how: str, rng: random.Random, out: Path, before: int) -> None:
    """Wait until this process has saved trials (so it is running, past Python's start-up), then a random moment
    more, then interrupt it ``how``."""
    deadline = time.monotonic() + 60
    while _saved(out) == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.6))
    if proc.poll() is None:
        if how == "SIGINT twice":
            proc.send_signal(signal.SIGINT)
            time.sleep(rng.uniform(0.0, 0.05))
            proc.send_signal(signal.SIGINT)
        else:
            proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err


CASES = [
    ("exhaustive", "local", "all", ["SIGKILL", "SIGINT twice", "SIGHUP", "SIGKILL"]),
    ("optuna", "local", "all", ["SIGKILL", "SIGHUP", "SIGINT twice", "SIGTERM"]),
    ("exhaustive", "ray", "all", ["SIGTERM"]),
    ("optuna", "ray", "all", ["SIGINT twice"]),
    ("exhaustive", "local", "feasible", ["SIGKILL", "SIGINT twice", "SIGKILL"]),
    ("exhaustive", "local", "front", ["SIGKILL", "SIGHUP", "SIGKILL"]),
    ("optuna", "local", "front", ["SIGKILL", "SIGINT twice"]),
]


@pytest.mark.parametrize(
    ("engine", "executor", "keep", "kills"), CASES, ids=[f"{e}-{x}-keep-{k}" for e, x, k, _ in CASES]
)
def test_interrupted_runs_lose_nothing_and_end_with_the_same_front(
    tmp_path: Path, engine: str, executor: str, keep: str, kills: list[str]
) -> None:
    space = _space(tmp_path)
    reference = dse.run(space, out=tmp_path / "reference", engine=engine, trials=240, seed=11)
    out = tmp_path / "run"
    rng = random.Random(f"{engine}-{executor}-{keep}")
    for index, how in enumerate(kills):
        before = _saved(out)
        _interrupt(_launch(index == 0, out, space, engine, executor, keep), how, rng, out, before)
    finished = dse.resume(out)
    assert finished.summary["complete"] and finished.summary["keep"] == keep
    assert (out / "pareto.csv").read_bytes() == (tmp_path / "reference" / "pareto.csv").read_bytes()
    counts, expected = finished.summary["counts"], reference.summary["counts"]
    assert (counts["evaluated"], counts["feasible"]) == (expected["evaluated"], expected["feasible"])
    ids = finished.columns["candidate_id"].tolist()
    assert len(ids) == len(set(ids))  # none kept twice (a SIGKILL costs at most the work since the last save)
    every = reference.trials
    wanted = {"all": every, "feasible": every[every["feasible"]], "front": reference.pareto}[keep]
    assert set(ids) == set(wanted["candidate_id"].tolist())  # none lost, none extra
    kept = pd.read_parquet(out / "trials.parquet")
    assert kept["candidate_id"].is_unique and len(kept) == len(ids)
