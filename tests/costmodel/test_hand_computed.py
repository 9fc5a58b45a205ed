"""Hand-computed cases: the ideal roofline reproduced with pencil-and-paper arithmetic."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from dse.catalog import load_model
from dse.costmodel import parameter_counts
from dse.costmodel.engine.series import sum_max_linear
from dse.scoring import analyze, architecture

# Llama-2-7B (models/llama-2-7b.yaml): h = 4096, L = 32, 32 heads x 128, MHA, FFN 11008, vocab 32000, untied.
H, L, FFN, V = 4096, 32, 11008, 32000


def test_llama2_7b_parameter_count_by_hand() -> None:
    per_layer = 4 * H * H + 3 * H * FFN + 2 * H  # q, k, v, o; gate, up, down; two RMSNorm weights
    total = L * per_layer + 2 * V * H + H  # + embedding, LM head, final norm
    assert parameter_counts(architecture(load_model("llama-2-7b")))[0] == total == 6_738_415_616


def test_decode_step_is_bytes_over_bandwidth(minimal_hardware: str) -> None:
    """Acceptance: Llama-2-7B fp16, batch 1, prompt 1024, ideal, on the minimal custom hardware.

    Batch-1 decode moves ~1 byte per FLOP, far below this device's ridge point (154.8e12 / 768e9 = 201
    FLOP/byte), so every operator is memory-bound and step time = bytes / bandwidth.
    """
    result = analyze(
        "llama-2-7b", minimal_hardware, quant="fp16", batch=1, prompt_len=1024, gen_len=2, ideal=True
    ).to_dict()
    p = 1024
    weights = 6_738_415_616 * 2 - V * H * 2  # every weight once, except the embedding table: only 1 row read
    embedding_row = H * 2
    kv_read = L * 2 * p * H * 2  # K and V of 1024 cached tokens, 32 layers, fp16
    kv_write = L * 2 * H * 2  # K and V of the new token
    # activations (fp16): every operator reads its inputs and writes its outputs once
    per_layer_act = (
        2 * (H + H)  # two norms: read + write h
        + 3 * (H + H)  # q, k, v projections: read h, write h
        + (H + H)  # fused attention: read q, write o
        + (H + H)  # o_proj
        + 2 * (2 * H + H)  # two residual adds: read 2h, write h
        + 2 * (H + FFN)  # gate, up
        + (2 * FFN + FFN)  # SiLU x up
        + (FFN + H)  # down
    )
    act = 2 * (L * per_layer_act + H + (H + H) + (H + V))  # + embedding write, final norm, LM head
    total_bytes = weights + embedding_row + kv_read + kv_write + act
    assert result["decode"]["memory_bytes"] == pytest.approx(total_bytes, rel=1e-12)
    assert result["decode"]["time_s"] == pytest.approx(total_bytes / 768e9, rel=0.01)
    assert all(row["bound"] == "memory" for row in result["layers"] if row["stage"] == "decode")


def test_prefill_flops_by_hand(minimal_hardware: str) -> None:
    """2 FLOPs per weight per token, plus causal fused attention P(P+1)/2 pairs x (2d + 2d + 5) per head."""
    p = 512
    result = analyze("llama-2-7b", minimal_hardware, quant="fp16", prompt_len=p, gen_len=2, ideal=True).to_dict()
    linear = 2 * p * L * (4 * H * H + 3 * H * FFN) + 2 * 1 * H * V  # LM head on the last token only
    attention = L * 32 * (p * (p + 1) / 2) * (4 * 128 + 5)
    elementwise = L * p * (2 * 4 * H + 2 * H + 5 * FFN) + 4 * p * H  # norms, adds, SiLU; final norm
    assert result["prefill"]["flops"] == pytest.approx(linear + attention + elementwise, rel=1e-12)


def test_tpot_is_exact_mean_over_positions(minimal_hardware: str) -> None:
    """TPOT = mean of the G-1 steps attending P+1 .. P+G-1 keys: check against one-step analyses."""
    p, g = 100, 9
    base = dict(quant="fp16", batch=4, ideal=True, gen_len=2)
    steps = [
        analyze("llama-2-7b", minimal_hardware, prompt_len=p + j, **base).to_dict()["decode"]["time_s"]
        for j in range(1, g)
    ]
    tpot = analyze(
        "llama-2-7b", minimal_hardware, quant="fp16", batch=4, prompt_len=p, gen_len=g, ideal=True
    ).to_dict()["tpot_s"]
    assert tpot == pytest.approx(sum(steps) / len(steps), rel=1e-9)


def test_sum_max_linear_small_case() -> None:
    # max(j, 10 - j) for j = 1..9: 9 8 7 6 5 6 7 8 9 = 65
    one = np.ones(1)
    assert sum_max_linear(0 * one, one, 10 * one, -one, one, 9 * one)[0] == 65
    assert math.isclose(sum_max_linear(one, 0 * one, 0 * one, 0 * one, 5 * one, 4 * one)[0], 0.0)


def test_sum_max_linear_rows_of_lines_from_a_scalar_first() -> None:
    """(operators x candidates) lines from j = 1, as the decode attention sums them: a line below the other
    throughout, one above throughout, and one crossing it (the only case that needs the root)."""
    u0 = np.asarray([[0.0, 5.0, 0.0]])  # u: 0 + 1 j, 5 + 2 j, 0 + 2 j
    u1 = np.asarray([[1.0, 2.0, 2.0]])
    v0 = np.asarray([[10.0, 0.0, 7.0]])  # v: 10 + 1 j, 0 + 1 j, 7 + 0 j
    v1 = np.asarray([[1.0, 1.0, 0.0]])
    last = np.asarray([6.0, 6.0, 6.0])
    got = sum_max_linear(u0, u1, v0, v1, 1.0, last)
    # 6 x 10 + 21; 6 x 5 + 2 x 21; max(2j, 7) for j = 1..6: 7 7 7 8 10 12
    np.testing.assert_array_equal(got, [[81.0, 72.0, 51.0]])


def test_stored_weights_equal_parameters_at_16_bits() -> None:
    """With every weight at 16 bits, stored weight bytes = 2 x the parameter count, for every model
    (biases, routers, shared and routed experts, MLA, tied tables). Attention sinks (a few thousand
    parameters) are counted as parameters but not stored."""
    from dse.catalog import model_catalog

    for model in model_catalog().values():
        total, _ = parameter_counts(architecture(model))
        stored = analyze(model.id, "h200-sxm", weight_bits=16, act_bits=16, prompt_len=8, gen_len=2).to_dict()
        sinks = model.num_layers * model.record.num_attention_heads if model.record.attention_sinks else 0
        assert stored["memory"]["weights_bytes"] == pytest.approx(2 * (total - sinks), rel=1e-12), model.id


# gpt-oss-120b (models/gpt-oss-120b.yaml): h = 2880, 36 layers, 64 query heads and 8 KV heads of 64.
OSS_H, OSS_L, OSS_Q, OSS_KV = 2880, 36, 64 * 64, 8 * 64
OSS_ATTENTION = OSS_L * (2 * OSS_H * OSS_Q + 2 * OSS_H * OSS_KV)  # q, o; k, v matrices (biases apart)


def _gpt_oss(hardware: str, prompt_len: int) -> tuple[Any, Any, Any]:
    """The gpt-oss-120b candidate in its checkpoint's MXFP4, and the same with its attention quantized too."""
    from dataclasses import replace

    from dse.costmodel import evaluate_reference
    from tests.costmodel.candidate_rows import candidates

    row = {"model": "gpt-oss-120b", "hardware": hardware, "quant": "mxfp4", "batch": 1, "prompt_len": prompt_len}
    c = candidates(row | {"gen_len": 2}).row(0)
    arch = architecture(load_model("gpt-oss-120b"))
    assert c.attention_16bit
    return c, evaluate_reference(arch, c), evaluate_reference(arch, replace(c, attention_16bit=np.False_))


def test_gpt_oss_checkpoint_keeps_attention_16bit() -> None:
    """Only the experts are MXFP4 (4 + 8/32 bits); q/k/v/o weights stay 2 bytes: 955,514,880 of them, so the
    stored weights are 955,514,880 x (2 - 4.25/8) = 1,403,412,480 bytes more than with attention in MXFP4."""
    assert OSS_ATTENTION == 955_514_880
    _, ev, quantized = _gpt_oss("h100-sxm", 1024)
    extra = float(ev.memory.weights_bytes - quantized.memory.weights_bytes)
    assert extra == pytest.approx(OSS_ATTENTION * (2 - 4.25 / 8), rel=1e-12)
    q_proj = next(op for op in ev.operators[1] if op.name == "q_proj")
    assert q_proj.weight_bytes == OSS_H * OSS_Q * 2 + 2 * OSS_Q  # 16-bit weights and bias, tp 1


def test_gpt_oss_attention_runs_at_the_16bit_peak_where_fp4_is_native() -> None:
    """On a B200 (native FP4) the experts multiply at the FP4 peak, the attention projections at bf16's."""
    c, ev, quantized = _gpt_oss("b200", 4096)
    prefill = {op.name: op for op in ev.operators[0]}
    assert prefill["q_proj"].peak == "matmul16" and prefill["expert_gate_up"].peak == "matmul"
    bf16 = c.matmul16_flops_per_s * c.compute_efficiency
    assert prefill["q_proj"].compute_s == pytest.approx(2 * 4096 * OSS_H * OSS_Q / bf16, rel=1e-12)
    assert c.matmul_flops_per_s > 2 * c.matmul16_flops_per_s  # FP4 is at least twice bf16 here
    assert {op.name: op for op in quantized.operators[0]}["q_proj"].peak == "matmul"
