"""Spaces with serving choices: what static pruning keeps and what it enumerates once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dse.space import load_space


def _space(tmp_path: Path, **over: Any) -> Any:
    data = {
        "name": "serving",
        "model": "llama-3.1-8b",
        "workload": {"prompt_tokens": 1000, "output_tokens": 200},
        "choices": {"hardware": ["h100-sxm"], "quant": ["bf16"]},
        "objectives": [{"metric": "max_request_rate"}],
    }
    for key, value in over.items():
        data[key] = data.get(key, {}) | value if isinstance(value, dict) else value
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_space(path)


def test_a_static_batch_overloaded_at_its_smallest_batch_is_not_pruned(tmp_path: Path) -> None:
    """At 12 requests/s one sequence is overloaded, 64 are not: the combination stays, its batch 64 runs."""
    space = _space(tmp_path, workload={"request_rate": 12.0}, choices={"batch": [1, 64]})
    assert not space.pruned and space.size == 2
    result = space.evaluate_index(np.arange(space.size))
    assert list(result["feasible"]) == [False, True]
    assert "request rate exceeds" in result["infeasible_reason"][0]


def test_continuous_combinations_run_whatever_the_batch_choice(tmp_path: Path) -> None:
    """The batch does not apply to continuous batching: a batch larger than memory holds prunes nothing."""
    space = _space(tmp_path, choices={"scheduler": ["continuous"], "batch": [4096]})
    assert space.size == 1 and not space.pruned
    assert space.evaluate_index(np.arange(1))["feasible"][0]


def test_settings_a_combination_does_not_use_are_enumerated_once(tmp_path: Path) -> None:
    space = _space(
        tmp_path,
        choices={
            "scheduler": ["static", "continuous"],
            "max_num_seqs": [64, 256],
            "mode": ["aggregated", "disaggregated"],
            "prefill_replicas": [1, 2],
            "replicas": [3],
        },
    )
    # static: 1 (max_num_seqs unused); continuous aggregated: 2; disaggregated (continuous only): 2 x 2
    assert space.size == 1 + 2 + 4


def test_prefill_pools_of_their_own_are_enumerated_for_disaggregated_rows_only(tmp_path: Path) -> None:
    """Aggregated rows ignore the prefill pool's hardware and tp (enumerated once); disaggregated rows take
    them: a tp-8 prefill replica of H100s beside a tp-4 decode replica of H200s counts 8 + 4 devices."""
    space = _space(
        tmp_path,
        model="llama-3.1-70b",
        workload={"request_rate": 2.0},
        choices={
            "hardware": ["dgx-h200"],
            "quant": ["fp8"],
            "tp": [4],
            "replicas": [2],
            "scheduler": ["continuous"],
            "mode": ["aggregated", "disaggregated"],
            "prefill_hardware": [None, "dgx-h100"],
            "prefill_tp": [None, 8],
        },
    )
    assert space.full_size == 8 and space.size == 5  # aggregated once, disaggregated 2 x 2
    result = space.evaluate_index(np.arange(space.size))
    pooled = np.flatnonzero(np.equal(result["prefill_hardware"], "dgx-h100") & np.equal(result["prefill_tp"], 8))
    assert len(pooled) == 1 and result["devices"][pooled[0]] == 8 + 4
    plain = np.flatnonzero((result["mode"] == "disaggregated") & np.equal(result["prefill_hardware"], None))
    assert sorted(result["devices"][plain]) == [8, 12]  # prefill tp 4 (the decode pool's) or 8


def test_a_prefill_pool_naming_the_decode_pools_own_values_is_enumerated_once(tmp_path: Path) -> None:
    """prefill_tp 4 beside tp 4, and prefill on dgx-h200 beside hardware dgx-h200, are what null means."""
    space = _space(
        tmp_path,
        model="llama-3.1-70b",
        workload={"request_rate": 2.0},
        choices={
            "hardware": ["dgx-h200"],
            "quant": ["fp8"],
            "tp": [4],
            "replicas": [2],
            "mode": ["disaggregated"],
            "prefill_hardware": [None, "dgx-h200"],
            "prefill_tp": [None, 4],
        },
    )
    assert space.full_size == 4 and space.size == 1
    both = _space(  # written first, the value null repeats keeps aggregated rows, which ignore it
        tmp_path,
        model="llama-3.1-70b",
        choices={
            "hardware": ["dgx-h200"],
            "quant": ["fp8"],
            "tp": [4],
            "replicas": [2],
            "scheduler": ["continuous"],
            "mode": ["aggregated", "disaggregated"],
            "prefill_hardware": ["dgx-h200", None],
            "prefill_tp": [4, None],
        },
    )
    result = both.evaluate_index(np.arange(both.size))
    assert both.size == 2 and sorted(result["mode"]) == ["aggregated", "disaggregated"]


def test_a_pipelined_prefill_pool_is_a_dimension_of_disaggregated_rows(tmp_path: Path) -> None:
    """choices.prefill_pp: aggregated rows ignore it (enumerated once), prefill_pp 1 beside pp 1 is what null
    means, and a prefill pool of tp 4 x pp 2 counts 8 devices beside the decode replica's 4."""
    space = _space(
        tmp_path,
        model="llama-3.1-70b",
        workload={"prompt_tokens": 4000, "output_tokens": 300, "request_rate": 2.0},
        choices={
            "hardware": ["dgx-h100"],
            "quant": ["fp8"],
            "tp": [4],
            "replicas": [2],
            "scheduler": ["continuous"],
            "mode": ["aggregated", "disaggregated"],
            "prefill_pp": [None, 1, 2],
        },
    )
    assert space.full_size == 6 and space.size == 3  # aggregated once; disaggregated at pp 1 (null) and 2
    result = space.evaluate_index(np.arange(space.size))
    split = result["mode"] == "disaggregated"
    assert sorted(result["devices"][split]) == [8, 12]
    piped = np.flatnonzero(np.equal(result["prefill_pp"], 2))
    plain = np.flatnonzero(split & np.equal(result["prefill_pp"], None))
    assert result["max_request_rate"][piped[0]] > 1.9 * result["max_request_rate"][plain[0]]


def test_a_ttft_slo_at_a_confidence_takes_the_prefill_hardwares_residuals(tmp_path: Path) -> None:
    """slo.confidence scales a disaggregated row's TTFT by the ratio of the hardware that prefills it: an SLO
    between the TTFT scaled by the decode hardware's ratio and by the prefill hardware's is met or missed as
    the latter says."""
    from dse.catalog import load_target
    from dse.scoring import ratio_at, target_ratios

    def space(ttft_slo: float) -> Any:
        return _space(
            tmp_path,
            model="llama-3.1-70b",
            workload={"request_rate": 1.0},
            slo={"ttft_s": ttft_slo, "confidence": 0.9},
            choices={
                "hardware": ["dgx-h200"],
                "quant": ["fp8"],
                "tp": [4],
                "replicas": [2],
                "mode": ["disaggregated"],
                "prefill_hardware": ["dgx-a100"],
            },
        )

    ttft = space(100.0).evaluate_index(np.arange(1))["ttft_s"][0]
    a100, h200 = (
        ratio_at(target_ratios([load_target(h)], "calibrated")[0][1]["ttft_s"], 0.9) for h in ("dgx-a100", "dgx-h200")
    )
    assert a100 != h200
    between = float(ttft * (a100 + h200) / 2.0)
    feasible = space(between).evaluate_index(np.arange(1))["feasible"][0]
    assert feasible == (a100 < h200)


def test_every_candidate_of_the_full_product_maps_onto_the_pruned_space(tmp_path: Path) -> None:
    """What a sampler proposes is the enumerated candidate it equals (the same metrics), or was pruned (-1,
    and infeasible): bf16 weights of a 70B model fit no H100, 4,096 sequences fit no memory, settings a
    candidate does not use (and a prefill tp equal to tp) name another candidate's metrics."""
    space = _space(
        tmp_path,
        model="llama-3.1-70b",
        choices={
            "quant": ["bf16", "w4a16"],
            "scheduler": ["static", "continuous"],
            "max_num_seqs": [64, 256],
            "mode": ["aggregated", "disaggregated"],
            "prefill_tp": [1, None],
            "batch": [1, 16, 4096],
        },
    )
    enumerated = space.candidate_ids(*space.codes_of_index(np.arange(space.size)))
    np.testing.assert_array_equal(space.representative_ids(enumerated), enumerated)
    every = np.arange(space.full_size)
    mapped = space.representative_ids(every)
    assert set(mapped.tolist()) == {-1, *enumerated.tolist()}
    result = space.evaluate_codes(*space.codes_of_ids(every))
    assert not result["cost_model_feasible"][mapped == -1].any()
    moved = (mapped >= 0) & (mapped != every)
    assert moved.sum() > space.size  # most candidates of this product repeat another
    again = space.evaluate_codes(*space.codes_of_ids(mapped[moved]))
    for metric in ("max_request_rate", "ttft_s", "tpot_s", "devices", "memory_per_device_bytes"):  # rounding apart
        np.testing.assert_allclose(again[metric], result[metric][moved], rtol=1e-12, err_msg=metric)
