"""Each physics function on hand-computed cases (docs/cost-model.md; the operator formulas are in
test_operator_formulas.py). Small numbers, worked out on paper in the comments."""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import numpy as np
import pytest

from dse.costmodel import Architecture, MLAShape, MoEShape
from dse.costmodel.physics import collectives, kvcache, memory, moe, parallel, roofline, schedule, serving
from dse.costmodel.physics.attention import (
    causal_pairs,
    decode_attention_bytes,
    fused_attention_flops,
    geometry,
    kv_read_bytes,
    prefill_work,
    query_bytes,
    tile_kv_reads,
)
from dse.costmodel.physics.feasibility import CHECK_ORDER, Reason, first_reason

approx = pytest.approx

ARCH = Architecture(
    hidden_size=64,
    num_layers=10,
    num_attention_heads=8,
    num_key_value_heads=2,
    head_dim=8,
    intermediate_size=96,
    vocab_size=1000,
    max_position_embeddings=4096,
    num_moe_layers=6,
    num_window_layers=4,
    sliding_window=100.0,
    kv_elements_per_token_per_layer=32,
    moe=MoEShape(
        num_experts=16,
        experts_per_token=4,
        expert_intermediate_size=48,
        shared_expert_intermediate_size=32,
        expert_bias=False,
        router_bias=False,
    ),
)


# roofline
def test_roofline_of_one_operator() -> None:
    assert roofline.attainable(100.0, 0.7) == approx(70.0)
    assert roofline.compute_time_s(140.0, 70.0) == 2.0
    assert roofline.memory_time_s(30.0, 10.0) == 3.0
    assert roofline.memory_time_s(30.0, 10.0, 8.0, 0.25) == 5.0  # + 8 cache bytes x 0.25 s each
    assert roofline.roofline_s(2.0, 3.0) == 3.0 and roofline.roofline_s(4.0, 3.0) == 4.0
    assert roofline.bound(2.0, 3.0) == "memory" and roofline.bound(3.0, 2.0) == "compute"
    assert roofline.bound(2.0, 2.0) == "memory"  # a tie is memory-bound
    assert roofline.arithmetic_intensity(10.0, 4.0) == 2.5 and roofline.arithmetic_intensity(1.0, 0.0) is None


# attention
def test_causal_pairs_with_and_without_a_window() -> None:
    assert causal_pairs(5.0, math.inf) == 15.0  # 1 + 2 + 3 + 4 + 5
    assert causal_pairs(5.0, 3.0) == 12.0  # 1 + 2 + 3 + 3 + 3
    assert causal_pairs(3.0, 3.0) == 6.0
    assert list(causal_pairs(np.asarray([2.0, 6.0]), 4.0)) == [3.0, 18.0]  # 1 + 2; 1 + 2 + 3 + 4 + 4 + 4


def test_tile_kv_reads_by_hand() -> None:
    # P = 10, Br = 4: tiles see 4, 8, 10 keys = 22; cached c = 2: new 8 -> tiles see 6, 10 = 16
    assert tile_kv_reads(10.0, math.inf, 4.0) == 22.0
    assert tile_kv_reads(10.0, math.inf, 4.0, 2.0) == 16.0
    # window 3: tile 2 (queries 5-8) starts at key 3 (skips 2), tile 3 (9-10) skips 6: 22 - 8
    assert tile_kv_reads(10.0, 3.0, 4.0) == 14.0


def test_prefill_work_and_fused_kernel_traffic() -> None:
    keys, pairs, reads = prefill_work(10.0, 2.0, math.inf, 4.0)
    assert (keys, pairs, reads) == (10.0, 55.0 - 3.0, 16.0)
    assert fused_attention_flops(2.0, 3.0, 4.0, 5.0, 6.0) == 2 * 3 * 4 * (10 + 12 + 5)
    assert query_bytes(3.0, 4.0, 5.0, 6.0, 2.0) == 3 * 4 * 11 * 2
    assert kv_read_bytes(2.0, 7.0, 3.0, 10.0, 0.5) == 2 * 7 * 3 * 10 * 0.5
    geo = geometry(ARCH, decode=True)
    act, cache = decode_attention_bytes(2.0, 7.0, 4.0, 1.0, geo, 2.0, 1.0)
    assert act == 2 * 4 * (8 + 8) * 2 and cache == 2 * 7 * 1 * 16 * 1


def test_geometry_of_mha_and_mla() -> None:
    assert geometry(ARCH, decode=False) == geometry(ARCH, decode=True)
    g = geometry(ARCH, decode=False)
    assert (g.n_q, g.n_kv, g.d_qk, g.d_v, g.e_key) == (8, 2, 8, 8, 16)
    mla = Architecture(**{**ARCH.__dict__, "mla": MLAShape(0, 32, 16, 4, 12)})
    p, d = geometry(mla, decode=False), geometry(mla, decode=True)
    assert (p.n_kv, p.d_qk, p.d_v, p.e_key) == (8, 20, 12, 32)
    assert (d.n_kv, d.d_qk, d.d_v, d.e_key) == (1, 36, 32, 36)


# mixture of experts
def test_experts_touched_fraction_by_hand() -> None:
    assert moe.experts_touched_fraction(1.0, 4, 16) == approx(0.25)  # one row touches its k of E
    assert moe.experts_touched_fraction(2.0, 1, 2) == approx(0.75)  # 1 - (1/2)^2
    assert moe.experts_touched_fraction(3.0, 2, 8) == approx(1 - 0.75**3)
    assert moe.experts_touched_fraction(5.0, 8, 8) == 1.0  # k = E: every expert


def test_imbalance_cap_by_hand() -> None:
    assert moe.imbalance_cap(8.0, 8, 256) == 8.0  # 8 x min(8, 32) / 8
    assert moe.imbalance_cap(64.0, 8, 256) == 32.0  # 64 x min(8, 4) / 8
    assert moe.imbalance_cap(1.0, 8, 256) == 1.0


# parallel
def test_layout_by_hand() -> None:
    """B = 10, tp = 2, pp = 4, ep = 8 on nodes of 8: m = 4 micro-batches of 3, dp = 4 groups, a group runs
    1 sequence per micro-batch and holds the KV of 3; 32 devices on 4 nodes (one stage per node); the busiest
    stage holds 3 of 10 layers; the router's skew ρ_s = 3 is kept, a pass's ρ capped at 8 x min(4, 2) / 4 = 4."""
    lay = parallel.layout(ARCH, 10.0, 2.0, 4.0, 8.0, 8.0, 3.0)
    assert (lay.micro_batches, lay.micro_batch, lay.attention_dp, lay.group_batch) == (4.0, 3.0, 4.0, 1.0)
    assert (lay.group_sequences, lay.stage_devices, lay.devices, lay.nodes) == (3.0, 8.0, 32.0, 4.0)
    assert lay.layer_share == 0.3 and lay.imbalance == 3.0
    assert parallel.pass_imbalance(ARCH, lay, 8.0, 1.0) == 4.0  # 3 x chance's > 4 at 3 rows: capped
    # 3,000 rows over 8 devices, μ = 1,500 copies each: chance adds 1.434 x √(12 / (1500 x 15)) = 3.3 %, x 1.2
    skew = parallel.layout(ARCH, 10.0, 2.0, 4.0, 8.0, 8.0, 1.2)
    assert parallel.pass_imbalance(ARCH, skew, 8.0, 1000.0) == approx(1.2 * (1 + blom(8) * math.sqrt(12 / 22500)))
    dense = Architecture(**{**ARCH.__dict__, "moe": None, "num_moe_layers": 0})
    assert parallel.pass_imbalance(dense, parallel.layout(dense, 10.0, 2.0, 4.0, 8.0, 8.0, 9.0), 8.0, 1.0) == 9.0


def blom(n: float) -> float:
    """Blom's approximation of the expected largest of n standard normals, by the standard library."""
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def test_routing_imbalance_by_hand() -> None:
    """R rows choosing k = 4 of E = 16 experts over ep devices: the busiest device's copies over the mean."""
    # 8 rows over 4 devices: μ = 8 copies, σ² = 8 x 4 x (1/4)(3/4)(12/15) = 4.8; the 4 counts sum to 32, so they
    # are 4 independent normals of variance τ² = 4.8 x 4/3 = 6.4 less their mean: ρ = 1 + z_4 τ / μ
    assert moe.routing_imbalance(8.0, 4.0, 4, 16) == approx(1 + blom(4) * math.sqrt(6.4) / 8)
    assert blom(4) == approx(1.0294, rel=0.02) and blom(8) == approx(1.4236, rel=0.01)  # exact, integrated
    n = np.array([4.0, 8.0, 2000.0, 2.5])  # tabulated, and beyond the table or not whole
    assert moe.expected_max_normal(n) == approx([blom(4), blom(8), blom(2000), blom(2.5)])
    assert moe.routing_imbalance(5.0, 1.0, 4, 16) == 1.0  # one device: nothing to be imbalanced
    assert moe.routing_imbalance(0.0, 4.0, 4, 16) == 1.0  # no rows
    # Mixtral's 8 experts, top-2, one per device: one token's 2 copies, μ = 1/4, and some device holds one
    assert moe.routing_imbalance(1.0, 8.0, 2, 8) == 4.0  # pigeonhole: ceil(μ) / μ beats 1 + 1.434 x √(6 / 1.75)
    rows = np.array([1.0, 16.0, 256.0, 4096.0])
    rho = moe.routing_imbalance(rows, 8.0, 8, 256)  # DeepSeek-V3 over 8 devices
    assert np.all(np.diff(rho) < 0) and rho[0] == approx(2.414, abs=1e-3) and rho[-1] == approx(1.022, abs=1e-3)


def test_nodes_per_replica_by_hand() -> None:
    assert parallel.nodes_per_replica(16.0, 2.0, 8.0) == 4.0  # stages of two whole nodes each
    assert parallel.nodes_per_replica(2.0, 3.0, 8.0) == 1.0  # four stages of 2 fit one node
    assert parallel.nodes_per_replica(3.0, 5.0, 8.0) == 3.0  # two stages of 3 per node: 2 + 2 + 1


def test_shares_by_hand() -> None:
    lay = parallel.layout(ARCH, 8.0, 2.0, 1.0, 4.0, 8.0, 1.0)  # dp = 2, b_m = 8, b_g = 4
    s = parallel.shares(ARCH, lay, 2.0, 4.0, 1.5, decode=True)  # ρ = 1.5
    assert (s.s_tp, s.s_kv, s.s_ew) == (0.5, 0.5, 0.25)
    assert s.s_ef == s.s_ea == approx(8 / 4 * 1.5 / 4)  # routed copies from the whole stage, x ρ / ep
    lay1 = parallel.layout(ARCH, 8.0, 2.0, 1.0, 1.0, 8.0, 1.0)
    s1 = parallel.shares(ARCH, lay1, 2.0, 1.0, 1.0, decode=True)
    assert (s1.s_ew, s1.s_ef, s1.s_ea) == (0.5, 0.5, 1.0)  # ep = 1: experts split like a dense FFN
    assert parallel.kv_share(ARCH, 8.0, decode=True) == 0.5  # one of 2 KV heads, replicated 4 times
    mla = Architecture(**{**ARCH.__dict__, "mla": MLAShape(0, 32, 16, 4, 12)})
    assert parallel.kv_share(mla, 8.0, decode=True) == 1.0 and parallel.kv_share(mla, 8.0, decode=False) == 0.125


def test_divisibility_rules_in_order() -> None:
    ok, heads, width, ep = 0, Reason.TP_HEADS, Reason.TP_WIDTH, Reason.EP_INVALID
    cases = [
        (2, 1, ok),
        (3, 1, heads),
        (4, 1, ok),
        (8, 1, ok),
        (16, 1, heads),
        (2, 4, ok),
        (4, 2, ep),
        (2, 3, ep),
        (2, 32, ep),
        (1, 16, ok),
    ]
    for tp, e, expected in cases:
        assert parallel.divisibility_reason(ARCH, float(tp), float(e)) == expected, (tp, e)
    narrow = Architecture(**{**ARCH.__dict__, "intermediate_size": 90})  # 90 % 4 != 0
    assert parallel.divisibility_reason(narrow, 4.0, 1.0) == width
    shared = Architecture(**{**ARCH.__dict__, "moe": MoEShape(16, 4, 48, 30, False, False)})  # 30 % 4 != 0
    assert parallel.divisibility_reason(shared, 4.0, 4.0) == width
    expert = Architecture(**{**ARCH.__dict__, "moe": MoEShape(16, 4, 50, 32, False, False)})  # 50 % 4 != 0
    assert (
        parallel.divisibility_reason(expert, 4.0, 1.0) == width and parallel.divisibility_reason(expert, 4.0, 4.0) == ok
    )
    dense = Architecture(**{**ARCH.__dict__, "moe": None, "num_moe_layers": 0})
    assert parallel.divisibility_reason(dense, 1.0, 2.0) == ep


def test_split_conditions_each() -> None:
    def conditions(pp: float = 1.0, tp: float = 1.0, ep: float = 1.0, **links: float) -> list[bool]:
        c = {"N": 8.0, "max_nodes": 2.0, "inter": 50e9, "offload": 0.0, "host_link": 64e9, "host_memory": 1e12}
        c |= links
        lay = parallel.layout(ARCH, 4.0, tp, pp, ep, c["N"], 1.0)
        values = parallel.split_conditions(
            ARCH, lay, pp, c["N"], c["max_nodes"], c["inter"], c["offload"], c["host_link"], c["host_memory"]
        )
        return [bool(v) for v in values]

    assert conditions() == [False] * 4
    assert conditions(pp=11.0) == [True, False, False, False]  # more stages than layers (2 nodes of 8)
    assert conditions(tp=12.0)[1]  # 12 devices: neither inside a node of 8 nor whole nodes
    assert not conditions(tp=16.0)[1] and not conditions(tp=16.0)[2]  # two whole nodes, within max_nodes
    assert conditions(tp=8.0, pp=3.0)[2]  # 3 nodes > max_nodes
    assert conditions(tp=8.0, pp=2.0, inter=0.0)[2]  # 2 nodes but no inter-node link
    assert conditions(offload=0.5, host_link=0.0)[3] and conditions(offload=0.5, host_memory=math.nan)[3]
    assert not conditions(offload=0.5)[3]
    assert parallel.split_reason(np.int8(0), [False, True, True, False]) == Reason.NODE_TILING
    assert parallel.split_reason(np.int8(Reason.TP_WIDTH), [True, True, True, True]) == Reason.TP_WIDTH


# collectives
def test_collective_rates_by_hand() -> None:
    """tp = 16 on nodes of 8 (B_intra 400, B_inter 50): g = 8, M = 2; ep = 16: g' = 8, σ = max(7/(16 x 400),
    8/(16 x 50)); pp = 4 over 2 nodes: 1 boundary between nodes, 2 inside."""
    r = collectives.collective_rates(16.0, 16.0, 4.0, 2.0, 8.0, 400.0, 1.0, 50.0, 10.0)
    assert r.ring_latency_s == 11.0 and r.ring_s_per_byte == approx(7 / (8 * 400) + 1 / (2 * 8 * 50))
    assert r.all_to_all_latency_s == 10.0 and r.all_to_all_s_per_byte == approx(8 / (16 * 50))
    assert r.send_latency_s == 10.0 + 2 * 1.0 and r.send_s_per_byte == approx(1 / 50 + 2 / 400)
    inside = collectives.collective_rates(4.0, 4.0, 1.0, 1.0, 8.0, 400.0, 1.0, 50.0, 10.0)
    assert inside.ring_latency_s == 1.0 and inside.all_to_all_latency_s == 1.0
    assert inside.all_to_all_s_per_byte == approx(3 / (4 * 400)) and inside.send_latency_s == 0.0
    no_link = collectives.collective_rates(16.0, 1.0, 1.0, 2.0, 8.0, 400.0, 1.0, 0.0, 10.0)
    assert no_link.ring_s_per_byte == approx(7 / (8 * 400) + 1 / (2 * 8 * 400))  # timed on the intra link
    # transfers get a share of each link (NVLink SHARP reduces in the switch: all-reduces only), the logits'
    # all-gather too: β' = 7/(8 x 400 x 0.8) + 1/(2 x 8 x 50 x 0.9)
    shared = collectives.collective_rates(16.0, 16.0, 4.0, 2.0, 8.0, 400.0, 1.0, 50.0, 10.0, 0.8, 0.9)
    assert shared.ring_s_per_byte == r.ring_s_per_byte
    assert shared.gather_s_per_byte == approx(7 / (8 * 400 * 0.8) + 1 / (2 * 8 * 50 * 0.9))
    assert r.gather_s_per_byte == approx(r.ring_s_per_byte)  # no share: the all-reduce's rate
    single = collectives.collective_rates(1.0, 1.0, 1.0, 1.0, 1.0, math.inf, 0.0, 0.0, 0.0)
    assert (single.ring_latency_s, single.ring_s_per_byte, single.all_to_all_s_per_byte) == (0.0, 0.0, 0.0)


def test_collective_times_by_hand() -> None:
    assert collectives.all_reduce_s(100.0, 2.0, 0.5) == 102.0
    assert collectives.all_gather_s(100.0, 2.0, 0.5) == 52.0
    assert collectives.tp_all_reduce_s(3.0, 100.0, 40.0, 2.0, 0.5, 0.5) == 3 * 102 + 22  # (N + 1) α + (2 N S + S_V) β
    assert collectives.tp_all_reduce_s(3.0, 100.0, 40.0, 2.0, 0.5, 1.0) == 3 * 102 + 42  # the gather at its own β'
    assert collectives.tp_all_reduces(ARCH, False) == 20.0 and collectives.tp_all_reduces(ARCH, True) == 14.0
    parallel_attention = Architecture(**{**ARCH.__dict__, "parallel_attention": True})
    assert collectives.tp_all_reduces(parallel_attention, True) == 10.0
    assert collectives.dispatch_combine_bytes(8.0, 1.0, 4.0, 2, 10, 1.0, 1.5) == 8 / 4 * 2 * 1.5 * 10 * 3
    assert collectives.all_to_all_pair_s(100.0, 2.0, 0.5) == 54.0


def test_communication_by_hand() -> None:
    """B = 8, tp = 2, ep = 4, pp = 2 on one node of 8 (ideal links: latency 1, 100 bytes/s, inter none),
    a = 1 byte (r_b = 2): dp = 2, b_m = 4, b_g = 2, λ = 0.5; decode T = 1."""
    lay = parallel.layout(ARCH, 8.0, 2.0, 2.0, 4.0, 8.0, 1.0)
    rates = collectives.collective_rates(2.0, 4.0, 2.0, lay.nodes, 8.0, 100.0, 1.0, 0.0, 0.0)
    comm = collectives.communication(ARCH, lay, rates, 2.0, 4.0, 2.0, 1.0, 1.0)
    S, S_V = 2 * 64 * 2, 2 * 1000 * 2  # b_g T h r_b, b_g V r_b
    N_stage = 0.5 * 14 + 1  # 10 layers x 2 - 6 MoE layers dispatched, half of them, + the embedding
    beta = 1 / (2 * 100)
    assert comm.tp_all_reduce_bytes == approx(0.5 * (N_stage * 2 * S + S_V))
    assert comm.tp_all_reduce_s == approx(N_stage * (1 + 2 * S * beta) + 1 + S_V * beta)
    rho = 1 + blom(4) * math.sqrt(12 / (4 * 15))  # chance over b_m T = 4 rows, μ = 4 (test_routing_imbalance)
    X = 4 / 4 * 4 * rho * 64 * (1 + 2)  # b_m T / ep x k x ρ x h x (a + 2)
    sigma = 3 / (4 * 100)
    assert comm.ep_all_to_all_bytes == approx(0.5 * 6 * X * 3 / 4)
    assert comm.ep_all_to_all_s == approx(0.5 * 6 * (2 * 1 + X * sigma))
    assert comm.pp_send_bytes == S / 2 and comm.pp_send_s == approx(1 + S / 2 / 100)
    assert comm.all_stages_s == approx(15 * (1 + 2 * S * beta) + 1 + S_V * beta + 6 * (2 + X * sigma))
    assert comm.stage_s == approx(comm.tp_all_reduce_s + comm.ep_all_to_all_s)


# KV cache
def test_kv_cache_policies_by_hand() -> None:
    assert kvcache.attended_keys(50.0, 100.0, math.inf) == 50.0 and kvcache.attended_keys(150.0, 100.0, 80.0) == 80.0
    assert (
        kvcache.kv_slots_per_layer(37.0, math.inf, 16.0) == 48.0
        and kvcache.kv_slots_per_layer(37.0, 20.0, 16.0) == 32.0
    )
    lay = parallel.layout(ARCH, 4.0, 2.0, 2.0, 2.0, 8.0, 1.0)  # λ = 0.5, B_g = 4, kv share 1/2
    got = kvcache.kv_cache_bytes(ARCH, lay, 2.0, 150.0, 50.0, 1.0, 1.0, math.inf)
    assert got == approx(0.5 * 0.5 * 4 * (6 * 200 + 4 * 100) * 32 * 1.0)  # full layers keep 200, windowed 100
    budget = kvcache.kv_cache_bytes(ARCH, lay, 2.0, 150.0, 50.0, 1.0, 16.0, 60.0)
    assert budget == approx(0.5 * 0.5 * 4 * (10 * 64) * 32)  # 60 kept, in blocks of 16: 64 slots
    assert kvcache.host_read_extra_s_per_byte(0.5, 10.0, 40.0) == approx(0.5 * (0.1 - 0.025))
    assert kvcache.host_read_extra_s_per_byte(0.0, 0.0, 40.0) == 0.0
    assert np.isnan(kvcache.host_read_extra_s_per_byte(0.5, 0.0, 40.0))  # no host link: unknown
    assert kvcache.host_write_s(0.25, 400.0, 10.0) == (100.0, 10.0)
    sent, seconds = kvcache.host_write_s(0.25, 400.0, 0.0)
    assert sent == 100.0 and np.isnan(seconds)


# memory
def test_memory_by_hand() -> None:
    assert memory.weights_per_device(100.0, 80.0, 15.0, 5.0, 1.0, 0.5) == 100.0
    assert memory.weights_per_device(100.0, 80.0, 15.0, 5.0, 2.0, 0.5) == 55.0  # half the layers + embedding
    assert memory.activation_bytes(3.0, 4, 2.0, 10.0, 2.0, 5) == 3 * 4 * 2 + 10 + 2 * 5 * 4
    # capacity 100, weights 30, reserve 10: 60 free; 4 sequences take KV 8 (2 each) + activations 4 (2 each)
    assert memory.max_batch(100.0, 30.0, 10.0, 8.0, 4.0, 4.0, 2.0, 1.0, 1.0, 0.0, math.nan, 0.0) == 15.0
    assert memory.max_batch(100.0, 30.0, 10.0, 8.0, 4.0, 4.0, 2.0, 2.0, 2.0, 0.0, math.nan, 0.0) == 40.0
    assert memory.max_batch(10.0, 30.0, 10.0, 8.0, 4.0, 4.0, 2.0, 1.0, 1.0, 0.0, math.nan, 0.0) == 0.0
    # offload: 6 bytes of host KV for 4 sequences in 9 bytes of host memory: 6 sequences fit the host
    assert memory.max_batch(100.0, 30.0, 10.0, 8.0, 4.0, 4.0, 2.0, 1.0, 1.0, 6.0, 9.0, 0.5) == 6.0
    assert memory.max_batch(100.0, 30.0, 10.0, 8.0, 4.0, 4.0, 2.0, 1.0, 1.0, 6.0, math.nan, 0.5) == 0.0
    mem = memory.memory_breakdown(30.0, 8.0, 4.0, 200.0, 0.5, 10.0, 0.25, 50.0, 4.0, 2.0, 1.0, 1.0)
    assert (mem.kv_cache_bytes, mem.host_kv_cache_bytes, mem.capacity_bytes) == (6.0, 2.0, 100.0)
    assert mem.total_bytes == 30 + 6 + 4 + 10 and mem.host_capacity_bytes == 50.0


# schedule
def test_pipeline_schedule_by_hand() -> None:
    assert schedule.overlapped(3.0, 2.0, 0.0) == 5.0 and schedule.overlapped(3.0, 2.0, 1.0) == 3.0
    assert schedule.overlapped(3.0, 2.0, 0.25) == 4.5
    busiest = schedule.busiest_pass_s(8.0, 1.0, 2.0, 0.5, 0.0)  # 0.5 x 8 + 1 + 2
    trip = schedule.trip_s(8.0, 1.0, 3.0, 0.5, 0.0)  # 8 + 1 + 3 + 0.5
    assert (busiest, trip) == (7.0, 12.5)
    assert schedule.prefill_time_s(trip, busiest, 3.0) == 12.5 + 2 * 7
    assert schedule.decode_step_s(trip, busiest, 3.0) == 21.0 and schedule.decode_step_s(trip, busiest, 1.0) == 12.5


# serving, cost
def test_serving_metrics_by_hand() -> None:
    """TTFT 1 s, TPOT 0.1 s, B = 4, G = 11, 2 replicas of 4 devices: e2e 2 s, 44 tokens/s, 8 devices."""
    m = serving.serving_metrics(1.0, 0.1, 4.0, 11.0, 2.0, 4.0, 5e9, 2.0, 700.0, 0.5, np.int8(0))
    assert m.e2e_latency_s == 2.0 and m.throughput_tokens_per_s == 44.0 and m.devices == 8.0
    assert m.decode_throughput_tokens_per_s == approx(80.0) and m.tokens_per_s_per_user == approx(10.0)
    assert m.throughput_tokens_per_s_per_device == 5.5 and m.usd_per_hour == 16.0
    assert m.usd_per_million_tokens == approx(16.0 / (44 * 3600) * 1e6)
    assert m.joules_per_token == approx(8 * 700 * 0.5 / 44) and m.feasible and m.memory_per_device_bytes == 5e9
    assert not serving.serving_metrics(1.0, 0.1, 4.0, 11.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, np.int8(4)).feasible


def test_dollars_per_device_hour() -> None:
    rent, buy = serving.CostAssumptions(), serving.CostAssumptions(pricing="buy")
    assert serving.usd_per_device_hour(2.5, 30000.0, 700.0, rent) == 2.5
    assert math.isnan(serving.usd_per_device_hour(None, 30000.0, 700.0, rent))
    # 30,000 $ over 3 years of 8760 h, plus 10 % of it a year for operations, plus 0.7 kW x 1.3 PUE x 0.08 $/kWh
    expected = 30000 / (3 * 8760) + 30000 * 0.10 / 8760 + 0.7 * 1.3 * 0.08
    assert serving.usd_per_device_hour(None, 30000.0, 700.0, buy) == approx(expected)
    assert math.isnan(serving.usd_per_device_hour(2.5, None, 700.0, buy))
    assert math.isnan(serving.usd_per_device_hour(2.5, 30000.0, None, buy))


# feasibility
def test_first_reason_takes_the_first_that_holds() -> None:
    assert first_reason([False, True, True], [1, 2, 3]) == 2
    assert first_reason([False, False, False], [1, 2, 3]) == 0
    got = first_reason([np.asarray([False, True, False]), np.asarray([True, True, False])], [5, np.asarray([7, 8, 9])])
    assert list(got) == [7, 5, 0]
    assert first_reason([np.asarray([False]), np.asarray([True])], [1, np.asarray([0])])[0] == 0  # a 0 code: none
    assert CHECK_ORDER[0] == Reason.UNSUPPORTED_FORMAT and CHECK_ORDER[-1] == Reason.OVERLOADED
    assert len(set(CHECK_ORDER)) == len(Reason) - 1


# boundaries and branches the tests above leave open
def test_memory_time_defaults_add_nothing() -> None:
    assert roofline.memory_time_s(30.0, 10.0, 8.0) == 3.0  # cache reads without a host share cost nothing more
    assert roofline.memory_time_s(30.0, 10.0, host_extra_s_per_byte=0.25) == 3.0  # no cache reads, nothing more


def test_all_to_all_and_dispatch_with_two_ranks_and_longer_passes() -> None:
    r = collectives.collective_rates(1.0, 2.0, 1.0, 1.0, 8.0, 400.0, 3.0, 50.0, 10.0)
    assert r.all_to_all_latency_s == 3.0 and r.all_to_all_s_per_byte == approx(1 / (2 * 400))
    assert collectives.dispatch_combine_bytes(8.0, 4.0, 2.0, 2, 10, 1.0, 1.0) == 8 * 4 / 2 * 2 * 10 * 3
    lay = parallel.layout(ARCH, 4.0, 1.0, 1.0, 2.0, 8.0, 1.0)  # tp = 1, ep = 2: attention data-parallel
    comm = collectives.communication(ARCH, lay, r, 1.0, 2.0, 1.0, 1.0, 3.0)
    rho = 1 + blom(2) * math.sqrt(12 / (24 * 15))  # 12 rows over 2 devices: μ = 24
    X = 4 * 3 / 2 * 4 * rho * 64 * 3  # b_m T / ep x k x ρ x h x (a + 2)
    assert comm.ep_all_to_all_bytes == approx(6 * X / 2) and comm.ep_all_to_all_s == approx(6 * (2 * 3 + X / 800))
    assert comm.tp_all_reduce_s == 0.0


def test_evicts_in_a_model_with_full_and_windowed_layers() -> None:
    assert kvcache.evicts(ARCH, 2000.0, 6000.0)  # the full layers would attend to all 6000
    only_windows = Architecture(**{**ARCH.__dict__, "num_window_layers": 10})
    assert not kvcache.evicts(only_windows, 2000.0, 6000.0) and kvcache.evicts(only_windows, 50.0, 6000.0)
    assert not kvcache.evicts(ARCH, None, 6000.0)


def test_latent_cache_and_heads_are_replicated_under_tensor_parallelism() -> None:
    from dse.costmodel import Candidates
    from dse.costmodel.physics.passes import decode_pass, prefill_pass

    mla = Architecture(**{**ARCH.__dict__, "mla": MLAShape(0, 32, 16, 4, 12), "kv_elements_per_token_per_layer": 36})
    for tp in (1.0, 4.0):
        lay = parallel.layout(mla, 4.0, tp, 1.0, tp, 8.0, 1.0)
        per_device = kvcache.kv_cache_bytes(mla, lay, tp, 100.0, 28.0, 1.0, 1.0, math.inf)
        assert per_device == 4 * (6 * 128 + 4 * 100) * 36  # every rank holds the whole latent
    c = Candidates.from_columns(
        {
            "batch": 4.0,
            "prompt_len": 100.0,
            "gen_len": 28.0,
            "weight_bits": 8.0,
            "embedding_bits": 16.0,
            "act_bits": 16.0,
            "kv_bits": 8.0,
            "flash_block_rows": 128.0,
            "tp": 4.0,
            "ep": 4.0,
            "kv_budget_tokens": math.inf,
        }
        | dict.fromkeys(
            (
                "matmul_flops_per_s",
                "matmul16_flops_per_s",
                "vector_flops_per_s",
                "bandwidth_bytes_per_s",
                "memory_bytes",
                "bandwidth_efficiency",
                "compute_efficiency",
                "kernel_overhead_s",
                "memory_utilization",
                "runtime_reserve_bytes",
                "flash",
                "format_supported",
                "power_w",
                "usd_per_device_hour",
            ),
            1.0,
        ),
        1,
    ).row(0)
    lay = parallel.layout(mla, c.batch, c.tp, c.pp, c.ep, 8.0, 1.0)
    decode, prefill = decode_pass(mla, c, lay, 100.0), prefill_pass(mla, c, lay, 0.0)
    assert decode.s_kv == 1.0 and prefill.s_kv == 0.25  # decode: one latent head; prefill: explicit heads
    assert decode.x == 1.0 and prefill.x == 2.0 and lay.group_batch == decode.R
    # experts touched on the busiest of 4 devices: ρ times the stage's micro-batch of b_m T rows, each choosing
    # 4 of 16; decode: 4 rows, μ = 4 copies a device, ρ = 1 + z_4 √(12 / (4 x 15))
    rho = 1 + blom(4) * math.sqrt(0.2)
    assert prefill.u == approx(1 - 0.75 ** (lay.micro_batch * 100)) and decode.u == approx(1 - 0.75 ** (4 * rho))
    assert decode.s_ef == approx(rho / 4) and prefill.s_ef < decode.s_ef  # more rows, less chance imbalance
    assert decode.attention["full"] == decode.attention["full"].__class__(100.0, 100.0, 100.0)
    assert decode_pass(mla, c, lay, 100.0, prefill) == decode  # reusing prefill's formats and shares
    dp = dataclasses.replace(c, tp=np.float64(1.0))  # attention data-parallel: a group's batch is 1 of 4
    lay = parallel.layout(mla, dp.batch, dp.tp, dp.pp, dp.ep, 8.0, 1.0)
    assert decode_pass(mla, dp, lay, 100.0, prefill_pass(mla, dp, lay, 0.0)) == decode_pass(mla, dp, lay, 100.0)


def test_shares_with_two_expert_ranks() -> None:
    lay = parallel.layout(ARCH, 4.0, 1.0, 1.0, 2.0, 8.0, 1.0)
    s = parallel.shares(ARCH, lay, 1.0, 2.0, 1.0, decode=False)
    assert s.s_ew == 0.5 and s.s_ef == s.s_ea == approx(4 / 2 / 2)


def test_split_rules_at_their_boundaries() -> None:
    lay = parallel.layout(ARCH, 4.0, 1.0, 10.0, 1.0, 8.0, 1.0)
    assert not parallel.split_conditions(ARCH, lay, 10.0, 8.0, 2.0, 50e9, 0.0, 64e9, 1e12)[0]  # one layer a stage
    all_moe = Architecture(**{**ARCH.__dict__, "num_moe_layers": 10, "intermediate_size": 90})
    assert parallel.divisibility_reason(all_moe, 4.0, 4.0) == 0  # no dense layer: its width is not split


def test_first_reason_is_int8() -> None:
    assert first_reason([np.asarray([True])], [Reason.TP_HEADS]).dtype == np.int8


def test_energy_cost_scales_with_power_fraction() -> None:
    half = serving.CostAssumptions(pricing="buy", power_fraction=0.5)
    assert serving.usd_per_device_hour(None, 0.0 + 1e-9, 1000.0, half) == approx(0.5 * 1.3 * 0.08, rel=1e-6)
