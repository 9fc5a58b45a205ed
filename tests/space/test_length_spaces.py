"""Spaces whose prompt and output lengths vary (docs/cost-model.md §19): distributions, histogram files and
their errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dse.errors import InputError
from dse.space import load_space


def _space(tmp_path: Path, workload: dict[str, Any], **choices: Any) -> Any:
    data = {
        "name": "lengths",
        "model": "llama-3.1-8b",
        "workload": workload,
        "choices": {"hardware": ["h100-sxm"], "quant": ["bf16"]} | choices,
        "objectives": [{"metric": "throughput_tokens_per_s"}],
    }
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_space(path)


def test_a_static_batch_pads_and_continuous_batching_keeps_the_means(tmp_path: Path) -> None:
    lognormal = {"distribution": "lognormal", "mean": 800.0, "sigma": 0.8, "max": 16000}
    uniform = {"distribution": "uniform", "min": 100, "max": 300}
    space = _space(
        tmp_path,
        {"prompt_tokens": lognormal, "output_tokens": uniform},
        scheduler=["static", "continuous"],
        batch=[1, 32],
    )
    rows = space.evaluate_index(np.arange(space.size))
    static = rows["scheduler"] == "static"
    fixed = _space(tmp_path, {"prompt_tokens": 800, "output_tokens": 200}, scheduler=["static"], batch=[1, 32])
    plain = fixed.evaluate_index(np.arange(fixed.size))
    # one sequence: its own lengths, as fixed ones would on average; 32: padded to the batch's longest
    assert rows["ttft_s"][static][1] > 2.0 * plain["ttft_s"][1]
    assert rows["throughput_tokens_per_s"][static][1] < plain["throughput_tokens_per_s"][1]
    served = rows[~static] if isinstance(rows, np.ndarray) else {k: np.asarray(v)[~static] for k, v in rows.items()}
    assert served["ttft_s_p99"][0] > 2.0 * served["ttft_s_p50"][0]  # the prompts' tail


def test_a_histogram_file_pairs_prompts_with_outputs_and_is_part_of_the_space(tmp_path: Path) -> None:
    csv = tmp_path / "traffic.csv"
    csv.write_text("prompt_tokens,output_tokens,count\n200,50,3\n4000,400,1\n")
    histogram = {"distribution": "histogram", "path": "traffic.csv"}
    space = _space(tmp_path, {"prompt_tokens": histogram, "output_tokens": histogram}, scheduler=["continuous"])
    assert space.lengths.prompts.mean == pytest.approx(1150.0) and space.lengths.outputs.mean == 137.5
    # paired: long prompts come with long outputs, Cov = E[P G] - P G = (3 x 200 x 50 + 4000 x 400) / 4 - ...
    assert space.lengths.covariance == pytest.approx((3 * 200 * 50 + 4000 * 400) / 4 - 1150.0 * 137.5)
    digest = space.digest
    csv.write_text("prompt_tokens,output_tokens,count\n200,50,3\n4000,400,2\n")
    assert _space(tmp_path, {"prompt_tokens": histogram, "output_tokens": histogram}).digest != digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prompt_tokens\n100\n-3\n", "line 3, column 'prompt_tokens': '-3' is not a positive whole number"),
        ("prompt\n100\n", "no column 'prompt_tokens' (columns: prompt)"),
        ("prompt_tokens\n", "no rows"),
        ("prompt_tokens,count\n100,x\n", "line 2, column 'count': 'x' is not a positive count"),
        ("prompt_tokens\n100,5\n", "line 2: more cells than the header names"),
        ("prompt_tokens\n100\n\n\n-5\n", "line 5, column 'prompt_tokens': '-5'"),  # blank lines counted
    ],
)
def test_a_bad_histogram_names_its_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "lengths.csv").write_text(text)
    histogram = {"distribution": "histogram", "path": "lengths.csv"}
    with pytest.raises(InputError) as error:
        _space(tmp_path, {"prompt_tokens": histogram, "output_tokens": 100})
    assert message in str(error.value) and "lengths.csv" in str(error.value)
    assert "workload.prompt_tokens" in str(error.value)


def test_a_missing_histogram_and_a_tail_beyond_the_context_are_errors_of_the_space(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"space.yaml: workload.prompt_tokens: histogram file not found"):
        _space(tmp_path, {"prompt_tokens": {"distribution": "histogram", "path": "gone.csv"}, "output_tokens": 1})
    tail = {"distribution": "lognormal", "mean": 20000.0, "sigma": 1.0}
    with pytest.raises(InputError, match=r"space.yaml: workload: the longest request .* lower the distributions' max"):
        _space(tmp_path, {"prompt_tokens": tail, "output_tokens": 100})
