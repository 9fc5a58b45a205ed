"""Figure builders on real runs: traces, axis titles with units, the front exactly pareto.csv's, SLO regions,
and the one-configuration charts against the analysis they draw."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dse
from dse.report import (
    CELLS,
    DISPLAY,
    RunResults,
    SweepResults,
    best_per_hardware,
    best_per_hardware_chart,
    hypervolume_curve,
    load_results,
    memory_chart,
    metric_value,
    parallel_coordinates,
    pareto_scatter,
    pareto_scatter_3d,
    roofline_chart,
    run_charts,
    sweep_overlay,
    sweep_panels,
    time_breakdown,
)
from dse.report._data import Bound
from dse.search import Normalisation
from dse.space import METRICS

USER, DEVICE = "tokens_per_s_per_user", "throughput_tokens_per_s_per_device"


def _roles(fig: Any) -> Counter[str]:
    return Counter(t.meta["role"] for t in fig.data)


def _points(fig: Any, role: str) -> set[tuple[float, float]]:
    """The (x, y) of a role's points, as the page holds them (float32)."""
    return {
        (float(np.float32(x)), float(np.float32(y)))
        for t in fig.data
        if t.meta["role"] == role
        for x, y in zip(t.x, t.y, strict=True)
    }


def test_every_metric_has_a_title_and_unit() -> None:
    assert set(DISPLAY) == set(METRICS)
    assert DISPLAY["tpot_s"].axis == "time per output token (ms)"
    assert metric_value("tpot_s", 0.05) == pytest.approx(50.0)
    assert metric_value("memory_per_device_bytes", 80e9) == pytest.approx(80.0)


def test_the_scatter_draws_exactly_the_front_on_top(exhaustive: RunResults) -> None:
    run = exhaustive
    fig = pareto_scatter(
        run.trials, run.front, USER, DEVICE, hardware=run.hardware, quants=run.quants, bounds=run.bounds
    )
    pareto = pd.read_csv(run.directory / "pareto.csv")
    expected = {
        (float(np.float32(x)), float(np.float32(y)))
        for x, y in zip(metric_value(USER, pareto[USER]), metric_value(DEVICE, pareto[DEVICE]), strict=True)
    }
    assert _points(fig, "front") == expected
    assert sum(len(t.x) for t in fig.data if t.meta["role"] == "front") == len(pareto)
    roles = [t.meta["role"] for t in fig.data]
    assert roles.index("infeasible") < roles.index("feasible") < roles.index("front")  # front drawn last
    assert fig.layout.xaxis.title.text == "speed per user (tokens/s/user)"
    assert fig.layout.yaxis.title.text == "throughput per device (tokens/s/device)"
    assert _roles(fig)["legend"] == len(run.quants)
    keys = [t for t in fig.data if t.meta["role"] == "hardware_key"]  # one round swatch per hardware drawn
    drawn = {t.name for t in fig.data if t.meta["role"] in ("feasible", "front")}
    assert {t.name for t in keys} == drawn and {t.marker.symbol for t in keys} == {"circle"}
    assert not any(t.showlegend for t in fig.data if t.meta["role"] in ("feasible", "front"))
    hardware_in_front = set(pareto["hardware"])
    assert {t.name for t in fig.data if t.meta["role"] == "front"} == hardware_in_front


def test_a_tpot_slo_shades_the_speed_per_user_axis_below_its_reciprocal(exhaustive: RunResults) -> None:
    run = exhaustive
    fig = pareto_scatter(run.trials, run.front, USER, DEVICE, bounds=run.bounds)
    shapes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(shapes) == 1  # TPOT <= 50 ms is speed >= 20 tokens/s per user; the TTFT SLO is not on these axes
    assert shapes[0].x1 == pytest.approx(20.0)
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert lines[0].x0 == pytest.approx(20.0)
    assert "time to first token ≤ 2000 ms" in fig.layout.title.subtitle.text
    assert not pareto_scatter(run.trials, run.front, USER, DEVICE).layout.shapes


def test_a_constraint_on_an_axis_is_shaded_on_both_sides() -> None:
    trials = pd.DataFrame(
        {
            "candidate_id": range(4), "hardware": "h", "quant": "q", "kv": None, "batch": [1, 2, 3, 4],
            "ttft_s": [0.1, 0.2, 0.3, 0.4], "tpot_s": [0.01, 0.02, 0.03, 0.04], "feasible": True,
            "infeasible_reason": None,
        }
    )  # fmt: skip
    bound = Bound("ttft_s", 0.15, 0.35, "constraint")
    fig = pareto_scatter(trials, trials.iloc[:0], "ttft_s", "tpot_s", bounds=[bound])
    rects = sorted((s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect")
    assert rects[0][1] == pytest.approx(150.0) and rects[1][0] == pytest.approx(350.0)


def test_large_clouds_switch_to_webgl_and_stay_thin(exhaustive: RunResults) -> None:
    run = exhaustive
    small = pareto_scatter(run.trials, run.front, USER, DEVICE)
    assert {t.type for t in small.data} == {"scatter"}
    rng = np.random.default_rng(1)
    copies = []
    for k in range(40):  # the same trials, spread: 156,480 points over many cells
        spread = {m: run.trials[m] * rng.lognormal(0, 0.3, len(run.trials)) for m in (USER, DEVICE)}
        copies.append(run.trials.assign(candidate_id=run.trials["candidate_id"] + (k + 1) * 10**6, **spread))
    big = pd.concat(copies)
    fig = pareto_scatter(big, run.front, USER, DEVICE)
    assert {t.type for t in fig.data} == {"scattergl"}
    drawn = sum(len(t.x) for t in fig.data if t.meta["role"] in ("feasible", "infeasible"))
    assert drawn <= (len(run.hardware) + 1) * CELLS**2 and drawn < 0.2 * len(big)


def test_three_objectives_get_a_3d_chart(exhaustive: RunResults) -> None:
    run = exhaustive
    metrics = [o.metric for o in run.objectives]
    fig = pareto_scatter_3d(run.trials, run.front, metrics, hardware=run.hardware)
    assert sum(len(t.x) for t in fig.data if t.meta["role"] == "front") == len(run.front)
    assert fig.layout.scene.zaxis.title.text == DISPLAY[metrics[2]].column  # short: long titles overlap in 3-D
    key = {t.name: t.marker.symbol for t in fig.data if t.meta["role"] == "legend"}  # a symbol per quantization
    assert set(key) == set(run.trials["quant"]) and len(set(key.values())) == len(key)
    for trace in (t for t in fig.data if t.meta["role"] == "front"):
        assert set(trace.marker.symbol) <= set(key.values())
    swatches = [t for t in fig.data if t.meta["role"] == "hardware_key"]  # round, one per hardware drawn
    assert {t.marker.symbol for t in swatches} == {"circle"}
    assert not any(t.showlegend for t in fig.data if t.meta["role"] in ("feasible", "front"))


def test_parallel_coordinates_cover_choices_then_metrics(exhaustive: RunResults) -> None:
    run = exhaustive
    trials = run.trials.copy()
    trials.loc[trials["hardware"] == "l4", "usd_per_million_tokens"] = np.nan  # as if l4 had no price
    fig = parallel_coordinates(trials, run.front, ["tpot_s", "usd_per_million_tokens"], hardware=run.hardware)
    labels = [d.label for d in fig.data[0].dimensions]
    assert labels[:4] == ["hardware", "quantization", "KV format", "batch"]
    assert labels[-3:] == ["TPOT (ms)", "cost ($/M tokens)", "on the front"]
    assert fig.data[0].meta["rows"] == int(run.trials["feasible"].sum())  # 952 < the line budget: all drawn
    cost = fig.data[0].dimensions[5]
    assert cost.ticktext[0] == "unknown"  # the unpriced hardware's lines stay, at an "unknown" tick


def test_best_per_hardware_chart_has_one_bar_per_hardware(exhaustive: RunResults) -> None:
    run = exhaustive
    picks = best_per_hardware(run.trials, run.objectives, run.hardware)
    fig = best_per_hardware_chart(picks, run.objectives[0], run.trials)
    bar = fig.data[0]
    assert list(bar.y[:2]) == ["h100-sxm", "a100-sxm-80gb"]  # lowest TPOT first
    assert bar.meta == {"role": "best_per_hardware", "feasible": 5, "missing": 0}
    assert bar.x[0] == pytest.approx(1e3 * float(picks[0].row["tpot_s"]))  # type: ignore[index]


def test_hypervolume_curve_ends_at_the_runs_hypervolume(optuna_dir: Path) -> None:
    run = load_results(optuna_dir)
    assert isinstance(run, RunResults)
    hv = run.summary["hypervolume"]
    curve = hypervolume_curve(run.trials, run.objectives, Normalisation(tuple(hv["ideal"]), tuple(hv["nadir"])))
    assert curve["hypervolume"].iloc[-1] == pytest.approx(hv["value"], rel=1e-9)
    assert curve["hypervolume"].is_monotonic_increasing
    assert curve["evaluations"].iloc[-1] == len(run.trials)
    assert set(curve["stage"]) == set(run.trials["stage"])


def test_a_run_gets_every_chart_and_exhaustive_runs_no_history(exhaustive: RunResults, optuna_dir: Path) -> None:
    names = [c.name for c in run_charts(exhaustive)[0]]
    assert names == [
        "pareto-device-vs-user", "pareto-cost-vs-user", "pareto-3d",
        "best-per-hardware", "parallel-coordinates",
    ]  # fmt: skip
    optuna = load_results(optuna_dir)
    assert isinstance(optuna, RunResults)
    assert "hypervolume" in [c.name for c in run_charts(optuna)[0]]
    chosen = run_charts(exhaustive, "ttft_s", "joules_per_token")[0]
    assert chosen[0].name == "pareto-joules-per-token-vs-ttft-s"


def test_sweep_charts_overlay_each_points_front(sweep_dir: Path) -> None:
    sweep = load_results(sweep_dir)
    assert isinstance(sweep, SweepResults) and len(sweep.runs) == 2
    fig = sweep_overlay(sweep.runs, USER, DEVICE)
    fronts = [t for t in fig.data if t.meta["role"] == "front"]
    assert [len(t.x) for t in fronts] == [len(run.front) for _, run in sweep.runs]
    assert [t.name for t in fronts] == ["prompt_tokens=512", "prompt_tokens=4096"]
    panels = sweep_panels(sweep.runs, USER, DEVICE)
    assert {t.xaxis for t in panels.data} == {"x", "x2"}


@pytest.fixture(scope="module")
def analysis() -> dict[str, Any]:
    return dse.analyze("llama-3.1-70b", "dgx-h100", quant="fp8", tp=4, batch=16).to_dict()


def test_roofline_places_every_operator_under_its_roofs(analysis: dict[str, Any]) -> None:
    fig = roofline_chart(analysis)
    operators = [r for r in analysis["layers"] if r["bound"] in ("compute", "memory") and r["flops"] > 0]
    drawn = [t for t in fig.data if t.meta["role"] == "operators"]
    assert sum(len(t.x) for t in drawn) == len(operators)
    roofs = analysis["roofline"]
    bandwidth = roofs["memory_bandwidth_bytes_per_s"] * roofs["bandwidth_efficiency"]
    for trace in drawn:
        for x, y in zip(trace.x, trace.y, strict=True):  # attained <= min(peak, intensity x bandwidth)
            assert y * 1e12 <= x * bandwidth * (1 + 1e-9) or y * 1e12 <= roofs["peak_flops_per_s"]["matmul"]
    kinds = {(t.meta["peak"], t.meta["attainable"]) for t in fig.data if t.meta["role"] == "roof"}
    for roof in (t for t in fig.data if t.meta["role"] == "roof"):  # the legend names the roof drawn
        drawn = float(re.search(r": ([\d.]+) TFLOP/s", roof.name).group(1))  # type: ignore[union-attr]
        assert drawn == pytest.approx(max(roof.y), rel=1e-3)
    assert kinds == {(k, a) for k in ("matmul", "matmul16", "vector") for a in (True, False)}
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_a_continuous_analysis_names_the_sequences_it_ran_not_the_batch_flag() -> None:
    served = dse.analyze("llama-3.1-8b", "h100-sxm", batch=32, scheduler="continuous").to_dict()
    engine = served["continuous"]["sequences_in_engine"]
    assert engine != 32
    subtitle = roofline_chart(served).layout.title.subtitle.text
    assert f"continuous batching: {engine:.4g} sequences in the engine" in subtitle and "batch 32" not in subtitle


def test_time_and_memory_bars_add_up_to_the_analysis(analysis: dict[str, Any]) -> None:
    fig = time_breakdown(analysis)
    for index, stage in enumerate(("prefill", "decode")):  # shares of each phase, its milliseconds in the hover
        assert sum(t.x[index] for t in fig.data) == pytest.approx(100.0, rel=1e-6)
        total = sum(t.customdata[index] for t in fig.data)
        assert total == pytest.approx(analysis[stage]["time_s"] * 1e3, rel=1e-6)
        assert fig.data[0].y[index].endswith(f"{total:.4g} ms")
    assert "communication" in {t.meta["group"] for t in fig.data}  # tp = 4: all-reduces
    mem = memory_chart(analysis)
    assert sum(t.x[0] for t in mem.data) == pytest.approx(analysis["memory"]["total_bytes"] / 1e9, rel=1e-9)
    assert mem.layout.shapes[0].x0 == pytest.approx(analysis["memory"]["capacity_bytes"] / 1e9)


def test_unknown_operator_names_fall_in_other() -> None:
    from dse.report import operator_group

    assert operator_group("q_proj", "compute") == "attention"
    assert operator_group("expert_down", "memory") == "experts (MoE)"
    assert operator_group("tp_all_reduce", "network") == "communication"
    assert operator_group("mystery", "memory") == "other"
    assert np.isfinite(0.0)


def test_every_parameter_has_a_title() -> None:
    from dse.report._labels import PARAMETER_TITLES
    from dse.space import PARAMETERS

    assert set(PARAMETER_TITLES) == set(PARAMETERS)


def test_a_log_axis_of_a_few_decades_writes_its_labels_in_full() -> None:
    """0.2, 0.5, 1, 2, 5 and 10, not plotly's bare minor digits (0.5 read as '5'); wider axes each decade."""
    from dse.report._scatter import axis_type

    axis = axis_type(True, values=[0.15, 3.0, 12.0])
    assert axis["ticktext"] == ["0.2", "0.5", "1", "2", "5", "10"]
    assert axis["tickvals"] == pytest.approx([0.2, 0.5, 1.0, 2.0, 5.0, 10.0])
    wide = axis_type(True, (0.0, 4.5))  # beyond three decades: each decade, in full
    assert wide["ticktext"] == ["1", "10", "100", "1,000", "10,000"]
    assert axis_type(True, (-5.0, 7.0))["ticktext"][:3] == ["1e-05", "1e-04", "0.001"]
    assert axis_type(True, (-5.0, 7.0))["ticktext"][-3:] == ["100k", "1M", "10M"]
    assert axis_type(True, values=[1200.0, 2500.0]) == {"type": "log"}  # one label in range: plotly's own
    assert axis_type(False) == {"type": "linear"}


def test_operators_on_one_point_of_the_roofline_share_a_label() -> None:
    """q_proj and o_proj (or gate, up and down) sit on one point: one label names them, on the first; a
    label that would sit on its neighbour's goes below its marker."""
    from dse.report._config import _cluster_labels

    x, y = [3000.0, 3000.0, 6000.0, 6000.0, 6000.0, 1.0], [1.2e15, 1.2e15, 1.2e15, 1.2e15, 1.2e15, 1e12]
    names = ["q_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "norm"]
    labels, positions = _cluster_labels(x, y, names)
    assert labels == ["q_proj, o_proj", "", "gate_proj, up_proj +1 more", "", "", "norm"]
    assert positions[0] == "top center" and positions[2] == "bottom center" and positions[5] == "top center"
    # groups stacked a few tenths of a decade apart (a decode step's projections at one intensity): no two
    # labels overlap, and every name is in one
    from dse.report._config import LABEL_HEIGHT, LABEL_WIDTH

    x, y = [30.0, 30.0, 31.0, 32.0, 33.0], [9e13, 7e13, 5e13, 4e13, 3.5e13]
    names = ["lm_head", "k_proj", "q_proj", "o_proj", "up_proj"]
    labels, positions = _cluster_labels(x, y, names)
    spans = [
        (np.log10(x[i]), np.log10(y[i]) + (0.0 if positions[i] == "top center" else -LABEL_HEIGHT))
        for i in range(len(names))
        if labels[i]
    ]
    for a, (xa, ya) in enumerate(spans):
        for xb, yb in spans[a + 1 :]:
            assert abs(xa - xb) >= LABEL_WIDTH or abs(ya - yb) >= LABEL_HEIGHT - 1e-9
    assert set(", ".join(label for label in labels if label).split(", ")) <= set(names)
    shown = sum(
        len(label.split(", ")) + (int(label.split(" +")[1].split()[0]) - 1 if " +" in label else 0)
        for label in labels
        if label
    )
    assert shown == len(names)


def test_the_hypervolume_legend_says_when_nsga_ii_takes_over_not_that_it_did() -> None:
    from dse.report._trials import hypervolume_history

    curve = pd.DataFrame({"evaluations": [10, 20, 30], "hypervolume": [0.1, 0.2, 0.25], "stage": ["search"] * 3})
    names = {t.name for t in hypervolume_history(curve, 0.25, tpe_trials=300).data}
    assert names == {"Optuna search (multivariate TPE, NSGA-II past 300 trials)"}


def test_the_batch_axis_of_parallel_coordinates_spans_its_ticks() -> None:
    """Batches 3-96 on log2: ticks at 2 ... 128, and the axis from 2 to 128 (a tick beyond the axis's range is
    drawn above it, over its title); one batch alone keeps plotly's range."""
    from dse.report._trials import _batch_axis

    axis = _batch_axis(pd.Series([3, 8, 96]))
    assert axis["ticktext"] == ["2", "4", "8", "16", "32", "64", "128"]
    assert axis["range"] == [1.0, 7.0]
    assert "range" not in _batch_axis(pd.Series([64, 64]))


def test_a_large_front_is_drawn_with_smaller_markers() -> None:
    """Up to 40 points at 10 px; a front along a batch line of 100 or more at 6.5 px, above the cloud's 6."""
    from dse.report._scatter import front_marker

    assert front_marker(1) == front_marker(40) == 10.0
    assert 6.5 < front_marker(60) < 10.0
    assert front_marker(100) == front_marker(5000) == 6.5


def test_the_analysis_header_names_the_deployment_and_the_sequences_it_ran() -> None:
    """A static tp 4 deployment, and a disaggregated one (served, whatever the scheduler flag): its pools, and
    the sequences in an engine rather than the unused --batch."""
    from dse.report._config import batch_text
    from dse.report._report import _deployment_text

    static = dse.analyze("llama-3.1-70b", "dgx-h100", quant="fp8", tp=4, batch=16).to_dict()
    assert _deployment_text(static["deployment"]) == "4 devices: tp 4 x pp 1 x ep 1, 1 replica"
    assert batch_text(static) == "batch 16"
    split = dse.analyze(
        "llama-3.1-70b", "dgx-h200", quant="fp8", tp=4, replicas=4, mode="disaggregated", prefill_replicas=1
    ).to_dict()
    assert _deployment_text(split["deployment"]) == (
        "16 devices, disaggregated: 1 prefill x dgx-h200 tp 4 pp 1, 3 decode x dgx-h200 tp 4 pp 1"
    )
    assert batch_text(split).startswith("continuous batching: ")
