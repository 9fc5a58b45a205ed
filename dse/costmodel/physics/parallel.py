"""Multi-device deployments: how a replica's devices divide the batch, the layers and every tensor.

A replica runs on ``max(tp, ep) x pp`` devices, placed innermost-first (tensor-parallel ranks contiguous
within a node, then expert / attention-data-parallel ranks, then pipeline stages), as Megatron-LM and vLLM
place them (docs/cost-model.md §11.1):

- **tensor parallelism** (Megatron-LM, Shoeybi et al. 2019, arXiv 1909.08053 §3): query heads, FFN width and
  vocabulary split tp ways; KV heads split too, or are replicated once tp exceeds them (vLLM's rule);
- **expert parallelism** (GShard, arXiv 2006.16668; DeepSeek-V3, arXiv 2412.19437 §3.4): with ep > 1 the
  routed experts are spread whole over ep devices; ep = tp keeps attention tensor-parallel over the same
  devices, ep = k tp makes it data-parallel over k groups of tp ("DP attention");
- **pipeline parallelism** (GPipe, arXiv 1811.06965): layers in pp stages; the batch runs as m = min(B, pp)
  micro-batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.costmodel.candidates import Candidates
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.attention import geometry
from dse.costmodel.physics.feasibility import SPLIT_REASONS, first_reason
from dse.costmodel.physics.moe import imbalance_cap, routing_imbalance


@dataclass(frozen=True)
class Layout:
    """How one replica's batch and layers are divided among its devices (floats or arrays)."""

    micro_batches: Any
    """m = min(B, pp): micro-batches in flight."""
    micro_batch: Any
    """b_m = ceil(B / m) sequences per micro-batch."""
    attention_dp: Any
    """dp = max(tp, ep) / tp attention data-parallel groups per stage."""
    group_batch: Any
    """b_g = ceil(b_m / dp): sequences one attention group runs per micro-batch."""
    group_sequences: Any
    """B_g = ceil(B / dp): sequences whose KV cache one attention group holds."""
    stage_devices: Any
    """D = max(tp, ep) devices per pipeline stage."""
    devices: Any
    """D x pp devices per replica."""
    nodes: Any
    """Nodes a replica occupies (``nodes_per_replica``)."""
    layer_share: Any
    """λ = ceil(L / pp) / L: layers of the busiest stage over all layers."""
    imbalance: Any
    """ρ_s: the router's skew, the input ``expert_imbalance`` (a pass's ρ multiplies it by chance's,
    ``pass_imbalance``)."""


def layout(arch: Architecture, B: Any, tp: Any, pp: Any, ep: Any, devices_per_node: Any, imbalance: Any) -> Layout:
    """The division of a replica's batch of B sequences and its layers (module doc; §11.1)."""
    m = np.minimum(B, pp)
    b_m = np.ceil(B / m)
    D = np.maximum(tp, ep)
    dp = D / tp
    L = float(arch.num_layers)
    return Layout(
        micro_batches=m,
        micro_batch=b_m,
        attention_dp=dp,
        group_batch=np.ceil(b_m / dp),
        group_sequences=np.ceil(B / dp),
        stage_devices=D,
        devices=D * pp,
        nodes=nodes_per_replica(D, pp, devices_per_node),
        layer_share=np.ceil(L / pp) / L,
        imbalance=imbalance,
    )


def pass_imbalance(arch: Architecture, lay: Layout, ep: Any, T: Any) -> Any:
    """ρ of a pass of T new tokens per sequence: the busiest expert-parallel device's routed copies over the
    mean, ρ_s ρ_u, the router's skew times chance's over the stage's b_m T rows (``moe.routing_imbalance``),
    capped at what routing allows (``moe.imbalance_cap``); 1 with ep = 1 (every device runs its share of
    every expert). Without experts: ρ_s, which nothing uses."""
    moe = arch.moe
    if moe is None:
        return lay.imbalance
    k, E = moe.experts_per_token, moe.num_experts
    return np.minimum(lay.imbalance * routing_imbalance(lay.micro_batch * T, ep, k, E), imbalance_cap(ep, k, E))


def nodes_per_replica(D: Any, pp: Any, N: Any) -> Any:
    """Nodes a replica of pp stages of D devices occupies on nodes of N devices: whole stages packed into nodes
    in order, floor(N / D) per node; a stage larger than a node spans D / N whole nodes."""
    per_node = np.floor(N / np.minimum(D, N))
    return np.where(D > N, D * pp / N, np.ceil(pp / per_node))


@dataclass(frozen=True)
class Shares:
    """Per device, the share of each sharded quantity (docs/cost-model.md §11.2)."""

    s_tp: Any
    """1/tp: query heads, FFN width (dense and shared experts), vocabulary."""
    s_kv: Any
    """1/min(tp, n_kv): KV heads (one replicated head once tp exceeds them)."""
    s_ew: Any
    """Routed-expert weights: 1/ep with expert parallelism, else 1/tp (every expert split like a dense FFN)."""
    s_ef: Any
    """Routed-expert FLOPs and their split side: ρ b_m / (ep b_g) with ep > 1, else 1/tp."""
    s_ea: Any
    """The hidden-width side of routed-expert activations: ρ b_m / (ep b_g) with ep > 1, else 1."""


def kv_share(arch: Architecture, tp: Any, *, decode: bool) -> Any:
    """1 / min(tp, n_kv): a device holds n_kv/tp KV heads while tp divides them, and one head, replicated
    tp/n_kv times, once tp is a multiple of them (vLLM's ``QKVParallelLinear``). MLA's decode latent is one
    head: replicated on every rank."""
    return 1.0 / np.minimum(tp, float(geometry(arch, decode=decode).n_kv))


def shares(arch: Architecture, lay: Layout, tp: Any, ep: Any, rho: Any, *, decode: bool) -> Shares:
    """Per-device shares. With ep > 1 a device stores 1/ep of the routed experts and computes the token
    copies routed to them, which come from every attention group of its stage (b_m sequences, not its own
    b_g) times the pass's imbalance ρ (``pass_imbalance``); with ep = 1 the experts split like a dense FFN."""
    s_tp = 1.0 / tp
    routed = lay.micro_batch / lay.group_batch * rho / ep
    expert = ep > 1
    return Shares(
        s_tp=s_tp,
        s_kv=kv_share(arch, tp, decode=decode),
        s_ew=np.where(expert, 1.0 / ep, s_tp),
        s_ef=np.where(expert, routed, s_tp),
        s_ea=np.where(expert, routed, 1.0),
    )


def divisibility_reason(arch: Architecture, tp: Any, ep: Any) -> Any:
    """The first divisibility rule a (tp, ep) breaks: ``TP_HEADS``, ``TP_WIDTH``, ``EP_INVALID``, or 0.

    The rules serving engines enforce (vLLM, SGLang): tp divides the query heads, and divides the KV heads or
    is a multiple of them; tp divides every FFN width it splits (dense, shared experts, and routed experts
    when ep = 1); ep > 1 needs a MoE model whose expert count ep divides, and ep a multiple of tp."""
    heads, kv_heads = arch.num_attention_heads, geometry(arch, decode=True).n_kv
    heads_bad = (heads % tp != 0) | ((kv_heads % tp != 0) & (tp % kv_heads != 0))
    widths = [arch.intermediate_size] if arch.num_dense_ffn_layers and arch.intermediate_size else []
    moe = arch.moe
    if moe is not None and moe.shared_expert_intermediate_size:
        widths.append(moe.shared_expert_intermediate_size)
    width_bad = np.zeros(np.broadcast(tp, ep).shape, dtype=bool)
    for width in widths:
        width_bad = width_bad | (width % tp != 0)
    if moe is None:
        ep_bad = ep > 1
    else:
        width_bad = width_bad | ((ep == 1) & (moe.expert_intermediate_size % tp != 0))
        ep_bad = (ep > 1) & ((moe.num_experts % ep != 0) | (ep % tp != 0))
    return first_reason([heads_bad, width_bad, ep_bad], SPLIT_REASONS[:3])


def split_conditions(
    arch: Architecture,
    lay: Layout,
    pp: Any,
    N: Any,
    max_nodes: Any,
    inter_link_bytes_per_s: Any,
    kv_offload: Any,
    host_link_bytes_per_s: Any,
    host_memory_bytes: Any,
) -> list[Any]:
    """The conditions of ``PP_LAYERS``, ``NODE_TILING``, ``EXCEEDS_SYSTEM`` and ``NO_HOST_OFFLOAD``, in order
    (after the divisibility rules): pp at most the layers; a stage's D devices inside one node or spanning
    whole nodes; a replica spanning several nodes needs an inter-node link and at most ``max_nodes`` nodes;
    host offload needs a host link and a host-memory figure."""
    D = lay.stage_devices
    tiling_bad = (D > N) & (np.fmod(D, N) != 0)
    exceeds = (lay.nodes > 1) & ((inter_link_bytes_per_s <= 0) | (lay.nodes > max_nodes))
    host_known = (host_link_bytes_per_s > 0) & np.isfinite(host_memory_bytes)
    return [pp > arch.num_layers, tiling_bad, exceeds, (kv_offload > 0) & np.logical_not(host_known)]


def split_conditions_for(arch: Architecture, c: Candidates, lay: Layout) -> list[Any]:
    """``split_conditions`` of candidates."""
    return split_conditions(
        arch,
        lay,
        c.pp,
        c.devices_per_node,
        c.max_nodes,
        c.inter_link_bytes_per_s,
        c.kv_offload_fraction,
        c.host_link_bytes_per_s,
        c.host_memory_bytes,
    )


def split_reason(divisibility: Any, conditions: list[Any]) -> Any:
    """The first of ``SPLIT_REASONS`` that applies (0: the split can run), from ``divisibility_reason`` and
    ``split_conditions``."""
    return first_reason([divisibility > 0, *conditions], [divisibility, *SPLIT_REASONS[3:]])
