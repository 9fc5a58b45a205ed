"""KV-cache policies: paged blocks, prefix-cache hits, host offload and eviction (docs/cost-model.md §12)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.parallel import Layout, kv_share


def prefix_cached_tokens(hit_rate: Any, P: Any) -> Any:
    """c = min(floor(h P), P - 1): prompt tokens per sequence served from the prefix cache. The last prompt
    token is always recomputed: its logits produce the first output token (vLLM recomputes it on a full hit)."""
    return np.minimum(np.floor(hit_rate * np.asarray(P)), np.asarray(P) - 1.0)


def attended_keys(context: Any, span: Any, budget: Any) -> Any:
    """Keys a decode step attends to in a layer: its context, capped at the layer's span (the window W, inf
    for full attention) and at an eviction budget K_max (StreamingLLM, arXiv 2309.17453; H2O, arXiv
    2306.14048: the policy decides which tokens are kept, the cost model counts how many)."""
    return np.minimum(np.minimum(context, span), budget)


def evicts(arch: Architecture, budget: Any, context: Any) -> Any:
    """Whether an eviction budget drops tokens the model would otherwise attend to, and so changes its
    outputs: K_max below the context P + G and below the model's longest span (a model whose every layer is
    windowed already keeps only its window)."""
    budget = np.inf if budget is None else budget
    longest = np.inf if arch.num_full_attention_layers else arch.sliding_window
    return np.asarray(budget) < np.minimum(np.asarray(context, dtype=np.float64), longest)


def kv_slots_per_layer(context: Any, span: Any, block: Any) -> Any:
    """KV slots one sequence holds in one layer: the tokens it keeps (at most ``span``), rounded up to whole
    paged blocks (PagedAttention, Kwon et al. 2023, arXiv 2309.06180 §4.2: under one block of internal
    fragmentation per sequence and layer)."""
    return np.ceil(np.minimum(context, span) / block) * block


def kv_cache_bytes(arch: Architecture, lay: Layout, tp: Any, P: Any, G: Any, kv: Any, block: Any, budget: Any) -> Any:
    """KV cache a device holds at the end of generation (context P + G), device and host together:
    ``λ s_kv B_g (L_full slots(P + G, K_max) + L_win slots(P + G, min(W, K_max))) kv_elements kv`` — the KV
    heads it holds (``kv_share``), of its stage's layers, for its attention group's B_g sequences."""
    context = P + G
    tokens = 0.0
    for _, layers, span in arch.attention_groups:
        tokens = tokens + layers * kv_slots_per_layer(context, np.minimum(span, budget), block)
    per_device = lay.layer_share * kv_share(arch, tp, decode=True) * lay.group_sequences
    return per_device * tokens * arch.kv_elements_per_token_per_layer * kv


def _host_seconds_per_byte(host_link_bytes_per_s: Any) -> Any:
    """1 / B_host; unknown (NaN) without a host link: offloading is then infeasible (``NO_HOST_OFFLOAD``)
    and the times that would use the link are unknown, not infinite."""
    with np.errstate(divide="ignore"):
        return np.where(host_link_bytes_per_s > 0, np.divide(1.0, host_link_bytes_per_s), np.nan)


def host_read_extra_s_per_byte(offload: Any, host_link_bytes_per_s: Any, bytes_per_s: Any) -> Any:
    """Extra seconds per KV-cache byte a decode step reads when a share f of the cache lives in host memory:
    f of the bytes take 1 / host-link bandwidth instead of 1 / β (``bytes_per_s``, attained HBM bandwidth),
    read in series with the HBM reads (the conservative reading): ``f (1/B_host - 1/β)``; 0 without offload."""
    return np.where(offload > 0, offload * (_host_seconds_per_byte(host_link_bytes_per_s) - 1.0 / bytes_per_s), 0.0)


def host_write_s(offload: Any, written_bytes: Any, host_link_bytes_per_s: Any) -> tuple[Any, Any]:
    """(bytes, seconds) of copying the offloaded share f of a prefill pass's new KV entries to host memory
    over the host link, after they are written to device memory; in series with the pass. Nothing offloaded
    sends nothing, whatever the pass wrote (a split that cannot run may write an unknown amount)."""
    with np.errstate(invalid="ignore"):
        sent = np.where(offload > 0, offload * written_bytes, 0.0)
    return sent, np.where(offload > 0, sent * _host_seconds_per_byte(host_link_bytes_per_s), 0.0)
