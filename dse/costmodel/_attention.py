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
from dse.costmodel._ops import SOFTMAX_FLOPS_PER_ELEMENT, OpSpec
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


def causal_pairs(queries: Array | float, window: float) -> Array:
    """sum_{i=1..P} min(i, W): query i attends to itself and the i-1 before it, at most W keys."""
    full = queries * (queries + 1.0) / 2.0
    if not np.isfinite(window):
        return full  # type: ignore[return-value]
    capped = window * (window + 1.0) / 2.0 + (queries - window) * window
    return np.where(queries <= window, full, capped)  # type: ignore[no-any-return]


def tile_kv_reads(queries: Array, window: float, block_rows: Array, cached: Array | float = 0.0) -> Array:
    """Key tokens a fused causal kernel reads: sum over query tiles of the keys each tile can see.

    The new queries are positions ``cached + 1 .. queries`` (``cached`` = prefix-cache hits, 0 without).
    Tile i (1-based) of ``Br`` of them sees keys up to ``last_i = min(cached + i Br, queries)``; with a
    window W it starts after ``first_i - W``, where ``first_i = cached + (i-1) Br + 1`` is its first query.
    Both sums are arithmetic series.
    """
    new = queries - cached
    tiles = np.ceil(new / block_rows)
    upto = tiles * cached + block_rows * tiles * (tiles - 1.0) / 2.0 + new
    if not np.isfinite(window):
        return upto  # type: ignore[no-any-return]
    # keys cut from tile i: max(0, cached + (i-1) Br + 1 - W); positive from tile i0 on
    i0 = np.maximum(np.floor((window - 1.0 - cached) / block_rows) + 2.0, 1.0)
    cut_tiles = np.maximum(tiles - i0 + 1.0, 0.0)
    first_cut = cached + (i0 - 1.0) * block_rows + 1.0 - window
    last_cut = cached + (tiles - 1.0) * block_rows + 1.0 - window
    return upto - cut_tiles * (first_cut + last_cut) / 2.0  # type: ignore[no-any-return]


def prefill_work(prompt: Array, cached: Array | float, window: float, block_rows: Array) -> AttentionWork:
    """Attention work of the prompt's last ``prompt - cached`` tokens (the first ``cached`` come from the
    prefix cache: their K/V are read, not computed); ``window`` = inf for full attention.

    An unfused kernel scores every new query against all ``prompt`` keys (mask applied afterwards)."""
    queries = prompt - cached
    pairs = causal_pairs(prompt, window) - causal_pairs(cached, window)
    reads = tile_kv_reads(prompt, window, block_rows, cached)
    return AttentionWork(queries, pairs, prompt, reads)


def decode_work(keys: Array) -> AttentionWork:
    """Attention work of one new token attending to ``keys`` keys (window already applied): every figure but
    the one query is proportional to the keys (the decode lines of ``_evaluate`` rely on it)."""
    ones = np.ones_like(keys)
    return AttentionWork(ones, keys, keys, keys)


def attention_specs(
    group: str, count: float, geo: AttentionGeometry, *, from_cache: bool, sink_params: int = 0
) -> list[OpSpec]:
    """qk_matmul, softmax, sv_matmul (unfused kernels) and attention (fused kernels) of one layer group.

    Terms (per candidate, see ``_terms``): ``{group}.scores`` = B T keys score elements per head (unfused
    rows only), ``{group}.pairs`` = B x pairs a fused kernel computes, ``{group}.keys_x`` / ``{group}.reads_x``
    = K/V tokens read per KV head times their bytes per element (the cache format in decode, fresh
    activations in prefill, counted as KV bytes only ``from_cache``).
    """
    nq, nkv, dqk, dv = geo.q_heads, geo.kv_heads, geo.d_qk, geo.d_v
    suffix = "" if group == "full" else f"[{group}]"
    # per device: query heads |tp, KV heads |kv (whole heads go to devices; see _parallel.kv_share)
    scores, scores_a, keys_x = f"{group}.scores|tp", f"{group}.scores_a|tp", f"{group}.keys_x|kv"

    def _kv(terms: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        return ({}, terms) if from_cache else (terms, {})

    qk_act, qk_kv = _kv({keys_x: nkv * dqk})
    sv_act, sv_kv = _kv({keys_x: nkv * dv})
    fused_act, fused_kv = _kv({f"{group}.reads_x|kv": nkv * geo.kv_elements_per_key})
    return [
        OpSpec(
            f"qk_matmul{suffix}",
            count,
            "matmul16",
            {scores: 2.0 * nq * dqk},
            {},
            {"unfused_q_a|tp": nq * dqk, scores_a: nq} | qk_act,
            qk_kv,
            "unfused",
            reads_kv_cache=from_cache,
        ),
        OpSpec(
            f"softmax{suffix}",
            count,
            "vector",
            {scores: SOFTMAX_FLOPS_PER_ELEMENT * nq},
            {},
            {scores_a: 2.0 * nq},
            active="unfused",
            params=sink_params,
            active_params=sink_params,
        ),
        OpSpec(
            f"sv_matmul{suffix}",
            count,
            "matmul16",
            {scores: 2.0 * nq * dv},
            {},
            {scores_a: nq, "unfused_q_a|tp": nq * dv} | sv_act,
            sv_kv,
            "unfused",
            reads_kv_cache=from_cache,
        ),
        OpSpec(
            f"attention{suffix}",
            count,
            "matmul16",
            {f"{group}.pairs|tp": nq * (2.0 * dqk + 2.0 * dv + SOFTMAX_FLOPS_PER_ELEMENT)},
            {},
            {"fused_q_a|tp": nq * (dqk + dv)} | fused_act,
            fused_kv,
            "fused",
            reads_kv_cache=from_cache,
            # held at once: Q, O and this layer's K/V once (for every query row: T rows of K/V in prefill)
            live_bytes={"fused_q_a|tp": nq * (dqk + dv), "fused_q_a|kv": nkv * geo.kv_elements_per_key},
        ),
    ]
