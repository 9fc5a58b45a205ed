"""The fast engine: N candidates of one model scored at once, with the physics of ``dse.costmodel.physics``
and nothing of its own but speed (tables of coefficients, blocked evaluation, closed-form sums over decode
positions, per-chunk shortcuts that change no number). The reference evaluator gives the same numbers one
candidate at a time (``tests/costmodel/test_equivalence.py``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.costmodel.candidates import Candidates
from dse.costmodel.engine.decode import AttentionTables, GroupLines, decode_attention
from dse.costmodel.engine.forms import symbol_values, symbolic_pass
from dse.costmodel.engine.tables import OperatorTable, Rates, evaluate_table, pass_totals
from dse.costmodel.physics import batching, collectives, kvcache, memory, parallel, schedule, serving, speculative
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.continuous import ContinuousServing
from dse.costmodel.physics.evaluation import DecodeEvaluation, Evaluation, PhaseCost
from dse.costmodel.physics.feasibility import infeasibility
from dse.costmodel.physics.layers import pass_operators
from dse.costmodel.physics.operators import Operator
from dse.costmodel.physics.passes import decode_pass, prefill_pass
from dse.costmodel.physics.roofline import attainable


def _variants(ops: list[Operator[Any]]) -> dict[str, OperatorTable]:
    """The table of ``ops`` for chunks of one kernel kind (the other kind's operators left out: their rows
    would be zero), and, masked, for mixed chunks: all operators, or each kind's."""
    fused = [op for op in ops if op.runs != "unfused"]
    unfused = [op for op in ops if op.runs != "fused"]
    return {
        "fused": OperatorTable.compile(fused, masks=False),
        "unfused": OperatorTable.compile(unfused, masks=False),
        "mixed": OperatorTable.compile(ops, masks=True),
        "fused+masks": OperatorTable.compile(fused, masks=True),
        "unfused+masks": OperatorTable.compile(unfused, masks=True),
    }


@dataclass(frozen=True)
class ModelTables:
    """A model's operator tables, compiled once and reused for every chunk of candidates."""

    prefill: dict[str, OperatorTable]
    """Every prefill operator, by the chunk's kernels (``kernels_of``)."""
    mixed: dict[str, OperatorTable]
    """The same for a continuous-batching step, whose attention also reads the cache (``passes.mixed_pass``)."""
    context_free: OperatorTable
    """Decode operators whose cost does not depend on the context (all but attention)."""
    attention: AttentionTables
    """Decode attention operators per group."""
    divisibility: NDArray[np.int8]
    """``parallel.divisibility_reason`` per (tp, ep), degrees 0..limit (a larger degree divides nothing: it
    takes the last row or column, which fails every rule)."""


@functools.lru_cache(maxsize=64)
def compile_model(arch: Architecture) -> ModelTables:
    """The tables of ``arch``, compiled once per architecture."""
    decode = pass_operators(arch, symbolic_pass(arch, decode=True))
    groups = []
    for group, _, span in arch.attention_groups:
        variants = _variants([op for op in decode if op.group == group])
        splits = {kind: GroupLines.of(table, group) for kind, table in variants.items()}
        groups.append((group, float(span), variants, splits))
    context_free = OperatorTable.compile([op for op in decode if op.group is None], masks=False)
    prefill = _variants(pass_operators(arch, symbolic_pass(arch, decode=False)))
    mixed = _variants(pass_operators(arch, symbolic_pass(arch, decode=False, mixed=True)))
    limit = max(arch.num_attention_heads, arch.moe.num_experts if arch.moe else 1) + 1
    degrees = np.arange(limit + 1, dtype=np.float64)
    degrees[0] = 1.0
    table = parallel.divisibility_reason(arch, degrees[:, None], degrees[None, :])
    return ModelTables(prefill, mixed, context_free, tuple(groups), np.broadcast_to(table, (limit + 1, limit + 1)))


def kernels_of(c: Candidates) -> str:
    """``fused`` / ``unfused`` when every candidate of the chunk uses that attention, else ``mixed``."""
    if np.all(c.flash):
        return "fused"
    return "mixed" if np.any(c.flash) else "unfused"


def rates_of(c: Candidates) -> Rates:
    """Attained FLOP/s per peak (rows of ``PEAKS``), bytes/s and per-kernel overhead: peaks x the profile's
    efficiencies."""
    peaks = np.stack([c.matmul_flops_per_s, c.matmul16_flops_per_s, c.vector_flops_per_s])
    efficiency = np.stack([c.matmul_efficiency, c.compute_efficiency, c.compute_efficiency])
    roofs = attainable(peaks, efficiency)
    attention = np.where(c.attention_16bit, roofs[1], roofs[0])  # ``attn_linear``: matmul16's or matmul's roof
    bandwidth = attainable(c.bandwidth_bytes_per_s, c.bandwidth_efficiency)
    return Rates(np.concatenate([roofs, attention[None]]), bandwidth, c.kernel_overhead_s)


def evaluate(
    arch: Architecture, c: Candidates, tables: ModelTables | None = None, *, totals: bool = True
) -> Evaluation:
    """Score every candidate (vectorised, no Python loop over candidates). ``totals`` False leaves the phases'
    FLOPs and bytes and the one-step decode figure NaN (a search needs only TTFT, TPOT and memory)."""
    tables = tables or compile_model(arch)
    if np.any(np.logical_or(c.continuous, c.disaggregated)):
        return _continuous(arch, c, tables, totals)
    rates = rates_of(c)
    fused = c.flash.astype(np.float64)
    lay = parallel.layout(arch, c.batch, c.tp, c.pp, c.ep, c.devices_per_node, c.expert_imbalance)
    lam, m, o = lay.layer_share, lay.micro_batches, c.comm_overlap
    cached: Any = kvcache.prefix_cached_tokens(c.prefix_hit_rate, c.prompt_len)
    if not np.any(cached):
        cached = 0.0  # no hits in this chunk: the prefill formulas' cached terms vanish

    kernels = kernels_of(c)
    prefill = prefill_pass(arch, c, lay, cached)
    table = tables.prefill[kernels]
    prefill_values = table.values(symbol_values(prefill, fused), len(c))
    prefill_times = evaluate_table(table, prefill_values, rates, fused)
    decode = decode_pass(arch, c, lay, c.prompt_len, prefill)
    comm_prefill, comm_decode = _communication(arch, c, lay, prefill.a, c.prompt_len - cached, 1.0)
    tpot, decode_cost = _decode(arch, c, tables, rates, lay, decode, comm_decode, totals)
    host_bytes, host_s = kvcache.host_write_s(
        c.kv_offload_fraction, prefill_times.kv_written_bytes, c.host_link_bytes_per_s
    )

    ttft = schedule.phase_time_s(
        prefill_times.layers_s + host_s, prefill_times.other_s, comm_prefill, lam, m, o, decode=False
    )
    unknown = np.full(len(c), np.nan)
    prefill_cost = PhaseCost(unknown, unknown, ttft)
    if totals:
        flops, nbytes = pass_totals(table, prefill_values, lam)
        prefill_cost = PhaseCost(m * flops, m * nbytes, ttft)

    mem = _memory(arch, c, lay, table, prefill_values, prefill, prefill_times.largest_held_bytes)
    reason = _reason(arch, c, lay, tables, mem)
    metrics = serving.metrics_for(c, lay.devices, ttft, tpot, mem.total_bytes, reason)
    evaluation = Evaluation(
        prefill=prefill_cost,
        decode_step=decode_cost,
        tpot_s=tpot,
        memory=mem,
        layout=lay,
        communication=(comm_prefill, comm_decode),
        host_kv_write_bytes=lam * host_bytes,
        host_kv_write_s=lam * host_s,
        metrics=metrics,
    )
    return speculative.apply(arch, c, evaluation, lambda s, p: _pass_parts(tables, s, p))


def _decode(
    arch: Architecture,
    c: Candidates,
    tables: ModelTables,
    rates: Rates,
    lay: parallel.Layout,
    decode: Any,
    comm: collectives.Communication,
    totals: bool,
) -> tuple[Any, PhaseCost]:
    """(TPOT, the one decode step at P keys) of the decode pass ``decode`` with its collectives ``comm``: the
    mean over the steps j = 1..G-1, which attend P + j keys (with G = 1 the step that would follow the prompt
    stands in); the one step's FLOPs, bytes and time only with ``totals`` (else NaN)."""
    lam, m, o = lay.layer_share, lay.micro_batches, c.comm_overlap
    fused = c.flash.astype(np.float64)
    host_extra = kvcache.host_read_extra_s_per_byte(c.kv_offload_fraction, c.host_link_bytes_per_s, rates.bytes_per_s)
    decode_symbols = symbol_values(decode, fused)
    steady_values = tables.context_free.values(decode_symbols, len(c))
    steady = evaluate_table(tables.context_free, steady_values, rates, fused, side=False)
    steps = np.maximum(c.gen_len - 1.0, 1.0)
    attention = decode_attention(
        tables.attention,
        kernels_of(c),
        decode_symbols,
        c.flash,
        c.prompt_len,
        steps,
        c.kv_budget_tokens,
        rates,
        host_extra,
        at_prompt=totals,
    )
    decode_layers = steady.layers_s + attention.overhead_s
    tpot = schedule.phase_time_s(decode_layers + attention.mean_s, steady.other_s, comm, lam, m, o, decode=True)
    if not totals:
        unknown = np.full(len(c), np.nan)
        return tpot, PhaseCost(unknown, unknown, unknown)
    flops, nbytes = pass_totals(tables.context_free, steady_values, lam)
    step_s = schedule.phase_time_s(decode_layers + attention.step_s, steady.other_s, comm, lam, m, o, decode=True)
    return tpot, PhaseCost(m * (flops + lam * attention.step_flops), m * (nbytes + lam * attention.step_bytes), step_s)


def decode_evaluation(
    arch: Architecture, c: Candidates, tables: ModelTables | None = None, *, totals: bool = True
) -> DecodeEvaluation:
    """``evaluate``'s decode figures alone (no prefill tables, memory or reasons), for candidates without
    speculative decoding: the decode step of a static batch that continuous batching reads
    (``batching.evaluate``)."""
    tables = tables or compile_model(arch)
    lay = parallel.layout(arch, c.batch, c.tp, c.pp, c.ep, c.devices_per_node, c.expert_imbalance)
    decode = decode_pass(arch, c, lay, c.prompt_len)
    (comm,) = _communication(arch, c, lay, decode.a, 1.0)
    tpot, cost = _decode(arch, c, tables, rates_of(c), lay, decode, comm, totals)
    return DecodeEvaluation(cost, tpot, lay, comm)


def _communication(
    arch: Architecture, c: Candidates, lay: parallel.Layout, a: Any, *tokens: Any
) -> tuple[collectives.Communication, ...]:
    """The collectives of passes of ``tokens`` new tokens per sequence each (prefill's P - c, decode's 1); all
    zero, without computing them, when no candidate of the chunk splits its replica over several devices."""
    if not np.any(lay.devices > 1):
        zero = np.zeros(len(c))
        return (collectives.Communication(zero, zero, zero, zero, zero, zero, zero),) * len(tokens)
    rates = collectives.rates_for(c, lay)
    # every pass in one call: T as one row per pass broadcast over the candidates
    rows = np.stack([np.broadcast_to(t, (len(c),)) for t in tokens])
    every = collectives.communication(arch, lay, rates, c.tp, c.ep, c.pp, a, rows)
    parts = [np.broadcast_to(getattr(every, f.name), rows.shape) for f in fields(every)]
    return tuple(collectives.Communication(*(p[i] for p in parts)) for i in range(len(tokens)))


def _memory(
    arch: Architecture,
    c: Candidates,
    lay: parallel.Layout,
    table: OperatorTable,
    values: NDArray[np.float64],
    prefill: Any,
    largest: Any,
) -> memory.MemoryBreakdown:
    """Memory per device of the busiest stage, from the prefill table's stored-weight forms and peaks."""
    whole, layers, first, last = table.stored @ values[table.stored_columns]
    weights = (
        whole if not np.any(c.pp > 1) else memory.weights_per_device(whole, layers, first, last, c.pp, lay.layer_share)
    )
    return memory.device_memory(arch, c, lay, prefill, weights, largest)


def _reason(
    arch: Architecture, c: Candidates, lay: parallel.Layout, tables: ModelTables, mem: memory.MemoryBreakdown
) -> NDArray[np.int8]:
    """The first reason that applies, in ``feasibility.CHECK_ORDER``."""
    if np.any(lay.devices > 1) or np.any(c.kv_offload_fraction > 0):
        limit = len(tables.divisibility) - 1
        tp, ep = (np.minimum(d, limit).astype(np.intp) for d in (c.tp, c.ep))
        conditions = parallel.split_conditions_for(arch, c, lay)
        split = parallel.split_reason(tables.divisibility[tp, ep], conditions)
    else:  # one device and no offload: no split rule can apply
        split = np.zeros(len(c), dtype=np.int8)
    return infeasibility(c.format_supported, split, c.prompt_len + c.gen_len, arch.max_position_embeddings, mem)


def _pass_parts(tables: ModelTables, c: Candidates, p: Any) -> tuple[Any, Any, Any]:
    """(all layers' time, the time outside them, the largest bytes one operator holds) of a prefill-shaped
    pass ``p`` of candidates ``c`` (a continuous-batching step), from the mixed table."""
    fused = c.flash.astype(np.float64)
    table = tables.mixed[kernels_of(c)]
    rates = rates_of(c)  # the pass's reads of the KV cache (a mixed step's decoding sequences) pay the host link
    extra = kvcache.host_read_extra_s_per_byte(c.kv_offload_fraction, c.host_link_bytes_per_s, rates.bytes_per_s)
    times = evaluate_table(table, table.values(symbol_values(p, fused), len(c)), rates, fused, extra)
    return times.layers_s, times.other_s, times.largest_held_bytes


def _continuous(arch: Architecture, c: Candidates, tables: ModelTables, totals: bool) -> Evaluation:
    """Candidates of which some run continuous batching (``batching.evaluate``); a chunk of both kinds is
    evaluated as two and merged."""

    def under_continuous(part: Candidates) -> Evaluation:
        return batching.evaluate(
            arch,
            part,
            lambda s: evaluate(arch, s, tables, totals=totals),
            lambda s, p: _pass_parts(tables, s, p),
            lambda s: decode_evaluation(arch, s, tables, totals=totals),
        )

    served = np.logical_or(c.continuous, c.disaggregated)
    if np.all(served):
        return under_continuous(c)
    rows = np.flatnonzero(served), np.flatnonzero(np.logical_not(served))
    parts = under_continuous(c.take(rows[0])), evaluate(arch, c.take(rows[1]), tables, totals=totals)  # type: ignore[arg-type]
    return _merge(parts, rows, len(c))  # type: ignore[no-any-return]


def _merge(parts: tuple[Any, Any], rows: tuple[NDArray[np.intp], NDArray[np.intp]], n: int) -> Any:
    """Two evaluations (or parts of them) of disjoint rows as one of n rows: dataclasses field by field,
    arrays scattered; a static part's missing continuous figures are NaN."""
    first, second = parts
    if first is None or second is None:
        first = ContinuousServing.unknown(len(rows[0])) if first is None else first
        second = ContinuousServing.unknown(len(rows[1])) if second is None else second
    if is_dataclass(first):
        merged = {f.name: _merge((getattr(first, f.name), getattr(second, f.name)), rows, n) for f in fields(first)}
        return type(first)(**merged)  # type: ignore[misc]
    if isinstance(first, tuple):
        return tuple(_merge(pair, rows, n) for pair in zip(first, second, strict=True))
    a, b = np.broadcast_to(first, rows[0].shape), np.broadcast_to(second, rows[1].shape)
    out = np.empty(n, dtype=np.result_type(a, b))
    out[rows[0]], out[rows[1]] = a, b
    return out
