"""Runs end to end: exact fronts, Optuna's hypervolume, run-directory contract, interrupt and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dse
from dse.report import best_per_hardware
from dse.scoring import evaluate
from dse.search import Normalisation, hypervolume, objective_points, pareto_indices
from dse.space import PARAMETERS, load_space

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "spaces" / "quickstart.yaml"


def _space_file(tmp_path: Path, **execution: object) -> Path:
    text = QUICKSTART.read_text().replace("model: llama-3.1-8b", "model: llama-3.1-8b")
    extra = "".join(f"  {k}: {v}\n" for k, v in execution.items())
    path = tmp_path / "space.yaml"
    path.write_text(text + (f"execution:\n{extra}" if extra else ""))
    return path


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> dse.results.Run:  # type: ignore[name-defined]
    return dse.run(QUICKSTART, out=tmp_path_factory.mktemp("exact"), engine="exhaustive")


def test_run_directory_contract(exact) -> None:  # type: ignore[no-untyped-def]
    d = exact.directory
    assert {p.name for p in d.iterdir()} >= {"manifest.json", "trials.parquet", "pareto.csv", "summary.json"}
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["space"]["sha256"] == exact.space.digest and manifest["versions"]["dse"] == dse.__version__
    trials = pd.read_parquet(d / "trials.parquet")
    assert len(trials) == exact.space.size and trials["candidate_id"].is_unique
    assert {"feasible", "infeasible_reason", "hardware", "quant", "batch", "tpot_s"} <= set(trials.columns)
    pareto = pd.read_csv(d / "pareto.csv")
    assert pareto["feasible"].all() and pareto["candidate_id"].is_unique
    summary = json.loads((d / "summary.json").read_text())
    assert summary["complete"] and summary["engine"] == "exhaustive" and summary["counts"]["pareto"] == len(pareto)
    assert 0 < summary["hypervolume"]["value"] <= 1.1**3


def test_exhaustive_front_is_exact(exact) -> None:  # type: ignore[no-untyped-def]
    """Brute force over the *unpruned* product with dse.evaluate: same feasible non-dominated set."""
    space = exact.space
    rec = space.record
    grid = pd.MultiIndex.from_product(
        [rec.choices.hardware, rec.choices.quant, rec.choices.kv, list(range(1, 257))],
        names=["hardware", "quant", "kv", "batch"],
    ).to_frame(index=False)
    grid["model"], grid["prompt_len"], grid["gen_len"] = (
        rec.model,
        rec.workload.prompt_tokens,
        rec.workload.output_tokens,
    )
    grid["kv"] = grid["kv"].astype(object).where(grid["kv"].notna(), None)
    scored = evaluate(grid)
    ok = scored["feasible"] & (scored["ttft_s"] <= rec.slo.ttft_s) & (scored["tpot_s"] <= rec.slo.tpot_s)
    pts = np.stack(
        [scored["tpot_s"], -scored["throughput_tokens_per_s_per_device"], scored["usd_per_million_tokens"]], 1
    )[ok]
    import moocore

    brute = scored[ok][moocore.is_nondominated(pts, keep_weakly=True)]  # ties are all on the front
    expected = set(zip(brute["hardware"], brute["quant"], brute["kv"], brute["batch"], strict=True))
    front = exact.front
    got = set(zip(front["hardware"], front["quant"], front["kv"], front["batch"].tolist(), strict=True))
    assert got == expected


def _ratio(found_front: dict, exact: dse.results.Run) -> float:  # type: ignore[name-defined,type-arg]
    norm = Normalisation.of_front(objective_points(exact.front, exact.space.record.objectives))
    exact_hv = hypervolume(objective_points(exact.front, exact.space.record.objectives), norm)
    return hypervolume(objective_points(found_front, exact.space.record.objectives), norm) / exact_hv


def test_optuna_reaches_99_percent_of_exact_hypervolume(exact, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    found = dse.run(QUICKSTART, out=tmp_path, engine="optuna")  # default budget: 2000 trials
    assert _ratio(found.front, exact) >= 0.99
    # the sampler alone (before the batch-line polish) already gets there on this space
    searched = {k: np.asarray(v)[found.columns["stage"] == "search"] for k, v in found.columns.items()}
    assert (
        _ratio({k: v[pareto_indices(searched, found.space.record.objectives)] for k, v in searched.items()}, exact)
        >= 0.99
    )
    assert found.summary["counts"]["by_stage"]["search"] <= 2000
    assert (tmp_path / "study.journal").exists()
    assert found.summary["counts"]["evaluated"] == len(set(found.columns["candidate_id"].tolist()))  # no repeats
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(
        study_name="quickstart", storage=JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    )
    assert len(study.trials) == 2000
    assert all(
        t.system_attrs.get("constraints") is not None or any(k.startswith("constraints") for k in t.system_attrs)
        for t in study.trials
    )


def test_optuna_is_reproducible(tmp_path: Path) -> None:
    a = dse.run(QUICKSTART, out=tmp_path / "a", engine="optuna", trials=200, seed=7)
    b = dse.run(QUICKSTART, out=tmp_path / "b", engine="optuna", trials=200, seed=7)
    assert a.columns["candidate_id"].tolist() == b.columns["candidate_id"].tolist()


def test_interrupt_then_resume_gives_the_same_front(exact, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _space_file(tmp_path, chunk_size=300)
    stop = threading.Event()
    first = dse.run(path, out=tmp_path / "run", engine="exhaustive", stop=stop, progress=lambda status: stop.set())
    assert not first.summary["complete"] and 0 < first.summary["counts"]["evaluated"] < exact.space.size
    done = first.summary["counts"]["evaluated"]
    second = dse.resume(tmp_path / "run")
    assert second.summary["complete"]
    assert second.summary["counts"]["evaluated_this_session"] == exact.space.size - done  # nothing twice
    ids = second.columns["candidate_id"]
    assert len(ids) == len(set(ids.tolist())) == exact.space.size
    assert set(second.front["candidate_id"].tolist()) == set(exact.front["candidate_id"].tolist())


def test_a_run_keeping_some_rows_says_why_a_hardware_has_none_as_one_keeping_all(tmp_path: Path) -> None:
    """Under a 5 ms TPOT SLO three of the five GPUs have no feasible candidate. A run that keeps only the
    feasible rows (or the front) drops theirs, yet gives each the same reason as a run that keeps every row:
    summary.json's by_hardware counts them (across an interruption and resume too)."""
    path = _space_file(tmp_path, chunk_size=300)
    path.write_text(path.read_text().replace("tpot_s: 0.05", "tpot_s: 0.005"))
    runs = {keep: dse.run(path, out=tmp_path / keep, engine="exhaustive", keep=keep) for keep in ("all", "front")}
    stop = threading.Event()
    first = dse.run(
        path, out=tmp_path / "kept", engine="exhaustive", keep="feasible", stop=stop, progress=lambda _: stop.set()
    )
    assert 0 < first.summary["counts"]["evaluated"] < first.space.size
    runs["feasible"] = dse.resume(tmp_path / "kept")
    trials = runs["all"].trials
    expected = {
        str(name): {
            "feasible": int(rows["feasible"].sum()),
            "infeasible": rows["infeasible_reason"][~rows["feasible"]].astype(str).value_counts().to_dict(),
        }
        for name, rows in trials.groupby("hardware", observed=True)
    }
    assert "by_hardware" not in runs["all"].summary
    assert runs["feasible"].summary["by_hardware"] == runs["front"].summary["by_hardware"] == expected
    notes = {}
    for keep, run in runs.items():
        record = run.space.record
        picks = best_per_hardware(run.trials, record.objectives, record.choices.hardware, run.summary)
        notes[keep] = {p.role: p.note for p in picks if p.row is None and "on the front" not in p.note}
    assert notes["feasible"] == notes["front"] == notes["all"]
    assert set(notes["all"]) == {"l40s", "l4", "rtx-4090"}
    assert all(n.startswith("no feasible configuration: slo ttft_s: above 2 (") for n in notes["all"].values())


def test_resume_refuses_a_changed_space(tmp_path: Path) -> None:
    path = _space_file(tmp_path, chunk_size=300)
    stop = threading.Event()
    dse.run(path, out=tmp_path / "run", stop=stop, progress=lambda status: stop.set())
    path.write_text(path.read_text().replace("tpot_s: 0.05", "tpot_s: 0.04"))
    with pytest.raises(dse.InputError, match="changed since this run started"):
        dse.resume(tmp_path / "run")


def test_sigint_keeps_what_was_evaluated(tmp_path: Path) -> None:
    """Ctrl-C on the CLI: exit 130, trials kept, and `--resume` finishes the run."""
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "dse.cli",
        "run",
        str(QUICKSTART),
        "--out",
        str(out),
        "--engine",
        "optuna",
        "--trials",
        "1500",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)}
    )
    deadline = time.monotonic() + 60
    while not (out / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err and "Traceback" not in err
    kept = pd.read_parquet(out / "trials.parquet")
    assert len(kept) > 0
    finished = dse.resume(out)
    assert finished.summary["complete"]
    assert len(set(finished.columns["candidate_id"].tolist())) == len(finished.columns["candidate_id"])


def _cli_run(space: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``dse run SPACE --out OUT`` in a subprocess (wide columns: the answer's lines are read whole)."""
    return subprocess.run(
        [sys.executable, "-m", "dse.cli", "run", str(space), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "250"},
    )


def test_cli_run_prints_the_front(tmp_path: Path) -> None:
    done = _cli_run(QUICKSTART, tmp_path / "r", "--top", "5")
    assert done.returncode == 0, done.stderr
    assert "Pareto front" in done.stdout and "tpot_ms" in done.stdout


def test_sweep_joins_fronts_with_sweep_keys(tmp_path: Path) -> None:
    experiment = tmp_path / "sweep.yaml"
    experiment.write_text(
        f"name: s\nbase: {QUICKSTART}\ngrid:\n  model: [llama-3.1-8b, qwen3-8b]\n  workload.output_tokens: [64, 256]\n"
    )
    result = dse.sweep(experiment, out=tmp_path / "out")
    table = result.table
    assert set(table["sweep.model"]) == {"llama-3.1-8b", "qwen3-8b"} and set(table["sweep.workload.output_tokens"]) == {
        64,
        256,
    }
    assert (tmp_path / "out" / "sweep.csv").exists() and len(list((tmp_path / "out").glob("point-*"))) == 4
    one = load_space(tmp_path / "out" / "point-001" / "space.yaml")
    assert one.record.workload.output_tokens == 256 and one.record.model == "llama-3.1-8b"


def test_prefix_hit_sweep_gives_one_front_per_hit_rate(tmp_path: Path) -> None:
    """The shipped experiment: the hit rate is the traffic's, so each rate gets its own front, and the
    fronts improve with it (cached prompt tokens skip prefill); the same choices keep the same ids."""
    started = time.perf_counter()
    result = dse.sweep(ROOT / "experiments" / "long-context-prefix-hits.yaml", out=tmp_path / "out")
    assert result.complete and time.perf_counter() - started < 30
    table = result.table
    key = "sweep.workload.prefix_hit_rate"
    assert (table[key] == table["prefix_hit_rate"]).all()  # each front's rows carry their own hit rate
    fronts = dict(tuple(table.groupby(key)))
    assert sorted(fronts) == [0.0, 0.5, 0.9] and all(len(front) for front in fronts.values())
    best_ttft = [fronts[h]["ttft_s"].min() for h in (0.0, 0.5, 0.9)]
    best_cost = [fronts[h]["usd_per_million_tokens"].min() for h in (0.0, 0.5, 0.9)]
    assert best_ttft == sorted(best_ttft, reverse=True) and best_ttft[2] < 0.5 * best_ttft[0]
    assert best_cost == sorted(best_cost, reverse=True)
    # the figures docs/spaces.md quotes ("long-context-prefix-cache")
    assert [round(t, 2) for t in best_ttft] == [1.15, 0.64, 0.14]
    assert [round(c, 1) for c in best_cost] == [25.7, 14.8, 3.7]
    cold, hot = (fronts[h].set_index("candidate_id")["ttft_s"] for h in (0.0, 0.9))
    shared = cold.index.intersection(hot.index)
    assert len(shared) and (hot[shared] < cold[shared]).all()  # one configuration, colder to warmer cache


def test_every_experiment_file_is_valid() -> None:
    """Every point of every shipped sweep validates against its base space (nothing is run)."""
    from dse.catalog._files import read_document, validate
    from dse.results._sweep import SweepRecord, points

    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        record = validate(SweepRecord, read_document(path), source=str(path), path=path)
        base = read_document((path.parent / record.base).resolve())
        assert len(points(record, base, str(path))) == np.prod([len(v) for v in record.grid.values()])


def test_sweep_rejects_a_bad_override(tmp_path: Path) -> None:
    experiment = tmp_path / "sweep.yaml"
    experiment.write_text(f"name: s\nbase: {QUICKSTART}\ngrid:\n  workload.prompt_tokens: [512, -1]\n")
    with pytest.raises(dse.InputError, match=r"point 1.*workload\.prompt_tokens"):
        dse.sweep(experiment, out=tmp_path / "out")


def test_a_space_with_nothing_runnable_is_an_empty_result(tmp_path: Path) -> None:
    path = tmp_path / "nothing.yaml"
    path.write_text(
        "name: nothing\nmodel: llama-3.1-70b\nworkload: {prompt_tokens: 1024, output_tokens: 128}\n"
        "choices: {hardware: [l4], quant: [bf16]}\nobjectives: [{metric: tpot_s}]\n"
    )
    result = dse.run(path, out=tmp_path / "run")
    assert result.summary["counts"]["after_pruning"] == 0 and result.summary["counts"]["pareto"] == 0
    assert result.summary["pruned"][0]["reason"].startswith("weights")
    assert len(result.trials) == 0 and (tmp_path / "run" / "pareto.csv").exists()


def test_optuna_with_polish_reaches_99_percent_on_the_moe_space(tmp_path: Path) -> None:
    """The hardest example space for the samplers (98 % alone): the batch-line polish closes the gap."""
    moe = ROOT / "spaces" / "moe-qwen3-30b.yaml"
    exact = dse.run(moe, out=tmp_path / "exact", engine="exhaustive")
    found = dse.run(moe, out=tmp_path / "optuna", engine="optuna", seed=1)
    assert _ratio(found.front, exact) >= 0.99


DEPLOYMENT_EXAMPLES = ("llama-3.1-405b-multinode", "deepseek-v3-ep", "long-context-prefix-cache")


@pytest.fixture(scope="module")
def deployment_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dse.results.Run]:  # type: ignore[name-defined]
    out = tmp_path_factory.mktemp("deployment")
    return {
        name: dse.run(ROOT / "spaces" / f"{name}.yaml", out=out / name, engine="exhaustive")
        for name in DEPLOYMENT_EXAMPLES
    }


@pytest.mark.parametrize("name", DEPLOYMENT_EXAMPLES)
def test_deployment_example_runs_end_to_end(deployment_runs, name: str) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq

    result = deployment_runs[name]
    d = result.directory
    summary = json.loads((d / "summary.json").read_text())
    assert summary["complete"] and summary["counts"]["pareto"] > 0 and summary["wall_time_s"] < 30
    pareto = pd.read_csv(d / "pareto.csv")
    assert pareto["feasible"].all() and len(pareto) == summary["counts"]["pareto"]
    assert not pareto[list(PARAMETERS)].astype(str).duplicated().any()  # one row per distinct configuration
    assert {"quality_affecting", "devices", "compute_format"} <= set(pareto.columns)
    schema = pq.read_schema(d / "trials.parquet")
    for column in ("tp", "pp", "ep", "replicas", "kv_block_size", "kv_budget"):
        assert schema.field(column).type == pa.int64(), column
    assert schema.field("prefix_hit_rate").type == pa.float64() and schema.field("quality_affecting").type == pa.bool_()
    for entry in summary["pruned"]:  # every pruned combination names every parameter but batch
        assert list(entry) == [*PARAMETERS[:-1], "reason"] and entry["reason"]
    # devices of a replica = max(tp, ep) x pp
    trials = result.trials
    np.testing.assert_array_equal(
        trials["devices"], np.maximum(trials["tp"], trials["ep"]) * trials["pp"] * trials["replicas"]
    )


def test_deployment_examples_answer_their_questions(deployment_runs) -> None:  # type: ignore[no-untyped-def]
    llama = deployment_runs["llama-3.1-405b-multinode"]
    pruned = {(p["hardware"], p["quant"], p["pp"]) for p in llama.summary["pruned"]}
    assert pruned == {("dgx-h100", "bf16", 1)}  # ~810 GB of bf16 weights do not fit 8 x 80 GB
    assert set(llama.front["pp"].tolist()) > {1}  # more stages buy deployment throughput under the TTFT SLO

    deepseek = deployment_runs["deepseek-v3-ep"]
    assert {(p["hardware"], p["ep"]) for p in deepseek.summary["pruned"]} == {("dgx-h100", 8)}
    deepseek_front = deepseek.front
    assert len(set(deepseek_front["ep"].tolist())) > 1  # a trade-off between expert-parallel widths

    long_context = deployment_runs["long-context-prefix-cache"].trials
    evicting = long_context["kv_budget"].notna()
    assert (long_context["quality_affecting"] == evicting).all() and evicting.any() and (~evicting).any()
    exact = long_context[~evicting & long_context["feasible"]]
    assert len(exact) and (exact["prefix_hit_rate"] == 0.5).all()  # exact serving, at the workload's hit rate


def test_deployment_columns_survive_interrupt_and_resume(tmp_path: Path) -> None:
    source = ROOT / "spaces" / "long-context-prefix-cache.yaml"
    path = tmp_path / "space.yaml"
    path.write_text(source.read_text() + "execution:\n  chunk_size: 700\n")
    stop = threading.Event()
    first = dse.run(path, out=tmp_path / "run", engine="exhaustive", stop=stop, progress=lambda status: stop.set())
    assert not first.summary["complete"]
    second = dse.resume(tmp_path / "run")
    assert second.summary["complete"] and len(set(second.columns["candidate_id"].tolist())) == second.space.size
    budgets = second.columns["kv_budget"]
    assert budgets.dtype == object and set(budgets.tolist()) == {None, 8192}
    whole = dse.run(source, out=tmp_path / "whole", engine="exhaustive")
    assert set(second.front["candidate_id"].tolist()) == set(whole.front["candidate_id"].tolist())


def _deployments(trials: pd.DataFrame) -> list[tuple[object, ...]]:
    return list(zip(trials["hardware"], trials["tp"], trials["ep"], trials["batch"], strict=True))


def test_optuna_on_a_space_with_tp_and_ep(deployment_runs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dse.search import distributions

    exact = deployment_runs["deepseek-v3-ep"]
    dims = distributions(exact.space)
    assert set(dims) == {"hardware", "tp", "ep", "batch"}  # single-valued dimensions are fixed
    assert list(dims["ep"].choices) == [8, 16, 32, 64]
    found = dse.run(exact.space, out=tmp_path, engine="optuna", trials=150, seed=3)
    searched = found.columns["stage"] == "search"
    assert searched.any() and (tmp_path / "study.journal").exists()
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(
        study_name="deepseek-v3-ep", storage=JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    )
    trials = found.trials
    evaluated = dict(zip(trials["candidate_id"], _deployments(trials), strict=True))
    enumerated = set(_deployments(exact.trials))
    for trial in study.trials:  # evaluated as the candidate it names, or not a candidate of the pruned space
        p, cid = trial.params, trial.user_attrs["candidate_id"]
        named = (p["hardware"], p["tp"], p["ep"], p["batch"])
        assert evaluated[cid] == named if cid is not None else named not in enumerated
    assert any(t.user_attrs["candidate_id"] is None for t in study.trials)  # some were pruned
    assert trials["candidate_id"].is_unique
    assert _ratio(found.front, exact) >= 0.99


def test_a_sweep_twice_makes_two_directories_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same sweep file twice: two timestamped directories; an interrupted point is resumed by
    `dse sweep --resume`, complete points are read back, and the joined front is the uninterrupted one."""
    from dse.cli import main

    monkeypatch.chdir(tmp_path)
    experiment = tmp_path / "sweep.yaml"
    experiment.write_text(f"name: twice\nbase: {QUICKSTART}\ngrid:\n  workload.prompt_tokens: [512, 1024]\n")
    assert main(["sweep", str(experiment)]) == 0
    assert main(["sweep", str(experiment)]) == 0
    first, second = sorted((tmp_path / "experiments" / "runs").iterdir())
    assert first.name.startswith("twice-") and second.name.startswith("twice-") and first != second
    point = second / "point-001"
    for name in ("summary.json", "pareto.csv", "trials.parquet", "manifest.json"):
        (point / name).unlink()
    stop = threading.Event()
    dse.run(point / "space.yaml", out=point, stop=stop, progress=lambda status: stop.set())  # interrupted
    index = json.loads((second / "sweep.json").read_text())
    index["complete"] = False
    (second / "sweep.json").write_text(json.dumps(index))
    assert main(["sweep", "--resume", str(second)]) == 0
    assert json.loads((point / "summary.json").read_text())["complete"]
    assert json.loads((second / "sweep.json").read_text())["complete"]
    assert (second / "sweep.csv").read_bytes() == (first / "sweep.csv").read_bytes()
    assert main(["sweep", str(experiment), "--out", str(first)]) == 2  # a sweep directory is continued, not reused


def test_ctrl_c_during_a_sweep_keeps_the_finished_points_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C after the first of three points: exit 130 with no traceback, the first point's front in
    sweep.csv and its summary in sweep.json, and ``--resume`` completes the sweep."""
    from dse.cli import main
    from dse.results import _sweep

    real = _sweep._run_point
    calls = []

    def point_then_ctrl_c(space_file: str, out: str, stop: threading.Event | None = None) -> dict[str, object]:
        result = real(space_file, out, stop)
        calls.append(out)
        if len(calls) == 1:
            signal.raise_signal(signal.SIGINT)  # the sweep's handler sets its stop: the next point does not start
        return result

    monkeypatch.setattr(_sweep, "_run_point", point_then_ctrl_c)
    experiment = tmp_path / "sweep.yaml"
    experiment.write_text(f"name: cut\nbase: {QUICKSTART}\ngrid:\n  workload.prompt_tokens: [512, 1024, 2048]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", str(experiment), "--out", str(out)]) == 130
    assert "Traceback" not in capsys.readouterr().err
    index = json.loads((out / "sweep.json").read_text())
    assert not index["complete"] and index["points"][0]["summary"]["complete"]
    assert [p["summary"] for p in index["points"][1:]] == [None, None]
    table = pd.read_csv(out / "sweep.csv")
    assert set(table["sweep.workload.prompt_tokens"]) == {512}
    assert main(["sweep", "--resume", str(out)]) == 0
    assert set(pd.read_csv(out / "sweep.csv")["sweep.workload.prompt_tokens"]) == {512, 1024, 2048}


def test_a_sweep_over_lengths_finds_the_base_space_s_histogram(tmp_path: Path) -> None:
    """A histogram named relative to the base space is found from every point; a distribution may be a point."""
    (tmp_path / "traffic.csv").write_text("prompt_tokens\n300\n700\n2000\n")
    base = tmp_path / "base.yaml"
    base.write_text(
        "name: lengths\nmodel: llama-3.1-8b\n"
        "workload: {prompt_tokens: {distribution: histogram, path: traffic.csv}, output_tokens: 100}\n"
        "choices: {hardware: [h100-sxm], scheduler: [continuous]}\n"
        "objectives: [{metric: throughput_tokens_per_s}]\n"
    )
    experiment = tmp_path / "sweep.yaml"
    experiment.write_text(
        "name: s\nbase: base.yaml\ngrid:\n  workload.output_tokens: [100, {distribution: uniform, min: 50, max: 150}]\n"
    )
    result = dse.sweep(experiment, out=tmp_path / "out")
    assert result.complete and len(result.table) == 2
    point = load_space(tmp_path / "out" / "point-001" / "space.yaml")
    assert point.lengths.prompts.mean == 1000.0 and point.lengths.outputs.mean == pytest.approx(100.0)
    assert set(result.table["sweep.workload.output_tokens"]) == {"100", "{distribution: uniform, max: 150, min: 50}"}


@pytest.mark.parametrize(
    ("old", "new", "sentence", "why"),
    [
        (
            "tpot_s: 0.05}",
            "tpot_s: 0.000000001}",
            "no feasible candidate: each of the 4,312 evaluated breaks an SLO or constraint, or cannot run",
            "no feasible configuration: slo ttft_s: above 2 (",
        ),
        (
            "  kv: [null, fp8]",
            "  tp: [3]\n  kv: [null, fp8]",
            "no feasible candidate: every candidate was pruned before evaluation (it cannot run)",
            "pruned before evaluation: tp must divide the attention heads",
        ),
    ],
)
def test_cli_run_without_a_feasible_candidate_prints_why_per_hardware(
    tmp_path: Path, old: str, new: str, sentence: str, why: str
) -> None:
    """Where everything was pruned, trials.parquet has no rows: the reasons must be in the answer itself."""
    text = QUICKSTART.read_text()
    assert old in text
    space = tmp_path / "space.yaml"
    space.write_text(text.replace(old, new))
    done = _cli_run(space, tmp_path / "r")
    assert done.returncode == 0, done.stderr
    assert sentence in done.stdout and "see trials.parquet" not in done.stdout
    assert "Why, per hardware" in done.stdout
    assert sum(why in line for line in done.stdout.splitlines()) == 5  # one line per hardware


def test_a_hardware_without_a_price_says_which_figure_is_missing(tmp_path: Path) -> None:
    """apple-m4-max has a purchase price but no TDP: under buy pricing its electricity, so its cost, is unknown."""
    space = tmp_path / "space.yaml"
    space.write_text(
        "name: unpriced\nmodel: llama-3.1-8b\nworkload: {prompt_tokens: 1024, output_tokens: 512}\n"
        "choices: {hardware: [rtx-4090, apple-m4-max], quant: [q4_k_m], batch: [1, 2]}\n"
        "objectives: [{metric: usd_per_hour}]\npricing: buy\n"
    )
    why = "no power figure (TDP or system power) for its electricity under buy pricing"
    done = _cli_run(space, tmp_path / "r")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["unpriced"] == {"apple-m4-max": why}
    assert f"2 feasible configurations, but cost per hour unknown: {why}" in done.stdout
    assert "no price in the catalog" not in done.stdout
