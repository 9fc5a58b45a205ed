"""What a resume trusts: files checked against the manifest and the space; safe repairs said, the rest refused
with exit 2 before anything is touched."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

import dse
from dse.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "spaces" / "quickstart.yaml"


def _interrupted(tmp_path: Path, name: str = "run", text: str | None = None) -> Path:
    space = tmp_path / f"{name}.yaml"
    space.write_text((text or QUICKSTART.read_text()) + "execution: {chunk_size: 300}\n")
    stop = threading.Event()
    dse.run(space, out=tmp_path / name, engine="exhaustive", stop=stop, progress=lambda status: stop.set())
    return tmp_path / name


def _resume_exit(capsys: pytest.CaptureFixture[str], directory: Path) -> tuple[int, str]:
    code = main(["run", "--resume", str(directory)])
    _, err = capsys.readouterr()
    return code, err


def test_a_corrupt_trials_table_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _interrupted(tmp_path)
    data = (run / "trials.parquet").read_bytes()
    (run / "trials.parquet").write_bytes(data[: len(data) // 2])
    code, err = _resume_exit(capsys, run)
    assert code == 2 and "trials.parquet" in err and "unreadable" in err and "Traceback" not in err


def test_another_spaces_trials_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _interrupted(tmp_path)
    other = _interrupted(tmp_path, "other", QUICKSTART.read_text().replace("prompt_tokens: 2048", "prompt_tokens: 512"))
    before = (run / "trials.parquet").read_bytes()
    shutil.copy(other / "trials.parquet", run / "trials.parquet")
    code, err = _resume_exit(capsys, run)
    assert code == 2 and "is not this space's candidate" in err
    (run / "trials.parquet").write_bytes(before)
    assert _resume_exit(capsys, run)[0] == 0


def test_foreign_columns_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _interrupted(tmp_path)
    trials = pd.read_parquet(run / "trials.parquet").drop(columns=["ttft_s"])
    trials.to_parquet(run / "trials.parquet")
    code, err = _resume_exit(capsys, run)
    assert code == 2 and "columns differ: ttft_s" in err


@pytest.mark.parametrize("damage", ["removed", "cut short"])
def test_a_trials_table_removed_or_cut_short_is_refused_and_nothing_is_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """A complete run keeping every row whose trials.parquet is gone or shorter than position.json counts:
    resuming from that position would evaluate nothing and rewrite the front and summary empty. Refused, exit
    2, with pareto.csv and summary.json as they were."""
    space = tmp_path / "run.yaml"
    space.write_text(QUICKSTART.read_text() + "execution: {chunk_size: 300}\n")
    run = tmp_path / "run"
    dse.run(space, out=run, engine="exhaustive")
    kept = {name: (run / name).read_bytes() for name in ("pareto.csv", "summary.json")}
    trials = pd.read_parquet(run / "trials.parquet")
    if damage == "removed":
        (run / "trials.parquet").unlink()
    else:
        trials.iloc[:1000].to_parquet(run / "trials.parquet")
    code, err = _resume_exit(capsys, run)
    assert code == 2 and "trials.parquet" in err and f"counts {len(trials):,} candidates evaluated" in err
    assert "Traceback" not in err
    assert {name: (run / name).read_bytes() for name in kept} == kept


def test_repeated_rows_and_leftovers_are_repaired_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _interrupted(tmp_path)
    trials = pd.read_parquet(run / "trials.parquet")
    pd.concat([trials, trials.iloc[:5]]).to_parquet(run / "trials.parquet")
    (run / "trials.parquet.tmp").write_bytes(b"half a file")
    code, err = _resume_exit(capsys, run)
    assert code == 0
    assert "repaired: 5 repeated rows of trials.parquet dropped" in err and "removed trials.parquet.tmp" in err
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["resume_repairs"]) == 2 and summary["complete"]
    assert pd.read_parquet(run / "trials.parquet")["candidate_id"].is_unique


def test_a_moved_space_file_resumes_from_the_manifests_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _interrupted(tmp_path)
    (tmp_path / "run.yaml").unlink()
    code, err = _resume_exit(capsys, run)
    assert code == 0 and "is gone: using the copy of the space in manifest.json" in err
    reference = dse.run(QUICKSTART, out=tmp_path / "reference", engine="exhaustive")
    assert (run / "pareto.csv").read_bytes() == (reference.directory / "pareto.csv").read_bytes()


def test_resuming_a_complete_run_evaluates_nothing(tmp_path: Path) -> None:
    done = dse.run(QUICKSTART, out=tmp_path / "run", engine="optuna", trials=64, seed=2)
    again = dse.resume(tmp_path / "run")
    assert again.summary["counts"]["evaluated_this_session"] == 0
    assert again.summary["counts"]["evaluated"] == done.summary["counts"]["evaluated"]
    # the run's wall time and work are every session's: the resume adds its own, it does not replace them
    session = again.summary["wall_time_this_session_s"]
    assert again.summary["wall_time_s"] == pytest.approx(done.summary["wall_time_s"] + session, rel=1e-12)
    assert again.summary["work"] == done.summary["work"] == {"nodes": 1}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["wall_time_s"] == again.summary["wall_time_s"]


def test_work_per_node_adds_up_over_sessions() -> None:
    from dse.results._run import _merged_work

    before = {"nodes": 2, "chunks_per_node": {"10.0.0.1": 3, "10.0.0.2": 1}}
    assert _merged_work(before, {"nodes": 0, "chunks_per_node": {}}) == before  # a session with nothing left
    now = {"nodes": 2, "chunks_per_node": {"10.0.0.2": 4, "10.0.0.3": 2}}
    assert _merged_work(before, now) == {"nodes": 3, "chunks_per_node": {"10.0.0.1": 3, "10.0.0.2": 5, "10.0.0.3": 2}}
    assert _merged_work(None, now) == now and _merged_work({"nodes": 1}, {"nodes": 1}) == {"nodes": 1}


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_the_samplers_cannot_take_is_refused_before_the_run_directory(tmp_path: Path, seed: int) -> None:
    with pytest.raises(dse.InputError, match="seed: expected a whole number from 0 to 4294967295"):
        dse.run(QUICKSTART, out=tmp_path / "run", engine="optuna", trials=10, seed=seed)
    assert not (tmp_path / "run").exists()


def test_a_run_started_with_an_out_of_range_seed_is_refused_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs of versions that did not check seeds stopped before their first candidate, leaving a manifest."""
    run = _interrupted(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["settings"]["seed"] = -1
    (run / "manifest.json").write_text(json.dumps(manifest))
    code, err = _resume_exit(capsys, run)
    assert code == 2 and "manifest.json: settings.seed" in err and "start a new one" in err
