"""The reference evaluator: the cost model of docs/cost-model.md, one candidate at a time, plainly.

It composes the functions of ``dse.costmodel.physics`` and nothing else: every operator of prefill, every
operator at every generated position (numpy over the positions, no closed forms), then collectives, the
pipeline schedule, memory and feasibility. The fast engine (``dse.costmodel.engine``) must give the same
numbers; ``tests/costmodel/test_equivalence.py`` checks that it does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.costmodel.candidates import Candidates
from dse.costmodel.physics import batching, collectives, kvcache, memory, parallel, schedule, serving, speculative
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.evaluation import Evaluation, OperatorCost, PhaseCost
from dse.costmodel.physics.feasibility import infeasibility
from dse.costmodel.physics.layers import pass_operators, stored_weight_parts
from dse.costmodel.physics.operators import Operator
from dse.costmodel.physics.passes import decode_pass, prefill_pass
from dse.costmodel.physics.roofline import attainable, compute_time_s, memory_time_s, roofline_s


class _Device:
    """The rates one candidate's device attains: FLOP/s per peak kind, bytes/s, per-kernel overhead."""

    def __init__(self, c: Candidates) -> None:
        self.flops_per_s = {
            "matmul": attainable(c.matmul_flops_per_s, c.matmul_efficiency),
            "matmul16": attainable(c.matmul16_flops_per_s, c.compute_efficiency),
            "vector": attainable(c.vector_flops_per_s, c.compute_efficiency),
        }
        self.attention_roof = "matmul16" if c.attention_16bit else "matmul"
        self.flops_per_s["attn_linear"] = self.flops_per_s[self.attention_roof]
        self.bytes_per_s = attainable(c.bandwidth_bytes_per_s, c.bandwidth_efficiency)
        self.overhead_s = c.kernel_overhead_s
        self.fused = bool(c.flash)


Costed = list[tuple[Operator[Any], OperatorCost, Any]]
"""Each operator that runs, its cost on the busiest stage, and its time per instance (roofline + overhead)."""


def _costs(ops: list[Operator[Any]], dev: _Device, lam: float, host_extra: float) -> Costed:
    """The roofline of each operator that runs (per-layer ones: λ of their instances on the busiest stage);
    only KV-cache reads pay the host link."""
    out = []
    for op in ops:
        if not op.runs_with(dev.fused):
            continue
        compute_s = compute_time_s(op.flops, dev.flops_per_s[op.kind])
        if op.reads_kv_cache:
            memory_s = memory_time_s(op.memory_bytes, dev.bytes_per_s, op.kv_bytes, host_extra)
        else:
            memory_s = memory_time_s(op.memory_bytes, dev.bytes_per_s)
        unit_s = roofline_s(compute_s, memory_s) + dev.overhead_s
        count = op.count * (lam if op.per_layer else 1.0)
        cost = OperatorCost(
            op.name,
            count,
            op.flops,
            op.weight_bytes,
            op.act_bytes,
            op.kv_bytes,
            compute_s,
            memory_s,
            count * unit_s,
            dev.attention_roof if op.kind == "attn_linear" else op.kind,
        )
        out.append((op, cost, unit_s))
    return out


def _pass_time(costs: Costed) -> tuple[Any, Any]:
    """(all layers' operators on one device of each stage, the operators outside the layers)."""
    layers = sum((op.count * unit_s for op, _, unit_s in costs if op.per_layer), 0.0)
    other = sum((op.count * unit_s for op, _, unit_s in costs if not op.per_layer), 0.0)
    return layers, other


def _phase_totals(costs: Costed, passes: float) -> tuple[float, float]:
    """FLOPs and bytes of the busiest stage's device over its ``passes`` micro-batch passes."""
    flops = sum(cost.count * cost.flops for _, cost, _ in costs)
    nbytes = sum(cost.count * (cost.weight_bytes + cost.act_bytes + cost.kv_bytes) for _, cost, _ in costs)
    return passes * flops, passes * nbytes


def _pass_parts(arch: Architecture, c: Candidates, p: Any) -> tuple[Any, Any, Any]:
    """(all layers' time, the time outside them, the largest bytes one operator holds) of pass ``p``, its reads
    of the KV cache (a mixed step's decoding sequences) paying the host link as a decode step's do."""
    dev = _Device(c)
    lay = parallel.layout(arch, c.batch, c.tp, c.pp, c.ep, c.devices_per_node, c.expert_imbalance)
    ops = [op for op in pass_operators(arch, p) if op.runs_with(dev.fused)]
    host_extra = kvcache.host_read_extra_s_per_byte(c.kv_offload_fraction, c.host_link_bytes_per_s, dev.bytes_per_s)
    layers, other = _pass_time(_costs(ops, dev, lay.layer_share, host_extra))
    return layers, other, max(op.held_bytes for op in ops)


def evaluate(arch: Architecture, c: Candidates) -> Evaluation:
    """Everything the cost model says about candidate ``c`` (``Candidates.row``: every field a float)."""
    if c.continuous or c.disaggregated:
        return batching.evaluate(arch, c, lambda s: evaluate(arch, s), lambda s, p: _pass_parts(arch, s, p))
    dev = _Device(c)
    lay = parallel.layout(arch, c.batch, c.tp, c.pp, c.ep, c.devices_per_node, c.expert_imbalance)
    lam, m, o = lay.layer_share, lay.micro_batches, c.comm_overlap
    host_extra = kvcache.host_read_extra_s_per_byte(c.kv_offload_fraction, c.host_link_bytes_per_s, dev.bytes_per_s)

    # prefill: one pass over the prompt's new tokens
    cached = kvcache.prefix_cached_tokens(c.prefix_hit_rate, c.prompt_len)
    prefill = prefill_pass(arch, c, lay, cached)
    prefill_ops = pass_operators(arch, prefill)
    prefill_costs = _costs(prefill_ops, dev, lam, 0.0)
    prefill_layers_s, prefill_other_s = _pass_time(prefill_costs)

    # decode: every generated position j = 1..n attends P + j keys (n = G - 1; with G = 1 the step after
    # the prompt stands in), then the mean; and the one step at P keys
    steps = float(np.maximum(c.gen_len - 1.0, 1.0))
    positions = c.prompt_len + np.arange(1.0, steps + 1.0)
    every = _costs(pass_operators(arch, decode_pass(arch, c, lay, positions)), dev, lam, host_extra)
    layers_j, other_j = _pass_time(every)
    step_costs = _costs(pass_operators(arch, decode_pass(arch, c, lay, c.prompt_len)), dev, lam, host_extra)
    step_layers_s, step_other_s = _pass_time(step_costs)

    # collectives and the offloaded KV entries prefill copies to the host
    rates = collectives.rates_for(c, lay)
    a = prefill.a
    comm_prefill = collectives.communication(arch, lay, rates, c.tp, c.ep, c.pp, a, c.prompt_len - cached)
    comm_decode = collectives.communication(arch, lay, rates, c.tp, c.ep, c.pp, a, 1.0)
    # new K/V entries of all layers (a prefill of its own reads no cache: attention's cache bytes are 0)
    written = sum(op.count * op.kv_bytes for op in prefill_ops if op.per_layer and not op.reads_kv_cache)
    host_bytes, host_s = kvcache.host_write_s(c.kv_offload_fraction, written, c.host_link_bytes_per_s)

    ttft = schedule.phase_time_s(prefill_layers_s + host_s, prefill_other_s, comm_prefill, lam, m, o, decode=False)
    tpot = schedule.phase_time_s(np.mean(layers_j), np.mean(other_j), comm_decode, lam, m, o, decode=True)
    step_s = schedule.phase_time_s(step_layers_s, step_other_s, comm_decode, lam, m, o, decode=True)

    # memory per device
    weights = memory.weights_per_device(*stored_weight_parts(prefill_ops), c.pp, lam)
    largest = max(op.held_bytes for op in prefill_ops if op.runs_with(dev.fused))
    mem = memory.device_memory(arch, c, lay, prefill, weights, largest)

    # feasibility, in the documented order (``feasibility.CHECK_ORDER``)
    split_rules = parallel.split_conditions_for(arch, c, lay)
    split = parallel.split_reason(parallel.divisibility_reason(arch, c.tp, c.ep), split_rules)
    reason = int(infeasibility(c.format_supported, split, c.prompt_len + c.gen_len, arch.max_position_embeddings, mem))
    metrics = serving.metrics_for(c, lay.devices, ttft, tpot, mem.total_bytes, reason)
    evaluation = Evaluation(
        prefill=PhaseCost(*_phase_totals(prefill_costs, m), ttft),
        decode_step=PhaseCost(*_phase_totals(step_costs, m), step_s),
        tpot_s=tpot,
        memory=mem,
        layout=lay,
        communication=(comm_prefill, comm_decode),
        host_kv_write_bytes=lam * host_bytes,
        host_kv_write_s=lam * host_s,
        metrics=metrics,
        operators=(tuple(cost for _, cost, _ in prefill_costs), tuple(cost for _, cost, _ in step_costs)),
    )
    return speculative.apply(arch, c, evaluation, lambda s, p: _pass_parts(arch, s, p))
