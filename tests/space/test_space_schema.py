"""Search-space YAML: the shipped examples, error messages for malformed spaces, static pruning, feasibility."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import yaml

from dse.errors import InputError
from dse.space import MAXIMIZED, METRICS, MetricName, load_space

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
    assert {"throughput_tokens_per_s", "throughput_tokens_per_s_per_device", "tokens_per_s_per_user"} == MAXIMIZED


def test_defaults(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, BASE))
    rec = space.record
    assert rec.choices.quant == ["bf16"] and rec.choices.kv == [None] and rec.choices.flash_attention == [True]
    assert rec.choices.batch == [1]
    assert rec.pricing == "rent" and rec.profile == "default" and rec.constraints == []
    assert rec.engine.kind == "auto" and rec.engine.exhaustive_limit == 5_000_000 and rec.engine.seed == 0
    assert rec.execution.executor == "local"
    assert space.full_size == 2 and not rec.objectives[0].maximize


# --- malformed spaces: file, key path, what is expected -----------------------------------------------------


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    data = space_with()
    data["choices"]["hardwre"] = data["choices"].pop("hardware")
    message = load_error(tmp_path, data)
    assert "choices.hardwre: unknown key (did you mean: hardware?)" in message
    assert "choices.hardware: Field required" in message


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
        ({"pricing": "lease"}, ["pricing", "'rent' or 'buy'"]),
        ({"engine__kind": "random"}, ["engine.kind", "'auto', 'exhaustive' or 'optuna'"]),
        ({"execution__executor": "dask"}, ["execution.executor", "'local' or 'ray'"]),
        ({"name": "my space"}, ["name", "pattern"]),
        ({"profile": "nope"}, ["profile", "unknown profile id 'nope'"]),
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
    pruned = {(h, q): reason for h, q, _kv, _flash, reason in space.pruned}
    assert ("h100-sxm", "bf16") in pruned and ("h100-sxm", "fp8") in pruned
    assert "exceed usable device memory" in pruned[("h100-sxm", "bf16")]
    assert ("mi300x", "bf16") not in pruned and ("h100-sxm", "w4a16") not in pruned
    assert len(space.combo_codes) + len(space.pruned) == 3 * 3
    # batches above the largest that fits are dropped: every enumerated candidate fits in memory ...
    result = space.evaluate_index(np.arange(space.size))
    assert space.size < space.full_size - len(space.pruned) * len(space.batches)
    reasons = [r for r in result["infeasible_reason"] if r is not None]
    assert not any("memory" in r for r in reasons)
    # ... and the next batch of each surviving combination does not
    hw, num, flash = space.combo_codes.T
    nxt = space.combo_batches
    inside = nxt < len(space.batches)
    above = space.evaluate_codes(hw[inside], num[inside], flash[inside], nxt[inside])
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
        choices__hardware=["h100-sxm", "rtx-4090"],
        choices__quant=["fp8"],
        constraints=[{"metric": "usd_per_hour", "max": 100}, {"metric": "tokens_per_s_per_user", "min": 1e6}],
    )
    result = load_space(write(tmp_path, data)).evaluate_index(np.arange(2))
    by_hw = dict(zip(result["hardware"], result["infeasible_reason"], strict=True))
    # rtx-4090 has no cloud price: usd_per_hour is NaN, which fails any bound on it
    assert math.isnan(result["usd_per_hour"][list(result["hardware"]).index("rtx-4090")])
    assert by_hw["rtx-4090"] == "constraint usd_per_hour: above 100"
    assert by_hw["h100-sxm"] == "constraint tokens_per_s_per_user: below 1e+06"
    assert not result["feasible"].any()
