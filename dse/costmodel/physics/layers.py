"""The operators of one forward pass: embeddings, every layer kind with its multiplicity, the LM head.

docs/cost-model.md §2 lists them with their formulas. Each is built from the conventions of ``operators``
(projections, element-wise work, lookups), ``attention`` and ``moe``, per device of the busiest stage.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.attention import attention_operators
from dse.costmodel.physics.moe import ffn, moe_operators
from dse.costmodel.physics.operators import (
    NORM_FLOPS_PER_ELEMENT,
    RESIDUAL_ADD_FLOPS_PER_ELEMENT,
    AttentionWork,
    Operator,
    Pass,
    elementwise,
    embedding_lookup,
    linear,
    position_lookup,
)


def attention_linear(p: Pass[Any]) -> dict[str, Any]:
    """How an attention projection is stored and run: at the attention projections' own width and peak
    (``Pass.w_attn``, ``attn_linear``), which are the linear layers' unless the checkpoint keeps them 16-bit."""
    return {"weight_bpe": p.w_attn, "kind": "attn_linear"}


def mla_projections(arch: Architecture, p: Pass[Any]) -> list[Operator[Any]]:
    """MLA (DeepSeek-V2, arXiv 2405.04434 §2.1): a low-rank query path, and a latent of r_kv + d_r elements
    per token written to the KV cache and replicated on every tensor-parallel rank.

    Prefill up-projects the latent to per-head K and V (``kv_b_proj``); decode absorbs the same weights into
    the query (``q_absorb``: W_UK, n_q matrices of d_n x r_kv) and after attention (``v_absorb``: W_UV, n_q
    matrices of r_kv x d_v), each on its own head's rows."""
    mla = arch.mla
    assert mla is not None
    n, h, n_q = arch.num_layers, arch.hidden_size, arch.num_attention_heads
    q_out = n_q * (mla.qk_nope_head_dim + mla.qk_rope_head_dim)
    norm = NORM_FLOPS_PER_ELEMENT[arch.norm]
    if mla.q_lora_rank:
        r_q = mla.q_lora_rank
        q_path = [
            linear("q_a_proj", n, p, h, r_q, **attention_linear(p)),
            elementwise("q_a_norm", n, p, r_q, norm, params=r_q),
            linear("q_b_proj", n, p, r_q, q_out, shard=("column", p.s_tp), **attention_linear(p)),
        ]
    else:
        q_path = [linear("q_proj", n, p, h, q_out, shard=("column", p.s_tp), **attention_linear(p))]
    latent = [
        linear("kv_a_proj", n, p, h, mla.kv_lora_rank + mla.qk_rope_head_dim, cache=True, **attention_linear(p)),
        elementwise("kv_a_norm", n, p, mla.kv_lora_rank, norm, params=mla.kv_lora_rank),
    ]
    if not p.decode:
        kv_b_out = n_q * (mla.qk_nope_head_dim + mla.v_head_dim)
        return [
            *q_path,
            *latent,
            linear("kv_b_proj", n, p, mla.kv_lora_rank, kv_b_out, shard=("column", p.s_tp), **attention_linear(p)),
        ]
    absorbed = dict(rows_per_token=n_q, matrices=n_q, shard=("all", p.s_tp), **attention_linear(p))
    return [
        *q_path,
        *latent,
        linear("q_absorb", n, p, mla.qk_nope_head_dim, mla.kv_lora_rank, **absorbed),  # type: ignore[arg-type]
        linear("v_absorb", n, p, mla.kv_lora_rank, mla.v_head_dim, **absorbed),  # type: ignore[arg-type]
    ]


def attention_projections(arch: Architecture, p: Pass[Any]) -> list[Operator[Any]]:
    """q (column-parallel over query heads), k and v (over KV heads, written to the cache); with QK-norm
    (Qwen3, Gemma 3) a norm of each head's query and key, as two kernels."""
    n, h, d = arch.num_layers, arch.hidden_size, arch.head_dim
    n_q, n_kv = arch.num_attention_heads, arch.num_key_value_heads
    bias = arch.attention_bias in ("qkv", "all")
    ops = [
        linear("q_proj", n, p, h, n_q * d, shard=("column", p.s_tp), bias=bias, **attention_linear(p)),
        linear("k_proj", n, p, h, n_kv * d, shard=("column", p.s_kv), bias=bias, cache=True, **attention_linear(p)),
        linear("v_proj", n, p, h, n_kv * d, shard=("column", p.s_kv), bias=bias, cache=True, **attention_linear(p)),
    ]
    if arch.qk_norm:
        norm = NORM_FLOPS_PER_ELEMENT[arch.norm]
        ops.append(elementwise("q_norm", n, p, n_q * d, norm, params=d, share=p.s_tp))
        ops.append(elementwise("k_norm", n, p, n_kv * d, norm, params=d, share=p.s_kv))
    return ops


def lm_head(arch: Architecture, p: Pass[Any]) -> Operator[Any]:
    """The LM head on one row per sequence (the last prompt token, or the new token), over the device's
    vocabulary shard, at the embedding format and the 16-bit peak. Tied to the embedding, it still reads its
    table each pass but stores (and counts) nothing of its own."""
    h, V = arch.hidden_size, arch.vocab_size
    head = linear(
        "lm_head",
        1,
        p,
        h,
        V,
        shard=("column", p.s_tp),
        rows=p.B,
        weight_bpe=p.e,
        bias=arch.lm_head_bias,
        kind="matmul16",
        per_layer=False,
    )
    if arch.tie_word_embeddings:
        return replace(head, params=head.params - h * V, resident_bytes=0.0)
    return head


def pass_operators(arch: Architecture, p: Pass[Any]) -> list[Operator[Any]]:
    """Every operator of one forward pass (prefill, or one decode step), in pass order, with its count."""
    n, h = arch.num_layers, arch.hidden_size
    norm = NORM_FLOPS_PER_ELEMENT[arch.norm]
    norm_params = h * (2 if arch.norm == "layernorm" else 1)
    ops = [embedding_lookup(p, arch.vocab_size, h)]
    if arch.learned_position_embeddings:
        ops.append(position_lookup(p, arch.learned_position_embeddings, h))
    ops.append(elementwise("norm", n * arch.norms_per_layer, p, h, norm, params=norm_params))
    ops += mla_projections(arch, p) if arch.mla else attention_projections(arch, p)
    ops += attention_operators(arch, p)
    o_in = arch.num_attention_heads * (arch.mla.v_head_dim if arch.mla else arch.head_dim)
    ops.append(
        linear("o_proj", n, p, o_in, h, shard=("row", p.s_tp), bias=arch.attention_bias == "all", **attention_linear(p))
    )
    adds = n * (1 if arch.parallel_attention else 2)
    ops.append(elementwise("residual_add", adds, p, h, RESIDUAL_ADD_FLOPS_PER_ELEMENT, reads=2.0))
    if arch.num_dense_ffn_layers:
        ops += ffn("", arch.num_dense_ffn_layers, arch, p, arch.intermediate_size)
    if arch.num_moe_layers:
        ops += moe_operators(arch, p)
    ops.append(elementwise("final_norm", 1, p, h, norm, params=norm_params, per_layer=False))
    ops.append(lm_head(arch, p))
    return ops


def parameter_counts(arch: Architecture) -> tuple[float, float]:
    """(total, active) parameters, counted on the same operators the cost model charges (prefill's: MLA's
    up-projection as stored). Active = what one token uses: k of E routed experts; the input embedding (and
    a learned position table) excluded, the convention of the DeepSeek-V3 and gpt-oss cards."""
    ones = AttentionWork(1.0, 1.0, 1.0)
    unit = Pass(*(1.0,) * 14, attention={group: ones for group, _, _ in arch.attention_groups}, decode=False)
    ops = pass_operators(arch, unit)
    return float(sum(op.count * op.params for op in ops)), float(sum(op.count * op.active_params for op in ops))


def stored_weight_parts(ops: list[Operator[Any]]) -> tuple[Any, Any, Any, Any]:
    """Parameter bytes a device stores (every expert; a tied table once), in four parts: all of them; those
    of the decoder layers (split over pipeline stages); those outside the layers the first stage holds (the
    embedding); and those the last stage holds (final norm and LM head, which needs its own copy of a tied
    table once the embedding sits on another stage). ``memory.weights_per_device`` combines them."""
    first_layer = next(i for i, op in enumerate(ops) if op.per_layer)
    whole = sum_of(op.count * op.stored_bytes for op in ops)
    layers = sum_of(op.count * op.stored_bytes for op in ops if op.per_layer)
    first = sum_of(op.count * op.stored_bytes for op in ops[:first_layer] if not op.per_layer)
    last = sum_of(op.count * op.weight_bytes for op in ops[first_layer:] if not op.per_layer)
    return whole, layers, first, last


def sum_of(values: Any) -> Any:
    """The sum of numbers, arrays or symbols (0 for none)."""
    total: Any = 0.0
    for value in values:
        total = total + value
    return total
