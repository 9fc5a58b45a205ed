"""Memory per device: weights + KV cache + activations + runtime reserve, against usable capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse import units
from dse.catalog import ModelSpec
from dse.costmodel._candidates import Candidates
from dse.costmodel._layers import window_of
from dse.costmodel._roofline import Array
from dse.costmodel._table import PassCost
from dse.costmodel._terms import BytesPerElement

LOGIT_BITS = 32.0
"""Engines materialise the last position's logits in fp32 for sampling."""


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per device, and the largest batch that fits (0 when not even one sequence fits)."""

    weights_bytes: Array
    kv_cache_bytes: Array
    activation_bytes: Array
    reserve_bytes: Array
    total_bytes: Array
    capacity_bytes: Array
    """Usable capacity: device memory x memory utilisation."""
    max_batch: Array


def kv_cache_bytes(model: ModelSpec, c: Candidates, bpe: BytesPerElement) -> Array:
    """KV cache of the whole batch at the end of generation (context P + G).

    Per token and layer a model caches ``kv_elements_per_token_per_layer`` elements (2 x KV heads x head_dim,
    or MLA's latent). Sliding-window layers keep at most ``window`` tokens.
    """
    context = c.prompt_len + c.gen_len
    tokens = model.num_full_attention_layers * context + model.num_window_layers * np.minimum(context, window_of(model))
    return c.batch * tokens * model.kv_elements_per_token_per_layer * bpe.kv  # type: ignore[no-any-return]


def activation_bytes(model: ModelSpec, c: Candidates, bpe: BytesPerElement, prefill: PassCost) -> Array:
    """Peak transient activations during prefill (layers run one at a time, so one layer's worth).

    = the residual stream (rows x hidden) + the largest operator's inputs and outputs + fp32 logits of the
    last position. An unfused attention's score matrix is part of its operator, so long prompts without
    fused attention need (and are charged) that quadratic buffer.
    """
    rec = model.record
    residual = c.batch * c.prompt_len * rec.hidden_size * bpe.act
    largest = prefill.largest_act_bytes()
    logits = c.batch * rec.vocab_size * units.bits_to_bytes(LOGIT_BITS)
    return residual + largest + logits  # type: ignore[no-any-return]


def memory_breakdown(model: ModelSpec, c: Candidates, bpe: BytesPerElement, prefill: PassCost) -> MemoryBreakdown:
    """Memory per device and the largest batch that fits; activations and KV are linear in batch."""
    stored = prefill.table.stored_weights
    weights = stored["one"] + stored["w"] * bpe.weight + stored["emb"] * bpe.embedding
    kv = kv_cache_bytes(model, c, bpe)
    act = activation_bytes(model, c, bpe, prefill)
    reserve = c.runtime_reserve_bytes
    capacity = c.memory_bytes * c.memory_utilization
    per_sequence = (kv + act) / c.batch
    free = capacity - weights - reserve
    max_batch = np.where(free > 0, np.floor(np.maximum(free, 0.0) / per_sequence), 0.0)
    return MemoryBreakdown(weights, kv, act, reserve, weights + kv + act + reserve, capacity, max_batch)
