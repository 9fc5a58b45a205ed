"""Collectives: the tensor-parallel all-reduces, the expert-parallel all-to-alls and the pipeline sends of a
pass, on the candidate's links (docs/cost-model.md §11.3-§11.5).

Every collective costs ``latency + bytes x seconds per byte``. A ring over g ranks moves (g - 1)/g of the
data per pass over each device's link per direction (the bandwidth-optimal ring, Patarasuk & Yuan, JPDC
2009; NCCL's bus-bandwidth convention, nccl-tests ``doc/PERFORMANCE.md``); an all-reduce is two passes
(reduce-scatter, then all-gather), an all-gather one. One link latency per collective and per level it
crosses: NCCL's low-latency protocols and the engines' one-shot all-reduce kernels make decode's small
messages nearly flat in the number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.costmodel.candidates import Candidates
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.parallel import Layout, pass_imbalance

RESIDUAL_BYTES_PER_ELEMENT = 2.0
"""The residual stream, and so the all-reduces, pipeline sends and gathered logits, stays in 16 bits whatever
the linear layers compute in (quantized GEMMs take 8- or 4-bit inputs but write 16-bit outputs); wider where
the activation format is (fp32-only devices): r_b = max(a, 2)."""
COMBINE_BYTES_PER_ELEMENT = 2.0
"""The expert-parallel combine returns expert outputs in 16 bits (DeepSeek-V3 report, arXiv 2412.19437 §3.4:
FP8 dispatch, BF16 combine), whatever the activation format."""


@dataclass(frozen=True)
class CollectiveRates:
    """Latency (s) and seconds per byte of each collective kind, for one deployment on its links."""

    ring_latency_s: Any
    """α of a tensor-parallel collective: α_intra [g > 1] + α_inter [M > 1]."""
    ring_s_per_byte: Any
    """β, per byte per ring pass: (g - 1)/(g B_intra) + (M - 1)/(M g B_inter)."""
    gather_s_per_byte: Any
    """β', the same ring for an all-gather, at what a transfer gets of each link (``share``): in-switch
    reduction speeds all-reduces only."""
    all_to_all_latency_s: Any
    all_to_all_s_per_byte: Any
    """σ, per byte a device sends in an expert-parallel all-to-all."""
    send_latency_s: Any
    send_s_per_byte: Any
    """Latency and seconds per byte of all pp - 1 stage boundaries one activation crosses in turn."""


def collective_rates(
    tp: Any,
    ep: Any,
    pp: Any,
    nodes: Any,
    N: Any,
    B_intra: Any,
    alpha_intra: Any,
    B_inter: Any,
    alpha_inter: Any,
    share_intra: Any = 1.0,
    share_inter: Any = 1.0,
) -> CollectiveRates:
    """The links' rates for a deployment (B per direction per device, what an all-reduce gets; B_inter = 0: no
    inter-node link, and any such traffic is timed on the intra-node one, as the candidate is infeasible
    anyway). All-gathers, all-to-alls and pipeline sends get ``share`` of each link's B (the profile's transfer
    over its all-reduce efficiency: in-switch reduction, NVLink SHARP, speeds all-reduces only).

    - Ring over tp ranks, g = min(tp, N) per node and M = ceil(tp / g) nodes: within each node, then each
      rank carries 1/g of the data over its own inter-node NIC to the same rank of the other nodes (a
      two-level model of NCCL's multi-node rings and trees).
    - All-to-all over n = ep ranks, g' = min(ep, N) per node: a device's data spread evenly over all n, its
      own share staying; (g' - 1)/n crosses the intra-node link and (n - g')/n the inter-node one,
      concurrently: σ = max((g' - 1)/(n B_intra), (n - g')/(n B_inter)), α = α_inter once n > g'.
    - Pipeline sends: of the pp - 1 boundaries, C = min(pp - 1, nodes - 1) lie between nodes (stages are
      packed into nodes in order) and use the inter-node link, the rest the intra-node one."""
    share_inter = np.where(B_inter > 0, share_inter, share_intra)
    B_inter = np.where(B_inter > 0, B_inter, B_intra)
    T_intra, T_inter = B_intra * share_intra, B_inter * share_inter  # what all-to-alls and sends get
    g = np.minimum(tp, N)
    M = np.ceil(tp / g)
    g_ep = np.minimum(ep, N)
    across_ep = ep > g_ep
    boundaries = pp - 1.0
    crossing = np.minimum(boundaries, nodes - 1.0)
    inside = boundaries - crossing
    return CollectiveRates(
        ring_latency_s=(g > 1) * alpha_intra + (M > 1) * alpha_inter,
        ring_s_per_byte=(g - 1.0) / (g * B_intra) + (M - 1.0) / (M * g * B_inter),
        gather_s_per_byte=(g - 1.0) / (g * T_intra) + (M - 1.0) / (M * g * T_inter),
        all_to_all_latency_s=across_ep * alpha_inter + ((ep > 1) & np.logical_not(across_ep)) * alpha_intra,
        all_to_all_s_per_byte=np.maximum((g_ep - 1.0) / (ep * T_intra), (ep - g_ep) / (ep * T_inter)),
        send_latency_s=crossing * alpha_inter + inside * alpha_intra,
        send_s_per_byte=crossing / T_inter + inside / T_intra,  # B_intra inf (no link): 0 s per byte
    )


def rates_for(c: Candidates, lay: Layout) -> CollectiveRates:
    """``collective_rates`` of candidates on their links."""
    return collective_rates(
        c.tp,
        c.ep,
        c.pp,
        lay.nodes,
        c.devices_per_node,
        c.intra_link_bytes_per_s,
        c.intra_link_latency_s,
        c.inter_link_bytes_per_s,
        c.inter_link_latency_s,
        c.intra_transfer_share,
        c.inter_transfer_share,
    )


def all_reduce_s(S: Any, alpha: Any, beta: Any) -> Any:
    """α + 2 S β: a reduce-scatter and an all-gather of S bytes per device."""
    return alpha + 2.0 * S * beta


def all_gather_s(S: Any, alpha: Any, beta: Any) -> Any:
    """α + S β."""
    return alpha + S * beta


def tp_all_reduces(arch: Architecture, dispatched: Any) -> Any:
    """All-reduces of all L layers in one pass: r per layer (after o_proj and after the FFN or MoE block; r = 1
    for parallel-attention blocks, one reduction of the summed outputs), except that with data-parallel
    attention (``dispatched``) a MoE layer's output comes back by the combine all-to-all instead:
    ``L r - L_moe (r - 1) [dispatched]``."""
    r = 1.0 if arch.parallel_attention else 2.0
    return arch.num_layers * r - dispatched * float(arch.num_moe_layers) * (r - 1.0)


def tp_all_reduce_s(N_ar: Any, S: Any, S_V: Any, alpha: Any, beta: Any, beta_gather: Any) -> Any:
    """The tensor-parallel collectives of a pass: N_ar all-reduces of S bytes (the layers' and the
    vocabulary-parallel embedding's, Megatron-LM §3) and one all-gather of the logits, S_V bytes (vLLM gathers
    the vocabulary shards for sampling), at β' per byte (``CollectiveRates.gather_s_per_byte``):
    ``(N_ar + 1) α + 2 N_ar S β + S_V β'``."""
    return N_ar * all_reduce_s(S, alpha, beta) + all_gather_s(S_V, alpha, beta_gather)


def dispatch_combine_bytes(b_m: Any, T: Any, ep: Any, k: float, h: int, a: Any, rho: Any) -> Any:
    """Bytes one device sends per MoE layer: its share of the stage's routed token copies,
    c = (b_m T / ep) k ρ, a hidden vector each, dispatched in the activation format and combined in 16 bits:
    c h (a + 2) (GShard, arXiv 2006.16668 §2-3; DeepSeek-V3 §3.4)."""
    return b_m * T / ep * k * rho * h * (a + COMBINE_BYTES_PER_ELEMENT)


def all_to_all_pair_s(X: Any, alpha: Any, sigma: Any) -> Any:
    """A dispatch and a combine all-to-all carrying X bytes between them: 2 α + X σ."""
    return 2.0 * alpha + X * sigma


@dataclass(frozen=True)
class Communication:
    """Per device, one pass of one micro-batch on the busiest stage: bytes sent and time of each collective kind."""

    tp_all_reduce_bytes: Any
    tp_all_reduce_s: Any
    ep_all_to_all_bytes: Any
    ep_all_to_all_s: Any
    pp_send_bytes: Any
    """One stage boundary's activation, per device."""
    pp_send_s: Any
    """All pp - 1 boundaries one micro-batch crosses."""
    all_stages_s: Any
    """Tensor- and expert-parallel collectives of every stage together (what one trip through the pipeline
    waits for)."""

    @property
    def stage_s(self) -> Any:
        """Collectives inside the busiest stage (tensor and expert parallel)."""
        return self.tp_all_reduce_s + self.ep_all_to_all_s


def communication(
    arch: Architecture, lay: Layout, rates: CollectiveRates, tp: Any, ep: Any, pp: Any, a: Any, T: Any
) -> Communication:
    """Collectives of one pass over T new tokens per sequence (P - c in prefill, 1 in decode), for the
    busiest stage (λ of the layers, plus the embedding's all-reduce and the logits' all-gather) and for every
    stage together (λ = 1).

    - tensor parallel: S = b_g T h r_b bytes per all-reduce, S_V = b_g V r_b for the logits (§11.3);
    - expert parallel with data-parallel attention (ep > tp): per MoE layer a dispatch and a combine
      all-to-all (``dispatch_combine_bytes``), the busiest device receiving ρ times the mean (§11.4); with
      ep = tp every rank holds every token and nothing is dispatched;
    - pipeline: one activation per boundary, X_pp = S / tp per device: each of a stage's tp ranks sends 1/tp
      of it (the scatter/gather optimisation, Narayanan et al. 2021, arXiv 2104.04473 §4.1)."""
    r_b = np.maximum(a, RESIDUAL_BYTES_PER_ELEMENT)
    S = lay.group_batch * T * arch.hidden_size * r_b
    S_V = lay.group_batch * arch.vocab_size * r_b
    dispatched = (ep > 1) & (lay.attention_dp > 1)
    layers_ar = tp_all_reduces(arch, dispatched)
    alpha, beta = rates.ring_latency_s, rates.ring_s_per_byte
    moe = arch.moe
    X = 0.0
    if moe is not None:
        X = dispatched * dispatch_combine_bytes(
            lay.micro_batch, T, ep, moe.experts_per_token, arch.hidden_size, a, pass_imbalance(arch, lay, ep, T)
        )
    per_moe_layer_s = dispatched * all_to_all_pair_s(X, rates.all_to_all_latency_s, rates.all_to_all_s_per_byte)
    lam, L_moe = lay.layer_share, float(arch.num_moe_layers)
    X_pp = (pp > 1) * S / tp
    return Communication(
        tp_all_reduce_bytes=(tp - 1.0) / tp * ((lam * layers_ar + 1.0) * 2.0 * S + S_V),
        tp_all_reduce_s=tp_all_reduce_s(lam * layers_ar + 1.0, S, S_V, alpha, beta, rates.gather_s_per_byte),
        ep_all_to_all_bytes=lam * L_moe * X * (ep - 1.0) / ep,
        ep_all_to_all_s=lam * L_moe * per_moe_layer_s,
        pp_send_bytes=X_pp,
        pp_send_s=rates.send_latency_s + X_pp * rates.send_s_per_byte,
        all_stages_s=tp_all_reduce_s(layers_ar + 1.0, S, S_V, alpha, beta, rates.gather_s_per_byte)
        + L_moe * per_moe_layer_s,
    )
