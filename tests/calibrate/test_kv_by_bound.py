"""The KV-cache format a published row is converted with, where the row's own rate decides it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.calibrate import read_measurements
from dse.catalog import load_model, load_target

SHIPPED = Path(__file__).resolve().parents[2] / "calibration" / "measurements.csv"
BF16_BYTES = 2


@pytest.mark.parametrize(("accelerator", "published"), [("h100-sxm", 1351.0), ("h200-sxm", 1804.0)])
def test_llama_3_1_8b_outruns_a_bf16_cache_at_full_bandwidth(accelerator: str, published: float) -> None:
    """TensorRT-LLM v1.0 serves Llama-3.1-8B FP8 at 20,000 / 2,000 tokens faster than a bf16 KV cache allows:
    each output token reads its sequence's mean 20,000 + 2,000 / 2 cached tokens, and the whole HBM bandwidth
    streaming nothing else (no weights, no prefill) gives 1,217 tokens/s on an H100 and 1,744 on an H200. So
    its rows are converted with an FP8 cache (calibration/convert_shared.py, ``FP8_KV_BY_BOUND``)."""
    model = load_model("llama-3.1-8b")
    per_token = model.kv_elements_per_token_per_layer * model.num_layers * BF16_BYTES
    assert per_token == 131_072  # 32 layers x 8 KV heads x 128 x (K, V) x 2 B
    bound = load_target(accelerator)[0].memory_bandwidth_bytes_per_s / ((20_000 + 2_000 / 2) * per_token)
    assert bound < published
    rows = [
        m.record
        for m in read_measurements(SHIPPED)
        if m.record.model == "llama-3.1-8b" and m.record.engine == "tensorrt-llm"
    ]
    assert len(rows) == 20 and {r.kv for r in rows} == {"fp8"}
    (row,) = [r for r in rows if r.hardware == accelerator and (r.prompt_len, r.gen_len) == (20_000, 2_000)]
    assert row.value == published
