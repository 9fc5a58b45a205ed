"""Every operator's formulas, by hand, on small made-up architectures (docs/cost-model.md §2, §3, §11.2).

The pass quantities take distinct arbitrary values (they need not be consistent: the formulas are checked
term by term), so a wrong coefficient, a missing share or a swapped symbol changes a number. The expected
values are written here from the tables of docs/cost-model.md, not computed by the code under test.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from dse.costmodel import Architecture, MLAShape, MoEShape, parameter_counts
from dse.costmodel.physics.layers import pass_operators, stored_weight_parts
from dse.costmodel.physics.operators import AttentionWork, Operator, Pass

# pass quantities: rows, sequences, bytes per element, experts touched, shares
R, B, W, E_, A, KV, U = 3.0, 2.0, 0.5, 1.25, 1.5, 0.75, 0.3
W_ATTN = 1.75  # the attention projections' own width (Pass.w_attn): not W, so a mix-up shows
S_TP, S_KV, S_EW, S_EF, S_EA = 1 / 3, 1 / 5, 1 / 7, 0.6, 0.9
FULL, WINDOW = (11.0, 13.0, 17.0), (19.0, 23.0, 29.0)  # keys, pairs, reads

DENSE = Architecture(
    hidden_size=12,
    num_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=3,
    intermediate_size=20,
    vocab_size=50,
    max_position_embeddings=1000,
    num_moe_layers=0,
    num_window_layers=1,
    sliding_window=5.0,
    kv_elements_per_token_per_layer=12,
    attention_bias="all",
    mlp_bias=True,
    lm_head_bias=True,
    qk_norm=True,
    attention_sinks=True,
    learned_position_embeddings=7,
)
LATENT = Architecture(
    hidden_size=12,
    num_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    head_dim=3,
    intermediate_size=20,
    vocab_size=50,
    max_position_embeddings=1000,
    num_moe_layers=3,
    num_window_layers=0,
    sliding_window=math.inf,
    kv_elements_per_token_per_layer=6,
    tie_word_embeddings=True,
    ffn_gated=False,
    norm="layernorm",
    parallel_attention=True,
    moe=MoEShape(8, 2, 5, 7, expert_bias=True, router_bias=True),
    mla=MLAShape(q_lora_rank=6, kv_lora_rank=5, qk_nope_head_dim=2, qk_rope_head_dim=1, v_head_dim=3),
)


def _pass(arch: Architecture, *, decode: bool) -> Pass[float]:
    groups = {"full": FULL, "window": WINDOW}
    work = {g: AttentionWork(*((groups[g][0],) * 3 if decode else groups[g])) for g, _, _ in arch.attention_groups}
    x = KV if decode else A
    return Pass(R, B, W, E_, W_ATTN, A, KV, x, U, S_TP, S_KV, S_EW, S_EF, S_EA, work, decode)


def _ops(arch: Architecture, *, decode: bool = False) -> dict[str, Operator[float]]:
    return {op.name: op for op in pass_operators(arch, _pass(arch, decode=decode))}


def check(op: Operator[float], **expected: Any) -> None:
    for field, value in expected.items():
        got = getattr(op, field)
        if isinstance(value, str | bool):
            assert got == value, (op.name, field, got, value)
        else:
            assert got == pytest.approx(value, rel=1e-12, abs=1e-12), (op.name, field, got, value)


def test_dense_projections_norms_and_embeddings() -> None:
    h, n_q, n_kv, d, ffn, V = 12, 4, 2, 3, 20, 50
    ops = _ops(DENSE)
    check(
        ops["embedding"],
        count=1,
        flops=0,
        weight_bytes=R * E_ * h * S_TP,
        act_bytes=R * A * h,
        resident_bytes=V * h * E_ * S_TP,
        params=V * h,
        active_params=0,
        per_layer=False,
    )
    check(
        ops["position_embedding"],
        count=1,
        flops=0,
        weight_bytes=R * 2 * h,
        act_bytes=R * A * h,
        resident_bytes=2 * 7 * h,
        params=7 * h,
        active_params=0,
        per_layer=False,
    )
    check(ops["norm"], count=6, kind="vector", flops=4 * R * h, weight_bytes=2 * h, act_bytes=2 * R * A * h, params=h)
    check(
        ops["q_proj"],
        count=3,
        kind="attn_linear",
        flops=2 * R * h * n_q * d * S_TP,
        weight_bytes=h * n_q * d * W_ATTN * S_TP + 2 * n_q * d * S_TP,
        act_bytes=R * A * (h + n_q * d * S_TP),
        kv_bytes=0,
        params=h * n_q * d + n_q * d,
    )
    for name in ("k_proj", "v_proj"):
        check(
            ops[name],
            count=3,
            flops=2 * R * h * n_kv * d * S_KV,
            weight_bytes=h * n_kv * d * W_ATTN * S_KV + 2 * n_kv * d * S_KV,
            act_bytes=R * A * (h + n_kv * d * S_KV),
            kv_bytes=R * KV * n_kv * d * S_KV,
            params=h * n_kv * d + n_kv * d,
        )
    check(
        ops["q_norm"],
        count=3,
        flops=4 * R * n_q * d * S_TP,
        weight_bytes=2 * d,
        act_bytes=2 * R * A * n_q * d * S_TP,
        params=d,
    )
    check(
        ops["k_norm"],
        count=3,
        flops=4 * R * n_kv * d * S_KV,
        weight_bytes=2 * d,
        act_bytes=2 * R * A * n_kv * d * S_KV,
        params=d,
    )
    check(
        ops["o_proj"],
        count=3,
        flops=2 * R * n_q * d * h * S_TP,
        weight_bytes=n_q * d * h * W_ATTN * S_TP + 2 * h,
        act_bytes=R * A * (n_q * d * S_TP + h),
        params=n_q * d * h + h,
    )
    check(ops["residual_add"], count=6, flops=R * h, act_bytes=3 * R * A * h, weight_bytes=0)
    for name in ("gate_proj", "up_proj"):
        check(
            ops[name],
            count=3,
            flops=2 * R * h * ffn * S_TP,
            weight_bytes=h * ffn * W * S_TP + 2 * ffn * S_TP,
            act_bytes=R * A * (h + ffn * S_TP),
            params=h * ffn + ffn,
        )
    check(ops["mlp_act"], count=3, flops=5 * R * ffn * S_TP, act_bytes=3 * R * A * ffn * S_TP, weight_bytes=0)
    check(
        ops["down_proj"],
        count=3,
        flops=2 * R * ffn * h * S_TP,
        weight_bytes=ffn * h * W * S_TP + 2 * h,
        act_bytes=R * A * (ffn * S_TP + h),
        params=ffn * h + h,
    )
    check(ops["final_norm"], count=1, per_layer=False, flops=4 * R * h, weight_bytes=2 * h, params=h)
    check(
        ops["lm_head"],
        count=1,
        kind="matmul16",
        per_layer=False,
        flops=2 * B * h * V * S_TP,
        weight_bytes=h * V * E_ * S_TP + 2 * V * S_TP,
        act_bytes=B * A * (h + V * S_TP),
        params=h * V + V,
    )


@pytest.mark.parametrize("decode", [False, True])
def test_attention_operators_per_group(decode: bool) -> None:
    """Geometry n_q = 4, n_kv = 2, d_qk = d_v = 3, 6 elements per key; a device holds n_q s_tp and n_kv s_kv
    heads; 2 full layers and 1 windowed, each with its own work; K/V from the cache in decode."""
    ops = _ops(DENSE, decode=decode)
    n_q, n_kv, x = 4 * S_TP, 2 * S_KV, (KV if decode else A)
    for suffix, count, (K, pairs, reads) in (("", 2, FULL), ("[window]", 1, WINDOW)):
        S = R * K
        qk, sm, sv, fa = (ops[f"{name}{suffix}"] for name in ("qk_matmul", "softmax", "sv_matmul", "attention"))
        k_read, v_read = B * K * n_kv * 3 * x, B * K * n_kv * 3 * x
        check(
            qk,
            count=count,
            kind="matmul16",
            runs="unfused",
            flops=2 * S * n_q * 3,
            reads_kv_cache=decode,
            act_bytes=R * n_q * 3 * A + S * n_q * A + (0 if decode else k_read),
            kv_bytes=k_read if decode else 0,
        )
        check(
            sm,
            count=count,
            kind="vector",
            runs="unfused",
            flops=5 * S * n_q,
            act_bytes=2 * S * n_q * A,
            params=4,
            active_params=4,
        )
        check(
            sv,
            count=count,
            runs="unfused",
            flops=2 * S * n_q * 3,
            reads_kv_cache=decode,
            act_bytes=S * n_q * A + R * n_q * 3 * A + (0 if decode else v_read),
            kv_bytes=v_read if decode else 0,
        )
        kv_reads = B * (K if decode else reads) * n_kv * 6 * x
        query = (B if decode else R) * n_q * 6 * A
        check(
            fa,
            count=count,
            kind="matmul16",
            runs="fused",
            flops=B * (K if decode else pairs) * n_q * 17,
            act_bytes=query + (0 if decode else kv_reads),
            kv_bytes=kv_reads if decode else 0,  # a prefill of its own reads nothing from the cache
            reads_kv_cache=True,  # in decode, and in a prefill-shaped pass a mixed step's decoding sequences
            live_bytes=R * n_q * 6 * A + R * A * n_kv * 6,
        )


def test_latent_attention_prefill_and_absorbed_decode() -> None:
    """MLA: r_q = 6, r_kv = 5, d_n = 2, d_r = 1, d_v = 3; n_q = 4; layernorm (7 FLOPs, scale and bias)."""
    h, n_q, r_q, r_kv, d_n, d_r, d_v = 12, 4, 6, 5, 2, 1, 3
    prefill, decode = _ops(LATENT), _ops(LATENT, decode=True)
    for ops in (prefill, decode):
        check(
            ops["q_a_proj"], count=4, flops=2 * R * h * r_q, weight_bytes=h * r_q * W_ATTN, act_bytes=R * A * (h + r_q)
        )
        check(ops["q_a_norm"], count=4, flops=7 * R * r_q, act_bytes=2 * R * A * r_q, params=r_q)
        check(
            ops["q_b_proj"],
            flops=2 * R * r_q * n_q * (d_n + d_r) * S_TP,
            weight_bytes=r_q * n_q * (d_n + d_r) * W_ATTN * S_TP,
            act_bytes=R * A * (r_q + n_q * (d_n + d_r) * S_TP),
        )
        check(
            ops["kv_a_proj"],
            flops=2 * R * h * (r_kv + d_r),
            kv_bytes=R * KV * (r_kv + d_r),
            act_bytes=R * A * (h + r_kv + d_r),
        )
        check(ops["kv_a_norm"], flops=7 * R * r_kv, params=r_kv)
    check(
        prefill["kv_b_proj"],
        flops=2 * R * r_kv * n_q * (d_n + d_v) * S_TP,
        weight_bytes=r_kv * n_q * (d_n + d_v) * W_ATTN * S_TP,
    )
    assert "q_absorb" not in prefill and "kv_b_proj" not in decode
    rows = R * n_q  # each head's matrix on its own head's rows
    check(
        decode["q_absorb"],
        flops=2 * rows * d_n * r_kv * S_TP,
        weight_bytes=n_q * d_n * r_kv * W_ATTN * S_TP,
        act_bytes=rows * A * (d_n + r_kv) * S_TP,
        params=n_q * d_n * r_kv,
    )
    check(
        decode["v_absorb"],
        flops=2 * rows * r_kv * d_v * S_TP,
        weight_bytes=n_q * r_kv * d_v * W_ATTN * S_TP,
        act_bytes=rows * A * (r_kv + d_v) * S_TP,
    )
    # prefill: n_q explicit heads of width d_n + d_r (v: d_v), 6 elements per key; decode: one latent head
    K, pairs, reads = FULL
    check(
        prefill["attention"],
        flops=B * pairs * n_q * S_TP * (2 * 3 + 2 * 3 + 5),
        act_bytes=R * n_q * S_TP * 6 * A + B * reads * n_q * S_KV * 6 * A,
    )
    check(
        decode["attention"],
        flops=B * K * n_q * S_TP * (2 * 6 + 2 * 5 + 5),
        act_bytes=B * n_q * S_TP * 11 * A,
        kv_bytes=B * K * 1 * S_KV * 6 * KV,
    )


def test_experts_router_and_shared_experts() -> None:
    """E = 8, k = 2, I_e = 5, I_s = 7; an ungated FFN (M = 1, activation 4 FLOPs); expert and router biases."""
    h, E, k, I_e, I_s = 12, 8, 2, 5, 7
    ops = _ops(LATENT)
    check(
        ops["router"],
        count=3,
        kind="matmul16",
        flops=2 * R * h * E,
        weight_bytes=2 * h * E + 2 * E,
        act_bytes=R * A * (h + E),
        params=h * E + E,
    )
    check(ops["router_topk"], count=3, kind="vector", flops=5 * R * E, act_bytes=R * A * E, weight_bytes=0)
    check(
        ops["expert_gate_up"],
        count=3,
        flops=2 * k * h * I_e * R * S_EF,
        weight_bytes=(U * W * h * I_e + U * 2 * I_e) * E * S_EW,
        act_bytes=R * A * k * (h * S_EA + I_e * S_EF),
        resident_bytes=(W * h * I_e + 2 * I_e) * E * S_EW,
        params=E * (h * I_e + I_e),
        active_params=k * (h * I_e + I_e),
    )
    check(ops["expert_act"], count=3, flops=4 * R * k * I_e * S_EF, act_bytes=2 * R * A * k * I_e * S_EF)
    check(
        ops["expert_down"],
        count=3,
        flops=2 * k * I_e * h * R * S_EF,
        weight_bytes=(U * W * I_e * h + U * 2 * h) * E * S_EW,
        act_bytes=R * A * k * (I_e * S_EF + h * S_EA),
        params=E * (I_e * h + h),
        active_params=k * (I_e * h + h),
    )
    assert "shared_gate_proj" not in ops  # ungated
    check(ops["shared_up_proj"], count=3, flops=2 * R * h * I_s * S_TP, weight_bytes=h * I_s * W * S_TP)
    check(ops["shared_mlp_act"], count=3, flops=4 * R * I_s * S_TP, act_bytes=2 * R * A * I_s * S_TP)
    check(ops["shared_down_proj"], count=3, flops=2 * R * I_s * h * S_TP)
    check(ops["up_proj"], count=1, flops=2 * R * h * 20 * S_TP)  # the one dense layer
    check(ops["residual_add"], count=4)  # parallel attention: one add per layer
    check(ops["norm"], count=8, flops=7 * R * h, weight_bytes=2 * 2 * h, params=2 * h)


def test_tied_lm_head_and_stored_weights() -> None:
    """A tied LM head reads its table each pass but stores nothing of its own; stored weights split into all,
    the layers', the first stage's (embedding) and the last stage's (final norm and LM head, with a copy of a
    tied table)."""
    h, V = 12, 50
    ops = pass_operators(LATENT, _pass(LATENT, decode=False))
    head = next(op for op in ops if op.name == "lm_head")
    check(head, params=0, resident_bytes=0, weight_bytes=h * V * E_ * S_TP)
    whole, layers, first, last = stored_weight_parts(ops)
    embedding = V * h * E_ * S_TP
    final = 2 * 2 * h + h * V * E_ * S_TP  # layernorm scale and bias, and the table's copy
    assert first == pytest.approx(embedding, rel=1e-12) and last == pytest.approx(final, rel=1e-12)
    assert whole == pytest.approx(layers + embedding + 2 * 2 * h, rel=1e-12)
    total, active = parameter_counts(LATENT)
    assert total == sum(op.count * op.params for op in ops)
    # active: k of E experts; the input embedding is left out, but the tied table counts once in both (as the
    # LM head every token uses)
    assert total - active == pytest.approx(3 * (8 - 2) * (12 * 5 + 5 + 5 * 12 + 12), rel=1e-12)


def test_query_projection_without_a_low_rank_path() -> None:
    """MLA with r_q = 0 (DeepSeek-V2-Lite): one column-parallel q_proj of h -> n_q (d_n + d_r)."""
    mla = LATENT.mla
    assert mla is not None
    plain = Architecture(**{**LATENT.__dict__, "mla": MLAShape(0, 5, 2, 1, 3)})
    ops = _ops(plain)
    assert "q_a_proj" not in ops and "q_b_proj" not in ops
    check(
        ops["q_proj"],
        count=4,
        flops=2 * R * 12 * 4 * 3 * S_TP,
        weight_bytes=12 * 4 * 3 * W_ATTN * S_TP,
        act_bytes=R * A * (12 + 4 * 3 * S_TP),
    )


def test_a_projection_of_several_matrices_with_a_bias() -> None:
    """Two 3 x 5 matrices, each on its own rows, biased, split across both dimensions (``all``)."""
    from dse.costmodel.physics.operators import linear

    op = linear("x", 1, _pass(DENSE, decode=False), 3, 5, shard=("all", S_TP), rows_per_token=2, matrices=2, bias=True)
    check(
        op,
        flops=2 * (2 * R) * 3 * 5 * S_TP,
        weight_bytes=2 * 3 * 5 * W * S_TP + 2 * 2 * 5 * S_TP,
        act_bytes=2 * R * A * (3 + 5) * S_TP,
        params=2 * 3 * 5 + 2 * 5,
    )


def test_kv_b_projection_reads_its_latent_whole_and_writes_its_heads_shard() -> None:
    check(_ops(LATENT)["kv_b_proj"], act_bytes=R * A * (5 + 4 * (2 + 3) * S_TP))


def test_qkv_biases_leave_the_output_projection_unbiased() -> None:
    qkv = Architecture(**{**DENSE.__dict__, "attention_bias": "qkv"})
    ops = _ops(qkv)
    check(ops["q_proj"], weight_bytes=12 * 12 * W_ATTN * S_TP + 2 * 12 * S_TP, params=12 * 12 + 12)
    check(ops["o_proj"], weight_bytes=12 * 12 * W_ATTN * S_TP, params=12 * 12)


def test_gated_experts_read_two_inputs_in_their_activation() -> None:
    gated = Architecture(**{**LATENT.__dict__, "ffn_gated": True})
    check(_ops(gated)["expert_act"], flops=5 * R * 2 * 5 * S_EF, act_bytes=3 * R * A * 2 * 5 * S_EF)
