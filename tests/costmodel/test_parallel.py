"""Multi-device deployments and KV-cache policies: hand-computed cases and published deployments."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from candidate_rows import candidates

from dse.catalog import load_model, load_target
from dse.costmodel import Evaluation, Reason, evaluate_reference
from dse.costmodel.physics.attention import tile_kv_reads
from dse.scoring import Scored, analyze, architecture, score_columns

BF16 = 2.0  # bytes per element


def score(profile: str = "ideal", **row: Any) -> Scored:
    """One candidate, by the engine."""
    [(_, scored)] = score_columns({k: [v] for k, v in row.items()}, profile=profile)
    return scored


def reference(profile: str = "ideal", **row: Any) -> Evaluation:
    """One candidate, by the reference evaluator (every operator)."""
    return evaluate_reference(architecture(load_model(row["model"])), candidates(row, profile).row(0))


def flops(ev: Evaluation, *, per_layer: bool) -> float:
    """Prefill FLOPs of one pass of the busiest stage's operators inside (or outside) the layers."""
    outside = ("embedding", "position_embedding", "final_norm", "lm_head")
    return sum(op.count * op.flops for op in ev.operators[0] if (op.name not in outside) == per_layer)


def reason(scored: Scored) -> Reason:
    return Reason(int(scored.metrics.reason[0]))


BASE = {"model": "llama-3.1-8b", "hardware": "dgx-h100", "quant": "bf16", "prompt_len": 512, "gen_len": 64}


def _norm_bytes(model_id: str) -> float:
    """Bytes of the norm weights (replicated under tensor parallelism), bf16."""
    rec = load_model(model_id).record
    return BF16 * rec.hidden_size * (load_model(model_id).num_layers * rec.norms_per_layer + 1)


def test_tp2_halves_weight_bytes_per_device_except_replicated_norms() -> None:
    one, two = score(**BASE, tp=1), score(**BASE, tp=2)
    norms = _norm_bytes("llama-3.1-8b")
    w1, w2 = one.memory.weights_bytes[0], two.memory.weights_bytes[0]
    assert w2 == pytest.approx((w1 - norms) / 2 + norms, rel=1e-12)


def test_tp2_adds_exactly_the_documented_all_reduce_traffic() -> None:
    """Decode step, batch B: (2 L + 1) all-reduces of B x h bf16 values, each moving 2 (n-1)/n of it per device,
    plus an all-gather of B x V logits moving (n-1)/n; ideal profile: no latency, so time = bytes / link."""
    batch = 4
    scored = score(**BASE, tp=2, batch=batch)
    rec = load_model("llama-3.1-8b").record
    layers, h, vocab = load_model("llama-3.1-8b").num_layers, rec.hidden_size, rec.vocab_size
    expected = (2 * layers + 1) * 2 * (1 / 2) * batch * h * BF16 + (1 / 2) * batch * vocab * BF16
    assert scored.evaluation is not None
    _, decode = scored.evaluation.communication
    assert decode.tp_all_reduce_bytes[0] == pytest.approx(expected, rel=1e-12)
    link = load_target("dgx-h100")[1]
    assert link is not None
    assert decode.tp_all_reduce_s[0] == pytest.approx(expected / link.intra_node_link.bandwidth_bytes_per_s, rel=1e-12)
    assert decode.ep_all_to_all_s[0] == 0 and decode.pp_send_s[0] == 0
    single = score(**BASE, tp=1, batch=batch).evaluation
    assert single is not None and single.communication[1].tp_all_reduce_s[0] == 0


def test_tp_spanning_nodes_uses_the_inter_node_link_hierarchically() -> None:
    """tp = 16 on 8-GPU nodes: ring inside the node (g = 8), then each rank carries 1/8 over its own NIC."""
    row = dict(BASE, model="llama-3.1-70b", tp=16, batch=2)
    scored = score(**row)
    assert scored.evaluation is not None
    decode = scored.evaluation.communication[1]
    _, system = load_target("dgx-h100")
    assert system is not None and system.inter_node_link is not None
    rec = load_model("llama-3.1-70b").record
    size = 2 * rec.hidden_size * BF16
    count = 2 * load_model("llama-3.1-70b").num_layers + 1
    intra, inter = system.intra_node_link.bandwidth_bytes_per_s, system.inter_node_link.bandwidth_bytes_per_s
    per_all_reduce = 2 * 7 / 8 * size / intra + 2 * 1 / 2 * size / (8 * inter)
    logits = 2 * rec.vocab_size * BF16
    gather = 7 / 8 * logits / intra + 1 / 2 * logits / (8 * inter)
    assert decode.tp_all_reduce_s[0] == pytest.approx(count * per_all_reduce + gather, rel=1e-12)


def test_pp2_halves_layers_per_device() -> None:
    one, two = score(**BASE, pp=1), score(**BASE, pp=2)
    e1, e2 = reference(**BASE, pp=1), reference(**BASE, pp=2)
    layer_flops, other_flops = flops(e1, per_layer=True), flops(e1, per_layer=False)
    assert flops(e2, per_layer=True) + flops(e2, per_layer=False) == pytest.approx(
        layer_flops / 2 + other_flops, rel=1e-12
    )
    # weights: half the layers, plus the larger of the embedding (first stage) and the LM head (last stage)
    norms_final = BF16 * load_model("llama-3.1-8b").record.hidden_size
    rec = load_model("llama-3.1-8b").record
    table_bytes = BF16 * rec.vocab_size * rec.hidden_size
    layers = one.memory.weights_bytes[0] - 2 * table_bytes - norms_final
    assert two.memory.weights_bytes[0] == pytest.approx(layers / 2 + table_bytes + norms_final, rel=1e-12)
    assert two.metrics.devices[0] == 2


def test_pipeline_schedule_by_hand() -> None:
    """pp = 2, B = 1: one micro-batch crosses both stages: TTFT = both stages' passes + 1 send, and a decode
    step likewise (the first stage holds the embedding, so the busiest stage is half the layers + the head).
    B = 4: m = 2 micro-batches of 2: TTFT = one trip + 1 more pass of the busiest stage; a decode step is the
    larger of one trip and 2 busiest passes."""
    rec = load_model("llama-3.1-8b").record
    for batch in (1, 4):
        ev = reference(**BASE, pp=2, batch=batch)
        prefill_comm, decode_comm = ev.communication
        outside = ("embedding", "final_norm", "lm_head")
        layers_s = sum(op.time_s for op in ev.operators[0] if op.name not in outside)  # half the layers
        other_s = sum(op.time_s for op in ev.operators[0] if op.name in outside)
        trip = 2 * layers_s + other_s + prefill_comm.pp_send_s
        busiest = layers_s + other_s
        m = min(batch, 2)
        assert ev.prefill.time_s == pytest.approx(trip + (m - 1) * busiest, rel=1e-12)
        assert ev.layout.micro_batches == m
        micro = -(-batch // m)
        assert prefill_comm.pp_send_bytes == micro * 512 * rec.hidden_size * BF16
        link = load_target("dgx-h100")[1]
        assert link is not None  # ideal profile: no latency; both stages inside one node
        assert prefill_comm.pp_send_s == pytest.approx(
            prefill_comm.pp_send_bytes / link.intra_node_link.bandwidth_bytes_per_s
        )
        assert decode_comm.pp_send_s > 0
    single = score(**BASE, pp=1, batch=1)
    one_stage = score(**BASE, pp=2, batch=1)
    # one sequence: pipelining adds the send and nothing else (the same work, stage after stage)
    assert one_stage.metrics.tpot_s[0] == pytest.approx(
        single.metrics.tpot_s[0] + one_stage.evaluation.communication[1].pp_send_s[0], rel=1e-9
    )


def test_pipeline_sends_cross_nodes_only_between_nodes() -> None:
    """tp = 4, pp = 4 on 8-GPU nodes: stages 1-2 and 3-4 share a node; one of the 3 boundaries is InfiniBand."""
    scored = score(**dict(BASE, model="llama-3.1-70b"), tp=4, pp=4, batch=1)
    assert scored.evaluation is not None
    send = scored.evaluation.communication[1]
    _, system = load_target("dgx-h100")
    assert system is not None and system.inter_node_link is not None
    size = send.pp_send_bytes[0]
    expected = (
        size / system.inter_node_link.bandwidth_bytes_per_s + 2 * size / system.intra_node_link.bandwidth_bytes_per_s
    )
    assert send.pp_send_s[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # Llama-3.1-70B bf16 (~141 GB of weights) does not fit one 80 GB device; TP=2 holds it at batch 1
        # (vLLM and TensorRT-LLM serve it at TP >= 2 on 80 GB GPUs; TP 4-8 for real batches)
        (dict(model="llama-3.1-70b", hardware="dgx-h100", quant="bf16", tp=1), Reason.WEIGHTS_EXCEED_MEMORY),
        (dict(model="llama-3.1-70b", hardware="dgx-h100", quant="bf16", tp=2), Reason.OK),
        # Llama-3.1-405B: ~810 GB of bf16 weights exceed one 8x H100 node (640 GB) but fit 8x H200 (1128 GB);
        # Meta released an FP8 version "to run on a single server node" of 8x H100 (Llama 3.1 release,
        # ai.meta.com/blog/meta-llama-3-1, July 2024; Llama 3 paper arXiv 2407.21783 §6.2)
        (dict(model="llama-3.1-405b", hardware="dgx-h100", quant="bf16", tp=8), Reason.WEIGHTS_EXCEED_MEMORY),
        (dict(model="llama-3.1-405b", hardware="dgx-h200", quant="bf16", tp=8), Reason.OK),
        (dict(model="llama-3.1-405b", hardware="dgx-h100", quant="fp8", tp=8), Reason.OK),
        # bf16 across two 8x H100 nodes (tp 8 x pp 2, the common multi-node recipe)
        (dict(model="llama-3.1-405b", hardware="dgx-h100", quant="bf16", tp=8, pp=2), Reason.OK),
        # DeepSeek-V3 (671B, fp8 weights as released) on one 8x H200 node (SGLang's published recipe)
        (dict(model="deepseek-v3", hardware="dgx-h200", quant="fp8", tp=8), Reason.OK),
        (dict(model="deepseek-v3", hardware="dgx-h100", quant="fp8", tp=8), Reason.WEIGHTS_EXCEED_MEMORY),
    ],
)
def test_fits_where_published_deployments_run(row: dict[str, Any], expected: Reason) -> None:
    scored = score("default", **row, batch=1, prompt_len=1024, gen_len=256)
    assert reason(scored) == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (dict(model="llama-3.1-70b", hardware="dgx-h100", tp=3), Reason.TP_HEADS),  # 64 heads
        (dict(model="llama-3.1-70b", hardware="h100-sxm", tp=2), Reason.EXCEEDS_SYSTEM),  # bare accelerator
        (dict(model="llama-3.1-70b", hardware="dgx-h100", ep=2), Reason.EP_INVALID),  # dense model
        (dict(model="deepseek-v3", hardware="dgx-h100", tp=8, ep=12), Reason.EP_INVALID),  # 256 % 12, 12 % 8
        (dict(model="llama-3.1-8b", hardware="dgx-h100", pp=33), Reason.PP_LAYERS),  # 32 layers
        (dict(model="llama-3.1-8b", hardware="gb200-nvl72", tp=8, pp=10), Reason.EXCEEDS_SYSTEM),  # 80 > 72
        (dict(model="llama-3.1-8b", hardware="rtx-4090-workstation", tp=8, pp=2), Reason.EXCEEDS_SYSTEM),
        (dict(model="llama-3.1-8b", hardware="h100-sxm", kv_offload=0.5), Reason.NO_HOST_OFFLOAD),
    ],
)
def test_invalid_splits_are_infeasible_with_a_reason(row: dict[str, Any], expected: Reason) -> None:
    assert reason(score(**row, batch=1)) == expected


def test_replicas_scale_throughput_devices_and_cost_not_latency() -> None:
    one, three = score("default", **BASE, tp=2, batch=8), score("default", **BASE, tp=2, batch=8, replicas=3)
    m1, m3 = one.metrics, three.metrics
    assert m3.devices[0] == 3 * m1.devices[0] == 6
    assert m3.throughput_tokens_per_s[0] == pytest.approx(3 * m1.throughput_tokens_per_s[0])
    assert m3.usd_per_hour[0] == pytest.approx(3 * m1.usd_per_hour[0])
    for same in ("ttft_s", "tpot_s", "usd_per_million_tokens", "joules_per_token", "memory_per_device_bytes"):
        assert getattr(m3, same)[0] == pytest.approx(getattr(m1, same)[0])


def test_paged_blocks_round_kv_up_to_whole_blocks() -> None:
    """Context 512 + 65 = 577 tokens: 37 blocks of 16 = 592 slots per sequence and layer."""
    exact = score(**dict(BASE, gen_len=65))
    paged = score(**dict(BASE, gen_len=65), kv_block_size=16)
    assert paged.memory.kv_cache_bytes[0] == pytest.approx(exact.memory.kv_cache_bytes[0] * 592 / 577)


def test_prefix_hits_skip_prefill_rows_and_keep_kv_memory() -> None:
    cold, warm = score(**BASE, batch=2), score(**BASE, batch=2, prefix_hit_rate=0.75)
    full = score(**BASE, batch=2, prefix_hit_rate=1.0)
    h = load_model("llama-3.1-8b").record.hidden_size
    q_proj = [
        next(op for op in reference(**BASE, batch=2, prefix_hit_rate=hit).operators[0] if op.name == "q_proj")
        for hit in (0.75, 1.0)
    ]
    assert q_proj[0].flops == 2 * (2 * 128) * h * h  # 384 of 512 tokens cached: 128 rows per sequence
    assert q_proj[1].flops == 2 * 2 * h * h  # the last prompt token is always recomputed
    assert warm.memory.kv_cache_bytes[0] == cold.memory.kv_cache_bytes[0]
    assert full.metrics.ttft_s[0] < warm.metrics.ttft_s[0] < cold.metrics.ttft_s[0]
    assert warm.metrics.tpot_s[0] == cold.metrics.tpot_s[0]


@pytest.mark.parametrize("window", [np.inf, 64.0, 300.0, 1000.0])
@pytest.mark.parametrize(("prompt", "cached"), [(1, 0), (100, 0), (777, 0), (777, 500), (4096, 4000), (513, 1)])
def test_tile_kv_reads_with_a_cached_prefix_match_brute_force(prompt: int, cached: int, window: float) -> None:
    block = 128
    total = 0
    for first in range(cached + 1, prompt + 1, block):
        last = min(first + block - 1, prompt)
        start = 1 if not np.isfinite(window) else max(1, first - int(window) + 1)
        total += last - start + 1
    got = tile_kv_reads(np.asarray([float(prompt)]), window, np.asarray([float(block)]), np.asarray([float(cached)]))
    assert got[0] == total


def test_kv_budget_caps_kv_memory_and_attended_context() -> None:
    """Context 512 + 64: a 256-token budget keeps 256 of 576 tokens per layer; decode gets no slower."""
    full, capped = score(**BASE, batch=8), score(**BASE, batch=8, kv_budget=256)
    assert capped.memory.kv_cache_bytes[0] == pytest.approx(full.memory.kv_cache_bytes[0] * 256 / 576)
    assert capped.metrics.tpot_s[0] < full.metrics.tpot_s[0]
    assert capped.metrics.ttft_s[0] == full.metrics.ttft_s[0]


def test_host_offload_moves_kv_to_host_and_reads_it_over_the_host_link() -> None:
    row = dict(BASE, model="llama-3.1-70b", tp=8, batch=16, prompt_len=8192)
    local, half = score(**row), score(**row, kv_offload=0.5)
    assert half.memory.kv_cache_bytes[0] == pytest.approx(local.memory.kv_cache_bytes[0] / 2)
    assert half.memory.host_kv_cache_bytes[0] == pytest.approx(local.memory.kv_cache_bytes[0] / 2)
    assert half.metrics.tpot_s[0] > local.metrics.tpot_s[0]
    assert reason(half) == Reason.OK
    # dgx-h100: 2 TB of host memory over 8 GPUs = 256 GB per device
    assert half.memory.host_capacity_bytes[0] == pytest.approx(2048e9 / 8)
    # prefill copies the offloaded half of the new KV entries to the host over PCIe 5 x16 (64 GB/s):
    # 16 sequences x 8192 tokens x 80 layers x (2 x 8 KV heads x 128) x 2 bytes / tp 8, half of it
    written = 16 * 8192 * 80 * 2 * 8 * 128 * BF16 / 8 * 0.5
    assert half.metrics.ttft_s[0] == pytest.approx(local.metrics.ttft_s[0] + written / 64e9, rel=1e-9)


def test_expert_parallel_shares_experts_and_adds_the_all_to_all() -> None:
    """DeepSeek-V3 fp8, ep = 8 with data-parallel attention (tp = 1): each device holds 32 of 256 experts and
    all attention weights; per MoE layer a dispatch and a combine of (B/ep) x k token copies of h values."""
    row = dict(model="deepseek-v3", hardware="dgx-h200", quant="fp8", batch=16, prompt_len=512, gen_len=64)
    scored = score(**row, tp=1, ep=8, expert_imbalance=1.25)
    assert scored.evaluation is not None
    lay = scored.evaluation.layout
    assert lay.attention_dp[0] == 8 and lay.group_batch[0] == 2 and scored.metrics.devices[0] == 8
    model = load_model("deepseek-v3")
    moe = model.record.moe
    assert moe is not None
    decode = scored.evaluation.communication[1]
    # ρ: the skew 1.25 times chance's over 16 rows, each choosing 8 of 256 experts, on 8 devices (moe.routing_imbalance)
    z8 = NormalDist().inv_cdf((8 - 0.375) / (8 + 0.25))
    chance = 1 + z8 * math.sqrt((256 - 8) / (16 * 255))  # μ = 16 copies a device
    copies = 16 / 8 * moe.experts_per_token * 1.25 * chance * model.record.hidden_size
    sent = copies * (1.0 + 2.0)  # dispatch in fp8 (the activation format), combine in bf16
    assert decode.ep_all_to_all_bytes[0] == pytest.approx(model.num_moe_layers * sent * 7 / 8)
    assert decode.tp_all_reduce_s[0] == 0
    within_tp = score(**row, tp=8, ep=8).evaluation  # ep = tp: every rank has every token, nothing dispatched
    assert within_tp is not None and within_tp.communication[1].ep_all_to_all_s[0] == 0
    tp8 = score(**row, tp=8)
    assert scored.memory.weights_bytes[0] > tp8.memory.weights_bytes[0]  # attention replicated 8 times


def test_a_stage_may_leave_devices_of_a_node_idle() -> None:
    """DeepSeek-V3 expert-parallel over 32 of the 72 GPUs of one GB200 NVL72 rack: one NVLink domain, no
    inter-node traffic; 5 stages of 16 would need 2 racks (4 whole stages per rack), which the system caps."""
    row = dict(model="deepseek-v3", hardware="gb200-nvl72", quant="fp8", batch=64, prompt_len=1024, gen_len=128)
    wide = score(**row, tp=1, ep=32)
    assert reason(wide) == Reason.OK and wide.metrics.devices[0] == 32
    assert reason(score(**dict(row, model="llama-3.1-8b"), tp=16, pp=5)) == Reason.EXCEEDS_SYSTEM


def test_eviction_flag_only_when_tokens_the_model_attends_to_are_dropped() -> None:
    from dse.costmodel import evicts

    windowed = architecture(load_model("mistral-7b-v0.1"))  # every layer keeps a 4096-token window
    assert not evicts(windowed, 4096, 6000) and evicts(windowed, 2048, 6000)
    full = architecture(load_model("llama-3.1-8b"))
    assert evicts(full, 4096, 6000) and not evicts(full, 6000, 6000) and not evicts(full, None, 6000)


def test_one_token_over_eight_devices_makes_the_busiest_read_more_experts() -> None:
    """DeepSeek-V3 at batch 1 over ep = 8: one token's 8 copies land on 8 devices of 32 experts each, one each on
    average, but the busiest device receives about 2.4 (ρ = 1 + z_8 √(248 / (μ x 255)), μ = 1, z_8 = 1.434) and
    reads as many experts (distinct, as a token's copies are), which the step waits for; at batch 256 chance adds
    9 %."""
    from dse.costmodel.physics import parallel
    from dse.costmodel.physics.passes import decode_pass

    arch = architecture(load_model("deepseek-v3"))
    row = dict(model="deepseek-v3", hardware="dgx-h200", quant="fp8", prompt_len=512, gen_len=64, tp=8, ep=8)
    z8 = NormalDist().inv_cdf((8 - 0.375) / (8 + 0.25))
    for batch in (1, 256):
        rho = 1 + z8 * math.sqrt(248 / (batch * 255))
        c = candidates(dict(row, batch=batch))
        lay = parallel.layout(arch, c.batch, c.tp, c.pp, c.ep, c.devices_per_node, c.expert_imbalance)
        step = decode_pass(arch, c, lay, 512.0)
        assert step.s_ef[0] == pytest.approx(rho / 8)  # the busiest device's copies, relative to the batch
        assert step.u[0] == pytest.approx(max(1 - (1 - 8 / 256) ** (rho * batch), rho * 8 / 256))
        assert batch == 256 or 32 * step.u[0] == pytest.approx(rho)  # at batch 1: one expert a copy


def test_expert_imbalance_is_capped_at_what_routing_allows() -> None:
    """Mixtral (8 experts, top-2) over ep = 8: one device holds one expert, which a token uses at most once,
    so the busiest device receives at most 8 x 1 / 2 = 4x the mean of routed copies."""
    row = dict(model="mixtral-8x7b", hardware="dgx-h100", quant="bf16", tp=1, ep=8, batch=64)
    at_cap, beyond = score(**row, expert_imbalance=4.0), score(**row, expert_imbalance=50.0)
    assert beyond.metrics.tpot_s[0] == at_cap.metrics.tpot_s[0]
    assert score(**row, expert_imbalance=2.0).metrics.tpot_s[0] < at_cap.metrics.tpot_s[0]


def test_exactly_full_is_feasible() -> None:
    """A context of exactly max_position_embeddings fits, one more token does not; memory filled to the byte
    fits, one byte short does not (the checks are strict inequalities)."""
    import dataclasses

    from dse.costmodel import evaluate

    fits = score(**dict(BASE, model="llama-2-7b", hardware="h100-sxm", prompt_len=4000, gen_len=96))
    over = score(**dict(BASE, model="llama-2-7b", hardware="h100-sxm", prompt_len=4000, gen_len=97))
    assert reason(fits) == Reason.OK and reason(over) == Reason.CONTEXT_TOO_LONG
    for gen_len, feasible in ((96, True), (97, False)):  # the reference evaluator, the same
        assert analyze("llama-2-7b", "h100-sxm", prompt_len=4000, gen_len=gen_len).to_dict()["feasible"] is feasible
    row = dict(BASE, hardware="h100-sxm", kv_offload=0.5)
    arch = architecture(load_model(row["model"]))
    c = dataclasses.replace(candidates(row), memory_utilization=np.ones(1), host_memory_bytes=np.full(1, 1e12))
    mem = evaluate_reference(arch, c.row(0)).memory
    cases = {
        float(mem.total_bytes): Reason.OK,
        float(mem.weights_bytes + mem.reserve_bytes): Reason.MEMORY_EXCEEDED,
        float(np.nextafter(mem.weights_bytes + mem.reserve_bytes, 0)): Reason.WEIGHTS_EXCEED_MEMORY,
    }
    for memory_bytes, expected in cases.items():
        exact = dataclasses.replace(
            c, memory_bytes=np.full(1, memory_bytes), host_memory_bytes=mem.host_kv_cache_bytes * np.ones(1)
        )
        assert evaluate_reference(arch, exact.row(0)).metrics.reason == expected
        assert evaluate(arch, exact).metrics.reason[0] == expected
    short = dataclasses.replace(c, host_memory_bytes=np.full(1, np.nextafter(float(mem.host_kv_cache_bytes), 0)))
    assert evaluate_reference(arch, short.row(0)).metrics.reason == Reason.HOST_MEMORY_EXCEEDED


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        ("nvswitch-nvlink4", "nvlink-sharp"),
        ("nvswitch-nvlink5", "nvlink-sharp"),
        ("nvlink5-switch", "nvlink-sharp"),
        ("nvswitch-nvlink3", "nvlink"),  # A100's NVSwitch: no in-switch reduction
        ("nvlink3-bridge", "nvlink"),
        ("infiniband-ndr", "infiniband"),
        ("connectx-8", "infiniband"),
        ("roce-200g-x3", "roce"),
        ("pcie4-via-host", "pcie"),
        ("pcie5-x16", "pcie"),
        ("infinity-fabric", "infinity-fabric"),
        ("ici-2d-torus", "ici"),
        ("dcn", "other"),
    ],
)
def test_a_link_kind_belongs_to_a_family(kind: str, family: str) -> None:
    from dse.catalog import link_family

    assert link_family(kind) == family


@pytest.mark.parametrize(
    ("target", "tp", "intra", "inter"),
    [
        # NVSwitch: all-reduces at the line rate (NVLink SHARP); InfiniBand NDR: 47 of 50 GB/s
        ("dgx-h100", 8, 450e9 * 1.0, 50e9 * 0.94),
        # A100's NVSwitch reduces nothing itself: NCCL's ring, 232.5 of 300 GB/s
        ("dgx-a100", 8, 300e9 * 0.78, 25e9 * 0.94),
        # xGMI: about 48 of 64 GB/s a link (AMD's RCCL note), over the 448 GB/s of seven links
        ("mi300x-platform", 8, 448e9 * 0.75, None),
        # PCIe through the host: bound by what the CPU and memory deliver, half the link
        ("l40s-server", 4, 31.5e9 * 0.5, None),
    ],
)
def test_collectives_get_their_link_family_s_share_of_the_nominal_bandwidth(
    target: str, tp: int, intra: float, inter: float | None
) -> None:
    row = {"model": "llama-3.1-8b", "hardware": target, "tp": tp}
    cand = candidates(row)
    assert cand.intra_link_bytes_per_s[0] == pytest.approx(intra, rel=1e-12)
    if inter is not None:
        assert cand.inter_link_bytes_per_s[0] == pytest.approx(inter, rel=1e-12)
    ideal = candidates(row, profile="ideal")  # the pure roofline keeps the nominal figures
    _, system = load_target(target)
    assert system is not None
    assert ideal.intra_link_bytes_per_s[0] == system.intra_node_link.bandwidth_bytes_per_s
    # the tensor-parallel all-reduce's bandwidth term scales with 1 / efficiency: the ideal profile's is the
    # bytes over the nominal bandwidth alone; the default adds (1 / efficiency - 1) of it and its latencies
    default, pure = (analyze("llama-3.1-8b", target, tp=tp, batch=8, profile=p) for p in ("default", "ideal"))
    comm, nominal = pure.evaluation.communication[0], system.intra_node_link.bandwidth_bytes_per_s
    assert comm.tp_all_reduce_s == pytest.approx(comm.tp_all_reduce_bytes / nominal, rel=1e-9)
    extra = default.evaluation.communication[0].tp_all_reduce_s - comm.tp_all_reduce_s
    slower = comm.tp_all_reduce_bytes * (1 / intra - 1 / nominal)
    # what remains is the latencies: the same count of collectives on every target (66 for Llama-3.1-8B), each at
    # the link's own latency (the MI300X platform's measured 14 us) or the profile's (8 us)
    assert (extra - slower) / cand.intra_link_latency_s[0] == pytest.approx(66, abs=0.2)


def test_a_link_s_measured_latency_replaces_the_profile_s_but_not_in_the_pure_roofline() -> None:
    """The MI300X platform's Infinity Fabric gives its measured small-message all-reduce (14 µs, rccl-tests on
    eight MI300X), which every profile charges but the pure roofline; a link without one takes the profile's
    (8 µs by default)."""
    row = {"model": "llama-3.1-70b", "tp": 8}
    assert candidates(row | {"hardware": "mi300x-platform"}).intra_link_latency_s[0] == pytest.approx(14e-6)
    assert candidates(row | {"hardware": "mi300x-platform"}, profile="ideal").intra_link_latency_s[0] == 0.0
    assert candidates(row | {"hardware": "dgx-h100"}, profile="default").intra_link_latency_s[0] == pytest.approx(8e-6)


def test_all_to_alls_and_sends_get_the_transfer_share_where_the_switch_reduces() -> None:
    """Through a Hopper NVSwitch an all-reduce reaches the line rate (NVLink SHARP) and an all-to-all or a
    pipeline send ~370 of 450 GB/s (nccl-tests#212): the expert-parallel all-to-all's and the pipeline send's
    bandwidth terms are the bytes over 0.82 x 450 GB/s; on A100's NVSwitch both kinds get 0.78 of 300."""
    for target, nominal, reduce, transfer in (("dgx-h100", 450e9, 1.0, 0.82), ("dgx-a100", 300e9, 0.78, 0.78)):
        cand = candidates({"model": "deepseek-v3", "hardware": target, "tp": 1, "ep": 8})
        assert cand.intra_transfer_share[0] == pytest.approx(transfer / reduce, rel=1e-12)
        assert cand.inter_transfer_share[0] == 1.0  # InfiniBand: one figure for both
        flags = {"batch": 64, "prompt_len": 512, "gen_len": 64, "quant": "fp8"}
        moe = analyze("deepseek-v3", target, tp=1, ep=8, pp=1, **flags, profile="default")
        pure = analyze("deepseek-v3", target, tp=1, ep=8, pp=1, **flags, profile="ideal")
        comm, ideal = moe.evaluation.communication[0], pure.evaluation.communication[0]
        assert comm.ep_all_to_all_bytes == pytest.approx(ideal.ep_all_to_all_bytes, rel=1e-12)
        latencies = comm.ep_all_to_all_s - comm.ep_all_to_all_bytes / (nominal * transfer)
        assert 0 <= latencies < 1e-3  # what remains is the link latencies, two a MoE layer
        assert ideal.ep_all_to_all_s == pytest.approx(ideal.ep_all_to_all_bytes / nominal, rel=1e-9)
        piped = analyze("llama-3.1-8b", target, tp=2, pp=2, batch=8, profile="default").evaluation.communication[0]
        assert piped.pp_send_s - piped.pp_send_bytes / (nominal * transfer) == pytest.approx(8e-6, rel=1e-6)
