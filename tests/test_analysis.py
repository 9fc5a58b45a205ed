"""The Python API for one configuration (``dse.analyze``) and for many (``dse.evaluate``) on deployments."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from dse.catalog import catalog_root, hardware_catalog, load_target, system_catalog
from dse.costmodel import CostAssumptions
from dse.errors import InputError
from dse.scoring import analyze, evaluate, target_prices, unpriced_reason
from dse.scoring._build import target_costs

DEPLOYMENTS = [
    {"model": "llama-3.1-70b", "hardware": "dgx-h100", "tp": 4, "batch": 16},
    {"model": "llama-3.1-70b", "hardware": "dgx-h100", "tp": 4, "pp": 2, "batch": 16},
    {"model": "llama-3.1-70b", "hardware": "dgx-h100", "tp": 2, "pp": 4, "batch": 3},  # decode bubble: m < pp
    {"model": "llama-3.1-70b", "hardware": "dgx-h100", "tp": 8, "batch": 8, "kv_offload": 0.5},
    {"model": "llama-3.1-70b", "hardware": "dgx-h100", "tp": 8, "batch": 8, "kv_budget": 256, "kv_block_size": 16},
    {"model": "deepseek-v3", "hardware": "dgx-h200", "quant": "fp8", "tp": 8, "ep": 16, "pp": 2, "batch": 32},
    {"model": "llama-3.1-8b", "hardware": "h100-sxm", "prefix_hit_rate": 0.75},
]


@pytest.mark.parametrize("config", DEPLOYMENTS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_layers_add_up_to_each_phase(config: dict[str, Any]) -> None:
    """Operators, collectives, stage-boundary transfers and the pipeline bubble explain the whole phase, and
    the per-operator detail itemises all of it (no ``not_itemised`` remainder)."""
    data = analyze(**config).to_dict()
    for phase in ("prefill", "decode"):
        rows = [r for r in data["layers"] if r["stage"] == phase]
        assert sum(r["time_s"] for r in rows) == pytest.approx(data[phase]["time_s"], rel=1e-9)
        assert sum(r["flops"] for r in rows) == pytest.approx(data[phase]["flops"], rel=1e-9)
        hbm = sum(r["memory_bytes"] for r in rows if r["bound"] in ("compute", "memory"))
        assert hbm == pytest.approx(data[phase]["memory_bytes"], rel=1e-9)
        assert "not_itemised" not in {r["name"] for r in rows}
        assert all(r["time_s"] >= 0 for r in rows)
    bubble = [r for r in data["layers"] if r["name"] == "pipeline_bubble"]
    assert bool(bubble) == (config.get("pp", 1) > 1)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"mode": "disaggregated", "replicas": 4, "prefill_replicas": 1},
        {
            "mode": "disaggregated",
            "replicas": 4,
            "prefill_replicas": 1,
            "prefill_hardware": "dgx-h100",
            "prefill_tp": 8,
        },
    ],
    ids=["continuous", "disaggregated", "own-prefill-pool"],
)
def test_served_prefill_rows_are_one_requests(extra: dict[str, Any]) -> None:
    """Under continuous batching the prefill section is a request's prompt: its collectives are that
    prompt's (not a static batch of every slot's, which ran to seconds and a negative remainder), and the
    rows explain its time."""
    config = {"model": "llama-3.1-70b", "hardware": "dgx-h200", "quant": "fp8", "tp": 4, "request_rate": 2.0}
    data = analyze(**config | {"scheduler": "continuous"} | extra).to_dict()
    rows = [r for r in data["layers"] if r["stage"] == "prefill"]
    assert all(r["time_s"] >= 0 for r in rows)
    assert sum(r["time_s"] for r in rows) == pytest.approx(data["prefill"]["time_s"], rel=1e-6)
    assert data["communication"]["prefill"]["tp_all_reduce_s"] < data["prefill"]["time_s"]


@pytest.mark.parametrize(("pp", "prefill_pp"), [(1, 4), (2, 1)])
def test_a_prefill_pool_of_its_own_pp_itemises_its_own_stages(pp: int, prefill_pp: int) -> None:
    """A disaggregated prefill pool of its own pp: the prefill rows are one of its stages' operators over its
    passes (not the decode pool's), so they explain the prefill within 1 % (they read a quarter of it, or
    twice it, with the decode pool's stages)."""
    config = {"model": "llama-3.1-70b", "hardware": "dgx-h100", "quant": "fp8", "tp": 4, "pp": pp}
    config |= {"scheduler": "continuous", "request_rate": 1.0, "prompt_len": 4000, "gen_len": 300}
    config |= {"mode": "disaggregated", "replicas": 3, "prefill_replicas": 1, "prefill_pp": prefill_pp}
    data = analyze(**config).to_dict()
    rows = [r for r in data["layers"] if r["stage"] == "prefill"]
    assert data["deployment"]["pools"]["prefill"]["pp"] == prefill_pp
    rest = sum(r["time_s"] for r in rows if r["name"] == "not_itemised")
    assert abs(rest) < 0.01 * data["prefill"]["time_s"]
    assert bool([r for r in rows if r["name"] == "pp_send"]) == (prefill_pp > 1)


def test_pipeline_rows_follow_the_schedule() -> None:
    """pp = 2, m = 2 micro-batches: the prefill is one trip through both stages (sends included) plus one more
    pass of the busiest stage, which is busy for 2 passes: the bubble is the other stage's share of the trip."""
    data = analyze("llama-3.1-70b", "dgx-h100", tp=4, pp=2, batch=16).to_dict()
    rows = {(r["stage"], r["name"]): r for r in data["layers"]}
    comm = data["communication"]["prefill"]
    send = rows[("prefill", "pp_send")]
    assert send["count"] == 2 and send["time_s"] == pytest.approx(comm["pp_send_s"])  # one send per micro-batch
    assert send["memory_bytes"] == pytest.approx(2 * comm["pp_send_bytes"])
    busy = sum(r["time_s"] for (stage, _), r in rows.items() if stage == "prefill" and r["bound"] != "pipeline")
    assert rows[("prefill", "pipeline_bubble")]["time_s"] == pytest.approx(data["prefill"]["time_s"] - busy)
    assert rows[("prefill", "tp_all_reduce")]["memory_bytes"] == pytest.approx(2 * comm["tp_all_reduce_bytes"])
    assert ("decode", "pipeline_bubble") not in rows  # B >= pp: the busiest stage is busy the whole step


@pytest.mark.parametrize(
    ("hit", "prompt", "cached"),
    [(0.5, 1001, 500), (1.0, 1024, 1023), (0.333, 7, 2), (0.0, 10, 0)],  # whole tokens; never the last one
)
def test_prefix_cached_tokens_by_hand(hit: float, prompt: int, cached: int) -> None:
    data = analyze("llama-3.1-8b", "h100-sxm", prefix_hit_rate=hit, prompt_len=prompt).to_dict()
    assert data["kv_policy"]["prefix_cached_tokens"] == cached


@pytest.mark.parametrize(("budget", "evicting"), [(None, False), (1000, True), (1279, True), (1280, False)])
def test_quality_affecting_only_when_the_budget_evicts(budget: int | None, evicting: bool) -> None:
    """Prompt 1024 + 256 output tokens = 1280: a budget of at least that keeps every token."""
    data = analyze("llama-3.1-8b", "h100-sxm", prompt_len=1024, gen_len=256, kv_budget=budget)
    assert data.to_dict()["kv_policy"]["quality_affecting"] is evicting


def test_evaluate_takes_deployment_and_kv_policy_columns() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "model": "llama-3.1-70b",
            "hardware": ["dgx-h100", "dgx-h100", "h100-sxm"],
            "quant": "fp8",
            "tp": [4, 8, 2],
            "replicas": [1, 2, 1],
            "kv_block_size": [16, None, 16],
            "kv_budget": pd.array([None, 2048, None], dtype="Int64"),
            "prefix_hit_rate": 0.5,
            "kv_offload": [0.0, 0.25, 0.0],
        }
    )
    out = evaluate(frame)
    assert list(out.columns[: len(frame.columns)]) == list(frame.columns)
    assert out["devices"].tolist() == [4, 16, 2]
    assert out["feasible"].tolist() == [True, True, False]
    assert "bare accelerator" in out["infeasible_reason"][2]
    assert out["host_kv_cache_bytes"][1] > 0 == out["host_kv_cache_bytes"][0]
    one = analyze("llama-3.1-70b", "dgx-h100", quant="fp8", tp=8, replicas=2, kv_budget=2048, prefix_hit_rate=0.5,
                  kv_offload=0.25).to_dict()  # fmt: skip
    assert out["tpot_s"][1] == pytest.approx(one["tpot_s"], rel=1e-12)
    assert out["throughput_tokens_per_s"][1] == pytest.approx(one["throughput_tokens_per_s"], rel=1e-12)


def test_optional_numbers_may_be_written_as_text_or_left_out() -> None:
    """Optional inputs read None and NaN as absent and numbers given as text as the numbers (as the required
    ones do); text that is not a number is an error naming the input."""
    pd = pytest.importorskip("pandas")
    base = {"model": "llama-3.1-8b", "hardware": "dgx-h100", "quant": "bf16"}
    rows = [base | {"kv_budget": "256"}, base | {"kv_budget": 256}, base | {"kv_budget": None}]
    rows.append(base | {"kv_budget": float("nan")})
    out = evaluate(pd.DataFrame(rows))
    assert out["tpot_s"][0] == out["tpot_s"][1] and out["tpot_s"][2] == out["tpot_s"][3]
    assert out["tpot_s"][0] < out["tpot_s"][2]  # 256 of 1,024+ keys read a step
    nullable = {name: [value] * 2 for name, value in base.items()} | {"kv_budget": pd.array([256, None], "Int64")}
    read = evaluate(pd.DataFrame(nullable))  # pandas' NA: absent, as None is
    assert read["tpot_s"].tolist() == [out["tpot_s"][0], out["tpot_s"][2]]
    with pytest.raises(InputError, match="scheduler: expected one of static, continuous, got 'contin'"):
        evaluate(pd.DataFrame([base | {"scheduler": "static"}, base | {"scheduler": "contin"}]))  # not a number
    for name in ("kv_budget", "batch"):  # an optional input and a required one
        with pytest.raises(InputError, match=f"{name}: expected a number, got 'many' \\(row 1\\)"):
            evaluate(pd.DataFrame([base, base | {name: "many"}]))


@pytest.mark.parametrize("name", ["request_rate", "slo_ttft_s", "slo_tpot_s", "prefix_hit_rate", "weight_bits"])
def test_a_keyword_given_as_nan_is_refused_not_read_as_left_out(name: str) -> None:
    """In a column NaN is a missing number (pandas writes None so); a keyword left out is None: NaN given as
    one is a mistake (``float("nan")`` parsed from text), never "every slot busy" or the default."""
    with pytest.raises(InputError, match=f"^{name}: expected a number, got nan \\(leave it out for the default"):
        analyze("llama-3.1-8b", "h100-sxm", scheduler="continuous", **{name: float("nan")})  # type: ignore[arg-type]


def test_evaluate_takes_a_mapping_of_columns_and_refuses_anything_else() -> None:
    pd = pytest.importorskip("pandas")
    columns = {"model": "llama-3.1-8b", "hardware": ["h100-sxm", "l4"], "batch": [1, 8]}
    out = evaluate(columns)
    assert out["tpot_s"].tolist() == evaluate(pd.DataFrame(columns))["tpot_s"].tolist()
    for given, expected in (
        ([columns], "got list"),
        (None, "got NoneType"),
        ({"model": "llama-3.1-8b", "hardware": "h100-sxm"}, "single values beside at least one list"),
        ({"model": ["llama-3.1-8b"] * 2, "hardware": ["h100-sxm"]}, "columns of equal length"),
    ):
        with pytest.raises(InputError, match=f"^candidates: expected .*{expected}"):
            evaluate(given)  # type: ignore[arg-type]


def test_collective_time_hidden_by_overlap_is_its_own_row(tmp_path: Path) -> None:
    """A profile overlapping half of the shorter of compute and collectives (``overlapped``): the hidden time
    is a negative ``comm_overlap`` row and the rows still add up to each phase."""
    default = (catalog_root() / "hardware" / "profiles" / "default.yaml").read_text()
    profile = tmp_path / "overlap.yaml"
    profile.write_text(default.replace("id: default", "id: overlap").replace("comm_overlap: 0.0", "comm_overlap: 0.5"))
    data = analyze("llama-3.1-70b", "dgx-h100", tp=4, batch=16, profile=str(profile)).to_dict()
    for phase in ("prefill", "decode"):
        rows = {r["name"]: r for r in data["layers"] if r["stage"] == phase}
        hidden = 0.5 * min(
            rows["tp_all_reduce"]["time_s"],
            sum(r["time_s"] for r in rows.values() if r["bound"] in ("compute", "memory")),
        )
        assert rows["comm_overlap"]["time_s"] == pytest.approx(-hidden, rel=1e-9)
        assert sum(r["time_s"] for r in rows.values()) == pytest.approx(data[phase]["time_s"], rel=1e-9)


def test_every_input_is_a_keyword_of_analyze_with_its_default() -> None:
    """``dse.scoring.INPUTS`` is the one list of inputs: ``dse.analyze`` takes each, with the same default
    (the ``dse analyze`` flags are built from the list itself)."""
    import inspect

    from dse.scoring import INPUTS

    parameters = inspect.signature(analyze).parameters
    for spec in INPUTS:
        assert spec.name in parameters, spec.name
        expected = inspect.Parameter.empty if spec.name in ("model", "hardware") else spec.default
        assert parameters[spec.name].default == expected, spec.name
    assert set(parameters) - {i.name for i in INPUTS} == {"ideal", "profile", "engine", "costs", "lengths"}


def test_every_input_has_a_place_in_a_space() -> None:
    """A space states every input: a choice, a workload figure, or its own field; raw bit-widths are the one
    exception (spaces choose among named schemes, which carry their scale overheads)."""
    from dse.scoring import INPUTS
    from dse.space._schema import ChoicesRecord, WorkloadRecord

    elsewhere = {"model": "model", "prompt_len": "workload.prompt_tokens", "gen_len": "workload.output_tokens"}
    elsewhere |= {"slo_ttft_s": "slo.ttft_s", "slo_tpot_s": "slo.tpot_s", "slo_percentile": "slo.percentile"}
    raw_bits = {"weight_bits", "act_bits", "kv_bits"}
    for spec in INPUTS:
        placed = spec.name in ChoicesRecord.model_fields or spec.name in WorkloadRecord.model_fields
        assert placed or spec.name in elsewhere or spec.name in raw_bits, spec.name


@pytest.mark.parametrize("config", DEPLOYMENTS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_analyze_agrees_with_evaluate(config: dict[str, Any]) -> None:
    """``dse.analyze`` runs the reference evaluator, ``dse.evaluate`` the engine: the same numbers."""
    import pandas as pd

    from dse.costmodel import METRIC_NAMES

    one = analyze(**config).to_dict()
    row = evaluate(pd.DataFrame([config])).iloc[0]
    for name in METRIC_NAMES:
        if one[name] is None:
            assert pd.isna(row[name]), name
        else:
            assert row[name] == pytest.approx(one[name], rel=1e-12), name
    assert row["max_batch"] == one["memory"]["max_batch"] and row["feasible"] == one["feasible"]


@pytest.mark.parametrize("pricing", ["rent-on-demand", "rent-reserved", "buy"])
def test_a_price_is_unknown_exactly_where_a_reason_says_what_is_missing(pricing: str) -> None:
    """For every accelerator and system of the catalog, the reason agrees with the cost model's own figure."""
    costs = CostAssumptions(pricing=pricing)  # type: ignore[arg-type]
    for ref in [*hardware_catalog(), *system_catalog()]:
        target = load_target(ref)
        _, price = target_costs(target, costs)
        reason = unpriced_reason(target_prices(target, costs), costs)
        assert (reason is None) == math.isfinite(price), (ref, reason, price)


def test_analyze_says_which_figure_its_pricing_lacks() -> None:
    """apple-m4-max has a purchase price but no TDP: buy pricing cannot count its electricity."""
    bought = analyze(model="llama-3.1-8b", hardware="apple-m4-max", costs=CostAssumptions(pricing="buy")).to_dict()
    assert bought["usd_per_hour"] is None or math.isnan(bought["usd_per_hour"])
    assert bought["unpriced_reason"] == "no power figure (TDP or system power) for its electricity under buy pricing"
    rented = analyze(model="llama-3.1-8b", hardware="apple-m4-max").to_dict()
    assert rented["unpriced_reason"] == "no on-demand rent price in the price catalog"
    assert analyze(model="llama-3.1-8b", hardware="h100-sxm").to_dict()["unpriced_reason"] is None


@pytest.mark.parametrize("pp", [2, 4])
def test_a_served_prompt_s_operators_are_one_pass_through_the_stages(pp: int) -> None:
    """Under continuous batching a request's prefill is its lone prompt's one pass (pipelined through pp
    stages), not pp micro-batch passes as every slot busy runs: its operator rows add up to the phase's FLOPs,
    with no ``not_itemised`` row taking the double count back."""
    d = analyze(
        "llama-3.1-70b", "dgx-h100", quant="fp8", tp=4, pp=pp, scheduler="continuous", request_rate=5.0
    ).to_dict()
    rows = [r for r in d["layers"] if r["stage"] == "prefill"]
    assert "not_itemised" not in {r["name"] for r in rows}
    assert sum(r.get("flops") or 0.0 for r in rows) == pytest.approx(d["prefill"]["flops"], rel=1e-9)
    assert sum(r["time_s"] for r in rows) == pytest.approx(d["prefill"]["time_s"], rel=1e-9)
