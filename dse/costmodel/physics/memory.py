"""Memory per device: weights + KV cache + activations + runtime reserve, against usable capacity
(docs/cost-model.md §5; per device of the busiest pipeline stage, §11.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dse import units
from dse.costmodel.candidates import Candidates
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.kvcache import kv_cache_bytes
from dse.costmodel.physics.operators import Pass
from dse.costmodel.physics.parallel import Layout

LOGIT_BITS = 32.0
"""Engines materialise the last position's logits in fp32 for sampling (vLLM's sampler upcasts them)."""


def weights_per_device(whole: Any, layers: Any, first: Any, last: Any, pp: Any, layer_share: Any) -> Any:
    """Weights a device of the busiest stage stores (``layers.stored_weight_parts``): all of them without
    pipelining; with pp > 1, λ of the layers' weights plus the larger end, embedding or final norm and LM head
    (conservative by at most that part)."""
    return np.where(pp > 1, layer_share * layers + np.maximum(first, last), whole)


def logit_bytes(rows: Any, V: int) -> Any:
    """fp32 logits of ``rows`` positions over a vocabulary of V: rows V x 4 bytes."""
    return rows * V * units.bits_to_bytes(LOGIT_BITS)


def activation_bytes(R: Any, h: int, a: Any, largest: Any, b_g: Any, V: int) -> Any:
    """The peak transient during prefill, layers running one at a time: the residual stream R h a, plus the
    largest operator's inputs and outputs held at once (``Operator.held_bytes``; an unfused attention's score
    matrix included), plus fp32 logits of the last position, b_g V x 4 bytes (``logit_bytes``)."""
    return R * h * a + largest + logit_bytes(b_g, V)


def max_batch(
    capacity: Any,
    weights: Any,
    reserve: Any,
    kv: Any,
    activations: Any,
    B_g: Any,
    b_g: Any,
    dp: Any,
    pp: Any,
    host_kv: Any,
    host_memory: Any,
    offload: Any,
) -> Any:
    """The largest batch that fits: KV grows with the group's ceil(B / dp) sequences, activations with one
    micro-batch's ceil(ceil(B / m) / dp); dropping the ceilings (m = pp) gives
    ``floor(dp (capacity - weights - reserve) / (KV / B_g + activations / (b_g pp)))``, exact for one device
    without data-parallel attention or pipelining and never below the true largest batch otherwise (each
    candidate is still checked exactly). With host offload, the largest batch whose host share fits the host
    memory (unknown: none) bounds it too."""
    per_sequence = kv / B_g + activations / b_g / pp
    batch = np.floor(dp * np.maximum(capacity - weights - reserve, 0.0) / per_sequence)
    if not np.any(offload > 0):
        return batch
    with np.errstate(divide="ignore", invalid="ignore"):  # without offload: x / 0 = inf, or 0 / 0 = NaN
        host_batch = np.floor(dp * np.fmax(host_memory, 0.0) / (host_kv / B_g))
    return np.fmin(batch, host_batch)  # fmin ignores the NaN


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per device (of the busiest pipeline stage), and the largest batch that fits."""

    weights_bytes: Any
    kv_cache_bytes: Any
    """KV cache held in device memory (after any host offload)."""
    activation_bytes: Any
    reserve_bytes: Any
    total_bytes: Any
    capacity_bytes: Any
    """Usable capacity: device memory x the profile's memory utilisation."""
    max_batch: Any
    host_kv_cache_bytes: Any
    """KV cache offloaded to host memory, per device."""
    host_capacity_bytes: Any


def memory_breakdown(
    weights: Any,
    kv_all: Any,
    activations: Any,
    memory: Any,
    utilization: Any,
    reserve: Any,
    offload: Any,
    host_memory: Any,
    B_g: Any,
    b_g: Any,
    dp: Any,
    pp: Any,
) -> MemoryBreakdown:
    """The device's share (1 - f) of the KV cache stays on the device, the offloaded share f sits in host
    memory (§12.4); total = weights + KV + activations + reserve, against memory x utilisation."""
    kv, host_kv = kv_all * (1.0 - offload), kv_all * offload
    capacity = memory * utilization
    batch = max_batch(capacity, weights, reserve, kv, activations, B_g, b_g, dp, pp, host_kv, host_memory, offload)
    total = weights + kv + activations + reserve
    return MemoryBreakdown(weights, kv, activations, reserve, total, capacity, batch, host_kv, host_memory)


def device_memory(
    arch: Architecture, c: Candidates, lay: Layout, p: Pass[Any], weights: Any, largest: Any
) -> MemoryBreakdown:
    """The memory breakdown of candidates whose prefill pass is ``p``, given the weights a device stores and
    the largest activation bytes one prefill operator holds: KV at the end of generation, the prefill's
    activation peak, the profile's reserve and utilisation, host memory for an offloaded share."""
    kv_all = kv_cache_bytes(arch, lay, c.tp, c.prompt_len, c.gen_len, p.kv, c.kv_block_tokens, c.kv_budget_tokens)
    act = activation_bytes(p.R, arch.hidden_size, p.a, largest, lay.group_batch, arch.vocab_size)
    return memory_breakdown(
        weights,
        kv_all,
        act,
        c.memory_bytes,
        c.memory_utilization,
        c.runtime_reserve_bytes,
        c.kv_offload_fraction,
        c.host_memory_bytes,
        lay.group_sequences,
        lay.group_batch,
        lay.attention_dp,
        c.pp,
    )
