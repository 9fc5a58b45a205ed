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
    """At 20 requests/s one sequence is overloaded, 64 are not: the combination stays, its batch 64 runs."""
    space = _space(tmp_path, workload={"request_rate": 20.0}, choices={"batch": [1, 64]})
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
