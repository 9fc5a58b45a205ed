"""The operator list of a whole forward pass: embeddings, every layer kind with its multiplicity, LM head."""

from __future__ import annotations

import math
from dataclasses import replace

from dse.catalog import ModelSpec
from dse.costmodel._attention import attention_geometry, attention_specs
from dse.costmodel._ops import (
    ACTIVATION_FLOPS_PER_ELEMENT,
    GATE_FLOPS_PER_ELEMENT,
    NORM_FLOPS_PER_ELEMENT,
    ROUTER_FLOPS_PER_LOGIT,
    OpSpec,
    elementwise,
    experts,
    linear,
    lookup,
)


def _activation_flops(model: ModelSpec) -> float:
    """FLOPs per FFN hidden element: the activation, plus the gate multiply in gated FFNs."""
    return ACTIVATION_FLOPS_PER_ELEMENT + (GATE_FLOPS_PER_ELEMENT if model.record.ffn_gated else 0.0)


def _ffn(prefix: str, count: float, model: ModelSpec, width: int) -> list[OpSpec]:
    rec = model.record
    h, bias = rec.hidden_size, rec.mlp_bias
    gate = [linear(f"{prefix}gate_proj", count, h, width, bias=bias, shard="column")] if rec.ffn_gated else []
    reads = 2.0 if rec.ffn_gated else 1.0
    return [
        *gate,
        linear(f"{prefix}up_proj", count, h, width, bias=bias, shard="column"),
        elementwise(f"{prefix}mlp_act", count, width, _activation_flops(model), reads=reads, shard="tp"),
        linear(f"{prefix}down_proj", count, width, h, bias=bias, shard="row"),
    ]


def _moe(model: ModelSpec) -> list[OpSpec]:
    rec, moe = model.record, model.record.moe
    assert moe is not None
    n, h, e, k = model.num_moe_layers, rec.hidden_size, moe.num_experts, moe.experts_per_token
    width, matrices = moe.expert_intermediate_size, 2 if rec.ffn_gated else 1
    specs = [
        linear("router", n, h, e, weight="one", bias=moe.router_bias, kind="matmul16"),
        elementwise("router_topk", n, e, ROUTER_FLOPS_PER_LOGIT, writes=0.0),
        experts("expert_gate_up", n, h, width, matrices, (e, k), shard="column", bias=moe.expert_bias),
        elementwise("expert_act", n, k * width, _activation_flops(model), reads=matrices, shard="ef"),
        experts("expert_down", n, width, h, 1, (e, k), shard="row", bias=moe.expert_bias),
    ]
    if moe.shared_expert_intermediate_size:
        specs += _ffn("shared_", n, model, moe.shared_expert_intermediate_size)
    return specs


def _mla_projections(model: ModelSpec, decode: bool) -> list[OpSpec]:
    """MLA (DeepSeek-V2, arXiv 2405.04434 §2.1): low-rank query path, shared KV latent cached per token.

    Prefill up-projects the latent to per-head K and V (kv_b_proj); decode absorbs the same weights into the
    query (W_UK, per head qk_nope -> kv_lora_rank) and after attention (W_UV, per head kv_lora_rank -> v).
    """
    rec, mla = model.record, model.record.mla
    assert mla is not None
    n, h, nq = model.num_layers, rec.hidden_size, rec.num_attention_heads
    q_out = nq * (mla.qk_nope_head_dim + mla.qk_rope_head_dim)
    norm = NORM_FLOPS_PER_ELEMENT[rec.norm]
    if mla.q_lora_rank:
        q_path = [
            linear("q_a_proj", n, h, mla.q_lora_rank),
            elementwise("q_a_norm", n, mla.q_lora_rank, norm, params=mla.q_lora_rank),
            linear("q_b_proj", n, mla.q_lora_rank, q_out, shard="column"),
        ]
    else:
        q_path = [linear("q_proj", n, h, q_out, shard="column")]
    latent = [
        linear("kv_a_proj", n, h, mla.kv_lora_rank + mla.qk_rope_head_dim, cache=True),
        elementwise("kv_a_norm", n, mla.kv_lora_rank, norm, params=mla.kv_lora_rank),
    ]
    if not decode:
        return [
            *q_path,
            *latent,
            linear("kv_b_proj", n, mla.kv_lora_rank, nq * (mla.qk_nope_head_dim + mla.v_head_dim), shard="column"),
        ]
    absorbed = [
        linear("q_absorb", n, mla.qk_nope_head_dim, mla.kv_lora_rank, rows_scale=nq, matrices=nq, shard="all"),
        linear("v_absorb", n, mla.kv_lora_rank, mla.v_head_dim, rows_scale=nq, matrices=nq, shard="all"),
    ]
    return [*q_path, *latent, *absorbed]


def _attention_projections(model: ModelSpec) -> list[OpSpec]:
    rec = model.record
    n, h, hd = model.num_layers, rec.hidden_size, rec.head_dim
    nq, nkv = rec.num_attention_heads, rec.num_key_value_heads
    qkv_bias = rec.attention_bias in ("qkv", "all")
    specs = [
        linear("q_proj", n, h, nq * hd, bias=qkv_bias, shard="column"),
        linear("k_proj", n, h, nkv * hd, bias=qkv_bias, cache=True, shard="column", factor="kv"),
        linear("v_proj", n, h, nkv * hd, bias=qkv_bias, cache=True, shard="column", factor="kv"),
    ]
    if rec.qk_norm:  # per head (Qwen3, OLMo-2): the query heads a device holds, and its KV heads
        norm = NORM_FLOPS_PER_ELEMENT[rec.norm]
        specs.append(elementwise("q_norm", n, nq * hd, norm, params=hd, shard="tp"))
        specs.append(elementwise("k_norm", n, nkv * hd, norm, params=hd, shard="kv"))
    return specs


def layer_specs(model: ModelSpec, *, decode: bool) -> list[OpSpec]:
    """Every operator of one forward pass (prefill, or one decode step), with its multiplicity."""
    rec = model.record
    n, h = model.num_layers, rec.hidden_size
    norm_params = h * (2 if rec.norm == "layernorm" else 1)
    specs = [lookup("embedding", rec.vocab_size, h, "rows_emb")]
    if rec.learned_position_embeddings:
        specs.append(lookup("position_embedding", rec.learned_position_embeddings, h, "rows"))
    norm = NORM_FLOPS_PER_ELEMENT[rec.norm]
    specs.append(elementwise("norm", n * rec.norms_per_layer, h, norm, params=norm_params))
    specs += _mla_projections(model, decode) if rec.mla else _attention_projections(model)
    geo = attention_geometry(model, decode=decode)
    sinks = rec.num_attention_heads if rec.attention_sinks else 0
    for group, count in (("full", model.num_full_attention_layers), ("window", model.num_window_layers)):
        if count:
            specs += attention_specs(group, count, geo, from_cache=decode, sink_params=sinks)
    o_in = rec.num_attention_heads * (rec.mla.v_head_dim if rec.mla else rec.head_dim)
    specs.append(linear("o_proj", n, o_in, h, bias=rec.attention_bias == "all", shard="row"))
    specs.append(elementwise("residual_add", n * (1 if rec.parallel_attention else 2), h, 1.0, reads=2.0))
    if model.num_dense_ffn_layers:
        assert rec.intermediate_size is not None
        specs += _ffn("", model.num_dense_ffn_layers, model, rec.intermediate_size)
    if model.num_moe_layers:
        specs += _moe(model)
    specs.append(elementwise("final_norm", 1, h, norm, params=norm_params, per_layer=False))
    head = linear(
        "lm_head",
        1,
        h,
        rec.vocab_size,
        rows="batch",
        weight="emb",
        bias=rec.lm_head_bias,
        kind="matmul16",
        shard="column",
        per_layer=False,
    )
    if rec.tie_word_embeddings:  # shares the embedding table: its weights are stored (and counted) there once
        head = replace(head, params=head.params - h * rec.vocab_size, resident_bytes={})
    specs.append(head)
    return specs


def window_of(model: ModelSpec) -> float:
    """Sliding-window span in tokens, or inf when the model has no windowed layers."""
    return float(model.record.sliding_window) if model.record.sliding_window else math.inf
