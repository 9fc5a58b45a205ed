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

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.catalog import ModelSpec
from dse.costmodel._attention import attention_geometry
from dse.costmodel._candidates import Candidates
from dse.costmodel._reasons import SPLIT_REASONS
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
    layer_share: Array
    """Layers on the busiest stage over all layers: ceil(L / pp) / L."""


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
        layer_share=np.ceil(layers / c.pp) / layers,
    )


def kv_share(model: ModelSpec, c: Candidates, *, decode: bool) -> Array:
    """KV heads a device holds over all KV heads: 1/tp, or 1/n_kv when tp > n_kv (one replicated head)."""
    kv_heads = attention_geometry(model, decode=decode).kv_heads
    return 1.0 / np.minimum(c.tp, float(kv_heads))  # type: ignore[no-any-return]


def shares(model: ModelSpec, c: Candidates, lay: Layout, *, decode: bool) -> dict[str, Array]:
    """The per-device share of every shard suffix (``|tp``, ``|kv``, ``|ew``, ``|ef``, ``|ea``; ``_ops``).

    Experts with ``ep > 1``: a device stores 1/ep of them and computes the rows routed to them, which come
    from every attention group of the stage (``micro_batch`` sequences, not ``group_batch``), times the load
    imbalance (busiest device over the mean). With ``ep = 1`` they split like a dense FFN.
    """
    tp_share = 1.0 / c.tp
    expert = c.ep > 1
    routed_rows = lay.micro_batch / lay.group_batch * c.expert_imbalance / c.ep
    return {
        "|tp": tp_share,
        "|kv": kv_share(model, c, decode=decode),
        "|ew": np.where(expert, 1.0 / c.ep, tp_share),
        "|ef": np.where(expert, routed_rows, tp_share),
        "|ea": np.where(expert, routed_rows, 1.0),
    }


def split_reason(model: ModelSpec, c: Candidates, lay: Layout) -> Array:
    """The first of ``SPLIT_REASONS`` that applies per candidate (0 where the split can run).

    The divisibility rules are those engines enforce (vLLM, SGLang): tp divides the query heads; tp divides
    the KV heads or they divide tp; tp divides every FFN width it splits; ep divides the routed experts and
    is a multiple of tp; pp at most the layers. Stage groups must tile nodes (a group of D devices inside a
    node of N, or whole nodes), and a replica needs links between all its devices.
    """
    rec = model.record
    tp, ep = c.tp, c.ep
    geo = attention_geometry(model, decode=True)
    heads_bad = (rec.num_attention_heads % tp != 0) | ((geo.kv_heads % tp != 0) & (tp % geo.kv_heads != 0))
    widths = [w for w in (rec.intermediate_size if model.num_dense_ffn_layers else None,) if w]
    moe = rec.moe
    if moe is not None and moe.shared_expert_intermediate_size:
        widths.append(moe.shared_expert_intermediate_size)
    width_bad = np.zeros(len(c), dtype=bool)
    for width in widths:
        width_bad |= width % tp != 0
    if moe is not None:
        width_bad |= (ep == 1) & (moe.expert_intermediate_size % tp != 0)
        ep_bad = (ep > 1) & ((moe.num_experts % ep != 0) | (ep % tp != 0))
    else:
        ep_bad = ep > 1
    stage, node = lay.stage_devices, c.devices_per_node
    tiling_bad = np.where(stage <= node, node % stage != 0, stage % node != 0)
    nodes = np.ceil(lay.devices / node)
    exceeds = (nodes > 1) & ((c.inter_link_bytes_per_s <= 0) | (nodes > c.max_nodes))
    offload_bad = (c.kv_offload_fraction > 0) & ~((c.host_link_bytes_per_s > 0) & np.isfinite(c.host_memory_bytes))
    return np.select(  # type: ignore[no-any-return]
        [heads_bad, width_bad, ep_bad, c.pp > model.num_layers, tiling_bad, exceeds, offload_bad],
        [int(r) for r in SPLIT_REASONS],
        default=0,
    )


def _link(c: Candidates, inter: NDArray[np.bool_]) -> tuple[Array, Array]:
    """(bytes/s, latency s) of the intra-node link, or of the inter-node link where ``inter``."""
    inter_bw = np.where(c.inter_link_bytes_per_s > 0, c.inter_link_bytes_per_s, c.intra_link_bytes_per_s)
    return np.where(inter, inter_bw, c.intra_link_bytes_per_s), np.where(
        inter, c.inter_link_latency_s, c.intra_link_latency_s
    )


def ring_s(c: Candidates, size_bytes: Array, n: Array, passes: float) -> Array:
    """A ring collective over ``n`` devices on ``size_bytes`` per device: ``passes`` = 2 for an all-reduce
    (reduce-scatter + all-gather), 1 for an all-gather of a ``size_bytes`` result.

    Bandwidth term: each pass moves (n-1)/n of the data over each device's link per direction (the
    bandwidth-optimal ring, Patarasuk & Yuan 2009; NCCL's bus-bandwidth convention, nccl-tests
    PERFORMANCE.md). A group spanning nodes runs hierarchically (NCCL's tree/ring over nodes): the g ranks of
    a node first reduce within it, then each carries 1/g of the data over its own inter-node NIC to the same
    rank of the other m - 1 nodes. Latency: one link latency per collective per level (NCCL picks its
    low-latency protocols for the small messages of decode, whose time is then nearly flat in n).
    """
    g = np.minimum(n, c.devices_per_node)
    m = np.ceil(n / g)
    intra_bw, intra_lat = _link(c, np.zeros_like(n, dtype=bool))
    inter_bw, inter_lat = _link(c, np.ones_like(n, dtype=bool))
    intra = np.where(g > 1, intra_lat + passes * (g - 1.0) / g * size_bytes / intra_bw, 0.0)
    inter = np.where(m > 1, inter_lat + passes * (m - 1.0) / m * size_bytes / (g * inter_bw), 0.0)
    return intra + inter  # type: ignore[no-any-return]


def all_to_all_s(c: Candidates, sent_bytes: Array, n: Array) -> Array:
    """An all-to-all over ``n`` devices, each sending ``sent_bytes`` spread evenly over all n (its own share
    stays): (g-1)/n of it crosses the intra-node link, (n-g)/n the inter-node link, concurrently."""
    g = np.minimum(n, c.devices_per_node)
    intra_bw, intra_lat = _link(c, np.zeros_like(n, dtype=bool))
    inter_bw, inter_lat = _link(c, np.ones_like(n, dtype=bool))
    time = np.maximum((g - 1.0) / n * sent_bytes / intra_bw, (n - g) / n * sent_bytes / inter_bw)
    latency = np.where(n > g, inter_lat, intra_lat)
    return np.where(n > 1, latency + time, 0.0)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Communication:
    """Per device, one pass of the busiest stage: bytes sent and time of each collective kind (N arrays)."""

    tp_all_reduce_bytes: Array
    tp_all_reduce_s: Array
    ep_all_to_all_bytes: Array
    ep_all_to_all_s: Array
    pp_send_bytes: Array
    pp_send_s: Array
    """One stage boundary (the slowest: inter-node when the pipeline spans nodes)."""

    @property
    def stage_s(self) -> Array:
        """Collectives inside a stage (tensor and expert parallel)."""
        return self.tp_all_reduce_s + self.ep_all_to_all_s  # type: ignore[no-any-return]


def communication(model: ModelSpec, c: Candidates, lay: Layout, act_bpe: Array, queries: Array) -> Communication:
    """Collectives of one pass over ``queries`` tokens per sequence (the prompt's new tokens, or 1).

    - tensor parallel: all-reduces of the (rows x hidden) output after attention and after the FFN in every
      layer (one for parallel-attention blocks), and one after the vocab-parallel embedding (Megatron-LM
      §3), plus an all-gather of the last position's logits (vLLM gathers them for sampling);
    - expert parallel: per MoE layer a dispatch and a combine all-to-all of each routed token copy
      (hidden x activation bytes), the busiest device receiving ``expert_imbalance`` x the mean (DeepSeek-V3
      report §3.4; dispatch in the activation format);
    - pipeline parallel: one (rows x hidden) activation per stage boundary, each of the stage's tp ranks
      sending 1/tp of it (Megatron-LM's scatter/gather optimisation, arXiv 2104.04473 §4.1).
    """
    rec = model.record
    h = float(rec.hidden_size)
    rows = lay.group_batch * queries
    layers = lay.layer_share * model.num_layers
    per_layer = 1.0 if rec.parallel_attention else 2.0
    tp_size = rows * h * act_bpe
    logits = lay.group_batch * rec.vocab_size * act_bpe
    tp_s = (layers * per_layer + 1.0) * ring_s(c, tp_size, c.tp, 2.0) + ring_s(c, logits, c.tp, 1.0)
    tp_bytes = np.where(
        c.tp > 1, (layers * per_layer + 1.0) * 2.0 * (c.tp - 1.0) / c.tp * tp_size + (c.tp - 1.0) / c.tp * logits, 0.0
    )
    moe = rec.moe
    if moe is not None:
        copies = lay.micro_batch * queries / c.ep * moe.experts_per_token * c.expert_imbalance
        sent = copies * h * act_bpe
        moe_layers = lay.layer_share * model.num_moe_layers * 2.0
        ep_s = moe_layers * all_to_all_s(c, sent, c.ep)
        ep_bytes = np.where(c.ep > 1, moe_layers * sent * (c.ep - 1.0) / c.ep, 0.0)
    else:
        ep_s = ep_bytes = np.zeros_like(rows)
    pp_size = rows * h * act_bpe / c.tp
    crosses_nodes = lay.devices > c.devices_per_node
    bw, latency = _link(c, crosses_nodes)
    multi_stage = c.pp > 1
    return Communication(
        tp_all_reduce_bytes=tp_bytes,
        tp_all_reduce_s=tp_s,
        ep_all_to_all_bytes=ep_bytes,
        ep_all_to_all_s=ep_s,
        pp_send_bytes=np.where(multi_stage, pp_size, 0.0),
        pp_send_s=np.where(multi_stage, latency + pp_size / bw, 0.0),
    )


def overlapped(compute_s: Array, comm_s: Array, overlap: Array) -> Array:
    """Stage time with a share ``overlap`` of the shorter of computation and communication hidden under the
    longer: the sum at 0 (nothing hidden: the default), the max at 1 (perfect overlap)."""
    return compute_s + comm_s - overlap * np.minimum(compute_s, comm_s)  # type: ignore[no-any-return]
