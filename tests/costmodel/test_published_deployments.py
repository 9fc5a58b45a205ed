"""Multi-GPU deployments against published measurements: TensorRT-LLM v1.0's performance overview.

Source for every row: NVIDIA/TensorRT-LLM, docs/source/performance/perf-overview.md @ 00f37686 (TensorRT-LLM
v1.0, 2025), "Total Output Throughput (tokens/sec)" of `trtllm-bench` at maximum load (all requests queued
at t = 0, in-flight batching, the engine's own batch), uniform input/output lengths, NVIDIA ModelOpt FP8 or
FP4 checkpoints (rows 148-363 of the project's reference measurements).

The engine's KV-cache format is not stated; ModelOpt FP8 and FP4 checkpoints quantize only the linear layers
(model cards of nvidia/Llama-3.1-405B-Instruct-FP8 and -FP4), so the KV cache is bf16. The static model's view:
the batch is the largest whose KV fits at in-flight batching's average occupancy, prompt + half the output
(``dse validate`` and the fits serve these rows under continuous batching instead: test_published_serving).
What is asserted:
- the ideal roofline bounds the measurement: at that batch with an FP8 KV cache (the most favourable format,
  so a bound whichever the engine ran), the pure-roofline decode rate (batch / TPOT, no prefill, every
  efficiency 1) is above the published throughput;
- with the ``default`` profile (round efficiencies, not fitted) the throughput at that batch lands within a
  factor of 1.6 of the measurement either way, and with the fitted ``calibrated`` profiles within 1.5. Rows
  held to the bound only: dense FP4 on Blackwell under the default profile, and the longest contexts (2k/2k
  and 20k/2k), where the static model still serves less than in-flight batching (docs/validation.md).
"""

from __future__ import annotations

import pytest

from dse.costmodel import Reason
from dse.scoring import score_columns

# (measurement row, model, system, scheme, tp, prompt tokens, output tokens, published output tokens/s, bands
# checked: True both, False the calibrated one only, None neither). Llama-3.1-405B FP8 on one 8x H100 node is the
# deployment Meta released it for.
PUBLISHED = [
    (148, "llama-3.3-70b", "dgx-h100", "fp8", 2, 128, 128, 6378, True),
    (152, "llama-3.3-70b", "dgx-h100", "fp8", 2, 128, 2048, 6651, True),
    (164, "llama-3.3-70b", "dgx-h100", "fp8", 2, 1000, 1000, 4205, True),
    (176, "llama-3.3-70b", "dgx-h100", "fp8", 2, 2048, 2048, 3082, None),  # long contexts: bound only
    (184, "llama-3.3-70b", "dgx-h100", "fp8", 2, 20000, 2000, 437, None),
    (226, "qwen3-235b-a22b", "dgx-h200", "fp8", 8, 128, 128, 30429, True),
    (228, "qwen3-235b-a22b", "dgx-h200", "fp8", 8, 128, 2048, 42821, True),
    (229, "qwen3-235b-a22b", "dgx-h100", "fp8", 8, 128, 2048, 19658, True),
    (225, "qwen3-235b-a22b", "hgx-b200", "nvfp4", 8, 128, 128, 63362, True),
    (227, "qwen3-235b-a22b", "hgx-b200", "nvfp4", 8, 128, 2048, 66057, True),
    (339, "llama-3.1-405b", "dgx-h100", "fp8", 8, 128, 128, 3627, True),
    (343, "llama-3.1-405b", "dgx-h100", "fp8", 8, 128, 2048, 4340, True),
    (355, "llama-3.1-405b", "dgx-h100", "fp8", 8, 1000, 1000, 2919, True),
    (363, "llama-3.1-405b", "dgx-h100", "fp8", 8, 2048, 128, 453, True),
    (338, "llama-3.1-405b", "dgx-h200", "fp8", 8, 128, 128, 3814, True),
    (342, "llama-3.1-405b", "dgx-h200", "fp8", 8, 128, 2048, 5348, True),
    # dense FP4 on Blackwell: the default profile's round efficiencies run ahead (calibrated band only)
    (336, "llama-3.1-405b", "hgx-b200", "nvfp4", 4, 128, 128, 6281, False),
    (340, "llama-3.1-405b", "hgx-b200", "nvfp4", 4, 128, 2048, 8020, False),
    (337, "llama-3.1-405b", "gb200-nvl72", "nvfp4", 4, 128, 128, 6740, False),
]


def _at_largest_batch(profile: str, kv: str = "bf16", **row: object):  # type: ignore[no-untyped-def]
    columns = {k: [v] for k, v in row.items()} | {"kv": [kv]}
    resident = columns | {"gen_len": [-(-int(row["gen_len"]) // 2)], "batch": [1]}  # type: ignore[call-overload]
    [(_, one)] = score_columns(resident, profile=profile)
    largest = int(one.memory.max_batch[0])
    assert largest >= 1, "not even one sequence fits"
    [(_, scored)] = score_columns(columns | {"batch": [largest]}, profile=profile)
    assert scored.metrics.reason[0] in (Reason.OK, Reason.MEMORY_EXCEEDED), scored.metrics.reason[0]
    return scored.metrics


@pytest.mark.parametrize(("row", "model", "system", "quant", "tp", "prompt", "output", "published", "band"), PUBLISHED)
def test_trtllm_max_load_throughput(
    row: int,
    model: str,
    system: str,
    quant: str,
    tp: int,
    prompt: int,
    output: int,
    published: float,
    band: bool | None,
) -> None:
    spec = dict(model=model, hardware=system, quant=quant, tp=tp, prompt_len=prompt, gen_len=output)
    ideal = _at_largest_batch("ideal", kv="fp8", **spec)  # the most favourable KV format: a bound whichever ran
    assert ideal.decode_throughput_tokens_per_s[0] > published, f"row {row}: a measurement beats the roofline"
    if band:
        default = _at_largest_batch("default", **spec)
        ratio = float(default.throughput_tokens_per_s[0]) / published
        assert 1 / 1.6 < ratio < 1.6, f"row {row}: model / published = {ratio:.2f}"
    if band is not None:
        fitted = _at_largest_batch("calibrated", **spec)
        ratio = float(fitted.throughput_tokens_per_s[0]) / published
        assert 1 / 1.5 < ratio < 1.5, f"row {row}: calibrated model / published = {ratio:.2f}"
