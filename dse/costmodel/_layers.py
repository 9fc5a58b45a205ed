"""The operator list of a whole forward pass: embeddings, every layer kind with its multiplicity, LM head."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from dse.catalog import ModelSpec
from dse.costmodel._attention import AttentionWork, attention_geometry, attention_ops
from dse.costmodel._ops import (
    ACTIVATION_FLOPS_PER_ELEMENT,
    NORM_FLOPS_PER_ELEMENT,
    PARAMETER_BPE_16,
    ROUTER_FLOPS_PER_LOGIT,
    Op,
    _b,
    elementwise,
    experts,
    linear,
)
from dse.costmodel._roofline import Array


@dataclass(frozen=True)
class PassInputs:
    """One forward pass over a batch: ``queries`` new tokens per sequence, attention work per layer kind.

    ``*_bpe`` are bytes per element of each tensor class (bits / 8, scale overhead included).
    """

    batch: Array
    queries: Array
    weight_bpe: Array
    embedding_bpe: Array
    act_bpe: Array
    kv_bpe: Array
    flash: Array
    decode: bool
    full: AttentionWork
    window: AttentionWork


def _ffn_ops(prefix: str, count: float, rows: Array, model: ModelSpec, width: int, x: PassInputs) -> list[Op]:
    rec = model.record
    h, bias = rec.hidden_size, rec.mlp_bias
    ops = [linear(f"{prefix}up_proj", count, rows, h, width, x.weight_bpe, x.act_bpe, bias=bias)]
    if rec.ffn_gated:
        ops.insert(0, linear(f"{prefix}gate_proj", count, rows, h, width, x.weight_bpe, x.act_bpe, bias=bias))
    reads = 2.0 if rec.ffn_gated else 1.0
    ops.append(
        elementwise(f"{prefix}mlp_act", count, rows * width, ACTIVATION_FLOPS_PER_ELEMENT, x.act_bpe, reads=reads)
    )
    ops.append(linear(f"{prefix}down_proj", count, rows, width, h, x.weight_bpe, x.act_bpe, bias=bias))
    return ops


def _moe_ops(model: ModelSpec, rows: Array, x: PassInputs) -> list[Op]:
    rec, moe = model.record, model.record.moe
    assert moe is not None
    n, h, e = model.num_moe_layers, rec.hidden_size, moe.num_experts
    router = linear("router", n, rows, h, e, PARAMETER_BPE_16, x.act_bpe, bias=moe.router_bias)
    select = elementwise("router_topk", n, rows * e, ROUTER_FLOPS_PER_LOGIT, x.act_bpe, writes=0.0)
    routed = (e, moe.experts_per_token)
    width, matrices = moe.expert_intermediate_size, 2 if rec.ffn_gated else 1
    ops = [
        router,
        select,
        experts("expert_gate_up", n, rows, h, width, matrices, routed, x.weight_bpe, x.act_bpe, bias=moe.expert_bias),
        elementwise(
            "expert_act",
            n,
            rows * moe.experts_per_token * width,
            ACTIVATION_FLOPS_PER_ELEMENT,
            x.act_bpe,
            reads=matrices,
        ),
        experts("expert_down", n, rows, width, h, 1, routed, x.weight_bpe, x.act_bpe, bias=moe.expert_bias),
    ]
    if moe.shared_expert_intermediate_size:
        ops += _ffn_ops("shared_", n, rows, model, moe.shared_expert_intermediate_size, x)
    return ops


def _mla_projections(model: ModelSpec, rows: Array, x: PassInputs) -> list[Op]:
    rec, mla = model.record, model.record.mla
    assert mla is not None
    n, h, nq = model.num_layers, rec.hidden_size, rec.num_attention_heads
    q_out = nq * (mla.qk_nope_head_dim + mla.qk_rope_head_dim)
    norm = NORM_FLOPS_PER_ELEMENT[rec.norm]
    ops: list[Op] = []
    if mla.q_lora_rank:
        ops.append(linear("q_a_proj", n, rows, h, mla.q_lora_rank, x.weight_bpe, x.act_bpe))
        ops.append(elementwise("q_a_norm", n, rows * mla.q_lora_rank, norm, x.act_bpe, params=mla.q_lora_rank))
        ops.append(linear("q_b_proj", n, rows, mla.q_lora_rank, q_out, x.weight_bpe, x.act_bpe))
    else:
        ops.append(linear("q_proj", n, rows, h, q_out, x.weight_bpe, x.act_bpe))
    latent = mla.kv_lora_rank + mla.qk_rope_head_dim
    ops.append(linear("kv_a_proj", n, rows, h, latent, x.weight_bpe, x.act_bpe, cache_bpe=x.kv_bpe))
    ops.append(elementwise("kv_a_norm", n, rows * mla.kv_lora_rank, norm, x.act_bpe, params=mla.kv_lora_rank))
    if not x.decode:
        out = nq * (mla.qk_nope_head_dim + mla.v_head_dim)
        ops.append(linear("kv_b_proj", n, rows, mla.kv_lora_rank, out, x.weight_bpe, x.act_bpe))
        return ops
    # Absorbed decode: the same kv_b weights, applied per head to the query (W_UK) and after attention (W_UV).
    rows_heads = rows * nq
    ops.append(linear("q_absorb", n, rows_heads, mla.qk_nope_head_dim, mla.kv_lora_rank, x.weight_bpe, x.act_bpe))
    ops.append(linear("v_absorb", n, rows_heads, mla.kv_lora_rank, mla.v_head_dim, x.weight_bpe, x.act_bpe))
    for op_index in (-2, -1):  # weights are per head: nq matrices, read once per step
        op = ops[op_index]
        ops[op_index] = replace(
            op, weight_bytes=op.weight_bytes * nq, params=op.params * nq, active_params=op.active_params * nq
        )
    return ops


def _attention_projections(model: ModelSpec, rows: Array, x: PassInputs) -> list[Op]:
    rec = model.record
    n, h, hd = model.num_layers, rec.hidden_size, rec.head_dim
    nq, nkv = rec.num_attention_heads, rec.num_key_value_heads
    qkv_bias = rec.attention_bias in ("qkv", "all")
    ops = [
        linear("q_proj", n, rows, h, nq * hd, x.weight_bpe, x.act_bpe, bias=qkv_bias),
        linear("k_proj", n, rows, h, nkv * hd, x.weight_bpe, x.act_bpe, bias=qkv_bias, cache_bpe=x.kv_bpe),
        linear("v_proj", n, rows, h, nkv * hd, x.weight_bpe, x.act_bpe, bias=qkv_bias, cache_bpe=x.kv_bpe),
    ]
    if rec.qk_norm:
        norm = NORM_FLOPS_PER_ELEMENT[rec.norm]
        ops.append(elementwise("qk_norm", n, rows * (nq + nkv) * hd, norm, x.act_bpe, params=2 * hd))
    return ops


def layer_ops(model: ModelSpec, x: PassInputs) -> list[Op]:
    """Every operator of one forward pass, each with its multiplicity (number of layers it runs in)."""
    rec = model.record
    n, h = model.num_layers, rec.hidden_size
    rows = x.batch * x.queries
    norm_params = h * (2 if rec.norm == "layernorm" else 1)
    ops = [
        elementwise(
            "norm", n * rec.norms_per_layer, rows * h, NORM_FLOPS_PER_ELEMENT[rec.norm], x.act_bpe, params=norm_params
        )
    ]
    ops += _mla_projections(model, rows, x) if rec.mla else _attention_projections(model, rows, x)
    geo = attention_geometry(model, decode=x.decode)
    kv_bpe = x.kv_bpe if x.decode else x.act_bpe
    sinks = rec.num_attention_heads if rec.attention_sinks else 0
    for suffix, count, work in (
        ("", model.num_full_attention_layers, x.full),
        ("[window]", model.num_window_layers, x.window),
    ):
        if count:
            ops += attention_ops(
                suffix, count, x.batch, work, geo, x.flash, x.act_bpe, kv_bpe, from_cache=x.decode, sink_params=sinks
            )
    o_in = rec.num_attention_heads * (rec.mla.v_head_dim if rec.mla else rec.head_dim)
    ops.append(linear("o_proj", n, rows, o_in, h, x.weight_bpe, x.act_bpe, bias=rec.attention_bias == "all"))
    adds = 1 if rec.parallel_attention else 2
    ops.append(elementwise("residual_add", n * adds, rows * h, 1.0, x.act_bpe, reads=2.0))
    if model.num_dense_ffn_layers:
        assert rec.intermediate_size is not None
        ops += _ffn_ops("", model.num_dense_ffn_layers, rows, model, rec.intermediate_size, x)
    if model.num_moe_layers:
        ops += _moe_ops(model, rows, x)
    return _embedding_ops(model, rows, x) + ops + _head_ops(model, rows, x)


def _embedding_ops(model: ModelSpec, rows: Array, x: PassInputs) -> list[Op]:
    """Token (and learned position) embedding lookups: rows read from the table, no FLOPs."""
    rec = model.record
    h = rec.hidden_size
    tables = [("embedding", rec.vocab_size, x.embedding_bpe)]
    if rec.learned_position_embeddings:
        tables.append(("position_embedding", rec.learned_position_embeddings, np.full_like(rows, PARAMETER_BPE_16)))
    ops = []
    for name, table_rows, bits in tables:
        params = table_rows * h
        ops.append(
            Op(
                name,
                1,
                "vector",
                np.zeros_like(rows),
                _b(rows * h, bits),
                _b(rows * h, x.act_bpe),
                np.zeros_like(rows),
                params,
                0,
                resident_bytes=_b(np.full_like(rows, params), bits),
            )
        )
    return ops


def _head_ops(model: ModelSpec, rows: Array, x: PassInputs) -> list[Op]:
    """Final norm over every row; LM head over one row per sequence (the last prompt token in prefill)."""
    rec = model.record
    h = rec.hidden_size
    norm_params = h * (2 if rec.norm == "layernorm" else 1)
    final_norm = elementwise("final_norm", 1, rows * h, NORM_FLOPS_PER_ELEMENT[rec.norm], x.act_bpe, params=norm_params)
    head = linear("lm_head", 1, x.batch, h, rec.vocab_size, x.embedding_bpe, x.act_bpe, bias=rec.lm_head_bias)
    if rec.tie_word_embeddings:  # shares the embedding table: its weights are counted there
        head = replace(head, params=head.params - h * rec.vocab_size, resident_bytes=np.zeros_like(x.batch))
    return [final_norm, head]


def window_of(model: ModelSpec) -> float:
    """Sliding-window span in tokens, or inf when the model has no windowed layers."""
    return float(model.record.sliding_window) if model.record.sliding_window else math.inf
