"""Search-space YAML: the shipped examples, error messages for malformed spaces, static pruning, feasibility."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest
import yaml

from dse.errors import InputError
from dse.scoring import evaluate
from dse.space import MAXIMIZED, METRICS, PARAMETERS, WORKLOAD_COLUMNS, MetricName, Pruned, load_space

SPACES = sorted((Path(__file__).resolve().parents[2] / "spaces").glob("*.yaml"))

BASE: dict[str, Any] = {
    "name": "t",
    "model": "llama-3.1-8b",
    "workload": {"prompt_tokens": 2048, "output_tokens": 256},
    "choices": {"hardware": ["h100-sxm", "a100-sxm-80gb"], "quant": ["bf16"]},
    "objectives": [{"metric": "tpot_s"}],
}


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def space_with(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return data


def load_error(tmp_path: Path, data: dict[str, Any] | str) -> str:
    path = write(tmp_path, data)
    with pytest.raises(InputError) as info:
        load_space(path)
    message = str(info.value)
    assert message.startswith(str(path)), message  # every message names the file first
    return message


# --- the shipped example spaces -------------------------------------------------------------------------


def test_examples_exist() -> None:
    names = {p.name for p in SPACES}
    assert {"quickstart.yaml", "llama-3.1-70b-chat.yaml", "long-context-rag.yaml", "consumer-gpus-8b.yaml"} <= names
    assert {"llama-3.1-405b-multinode.yaml", "deepseek-v3-ep.yaml", "long-context-prefix-cache.yaml"} <= names
    assert any(n.startswith("moe-") for n in names)


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_example_loads_and_has_feasible_candidates(path: Path) -> None:
    space = load_space(path)
    assert space.record.name == path.stem
    assert path.read_text().startswith("# "), "every example opens with a comment saying its question"
    assert 0 < space.size <= space.full_size <= 100_000  # small enough for `engine: auto` to enumerate
    result = space.evaluate_index(np.arange(space.size))
    feasible = np.asarray(result["feasible"], dtype=bool)
    assert feasible.any()
    # a trade-off: the feasible candidates' best values of the objectives are not all reached by one candidate
    best_rows = set()
    for objective in space.record.objectives:
        values = np.asarray(result[objective.metric], dtype=np.float64)
        values = np.where(feasible & np.isfinite(values), values, np.nan)
        assert np.isfinite(values).any(), f"{objective.metric} is never known on a feasible candidate"
        best_rows.add(int(np.nanargmax(values) if objective.maximize else np.nanargmin(values)))
    assert len(best_rows) > 1
    # every infeasible candidate says why
    reasons = np.asarray(result["infeasible_reason"], dtype=object)
    assert all(r is None for r in reasons[feasible])
    assert all(isinstance(r, str) and r for r in reasons[~feasible])


def test_metric_names_agree() -> None:
    assert set(METRICS) == set(get_args(MetricName))
    maximised = {"throughput_tokens_per_s", "throughput_tokens_per_s_per_device", "tokens_per_s_per_user"}
    assert maximised | {"max_request_rate"} == MAXIMIZED


def test_defaults(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, BASE))
    rec = space.record
    assert rec.choices.quant == ["bf16"] and rec.choices.kv == [None] and rec.choices.flash_attention == [True]
    assert rec.choices.batch == [1]
    assert rec.pricing == "rent" and rec.profile == "calibrated" and rec.constraints == []
    assert rec.engine.kind == "auto" and rec.engine.exhaustive_limit == 5_000_000 and rec.engine.seed == 0
    assert rec.execution.executor == "local"
    assert space.full_size == 2 and not rec.objectives[0].maximize
    c = rec.choices
    assert c.tp == c.pp == c.ep == c.replicas == [1]
    assert c.kv_block_size == [None] and c.kv_budget == [None]
    assert c.kv_offload == [0.0]
    assert rec.workload.prefix_hit_rate == 0.0 and rec.workload.expert_imbalance == 1.0


# --- malformed spaces: file, key path, what is expected -----------------------------------------------------


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    data = space_with()
    data["choices"]["hardwre"] = data["choices"].pop("hardware")
    message = load_error(tmp_path, data)
    assert "choices.hardwre: unknown key (did you mean: hardware, prefill_hardware?)" in message
    assert "choices.hardware: Field required" in message


def test_prefix_hit_rate_as_a_choice_says_where_it_moved(tmp_path: Path) -> None:
    """The hit rate is the traffic's, not a search dimension: the old key names the new one."""
    text = yaml.safe_dump(space_with(choices__prefix_hit_rate=[0.0, 0.5, 0.9]), sort_keys=False)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "prefix_hit_rate" in t)
    message = load_error(tmp_path, text)
    assert f"line {line}: choices.prefix_hit_rate: unknown key (" in message
    assert "write one number as workload.prefix_hit_rate" in message and "sweep" in message
    assert "did you mean" not in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    data = space_with()
    data["objective"] = data.pop("objectives")
    assert "objective: unknown key (did you mean: objectives?)" in load_error(tmp_path, data)


def test_unknown_hardware_id(tmp_path: Path) -> None:
    message = load_error(tmp_path, space_with(choices__hardware=["h100-sxm", "h100-sx"]))
    assert "choices.hardware.1" in message
    assert "'h100-sx'" in message and "did you mean" in message and "h100-sxm" in message


def test_unknown_quant_and_model_ids(tmp_path: Path) -> None:
    message = load_error(tmp_path, space_with(choices__quant=["bf16", "fp9"]))
    assert "choices.quant.1" in message and "'fp9'" in message and "did you mean: fp8" in message
    message = load_error(tmp_path, space_with(model="llama-3.1-8"))
    assert ": model: " in message and "did you mean" in message and "llama-3.1-8b" in message


def test_unknown_kv_format(tmp_path: Path) -> None:
    message = load_error(tmp_path, space_with(choices__kv=["fp8", "int3"]))
    assert "choices.kv" in message and "'int3'" in message and "did you mean" in message


def test_wrong_type(tmp_path: Path) -> None:
    text = yaml.safe_dump(space_with(workload__prompt_tokens="many"), sort_keys=False)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "prompt_tokens" in t)
    message = load_error(tmp_path, text)
    assert f"line {line}: workload.prompt_tokens: " in message  # where in the file, and the key path
    assert "valid integer" in message and "'many'" in message


def test_empty_choice_list(tmp_path: Path) -> None:
    message = load_error(tmp_path, space_with(choices__quant=[]))
    assert "choices.quant" in message and "at least 1 item" in message


def test_unknown_metric(tmp_path: Path) -> None:
    message = load_error(tmp_path, space_with(objectives=[{"metric": "latency"}]))
    assert "objectives.0.metric" in message and "'latency'" in message and "'tpot_s'" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"constraints": [{"metric": "tpot_s"}]}, ["constraints.0", "give min, max or both"]),
        ({"objectives": [{"metric": "tpot_s"}, {"metric": "tpot_s"}]}, ["objectives: each metric at most once"]),
        ({"objectives": [{"metric": "tpot_s", "direction": "up"}]}, ["objectives.0.direction", "'maximize'"]),
        ({"choices__batch": {"min": 8, "max": 4}}, ["choices.batch", "max (4) must be >= min (8)"]),
        ({"choices__batch": {"min": 1, "max": 8, "step": 2, "log": True}}, ["choices.batch", "log ranges take step 1"]),
        ({"choices__batch": []}, ["choices.batch: expected at least one batch size"]),
        ({"choices__flash_attention": ["sometimes"]}, ["choices.flash_attention.0", "valid boolean"]),
        ({"slo__tpot_s": -1}, ["slo.tpot_s", "greater than 0"]),
        ({"pricing": "lease"}, ["pricing", "'rent-on-demand', 'rent-reserved', 'buy' or 'rent'"]),
        ({"engine__kind": "random"}, ["engine.kind", "'auto', 'exhaustive' or 'optuna'"]),
        ({"execution__executor": "dask"}, ["execution.executor", "'local' or 'ray'"]),
        ({"name": "my space"}, ["name", "pattern"]),
        ({"profile": "nope"}, ["profile", "unknown profile id 'nope'"]),
        ({"choices__tp": [0, 8]}, ["choices.tp.0", "greater than 0"]),
        ({"choices__pp": [2, 1, 2]}, ["choices.pp", "each value at most once; repeated: 2"]),
        ({"choices__ep": "8"}, ["choices.ep", "valid list"]),
        ({"choices__ep": []}, ["choices.ep", "at least 1 item"]),
        ({"choices__replicas": [1.5]}, ["choices.replicas.0", "valid integer (got 1.5)"]),
        ({"choices__kv_block_size": [16, 0]}, ["choices.kv_block_size.1", "greater than 0"]),
        ({"choices__kv_block_size": [None, None]}, ["choices.kv_block_size", "repeated: None"]),
        ({"workload__prefix_hit_rate": 1.5}, ["workload.prefix_hit_rate", "less than or equal to 1"]),
        ({"workload__prefix_hit_rate": [0.0, 0.5]}, ["workload.prefix_hit_rate", "valid number"]),
        ({"choices__kv_offload": [-0.1]}, ["choices.kv_offload.0", "greater than or equal to 0"]),
        ({"choices__kv_budget": ["all"]}, ["choices.kv_budget.0", "valid integer"]),
        ({"choices__kv_budget": [-4096]}, ["choices.kv_budget.0", "greater than 0"]),
        ({"workload__expert_imbalance": 0.5}, ["workload.expert_imbalance", "greater than or equal to 1"]),
        ({"choices__tensor_parallel": [2]}, ["choices.tensor_parallel: unknown key"]),
    ],
)
def test_other_malformed_values(tmp_path: Path, changes: dict[str, Any], expected: list[str]) -> None:
    message = load_error(tmp_path, space_with(**changes))
    for part in expected:
        assert part in message


def test_missing_required_key(tmp_path: Path) -> None:
    data = space_with()
    del data["workload"]
    assert "workload: Field required" in load_error(tmp_path, data)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    assert "line 2, column 1: malformed YAML" in load_error(tmp_path, "name: [unclosed\n")


def test_model_path_is_relative_to_the_space_file(tmp_path: Path) -> None:
    message = load_error(tmp_path, space_with(model="models/nope.yaml"))
    assert f"model: {tmp_path / 'models' / 'nope.yaml'}: file not found" in message


def test_missing_file() -> None:
    with pytest.raises(InputError, match="file not found"):
        load_space("/nonexistent/space.yaml")


# --- static pruning and candidate ids -----------------------------------------------------------------------


def test_combination_that_cannot_fit_is_pruned_with_a_reason(tmp_path: Path) -> None:
    data = space_with(
        model="llama-3.1-70b",
        choices__hardware=["h100-sxm", "h200-sxm", "mi300x"],
        choices__quant=["bf16", "fp8", "w4a16"],
        choices__batch={"min": 1, "max": 512},
    )
    space = load_space(write(tmp_path, data))
    pruned = {(p.hardware, p.quant): p.reason for p in space.pruned}
    # 70B bf16 (141 GB) fits no 80 GiB card; fp8 (71 GB) fits an H100's 0.9 x 80 GiB = 77.3 GB usable
    assert ("h100-sxm", "bf16") in pruned and ("h100-sxm", "fp8") not in pruned
    assert "exceed usable device memory" in pruned[("h100-sxm", "bf16")]
    assert ("mi300x", "bf16") not in pruned and ("h100-sxm", "w4a16") not in pruned
    assert len(space.combo_codes) + len(space.pruned) == 3 * 3
    # batches above the largest that fits are dropped: every enumerated candidate fits in memory ...
    result = space.evaluate_index(np.arange(space.size))
    assert space.size < space.full_size - len(space.pruned) * len(space.batches)
    reasons = [r for r in result["infeasible_reason"] if r is not None]
    assert not any("memory" in r for r in reasons)
    # ... and the next batch of each surviving combination does not
    nxt = space.combo_batches
    inside = nxt < len(space.batches)
    above = space.evaluate_codes(*space.combo_codes[inside].T, nxt[inside])
    assert not np.asarray(above["feasible"]).any()
    assert all("memory" in r for r in above["infeasible_reason"])


def test_candidate_ids_decode_to_the_same_codes(tmp_path: Path) -> None:
    data = space_with(
        model="llama-3.1-70b",
        choices__hardware=["h100-sxm", "mi300x", "a100-sxm-80gb"],
        choices__quant=["bf16", "w4a16"],
        choices__kv=[None, "fp8"],
        choices__flash_attention=[True, False],
        choices__batch=[1, 2, 8, 64, 256],
    )
    space = load_space(write(tmp_path, data))
    index = np.arange(space.size)
    codes = space.codes_of_index(index)
    ids = space.candidate_ids(*codes)
    assert len(np.unique(ids)) == space.size and ids.max() < space.full_size
    for a, b in zip(space.codes_of_ids(ids), codes, strict=True):
        np.testing.assert_array_equal(a, b)
    result = space.evaluate_index(index)
    np.testing.assert_array_equal(result["candidate_id"], ids)
    # the id is the position in the full product hardware x (quant, kv) x flash x batch
    row = int(
        np.flatnonzero(
            (result["hardware"] == "mi300x")
            & (result["quant"] == "w4a16")
            & np.equal(result["kv"], "fp8")
            & ~result["flash_attention"]
            & (result["batch"] == 8)
        )[0]
    )
    assert result["candidate_id"][row] == ((1 * 4 + 3) * 2 + 1) * 5 + 2
    # loading again gives the same ids
    again = load_space(write(tmp_path, data))
    np.testing.assert_array_equal(again.evaluate_index(index)["candidate_id"], ids)


@pytest.mark.parametrize(
    ("example", "candidate_id", "expected"),
    [  # pinned before the deployment dimensions existed: a space that does not use them keeps its ids
        ("quickstart", 1948, ("h100-sxm", "int8", "fp8", True, 157)),
        ("quickstart", 10029, ("rtx-4090", "int8", "fp8", True, 46)),
        ("llama-3.1-70b-chat", 13589, ("b200", "nvfp4", None, True, 278)),
        ("long-context-rag", 1997, ("a100-sxm-80gb", "fp8", "int4", True, 14)),
    ],
)
def test_ids_of_spaces_without_deployment_dimensions_are_unchanged(
    example: str, candidate_id: int, expected: tuple[Any, ...]
) -> None:
    space = next(load_space(p) for p in SPACES if p.stem == example)
    result = space.evaluate_codes(*space.codes_of_ids(np.asarray([candidate_id])))
    row = tuple(result[name][0] for name in ("hardware", "quant", "kv", "flash_attention", "batch"))
    assert row == expected
    assert result["candidate_id"][0] == candidate_id
    assert (result["tp"][0], result["pp"][0], result["ep"][0], result["replicas"][0]) == (1, 1, 1, 1)


DEPLOYMENT = space_with(
    model="llama-3.1-70b",
    choices__hardware=["dgx-h100", "h100-sxm"],
    choices__quant=["fp8"],
    choices__kv=[None, "fp8"],
    choices__tp=[3, 4, 8],
    choices__pp=[1, 2],
    choices__kv_block_size=[None, 16],
    workload__prefix_hit_rate=0.5,
    choices__kv_offload=[0.0, 0.25],
    choices__kv_budget=[None, 1024, 100_000],
    choices__replicas=[1, 2],
    choices__batch=[1, 4, 16],
)


def test_deployment_ids_are_the_position_in_the_extended_product(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, DEPLOYMENT))
    assert space.radices == (
        2,
        2,
        1,
        3,
        2,
        1,
        2,
        2,
        3,
        2,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        3,
    ) and space.full_size == math.prod(space.radices)
    index = np.arange(space.size)
    codes = space.codes_of_index(index)
    ids = space.candidate_ids(*codes)
    assert len(np.unique(ids)) == space.size and np.all(np.diff(ids) > 0)  # enumerated in id order
    for a, b in zip(space.codes_of_ids(ids), codes, strict=True):
        np.testing.assert_array_equal(a, b)
    result = space.evaluate_index(index)
    row = int(
        np.flatnonzero(
            (result["hardware"] == "dgx-h100")
            & np.equal(result["kv"], "fp8")
            & (result["tp"] == 8)
            & (result["pp"] == 2)
            & np.equal(result["kv_block_size"], 16)
            & (result["kv_offload"] == 0.25)
            & np.equal(result["kv_budget"], 1024)
            & (result["replicas"] == 2)
            & (result["batch"] == 4)
        )[0]
    )
    # hardware x (quant, kv) x flash x tp x pp x ep x block x offload x budget x replicas x scheduler x
    # max_num_seqs x chunk_tokens x mode x prefill_replicas x prefill_hardware x prefill_tp x prefill_pp x
    # spec_tokens x draft x batch (the serving settings at their one default: radix 1, the same ids)
    digits = (0, 1, 0, 2, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
    expected = 0
    for digit, radix in zip(digits, space.radices, strict=True):
        expected = expected * radix + digit
    assert result["candidate_id"][row] == expected


def test_deployment_parameters_are_result_columns(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, DEPLOYMENT))
    result = space.evaluate_index(np.arange(space.size))
    assert list(result)[: len(PARAMETERS) + len(WORKLOAD_COLUMNS) + 1] == [
        "candidate_id",
        *PARAMETERS,
        *WORKLOAD_COLUMNS,
    ]
    assert "prefix_hit_rate" not in PARAMETERS and set(result["prefix_hit_rate"].tolist()) == {0.5}
    assert set(result["tp"].tolist()) == {4, 8} and set(result["pp"].tolist()) == {1, 2}  # tp 3 is pruned
    assert set(result["kv_block_size"].tolist()) == {None, 16} and result["kv_block_size"].dtype == object
    assert set(result["kv_budget"].tolist()) == {None, 1024, 100_000}
    # devices = tp x pp x replicas; a budget evicts only below prompt + output tokens (2048 + 256)
    np.testing.assert_array_equal(result["devices"], result["tp"] * result["pp"] * result["replicas"])
    evicts = np.asarray([b is not None and b < 2304 for b in result["kv_budget"]])
    np.testing.assert_array_equal(result["quality_affecting"], evicts)
    assert result["quality_affecting"].dtype == bool


def test_the_workload_hit_rate_reaches_the_cost_model(tmp_path: Path) -> None:
    """Same choices, so the same candidate ids; a warmer cache skips prefill work: lower TTFT, same TPOT."""
    choices = {"choices__kv_block_size": [None, 16], "choices__batch": [1, 8, 64]}
    cold = load_space(write(tmp_path, space_with(**choices), "cold.yaml"))
    warm = load_space(write(tmp_path, space_with(workload__prefix_hit_rate=0.9, **choices), "warm.yaml"))
    assert cold.full_size == warm.full_size == 2 * 2 * 3  # the hit rate is not a dimension
    ids = np.arange(cold.full_size)
    a, b = (s.evaluate_codes(*s.codes_of_ids(ids)) for s in (cold, warm))
    np.testing.assert_array_equal(a["candidate_id"], b["candidate_id"])
    assert (a["prefix_hit_rate"] == 0.0).all() and (b["prefix_hit_rate"] == 0.9).all()
    assert (b["ttft_s"] < a["ttft_s"]).all()
    np.testing.assert_allclose(b["tpot_s"], a["tpot_s"], rtol=1e-12)  # cached KV is still attended to
    # the same numbers as the cost model given the hit rate directly
    frame = pd.DataFrame(
        {
            "model": "llama-3.1-8b",
            "hardware": b["hardware"],
            "quant": b["quant"],
            "kv_block_size": b["kv_block_size"],
            "batch": b["batch"],
            "prompt_len": 2048,
            "gen_len": 256,
            "prefix_hit_rate": 0.9,
        }
    )
    np.testing.assert_allclose(evaluate(frame)["ttft_s"], b["ttft_s"], rtol=1e-12)


def test_an_invalid_split_is_pruned_with_its_reason(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, DEPLOYMENT))
    reasons = {(p.hardware, p.tp): p.reason for p in space.pruned}
    # Llama-3.1-70B has 64 query heads: tp 3 cannot split them, whatever the rest
    assert "tp must divide the attention heads" in reasons[("dgx-h100", 3)]
    assert all("tp must divide" in p.reason for p in space.pruned if p.tp == 3)
    # a bare accelerator is one device: any split over several is pruned, with the reason saying so
    bare = [p.reason for p in space.pruned if p.hardware == "h100-sxm" and p.tp != 3]
    assert bare and all("a bare accelerator is one device" in r for r in bare)
    assert not np.any(space.combo_codes[:, 0] == 1)  # nothing on the bare accelerator survives
    assert ("dgx-h100", 4) not in reasons and ("dgx-h100", 8) not in reasons
    assert Pruned._fields == (*PARAMETERS[:-1], "reason")  # every parameter but batch is named
    entry = next(p for p in space.pruned if p.tp == 3)
    assert entry.kv_block_size in (None, 16) and entry.kv_budget in (None, 1024, 100_000)
    assert len(space.combo_codes) + len(space.pruned) == space.full_size // len(space.batches)


def test_deployment_pruning_never_drops_a_candidate_that_fits(tmp_path: Path) -> None:
    """The pruned enumeration holds every cost-model-feasible candidate of the full product."""
    data = space_with(
        model="deepseek-v3",
        workload__expert_imbalance=1.3,
        choices__hardware=["dgx-h100", "dgx-h200"],
        choices__quant=["fp8"],
        choices__tp=[1, 8],
        choices__ep=[8, 16, 32],
        choices__kv_offload=[0.0, 0.5],
        choices__batch={"min": 1, "max": 4096, "log": True},
    )
    space = load_space(write(tmp_path, data))
    full = space.evaluate_codes(*space.codes_of_ids(np.arange(space.full_size)))
    kept = set(space.evaluate_index(np.arange(space.size))["candidate_id"].tolist())
    fits = set(full["candidate_id"][full["cost_model_feasible"]].tolist())
    assert fits and fits <= kept and space.size < space.full_size


def test_batch_range_and_list(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, space_with(choices__batch={"min": 2, "max": 10, "step": 4})))
    assert space.batches.tolist() == [2, 6, 10]
    space = load_space(write(tmp_path, space_with(choices__batch=[8, 1, 8, 4])))
    assert space.batches.tolist() == [1, 4, 8]  # sorted, duplicates removed


# --- feasibility: cost model, then SLOs, then constraints ----------------------------------------------------


def test_slo_failures_are_results_with_reasons(tmp_path: Path) -> None:
    data = space_with(
        choices__hardware=["l4", "h100-sxm"],
        choices__batch=[1, 2, 4],
        slo={"tpot_s": 0.05},
    )
    space = load_space(write(tmp_path, data))
    assert not space.pruned  # SLO failures are not pruned
    result = space.evaluate_index(np.arange(space.size))
    on_l4 = result["hardware"] == "l4"
    assert (result["tpot_s"][on_l4] > 0.05).all()
    assert not result["feasible"][on_l4].any()
    assert set(result["infeasible_reason"][on_l4]) == {"slo tpot_s: above 0.05"}
    assert result["feasible"][~on_l4].all()


def test_first_failure_names_the_reason(tmp_path: Path) -> None:
    data = space_with(choices__hardware=["l4"], slo={"ttft_s": 0.01, "tpot_s": 0.01})
    result = load_space(write(tmp_path, data)).evaluate_index(np.arange(1))
    assert result["infeasible_reason"][0] == "slo ttft_s: above 0.01"  # TTFT is checked before TPOT


def test_constraints_and_unknown_metrics(tmp_path: Path) -> None:
    data = space_with(
        choices__hardware=["h100-sxm", "rtx-4080"],
        choices__quant=["fp8"],
        constraints=[{"metric": "usd_per_hour", "max": 100}, {"metric": "tokens_per_s_per_user", "min": 1e6}],
    )
    result = load_space(write(tmp_path, data)).evaluate_index(np.arange(2))
    by_hw = dict(zip(result["hardware"], result["infeasible_reason"], strict=True))
    # rtx-4080 has no rent offer (a street price only): usd_per_hour is NaN, which fails any bound on it
    assert math.isnan(result["usd_per_hour"][list(result["hardware"]).index("rtx-4080")])
    assert by_hw["rtx-4080"] == "constraint usd_per_hour: above 100"
    assert by_hw["h100-sxm"] == "constraint tokens_per_s_per_user: below 1e+06"
    assert not result["feasible"].any()


def test_a_price_sheet_in_the_space_sets_the_prices(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text(
        "prices:\n  - id: h100-sxm\n    rent:\n"
        "      - {usd_per_device_hour: 1.25, term: on-demand, provider: us, provider_kind: user}\n"
    )
    data = space_with(choices__hardware=["h100-sxm"], pricing={"scenario": "rent-on-demand", "sheet": "prices.yaml"})
    result = load_space(write(tmp_path, data)).evaluate_index(np.arange(1))
    assert result["usd_per_hour"][0] == pytest.approx(1.25 * result["devices"][0])
    buy = space_with(choices__hardware=["h100-sxm"], pricing={"scenario": "buy", "horizon_years": 5, "pue": 1.1})
    costs = load_space(write(tmp_path, buy, "buy.yaml")).costs
    assert (costs.scenario, costs.amortization_years, costs.pue, costs.sheet) == ("buy", 5.0, 1.1, None)


def test_a_bad_price_sheet_in_the_space_names_the_field(tmp_path: Path) -> None:
    data = space_with(pricing={"scenario": "rent-on-demand", "sheet": "missing.yaml"})
    message = load_error(tmp_path, data)
    assert "pricing.sheet" in message and "file not found" in message
    assert "pricing.scenario" in load_error(tmp_path, space_with(pricing={"scenario": "lease"}))
