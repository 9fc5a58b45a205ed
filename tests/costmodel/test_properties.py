"""Invariants of the cost model, checked on random candidates (hypothesis)."""

from __future__ import annotations

import dataclasses

import numpy as np
from candidate_rows import candidates
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.catalog import load_model
from dse.costmodel import Evaluation, evaluate, evaluate_reference
from dse.costmodel.engine.series import sum_max_linear
from dse.scoring import architecture, score_columns

MODELS = [
    "llama-2-7b",
    "llama-3.1-70b",
    "mixtral-8x7b",
    "deepseek-v3",
    "gemma-3-27b",
    "gpt-oss-20b",
    "falcon-180b",
    "opt-66b",
]
HARDWARE = ["h100-sxm", "a100-sxm-80gb", "mi300x", "rtx-4090", "l4", "b200", "tpu-v5e", "gaudi3"]
QUANT = ["bf16", "fp16", "fp8", "int8", "w4a16", "w4a8", "nvfp4", "mxfp4", "q4_k_m", "q8_0"]

candidate = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "hardware": st.sampled_from(HARDWARE),
        "quant": st.sampled_from(QUANT),
        "batch": st.integers(1, 512),
        "prompt_len": st.integers(1, 16384),
        "gen_len": st.integers(1, 4096),
        "flash_attention": st.booleans(),
    }
)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _evaluate(row: dict, **changes: object) -> Evaluation:
    """Evaluate one candidate (engine), optionally overriding Candidates fields (e.g. bandwidth)."""
    cand = candidates(row)
    if changes:
        cand = dataclasses.replace(cand, **{k: np.asarray([v], dtype=float) for k, v in changes.items()})
    return evaluate(architecture(load_model(row["model"])), cand)


@FAST
@given(candidate, st.floats(1.01, 4.0))
def test_more_bandwidth_or_peak_is_never_slower(row: dict, factor: float) -> None:
    ev = _evaluate(row)
    c = candidates(row)
    faster_bw = _evaluate(row, bandwidth_bytes_per_s=c.bandwidth_bytes_per_s[0] * factor)
    faster_peak = _evaluate(
        row,
        matmul_flops_per_s=c.matmul_flops_per_s[0] * factor,
        matmul16_flops_per_s=c.matmul16_flops_per_s[0] * factor,
        vector_flops_per_s=c.vector_flops_per_s[0] * factor,
    )
    for faster in (faster_bw, faster_peak):
        assert faster.prefill.time_s[0] <= ev.prefill.time_s[0] * (1 + 1e-12)
        assert faster.tpot_s[0] <= ev.tpot_s[0] * (1 + 1e-12)


@FAST
@given(candidate, st.floats(1.0, 8.0), st.floats(1.0, 8.0))
def test_more_bits_never_less_memory(row: dict, extra_weight_bits: float, extra_kv_bits: float) -> None:
    c = candidates(row)
    ev = _evaluate(row)
    wider = _evaluate(row, weight_bits=c.weight_bits[0] + extra_weight_bits, kv_bits=c.kv_bits[0] + extra_kv_bits)
    assert wider.memory.weights_bytes[0] >= ev.memory.weights_bytes[0]
    assert wider.memory.kv_cache_bytes[0] >= ev.memory.kv_cache_bytes[0]
    assert wider.memory.total_bytes[0] >= ev.memory.total_bytes[0]


@FAST
@given(candidate)
def test_step_time_at_least_roofline_per_operator(row: dict) -> None:
    """Every operator (reference evaluator) takes at least its roofline at the attained rates, and at least
    the pure roofline at the peaks; a phase's operators add up to at least its compute part."""
    c = candidates(row)
    ev = evaluate_reference(architecture(load_model(row["model"])), c.row(0))
    peaks = {
        "matmul": c.matmul_flops_per_s[0],
        "matmul16": c.matmul16_flops_per_s[0],
        "vector": c.vector_flops_per_s[0],
    }
    peaks["attn_linear"] = peaks["matmul16" if c.attention_16bit[0] else "matmul"]
    bandwidth = c.bandwidth_bytes_per_s[0]
    kinds = {op.name: op.kind for op in _operators(row)}
    for costs in ev.operators:
        for op in costs:
            nbytes = op.weight_bytes + op.act_bytes + op.kv_bytes
            achievable = peaks[kinds[op.name]] * c.compute_efficiency[0]
            assert op.time_s >= op.count * max(
                op.flops / achievable, nbytes / (bandwidth * c.bandwidth_efficiency[0])
            ) * (1 - 1e-12)
            assert op.time_s >= op.count * max(op.flops / peaks[kinds[op.name]], nbytes / bandwidth) * (1 - 1e-12)
    assert ev.prefill.time_s >= sum(op.time_s for op in ev.operators[0]) * (1 - 1e-12)


def _operators(row: dict) -> list:
    """The prefill and decode operators of the row's model (for their peak kinds)."""
    from dse.costmodel.engine.forms import symbolic_pass
    from dse.costmodel.physics.layers import pass_operators

    arch = architecture(load_model(row["model"]))
    return [op for decode in (False, True) for op in pass_operators(arch, symbolic_pass(arch, decode=decode))]


@FAST
@given(candidate)
def test_decode_throughput_is_batch_over_tpot(row: dict) -> None:
    m = _evaluate(row).metrics
    assert m.decode_throughput_tokens_per_s[0] * m.tpot_s[0] == np.float64(row["batch"]) or np.isclose(
        m.decode_throughput_tokens_per_s[0], row["batch"] / m.tpot_s[0], rtol=1e-12
    )
    assert np.isclose(m.tokens_per_s_per_user[0], 1.0 / m.tpot_s[0], rtol=1e-12)
    assert np.isclose(m.e2e_latency_s[0], m.ttft_s[0] + (row["gen_len"] - 1) * m.tpot_s[0], rtol=1e-12)


@settings(max_examples=10, deadline=None)
@given(st.lists(candidate, min_size=2, max_size=25))
def test_vectorised_equals_scalar(rows: list[dict]) -> None:
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    together = {}
    for index, scored in score_columns(columns):
        for i, row_index in enumerate(index):
            together[int(row_index)] = (
                scored.metrics.tpot_s[i],
                scored.metrics.ttft_s[i],
                scored.memory.total_bytes[i],
                scored.metrics.reason[i],
            )
    for i, row in enumerate(rows):
        [(_, alone)] = score_columns({k: [v] for k, v in row.items()})
        expected = (
            alone.metrics.tpot_s[0],
            alone.metrics.ttft_s[0],
            alone.memory.total_bytes[0],
            alone.metrics.reason[0],
        )
        np.testing.assert_allclose(together[i][:3], expected[:3], rtol=1e-12)
        assert together[i][3] == expected[3]


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-1e3, 1e3),
    st.floats(-10, 10),
    st.floats(-1e3, 1e3),
    st.floats(-10, 10),
    st.integers(-5, 50),
    st.integers(-5, 60),
)
def test_sum_max_linear_matches_brute_force(u0: float, u1: float, v0: float, v1: float, first: int, last: int) -> None:
    brute = sum(max(u0 + u1 * j, v0 + v1 * j) for j in range(first, last + 1))
    a = lambda x: np.asarray([x], dtype=float)  # noqa: E731
    got = sum_max_linear(a(u0), a(u1), a(v0), a(v1), a(first), a(last))[0]
    assert np.isclose(got, brute, rtol=1e-9, atol=1e-6)


@FAST
@given(candidate, st.sampled_from(["gemma-3-27b", "gemma-2-9b", "mistral-7b-v0.1", "gpt-oss-20b"]))
def test_window_never_increases_kv_memory(row: dict, windowed: str) -> None:
    """Sliding-window layers cache at most W tokens: never more than the same model without a window."""
    row = row | {"model": windowed}
    model = load_model(windowed)
    assert model.num_window_layers > 0
    ev = _evaluate(row)
    full = model.num_layers * (row["prompt_len"] + row["gen_len"])
    bound = row["batch"] * full * model.kv_elements_per_token_per_layer * candidates(row).kv_bits[0] / 8
    assert ev.memory.kv_cache_bytes[0] <= bound * (1 + 1e-12)


def test_chunked_scoring_equals_scoring_in_other_pieces() -> None:
    """More candidates than one chunk: the results joined chunk by chunk (each chunk's buffers reused by
    the next) equal those of scoring the same candidates in pieces cut elsewhere, field by field."""
    from dse.scoring import CHUNK_SIZE

    rng = np.random.default_rng(7)
    n = CHUNK_SIZE + 500
    columns = {
        "model": ["deepseek-v3"] * n,
        "hardware": rng.choice(["dgx-h100", "dgx-h200", "h100-sxm", "mi300x-platform"], n).tolist(),
        "quant": rng.choice(["bf16", "fp8", "w4a16"], n).tolist(),
        "batch": rng.integers(1, 257, n),
        "prompt_len": rng.integers(128, 8193, n),
        "gen_len": rng.integers(16, 1025, n),
        "flash_attention": rng.random(n) < 0.7,
        "tp": rng.choice([1, 2, 4, 8], n),
        "pp": rng.choice([1, 2], n),
        "ep": rng.choice([1, 8], n),
        "kv_offload": rng.choice([0.0, 0.25], n),
    }
    [(_, whole)] = score_columns(columns)
    assert whole.evaluation is None  # several chunks
    cut = 3000
    pieces = [score_columns({k: v[rows] for k, v in columns.items()})[0][1] for rows in (slice(0, cut), slice(cut, n))]
    for part in ("metrics", "memory", "prefill", "decode_step"):
        joined, first, second = getattr(whole, part), *(getattr(p, part) for p in pieces)
        for f in dataclasses.fields(joined):
            expected = np.concatenate([getattr(first, f.name), getattr(second, f.name)])
            np.testing.assert_allclose(getattr(joined, f.name), expected, rtol=1e-12, err_msg=f"{part}.{f.name}")
