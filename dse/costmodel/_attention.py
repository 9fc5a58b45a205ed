"""Attention: score, softmax and value operators, fused (FlashAttention-style) or unfused.

Per sequence and head, with ``T`` queries and causal masking:
- an **unfused** kernel materialises the full ``T x keys`` score matrix in memory and computes all of it
  (the mask is applied afterwards), as LLM-Viewer counts it;
- a **fused** kernel (FlashAttention-2, arXiv 2307.08691, §3.1 "causal masking") skips tiles above the
  diagonal, so it computes ``sum_i min(i, window)`` pairs: ``P (P + 1) / 2`` for a prompt of P tokens, half the
  full matrix. It never writes scores; it reads Q once, writes O once, and reads K and V once per query tile
  of ``Br`` rows (the tile loop of Algorithm 1), so its K/V traffic grows with ``ceil(P / Br)``. Grouped
  query heads share one K/V read (FlashAttention-2/-3 and FlashInfer pack the query heads of a group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.catalog import ModelSpec
from dse.costmodel._ops import SOFTMAX_FLOPS_PER_ELEMENT, Op, _b
from dse.costmodel._roofline import Array


@dataclass(frozen=True)
class AttentionGeometry:
    """Head counts and per-head widths one attention kernel sees."""

    q_heads: int
    kv_heads: int
    d_qk: int
    d_v: int
    kv_elements_per_key: int
    """Elements read per key token per KV head (K and V; MLA's latent is shared by both)."""


def attention_geometry(model: ModelSpec, *, decode: bool) -> AttentionGeometry:
    """Standard MHA/GQA/MQA, or MLA: explicit heads in prefill, absorbed latent attention in decode.

    MLA (DeepSeek-V2, arXiv 2405.04434 §2.1.2-2.1.3): prefill up-projects the latent to per-head K/V; decode
    folds W_UK into the query and W_UV after attention, so every head attends over the shared
    ``kv_lora_rank + qk_rope_head_dim`` latent, like MQA with one wide KV head.
    """
    rec = model.record
    if rec.mla is None:
        return AttentionGeometry(
            rec.num_attention_heads, rec.num_key_value_heads, rec.head_dim, rec.head_dim, 2 * rec.head_dim
        )
    mla = rec.mla
    if decode:
        latent = mla.kv_lora_rank + mla.qk_rope_head_dim
        return AttentionGeometry(rec.num_attention_heads, 1, latent, mla.kv_lora_rank, latent)
    d_qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    return AttentionGeometry(
        rec.num_attention_heads, rec.num_attention_heads, d_qk, mla.v_head_dim, d_qk + mla.v_head_dim
    )


@dataclass(frozen=True)
class AttentionWork:
    """Per sequence and per head: queries, pairs computed by a fused kernel, keys, fused K/V token reads."""

    queries: Array
    pairs: Array
    keys: Array
    fused_kv_reads: Array


def causal_pairs(queries: Array, window: float) -> Array:
    """sum_{i=1..P} min(i, W): query i attends to itself and the i-1 before it, at most W keys."""
    full = queries * (queries + 1.0) / 2.0
    if not np.isfinite(window):
        return full  # type: ignore[no-any-return]
    capped = window * (window + 1.0) / 2.0 + (queries - window) * window
    return np.where(queries <= window, full, capped)  # type: ignore[no-any-return]


def tile_kv_reads(queries: Array, window: float, block_rows: Array) -> Array:
    """Key tokens a fused causal kernel reads: sum over query tiles of the keys each tile can see.

    Tile i (1-based) of ``Br`` queries sees keys up to min(i Br, P), starting after (i-1) Br - W + 1 when a
    window W applies; both sums are arithmetic series.
    """
    tiles = np.ceil(queries / block_rows)
    upto = block_rows * tiles * (tiles - 1.0) / 2.0 + queries
    if not np.isfinite(window):
        return upto  # type: ignore[no-any-return]
    first_cut = np.floor((window - 1.0) / block_rows) + 1.0
    cut_tiles = np.maximum(tiles - first_cut, 0.0)
    cut = cut_tiles * (1.0 - window) + block_rows * (first_cut + tiles - 1.0) * cut_tiles / 2.0
    return upto - cut  # type: ignore[no-any-return]


def prefill_work(prompt: Array, window: float, block_rows: Array) -> AttentionWork:
    """Attention work of a whole prompt (no cached prefix); ``window`` = inf for full attention."""
    return AttentionWork(prompt, causal_pairs(prompt, window), prompt, tile_kv_reads(prompt, window, block_rows))


def decode_work(keys: Array) -> AttentionWork:
    """Attention work of one new token attending to ``keys`` keys (window already applied)."""
    ones = np.ones_like(keys)
    return AttentionWork(ones, keys, keys, keys)


def attention_ops(
    suffix: str,
    count: float,
    batch: Array,
    work: AttentionWork,
    geo: AttentionGeometry,
    flash: Array,
    act_bpe: Array,
    kv_bpe: Array,
    *,
    from_cache: bool,
    sink_params: int = 0,
) -> list[Op]:
    """qk_matmul, softmax, sv_matmul (unfused rows) and attention (fused rows); the other kind is zero.

    K/V are read at ``kv_bpe`` bytes per element (from the cache in decode; fresh activations in prefill)
    and counted as KV bytes when ``from_cache``.
    """
    unfused = ~flash
    nq, nkv = geo.q_heads, geo.kv_heads
    scores = np.where(unfused, batch * nq * work.queries * work.keys, 0.0)
    q_bytes = _b(batch * work.queries * nq * geo.d_qk, act_bpe)
    o_bytes = _b(batch * work.queries * nq * geo.d_v, act_bpe)
    k_read = _b(batch * nkv * work.keys * geo.d_qk, kv_bpe)
    v_read = _b(batch * nkv * work.keys * geo.d_v, kv_bpe)
    fused_kv = _b(batch * nkv * work.fused_kv_reads * geo.kv_elements_per_key, kv_bpe)
    score_bytes = _b(scores, act_bpe)
    zero = np.zeros_like(batch)

    def _op(name: str, kind: str, flops: Array, act: Array, kv: Array, active: Array, params: int = 0) -> Op:
        act_total, kv_total = (act, kv) if from_cache else (act + kv, zero)
        return Op(f"{name}{suffix}", count, kind, flops, zero, act_total, kv_total, params, params, active=active)  # type: ignore[arg-type]

    fused_pairs = np.where(flash, batch * nq * work.pairs, 0.0)
    return [
        _op(
            "qk_matmul",
            "attention",
            2.0 * scores * geo.d_qk,
            np.where(unfused, q_bytes + score_bytes, 0.0),
            np.where(unfused, k_read, 0.0),
            unfused,
        ),
        _op("softmax", "vector", SOFTMAX_FLOPS_PER_ELEMENT * scores, 2.0 * score_bytes, zero, unfused, sink_params),
        _op(
            "sv_matmul",
            "attention",
            2.0 * scores * geo.d_v,
            np.where(unfused, score_bytes + o_bytes, 0.0),
            np.where(unfused, v_read, 0.0),
            unfused,
        ),
        _op(
            "attention",
            "attention",
            fused_pairs * (2.0 * geo.d_qk + 2.0 * geo.d_v + SOFTMAX_FLOPS_PER_ELEMENT),
            np.where(flash, q_bytes + o_bytes, 0.0),
            np.where(flash, fused_kv, 0.0),
            flash,
        ),
    ]
