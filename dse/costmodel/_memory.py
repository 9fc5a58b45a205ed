"""Memory per device: weights + KV cache + activations + runtime reserve, against usable capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse import units
from dse.catalog import ModelSpec
from dse.costmodel._candidates import Candidates
from dse.costmodel._layers import window_of
from dse.costmodel._parallel import Layout, kv_share
from dse.costmodel._roofline import Array
from dse.costmodel._table import PassCost, stack_terms
from dse.costmodel._terms import BytesPerElement

LOGIT_BITS = 32.0
"""Engines materialise the last position's logits in fp32 for sampling."""


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per device (of the busiest pipeline stage), and the largest batch that fits (0 when not even one
    sequence fits)."""

    weights_bytes: Array
    kv_cache_bytes: Array
    """KV cache held in device memory (after any host offload)."""
    activation_bytes: Array
    reserve_bytes: Array
    total_bytes: Array
    capacity_bytes: Array
    """Usable capacity: device memory x memory utilisation."""
    max_batch: Array
    host_kv_cache_bytes: Array
    """KV cache offloaded to host memory, per device."""
    host_capacity_bytes: Array


def kv_tokens_per_layer(context: Array, span: Array | float, block: Array) -> Array:
    """KV slots one sequence holds in one layer: the tokens it keeps (at most ``span``), rounded up to whole
    paged blocks (PagedAttention, Kwon et al. 2023, arXiv 2309.06180 §4.2: at most block - 1 slots of
    internal fragmentation per sequence and layer)."""
    return np.ceil(np.minimum(context, span) / block) * block  # type: ignore[no-any-return]


def kv_cache_bytes(model: ModelSpec, c: Candidates, bpe: BytesPerElement, lay: Layout) -> Array:
    """KV cache a device holds at the end of generation (context P + G), device and host together.

    Per token and layer a model caches ``kv_elements_per_token_per_layer`` elements (2 x KV heads x head_dim,
    or MLA's latent); a device holds its KV heads' share (``kv_share``) of its stage's layers for the
    sequences of its attention group. Sliding-window layers keep at most ``window`` tokens, an eviction
    policy at most ``kv_budget_tokens`` (StreamingLLM, arXiv 2309.17453; H2O, arXiv 2306.14048).
    """
    context = c.prompt_len + c.gen_len
    budget, block = c.kv_budget_tokens, c.kv_block_tokens
    plain = not np.any(block != 1.0) and not np.any(np.isfinite(budget))
    tokens = model.num_full_attention_layers * (context if plain else kv_tokens_per_layer(context, budget, block))
    if model.num_window_layers:
        window = kv_tokens_per_layer(context, np.minimum(window_of(model), budget), block)
        tokens = tokens + model.num_window_layers * window
    per_device = lay.layer_share * kv_share(model, c, decode=True) * lay.group_sequences
    return per_device * tokens * model.kv_elements_per_token_per_layer * bpe.kv  # type: ignore[no-any-return]


def activation_bytes(
    model: ModelSpec, bpe: BytesPerElement, prefill: PassCost, terms: dict[str, Array], lay: Layout
) -> Array:
    """Peak transient activations during prefill (layers run one at a time, so one layer's worth, for one
    micro-batch of the device's attention group).

    = the residual stream (rows x hidden) + the largest operator's inputs and outputs + fp32 logits of the
    last position. An unfused attention's score matrix is part of its operator, so long prompts without
    fused attention need (and are charged) that quadratic buffer.
    """
    rec = model.record
    residual = terms["rows"] * rec.hidden_size * bpe.act
    largest = prefill.largest_act_bytes
    assert largest is not None, "prefill evaluated without its activation peaks"
    logits = lay.group_batch * rec.vocab_size * units.bits_to_bytes(LOGIT_BITS)
    return residual + largest + logits  # type: ignore[no-any-return]


def weights_bytes(c: Candidates, prefill: PassCost, terms: dict[str, Array]) -> Array:
    """Weights a device stores: its shards of its stage's layers, plus the embedding (first stage) or the
    final norm and LM head (last stage), the larger of the two, taken to sit with the busiest stage's
    layers (conservative by at most that part); everything on the one stage without pipelining."""
    table = prefill.table
    whole, layers, first, last = table.stored_matrix @ stack_terms(terms, table.stored_names)
    if not np.any(c.pp > 1):
        return whole  # type: ignore[no-any-return]
    staged = c.pp > 1
    return staged * (prefill.layer_share * layers + np.maximum(first, last)) + ~staged * whole  # type: ignore[no-any-return]


def memory_breakdown(
    model: ModelSpec, c: Candidates, bpe: BytesPerElement, prefill: PassCost, terms: dict[str, Array], lay: Layout
) -> MemoryBreakdown:
    """Memory per device and the largest batch that fits.

    The largest batch: KV grows with the group's sequences ceil(B / dp), activations with one micro-batch's
    ceil(ceil(B / m) / dp); dropping the ceilings (m = pp for large B) gives the bound
    ``B <= dp x free / (kv per sequence + activations per sequence / pp)``, exact for one device and without
    data-parallel attention or pipelining, and never below the true largest batch otherwise (each candidate
    is still checked exactly).
    """
    weights = weights_bytes(c, prefill, terms)
    kv_all = kv_cache_bytes(model, c, bpe, lay)
    kv = kv_all * (1.0 - c.kv_offload_fraction)
    host_kv = kv_all * c.kv_offload_fraction
    act = activation_bytes(model, bpe, prefill, terms, lay)
    reserve = c.runtime_reserve_bytes
    capacity = c.memory_bytes * c.memory_utilization
    per_sequence = kv / lay.group_sequences + act / lay.group_batch / c.pp
    free = capacity - weights - reserve
    max_batch = np.floor(lay.attention_dp * np.maximum(free, 0.0) / per_sequence)  # per_sequence > 0: activations
    offloaded = c.kv_offload_fraction > 0
    if np.any(offloaded):  # the host's share of the cache must fit host memory too
        host_memory = np.fmax(c.host_memory_bytes, 0.0)  # unknown (NaN): holds nothing
        with np.errstate(divide="ignore", invalid="ignore"):  # without offload: x / 0 = inf, or 0 / 0 = NaN
            host_batch = np.floor(lay.attention_dp * host_memory / (host_kv / lay.group_sequences))
        max_batch = np.fmin(max_batch, host_batch)  # fmin ignores the NaN
    return MemoryBreakdown(
        weights, kv, act, reserve, weights + kv + act + reserve, capacity, max_batch, host_kv, c.host_memory_bytes
    )
