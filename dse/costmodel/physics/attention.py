"""Attention: which heads a kernel sees, how much work a causal kernel does, and its operators.

Per sequence and head, with T new queries and causal masking:
- an **unfused** kernel materialises the whole T x K score matrix in memory and computes all of it (the mask
  is applied afterwards), as LLM-Viewer counts it: ``qk_matmul``, ``softmax``, ``sv_matmul``;
- a **fused** kernel (FlashAttention-2, Dao 2023, arXiv 2307.08691, §3.1 "causal masking" and Algorithm 1)
  skips tiles above the diagonal, never writes scores, reads Q once and writes O once, and reads K and V once
  per query tile of Br rows. The query heads of a GQA group share one K/V read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.operators import Operator, Pass

SOFTMAX_FLOPS_PER_ELEMENT = 5.0
"""max, subtract, exp, sum, divide: LLM-Viewer's softmax count (arXiv 2402.16363, Table 1 footnote)."""


@dataclass(frozen=True)
class Geometry:
    """Head counts and per-head widths one attention kernel sees."""

    n_q: int
    n_kv: int
    d_qk: int
    d_v: int
    e_key: int
    """Elements read per key token per KV head (K and V; MLA's latent serves both)."""


def geometry(arch: Architecture, *, decode: bool) -> Geometry:
    """MHA/GQA/MQA as configured; MLA with explicit heads in prefill and absorbed in decode.

    MLA (DeepSeek-V2, arXiv 2405.04434 §2.1.2-2.1.3): prefill up-projects the latent to per-head K/V (n_q KV
    heads, q/k width d_n + d_r, v width d_v); decode folds W_UK into the query and W_UV after attention, so
    every head attends over the shared latent of r_kv + d_r elements, like MQA with one wide KV head."""
    mla = arch.mla
    if mla is None:
        d = arch.head_dim
        return Geometry(arch.num_attention_heads, arch.num_key_value_heads, d, d, 2 * d)
    if decode:
        latent = mla.kv_lora_rank + mla.qk_rope_head_dim
        return Geometry(arch.num_attention_heads, 1, latent, mla.kv_lora_rank, latent)
    d_qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    return Geometry(arch.num_attention_heads, arch.num_attention_heads, d_qk, mla.v_head_dim, d_qk + mla.v_head_dim)


def causal_pairs(P: Any, W: float) -> Any:
    """Σ_{i=1..P} min(i, W): query i attends to itself and the i - 1 before it, at most W keys.
    P(P + 1)/2 without a window; W(W + 1)/2 + (P - W) W once P > W."""
    full = P * (P + 1.0) / 2.0
    if not np.isfinite(W):
        return full
    capped = W * (W + 1.0) / 2.0 + (P - W) * W
    return np.where(P <= W, full, capped)


def tile_kv_reads(P: Any, W: float, Br: Any, c: Any = 0.0) -> Any:
    """Key tokens a fused causal kernel reads for the new queries c + 1 .. P (c = prefix-cache hits): the sum
    over query tiles of the keys each can see (FlashAttention-2, Algorithm 1: K and V re-read per tile).

    With n = ceil((P - c) / Br) tiles, tile i (1-based) sees keys up to min(c + i Br, P):
    ``n c + Br n (n - 1) / 2 + (P - c)``. With a window W, tile i also skips the ``c + (i - 1) Br + 1 - W``
    keys before its first query's window, wherever that is positive: an arithmetic series, subtracted."""
    new = P - c
    n = np.ceil(new / Br)
    upto = n * c + Br * n * (n - 1.0) / 2.0 + new
    if not np.isfinite(W):
        return upto
    i0 = np.maximum(np.floor((W - 1.0 - c) / Br) + 2.0, 1.0)  # the first tile that skips keys
    cut_tiles = np.maximum(n - i0 + 1.0, 0.0)
    first_cut = c + (i0 - 1.0) * Br + 1.0 - W
    last_cut = c + (n - 1.0) * Br + 1.0 - W
    return upto - cut_tiles * (first_cut + last_cut) / 2.0


def prefill_work(P: Any, c: Any, W: float, Br: Any, reused: Any = False) -> tuple[Any, Any, Any]:
    """(keys, pairs, reads) per sequence of the prompt's last P - c tokens (the first c come from the prefix
    cache: their K/V are read, not computed): an unfused kernel scores every new query against all P keys;
    a fused one computes ``causal_pairs(P) - causal_pairs(c)`` pairs and reads from device memory
    ``tile_kv_reads`` keys, or each of the P keys once where its re-reads are served on chip (``reused``,
    ``kv_reused_on_chip``)."""
    return P, causal_pairs(P, W) - causal_pairs(c, W), np.where(reused, P, tile_kv_reads(P, W, Br, c))


def prompt_spread_work(P: Any, c: Any, variance: Any, Br: Any, reused: Any = False) -> tuple[Any, Any, Any]:
    """What ``prefill_work`` gains, per sequence, when prompts vary around the mean P with ``variance``
    (Var(P), tokens²) under full causal attention: its keys, pairs and tile reads grow as P², so their mean
    is taken at E[P²] = P² + Var(P), not at P² (docs/cost-model.md §19). With a share h = c / P of each prompt
    from the prefix cache: keys (every new query against all P keys: E[(1 - h) P²] / ((1 - h) P)) gain
    Var(P) / P; pairs (``causal_pairs(P) - causal_pairs(c)``, P² (1 - h²) / 2 and a linear term) gain
    (1 - h²) Var(P) / 2; tile reads (``tile_kv_reads``, P² (1 - h²) / (2 Br) and linear terms) gain
    (1 - h²) Var(P) / (2 Br), none where the re-reads are served on chip (P reads, linear). A sliding window
    makes them linear beyond it: the caller applies this to unwindowed groups only."""
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(P > 0, c / P, 0.0)
        keys = np.where(P > 0, variance / P, 0.0)
    quadratic = (1.0 - h**2) * variance / 2.0
    return keys, quadratic, np.where(reused, 0.0, quadratic / Br)


ON_CHIP_SHARE = 0.5
"""Share of the on-chip memory one attention head's K/V may take for its re-reads to stay on chip: the query
tiles of one (sequence, head) run side by side (FlashAttention-2 orders its grid query tile first), so their
K/V passes meet in L2 while the head's K/V fits with room for its neighbour in the schedule."""


def kv_reused_on_chip(P: Any, e_key: float, x: Any, onchip_bytes: Any) -> Any:
    """Whether one (sequence, KV head)'s K/V, ``P e_key x`` bytes, fits in ``ON_CHIP_SHARE`` of the on-chip
    memory: then the query tiles' re-reads (FlashAttention-2, Algorithm 1) come from L2 and device memory
    serves each key once (Llama-2-7B at 4k tokens: 2 MB a head against H100's 50 MB L2). Unknown on-chip
    memory (0): no reuse."""
    return P * e_key * x <= ON_CHIP_SHARE * onchip_bytes


def unfused_attention(
    p: Pass[Any], group: str, geo: Geometry, count: float, n_q: Any, n_kv: Any, sinks: int
) -> list[Operator[Any]]:
    """``qk_matmul``, ``softmax``, ``sv_matmul`` of one layer group, with n_q query and n_kv KV heads on the
    device: S = R K score elements per head, materialised and read back (LLM-Viewer's unfused count).

    - qk: 2 S n_q d_qk FLOPs; reads Q (R n_q d_qk a) and K (B K n_kv d_qk x), writes the scores (S n_q a);
    - softmax: 5 S n_q FLOPs; reads and writes the scores;
    - sv: 2 S n_q d_v FLOPs; reads the probabilities (S n_q a) and V (B K n_kv d_v x), writes O (R n_q d_v a).
    K/V come from the cache in decode (KV-cache bytes) and are fresh projections in prefill (activations, at the
    activation format as LLM-Viewer counts them: this path reproduces its unfused kernels; the fused path reads
    prefill operands at the 16-bit attention width).
    Attention sinks (gpt-oss: one learned logit per head) are parameters of the softmax, counted but not
    charged."""
    work = p.attention[group]
    S = p.R * work.keys
    width = p.x if p.decode else p.a  # LLM-Viewer's count: prefill K/V at the activation format
    k_bytes = p.B * work.keys * n_kv * geo.d_qk * width
    v_bytes = p.B * work.keys * n_kv * geo.d_v * width
    suffix = "" if group == "full" else f"[{group}]"
    qk_act = p.R * n_q * geo.d_qk * p.a + S * n_q * p.a
    sv_act = S * n_q * p.a + p.R * n_q * geo.d_v * p.a
    return [
        Operator(
            f"qk_matmul{suffix}",
            count,
            "matmul16",
            flops=2.0 * S * n_q * geo.d_qk,
            weight_bytes=0.0,
            act_bytes=qk_act if p.decode else qk_act + k_bytes,
            kv_bytes=k_bytes if p.decode else 0.0,
            runs="unfused",
            reads_kv_cache=p.decode,
            group=group,
        ),
        Operator(
            f"softmax{suffix}",
            count,
            "vector",
            flops=SOFTMAX_FLOPS_PER_ELEMENT * S * n_q,
            weight_bytes=0.0,
            act_bytes=2.0 * S * n_q * p.a,
            runs="unfused",
            params=sinks,
            active_params=sinks,
            group=group,
        ),
        Operator(
            f"sv_matmul{suffix}",
            count,
            "matmul16",
            flops=2.0 * S * n_q * geo.d_v,
            weight_bytes=0.0,
            act_bytes=sv_act if p.decode else sv_act + v_bytes,
            kv_bytes=v_bytes if p.decode else 0.0,
            runs="unfused",
            reads_kv_cache=p.decode,
            group=group,
        ),
    ]


def fused_attention_flops(B: Any, pairs: Any, n_q: Any, d_qk: float, d_v: float) -> Any:
    """B · pairs · n_q · (2 d_qk + 2 d_v + 5): per (query, key) pair and head, the score (2 d_qk), the
    softmax (5) and the value product (2 d_v) (FlashAttention-2 §3.1: masked tiles skipped)."""
    return B * pairs * n_q * (2.0 * d_qk + 2.0 * d_v + SOFTMAX_FLOPS_PER_ELEMENT)


def query_bytes(R: Any, n_q: Any, d_qk: float, d_v: float, a: Any) -> Any:
    """R · n_q · (d_qk + d_v) · a: a fused kernel reads Q and writes O once."""
    return R * n_q * (d_qk + d_v) * a


def kv_read_bytes(B: Any, reads: Any, n_kv: Any, e_key: float, x: Any) -> Any:
    """B · reads · n_kv · e_key · x: K/V of every key token read, once per KV head (a GQA group's query heads
    share the read)."""
    return B * reads * n_kv * e_key * x


def decode_attention_bytes(B: Any, K: Any, n_q: Any, n_kv: Any, geo: Geometry, a: Any, kv: Any) -> tuple[Any, Any]:
    """(activation bytes, KV-cache bytes) of one fused decode-attention kernel, the new token of each of B
    sequences attending K cached keys: ``B n_q (d_qk + d_v) a`` for its query and output, and
    ``B K n_kv e_key kv`` read from the cache (FlashAttention-2 / FlashDecoding: one K/V pass per KV head)."""
    return query_bytes(B, n_q, geo.d_qk, geo.d_v, a), kv_read_bytes(B, K, n_kv, geo.e_key, kv)


def fused_attention(p: Pass[Any], group: str, geo: Geometry, count: float, n_q: Any, n_kv: Any) -> Operator[Any]:
    """The fused ``attention`` operator of one layer group, with n_q query and n_kv KV heads on the device.
    In prefill its Q, K, V and O are at the attention width x (``passes.ATTENTION_BITS`` at least), K/V the
    fresh projections re-read once per query tile; it holds Q, O and one copy of the layer's K/V at once."""
    work = p.attention[group]
    name = "attention" if group == "full" else f"attention[{group}]"
    flops = fused_attention_flops(p.B, work.pairs, n_q, geo.d_qk, geo.d_v)
    live = query_bytes(p.R, n_q, geo.d_qk, geo.d_v, p.a) + p.R * p.a * n_kv * geo.e_key
    if p.decode:
        act, cache = decode_attention_bytes(p.B, work.reads, n_q, n_kv, geo, p.a, p.kv)  # one query: R = B
        return Operator(
            name, count, "matmul16", flops, 0.0, act, cache, "fused", reads_kv_cache=True, live_bytes=live, group=group
        )
    # the reads from the cache (a mixed step's decoding sequences: ``AttentionWork.cached``) apart from the
    # chunk's, as a decode kernel's are: cache bytes, which pay the host link where part of the cache is offloaded
    act = query_bytes(p.R, n_q, geo.d_qk, geo.d_v, p.x) + kv_read_bytes(p.B, work.reads, n_kv, geo.e_key, p.x)
    cache = kv_read_bytes(p.B, work.cached, n_kv, geo.e_key, p.x)
    return Operator(
        name, count, "matmul16", flops, 0.0, act, cache, "fused", reads_kv_cache=True, live_bytes=live, group=group
    )


def attention_operators(arch: Architecture, p: Pass[Any]) -> list[Operator[Any]]:
    """Both kernel kinds for every attention group (only one kind runs per candidate). Per device: whole
    query heads (n_q/tp) and its KV heads (``Pass.s_kv``)."""
    geo = geometry(arch, decode=p.decode)
    n_q, n_kv = geo.n_q * p.s_tp, geo.n_kv * p.s_kv
    sinks = arch.num_attention_heads if arch.attention_sinks else 0
    ops: list[Operator[Any]] = []
    for group, count, _ in arch.attention_groups:
        ops += unfused_attention(p, group, geo, count, n_q, n_kv, sinks)
        ops.append(fused_attention(p, group, geo, count, n_q, n_kv))
    return ops
