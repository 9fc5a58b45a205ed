"""Multi-device deployments: how a replica's devices split the work, what each device holds, and collectives.

A replica runs on ``devices = max(tp, ep) x pp`` devices, placed innermost-first (tensor-parallel ranks
contiguous within a node, then expert/attention-data-parallel ranks, then pipeline stages), as Megatron-LM
and vLLM place them:

- **tensor parallelism** (Megatron-LM, Shoeybi et al. 2019, arXiv 1909.08053 §3): query heads, FFN width and
  vocabulary split ``tp`` ways; KV heads split too, or replicated when ``tp`` exceeds them (each device then
  holds one KV head: vLLM's rule); MLA's shared latent is replicated on every rank.
- **expert parallelism** (GShard, arXiv 2006.16668; DeepSeek-V3 report, arXiv 2412.19437 §3.4): with
  ``ep > 1`` the routed experts are spread whole over ``ep`` devices. ``ep = tp`` keeps attention
  tensor-parallel over the same devices; ``ep = k tp`` makes attention data-parallel over ``k`` groups of
  ``tp`` (the DeepSeek-V3/SGLang "DP attention" serving mode), each group taking its share of the sequences.
  With ``ep = 1`` every expert is tensor-parallel like a dense FFN.
- **pipeline parallelism** (GPipe, arXiv 1811.06965; Narayanan et al. 2021, arXiv 2104.04473): layers split
  into ``pp`` stages; the batch runs as ``m = min(B, pp)`` micro-batches.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.catalog import ModelSpec
from dse.costmodel._attention import attention_geometry
from dse.costmodel._candidates import Candidates
from dse.costmodel._reasons import SPLIT_REASONS, first_reason
from dse.costmodel._roofline import Array


@dataclass(frozen=True)
class Layout:
    """Per candidate: how one replica's batch and model are divided among its devices."""

    micro_batches: Array
    """m = min(B, pp): micro-batches in flight in the pipeline."""
    micro_batch: Array
    """ceil(B / m) sequences per micro-batch."""
    attention_dp: Array
    """Attention data-parallel groups per stage: max(tp, ep) / tp."""
    group_batch: Array
    """Sequences one attention group runs per micro-batch: ceil(micro_batch / attention_dp)."""
    group_sequences: Array
    """Sequences whose KV cache one attention group holds: ceil(B / attention_dp)."""
    stage_devices: Array
    """Devices per pipeline stage: max(tp, ep)."""
    devices: Array
    """Devices per replica: stage_devices x pp."""
    nodes: Array
    """Nodes a replica occupies (``nodes_per_replica``)."""
    layer_share: Array
    """Layers on the busiest stage over all layers: ceil(L / pp) / L."""
    imbalance: Array
    """The expert-parallel load imbalance in effect (``expert_imbalance``)."""


def layout(model: ModelSpec, c: Candidates) -> Layout:
    """The division of candidate ``c``'s batch and layers (see the module doc)."""
    micro_batches = np.minimum(c.batch, c.pp)
    micro_batch = np.ceil(c.batch / micro_batches)
    stage = np.maximum(c.tp, c.ep)
    dp = stage / c.tp
    layers = float(model.num_layers)
    return Layout(
        micro_batches=micro_batches,
        micro_batch=micro_batch,
        attention_dp=dp,
        group_batch=np.ceil(micro_batch / dp),
        group_sequences=np.ceil(c.batch / dp),
        stage_devices=stage,
        devices=stage * c.pp,
        nodes=nodes_per_replica(c, stage),
        layer_share=np.ceil(layers / c.pp) / layers,
        imbalance=expert_imbalance(model, c),
    )


def kv_share(model: ModelSpec, c: Candidates, *, decode: bool) -> Array:
    """KV heads a device holds over all KV heads: 1/tp, or 1/n_kv when tp > n_kv (one replicated head)."""
    kv_heads = attention_geometry(model, decode=decode).kv_heads
    return 1.0 / np.minimum(c.tp, float(kv_heads))  # type: ignore[no-any-return]


def expert_imbalance(model: ModelSpec, c: Candidates) -> Array:
    """The busiest expert-parallel device's routed token copies over the mean, capped at what routing allows:
    a token sends at most min(k, E / ep) of its k copies to one device, so the busiest device receives at
    most ep x min(k, E / ep) / k times the mean (every token routed to its experts)."""
    moe = model.record.moe
    if moe is None:
        return c.expert_imbalance
    k = float(moe.experts_per_token)
    most = c.ep * np.minimum(k, moe.num_experts / c.ep) / k
    return np.minimum(c.expert_imbalance, np.maximum(most, 1.0))  # type: ignore[no-any-return]


def shares(model: ModelSpec, c: Candidates, lay: Layout, *, decode: bool) -> dict[str, Array]:
    """The per-device share of every shard suffix (``|tp``, ``|kv``, ``|ew``, ``|ef``, ``|ea``; ``_ops``).

    Experts with ``ep > 1``: a device stores 1/ep of them and computes the rows routed to them, which come
    from every attention group of the stage (``micro_batch`` sequences, not ``group_batch``), times the load
    imbalance (busiest device over the mean). With ``ep = 1`` they split like a dense FFN.
    """
    tp_share = 1.0 / c.tp
    expert = (c.ep > 1).astype(np.float64)
    dense = 1.0 - expert
    routed_rows = lay.micro_batch / lay.group_batch * lay.imbalance / c.ep
    return {  # 0/1 masks as weights: exact for these finite values, and cheaper than branching per candidate
        "|tp": tp_share,
        "|kv": kv_share(model, c, decode=decode),
        "|ew": expert / c.ep + dense * tp_share,
        "|ef": expert * routed_rows + dense * tp_share,
        "|ea": expert * routed_rows + dense,
    }


def nodes_per_replica(c: Candidates, stage_devices: Array) -> Array:
    """Nodes a replica occupies: whole stages packed into nodes in order (a stage never straddles two nodes
    unless it spans whole nodes), floor(node / stage) stages per node."""
    node = c.devices_per_node
    spans = stage_devices > node  # then one stage per node-group: per_node below is 1
    per_node = np.floor(node / np.minimum(stage_devices, node))
    return spans * (stage_devices * c.pp / node) + ~spans * np.ceil(c.pp / per_node)  # type: ignore[no-any-return]


def split_reason(model: ModelSpec, c: Candidates, lay: Layout) -> NDArray[np.int8]:
    """The first of ``SPLIT_REASONS`` that applies per candidate (0 where the split can run).

    The divisibility rules are those engines enforce (vLLM, SGLang): tp divides the query heads; tp divides
    the KV heads or they divide tp; tp divides every FFN width it splits; ep divides the routed experts and
    is a multiple of tp; pp at most the layers. A stage's D devices sit inside one node (devices left over
    in a node stay idle) or span whole nodes, and a replica needs links between all its devices.
    """
    if not np.any(lay.devices > 1) and not np.any(c.kv_offload_fraction > 0):
        return np.zeros(len(c), dtype=np.int8)  # one device, no offload: nothing to check
    rec, moe = model.record, model.record.moe
    widths = [rec.intermediate_size] if model.num_dense_ffn_layers and rec.intermediate_size else []
    if moe is not None and moe.shared_expert_intermediate_size:
        widths.append(moe.shared_expert_intermediate_size)
    table = _divisibility(
        rec.num_attention_heads,
        attention_geometry(model, decode=True).kv_heads,
        tuple(widths),
        None if moe is None else (moe.num_experts, moe.expert_intermediate_size),
    )
    limit = len(table) - 1
    divisibility = table[np.minimum(c.tp, limit).astype(np.intp), np.minimum(c.ep, limit).astype(np.intp)]
    stage, node = lay.stage_devices.astype(np.int64), c.devices_per_node.astype(np.int64)
    tiling_bad = (stage > node) & (stage % node != 0)
    nodes = lay.nodes
    exceeds = (nodes > 1) & ((c.inter_link_bytes_per_s <= 0) | (nodes > c.max_nodes))
    offload_bad = (c.kv_offload_fraction > 0) & ~((c.host_link_bytes_per_s > 0) & np.isfinite(c.host_memory_bytes))
    conditions = [divisibility > 0, c.pp > model.num_layers, tiling_bad, exceeds, offload_bad]
    return first_reason(conditions, [divisibility, *SPLIT_REASONS[3:]])


@functools.cache
def _divisibility(
    heads: int, kv_heads: int, widths: tuple[int, ...], experts: tuple[int, int] | None
) -> NDArray[np.int8]:
    """The first divisibility reason (``TP_HEADS``, ``TP_WIDTH``, ``EP_INVALID``; 0 when none applies) per
    (tp, ep), over degrees 0..limit (0 unused). A degree above every head and expert count divides none of
    them, so a larger one takes the last row or column, which fails every rule: ``ep % tp`` on those clipped
    degrees can then only differ where an earlier rule already applies (``experts``: count and width)."""
    limit = max(heads, experts[0] if experts is not None else 1) + 1
    degrees = np.arange(limit + 1)
    degrees[0] = 1
    tp, ep = degrees[:, None], degrees[None, :]
    heads_bad = (heads % tp != 0) | ((kv_heads % tp != 0) & (tp % kv_heads != 0))
    width_bad = np.zeros_like(tp, dtype=bool)
    for width in widths:
        width_bad |= width % tp != 0
    if experts is not None:
        count, width = experts
        width_bad = width_bad | ((ep == 1) & (width % tp != 0))  # with ep = 1 experts split like a dense FFN
        ep_bad = (ep > 1) & ((count % ep != 0) | (ep % tp != 0))
    else:
        ep_bad = ep > 1
    shape = (limit + 1, limit + 1)
    conditions = [np.broadcast_to(rule, shape) for rule in (heads_bad, width_bad, ep_bad)]
    return first_reason(conditions, SPLIT_REASONS[:3])


@dataclass(frozen=True)
class CollectiveCosts:
    """Per candidate, each collective's time as ``latency + bytes x seconds per byte`` (all are linear in the
    size, so the coefficients are computed once per evaluation and reused for prefill and decode)."""

    ring_latency_s: Array
    ring_s_per_byte: Array
    """Per byte per pass of a ring collective over the tensor-parallel group (x2 for an all-reduce)."""
    all_to_all_latency_s: Array
    all_to_all_s_per_byte: Array
    """Per byte a device sends in an all-to-all over the expert-parallel group."""
    send_latency_s: Array
    send_s_per_byte: Array
    """Per byte sent across every one of the ``pp - 1`` stage boundaries in turn (a boundary between nodes
    on the inter-node link, the others inside a node)."""
    any_split: bool
    """Whether any candidate uses more than one device per replica (else every collective is zero)."""
    layer_all_reduces: Array
    """Tensor-parallel all-reduces of all layers in one pass (``communication``)."""
    residual_bytes: Array
    """Bytes of one hidden vector of the residual stream."""
    logits_s: Array
    """The logits all-gather and the embedding all-reduce's latency: the fixed part of a pass's collectives."""
    logits_bytes: Array
    dispatch_bytes: Array
    """Bytes one device sends per MoE layer per token of a micro-batch (0 where nothing is dispatched)."""
    dispatch_latency_s: Array
    dispatch_s_per_byte: Array
    tp_sent_share: Array
    """(tp - 1) / tp: the share of a ring's data a device sends per pass (0 without tensor parallelism)."""


def collective_costs(model: ModelSpec, c: Candidates, lay: Layout, act_bpe: Array) -> CollectiveCosts:
    """The collectives' coefficients on the candidate's links.

    Ring (tensor parallel, n = tp devices): each pass moves (n-1)/n of the data over each device's link per
    direction (the bandwidth-optimal ring, Patarasuk & Yuan 2009; NCCL's bus-bandwidth convention, nccl-tests
    doc/PERFORMANCE.md); an all-reduce is two passes (reduce-scatter + all-gather), an all-gather one. A
    group spanning m nodes of g ranks runs hierarchically: within the node, then each rank carries 1/g of the
    data over its own inter-node NIC to the same rank of the other nodes: per pass
    ``(g-1)/g S / B_intra + (m-1)/m S / (g B_inter)``. Latency: one link latency per collective per level
    (NCCL picks low-latency protocols for decode's small messages, whose time is then nearly flat in n).

    All-to-all (expert parallel, n = ep devices, g of them per node): a device's data spread evenly over all
    n, its own share staying: (g-1)/n crosses the intra-node link and (n-g)/n the inter-node one,
    concurrently. Pipeline sends: of the ``pp - 1`` boundaries, those between nodes (nodes - 1 of them, the
    stages being packed into nodes in order) use the inter-node link.
    """
    if not np.any(lay.devices > 1):
        zero = np.zeros_like(c.tp)
        return CollectiveCosts(*(zero,) * 6, False, *(zero,) * 8)  # type: ignore[arg-type]
    intra_bw = c.intra_link_bytes_per_s  # inf where there is none: then no split can run (``split_reason``)
    inter_bw = np.where(c.inter_link_bytes_per_s > 0, c.inter_link_bytes_per_s, intra_bw)
    intra_lat, inter_lat = c.intra_link_latency_s, c.inter_link_latency_s
    node = c.devices_per_node
    g = np.minimum(c.tp, node)
    m = np.ceil(c.tp / g)
    in_node, across = g > 1, m > 1
    n = c.ep
    g_ep = np.minimum(n, node)  # expert-parallel ranks are the stage's devices, contiguous
    spread = np.maximum((g_ep - 1.0) / (n * intra_bw), (n - g_ep) / (n * inter_bw))
    boundaries = c.pp - 1.0
    crossing = np.minimum(boundaries, lay.nodes - 1.0)  # stages packed into nodes in order
    inside = boundaries - crossing
    ring_latency = in_node * intra_lat + across * inter_lat
    ring_per_byte = (g - 1.0) / (g * intra_bw) + (m - 1.0) / (m * g * inter_bw)
    across_ep = n > g_ep
    all_to_all_latency = across_ep * inter_lat + ((n > 1) & ~across_ep) * intra_lat
    # with data-parallel attention (ep > tp) the MoE layers' outputs come back by the combine all-to-all,
    # so only their attention output is all-reduced; with ep = tp every rank holds every token and the
    # experts' partial outputs are all-reduced like a dense FFN's (vLLM's expert parallelism over TP ranks)
    rec, moe = model.record, model.record.moe
    dispatched = (c.ep > 1) & (lay.attention_dp > 1)
    per_layer = 1.0 if rec.parallel_attention else 2.0
    moe_layers = dispatched * np.float64(model.num_moe_layers)
    residual = np.maximum(act_bpe, RESIDUAL_BYTES_PER_ELEMENT) * rec.hidden_size
    logits = lay.group_batch * rec.vocab_size * np.maximum(act_bpe, RESIDUAL_BYTES_PER_ELEMENT)
    if moe is not None:  # dispatch in the activation format, combine in 16 bits
        per_copy = rec.hidden_size * (act_bpe + COMBINE_BYTES_PER_ELEMENT)
        dispatch = dispatched * (lay.micro_batch / c.ep * moe.experts_per_token * per_copy) * lay.imbalance
    else:
        dispatch = np.zeros_like(c.ep)
    return CollectiveCosts(
        ring_latency_s=ring_latency,
        ring_s_per_byte=ring_per_byte,
        all_to_all_latency_s=all_to_all_latency,
        all_to_all_s_per_byte=spread,
        send_latency_s=crossing * inter_lat + inside * intra_lat,
        send_s_per_byte=crossing / inter_bw + inside / intra_bw,  # intra_bw inf (no link): 0 s per byte
        any_split=True,
        layer_all_reduces=model.num_layers * per_layer - moe_layers * (per_layer - 1.0),
        residual_bytes=residual,
        logits_s=ring_latency + logits * ring_per_byte,
        logits_bytes=logits,
        dispatch_bytes=dispatch,
        dispatch_latency_s=dispatched * (2.0 * all_to_all_latency),
        dispatch_s_per_byte=spread * dispatched,
        tp_sent_share=(c.tp - 1.0) / c.tp,
    )


@dataclass(frozen=True)
class Communication:
    """Per device, one pass of the busiest stage: bytes sent and time of each collective kind (N arrays)."""

    tp_all_reduce_bytes: Array
    tp_all_reduce_s: Array
    ep_all_to_all_bytes: Array
    ep_all_to_all_s: Array
    pp_send_bytes: Array
    """One stage boundary's activation, per device."""
    pp_send_s: Array
    """All ``pp - 1`` boundaries one micro-batch crosses (those between nodes on the inter-node link)."""
    all_stages_s: Array
    """Tensor- and expert-parallel collectives of every stage together (what one trip through the pipeline
    waits for)."""

    @property
    def stage_s(self) -> Array:
        """Collectives inside the busiest stage (tensor and expert parallel)."""
        return self.tp_all_reduce_s + self.ep_all_to_all_s  # type: ignore[no-any-return]


RESIDUAL_BYTES_PER_ELEMENT = 2.0
"""The residual stream, and so the tensor-parallel all-reduces, pipeline sends and gathered logits, stays in
16 bits whatever the linear layers compute in (quantized GEMMs take 8- or 4-bit inputs but write 16-bit
outputs); wider where the activation format is (fp32-only devices)."""
COMBINE_BYTES_PER_ELEMENT = 2.0
"""The expert-parallel combine returns expert outputs in 16 bits (DeepSeek-V3 report §3.4: FP8 dispatch, BF16
combine), whatever the activation format."""


def communication(
    model: ModelSpec, c: Candidates, lay: Layout, costs: CollectiveCosts, queries: Array
) -> Communication:
    """Collectives of one pass over ``queries`` tokens per sequence (the prompt's new tokens, or 1).

    - tensor parallel: all-reduces of the (rows x hidden) output after attention and after the FFN in every
      layer (one for parallel-attention blocks), and one after the vocab-parallel embedding (Megatron-LM
      §3), plus an all-gather of the last position's logits (vLLM gathers them for sampling);
    - expert parallel with data-parallel attention (ep > tp): per MoE layer a dispatch and a combine
      all-to-all of each routed token copy (hidden values; dispatch in the activation format, combine in
      16 bits, as DeepSeek-V3 does, report §3.4), the busiest device receiving ``expert_imbalance`` x the
      mean; its FFN all-reduce is then not needed. With ep = tp the experts' partial outputs are
      all-reduced like a dense FFN's and nothing is dispatched;
    - pipeline parallel: one (rows x hidden) activation per stage boundary, each of the stage's tp ranks
      sending 1/tp of it (Megatron-LM's scatter/gather optimisation, arXiv 2104.04473 §4.1).
    """
    rows = lay.group_batch * queries
    if not costs.any_split:
        zero = np.zeros_like(rows)
        return Communication(zero, zero, zero, zero, zero, zero, zero)
    # each collective count is (layers on the stage) x (per layer) + (once per pass): time = share x layer
    # part + fixed part, for the busiest stage (share) and for every stage together (share 1)
    tp_size = rows * costs.residual_bytes
    ring_per_all_reduce = costs.ring_latency_s + 2.0 * tp_size * costs.ring_s_per_byte
    tp_layers_s = costs.layer_all_reduces * ring_per_all_reduce
    sent = queries * costs.dispatch_bytes  # per device per MoE layer
    ep_layers_s = model.num_moe_layers * (costs.dispatch_latency_s + sent * costs.dispatch_s_per_byte)
    fixed_s = ring_per_all_reduce + costs.logits_s  # the embedding's all-reduce and the logits' all-gather
    share = lay.layer_share
    ring_bytes = (share * costs.layer_all_reduces + 1.0) * 2.0 * tp_size + costs.logits_bytes
    pp_size = (c.pp > 1) * (tp_size / c.tp)
    return Communication(
        tp_all_reduce_bytes=costs.tp_sent_share * ring_bytes,
        tp_all_reduce_s=share * tp_layers_s + fixed_s,
        ep_all_to_all_bytes=share * model.num_moe_layers * sent * (c.ep - 1.0) / c.ep,
        ep_all_to_all_s=share * ep_layers_s,
        pp_send_bytes=pp_size,
        pp_send_s=costs.send_latency_s + pp_size * costs.send_s_per_byte,
        all_stages_s=tp_layers_s + ep_layers_s + fixed_s,
    )


def overlapped(compute_s: Array, comm_s: Array, overlap: Array) -> Array:
    """Stage time with a share ``overlap`` of the shorter of computation and communication hidden under the
    longer: the sum at 0 (nothing hidden: the default), the max at 1 (perfect overlap)."""
    return compute_s + comm_s - overlap * np.minimum(compute_s, comm_s)  # type: ignore[no-any-return]
