"""Scoring N candidates of one model: prefill, the exact mean decode step, memory, and feasibility."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.catalog import ModelSpec
from dse.costmodel._candidates import Candidates
from dse.costmodel._layers import layer_specs, window_of
from dse.costmodel._memory import MemoryBreakdown, memory_breakdown
from dse.costmodel._ops import OpSpec
from dse.costmodel._roofline import Array, sum_max_linear
from dse.costmodel._table import OpTable, PassCost, Rates, evaluate_table, overhead_s
from dse.costmodel._terms import BytesPerElement, attention_terms, pass_terms, query_terms

ATTENTION_OPS = ("qk_matmul", "softmax", "sv_matmul", "attention")


@dataclass(frozen=True)
class PhaseCost:
    """Totals of one phase over all operators: FLOPs, bytes moved, time (s)."""

    flops: Array
    memory_bytes: Array
    time_s: Array


@dataclass(frozen=True)
class Evaluation:
    """Everything the cost model computes for N candidates."""

    prefill: PhaseCost
    decode_step: PhaseCost
    """One decode step at context = prompt length (the step LLM-Viewer reports)."""
    tpot_s: Array
    """Exact mean step time over the generated positions."""
    memory: MemoryBreakdown
    prefill_ops: PassCost
    decode_ops: PassCost | None
    """Per-operator decode detail (one step at context = prompt length), when asked for."""
    rates: Rates


@dataclass(frozen=True)
class ModelTables:
    """A model's operator tables, compiled once and reused for every chunk of candidates."""

    prefill: OpTable
    decode: OpTable
    """Every decode operator (evaluated only when per-operator detail is asked for)."""
    context_free: OpTable
    """Decode operators whose cost does not depend on the context (all but attention)."""
    attention: tuple[tuple[str, float, OpTable], ...]
    """Decode attention operators per group: (group, span in tokens, table)."""


def compile_model(model: ModelSpec) -> ModelTables:
    """Compile the prefill, decode, context-free and per-group attention tables of ``model``."""
    decode_specs = layer_specs(model, decode=True)
    groups = []
    for group, span in (("full", np.inf), ("window", window_of(model))):
        specs = [s for s in decode_specs if _group(s) == group]
        if specs:
            groups.append((group, float(span), OpTable.compile(specs)))
    context_free = OpTable.compile([s for s in decode_specs if _group(s) is None])
    prefill = OpTable.compile(layer_specs(model, decode=False))
    return ModelTables(prefill, OpTable.compile(decode_specs), context_free, tuple(groups))


def rates_of(c: Candidates) -> Rates:
    """Achievable FLOP/s per operator kind and bytes/s: peaks x the profile's efficiencies."""
    peaks = np.stack([c.matmul_flops_per_s, c.matmul16_flops_per_s, c.vector_flops_per_s])
    return Rates(peaks * c.compute_efficiency, c.bandwidth_bytes_per_s * c.bandwidth_efficiency, c.kernel_overhead_s)


def _phase(cost: PassCost) -> PhaseCost:
    return PhaseCost(cost.total("flops"), cost.total("memory_bytes"), cost.time_s)


def _group(spec: OpSpec) -> str | None:
    """The attention group (``full`` or ``window``) of an attention operator, else None."""
    base, _, rest = spec.name.partition("[")
    if base not in ATTENTION_OPS:
        return None
    return rest.rstrip("]") or "full"


@dataclass(frozen=True)
class _AttentionCost:
    """Decode attention: the exact mean over steps, and the one step at context = prompt length."""

    mean_s: Array
    step_s: Array
    step_flops: Array
    step_bytes: Array
    overhead_s: Array


def _decode_attention(
    tables: ModelTables, c: Candidates, bpe: BytesPerElement, r: Rates, steps: Array
) -> _AttentionCost:
    """Attention operators over decode steps j = 1..n, exactly, and at context = prompt length.

    Step j attends to keys k = P + j (capped at the window). Attention FLOPs and bytes are linear in k, so
    each operator's time is the max of two linear functions of j on each side of the window boundary;
    ``sum_max_linear`` sums that in closed form. The same lines give the one step at k = P.
    """
    total, step, flops, nbytes, overhead = (np.zeros_like(c.batch) for _ in range(5))
    zero, one = np.zeros_like(c.batch), np.ones_like(c.batch)
    constant = query_terms(c, bpe, c.batch)  # one new token per sequence
    fused = c.flash.astype(np.float64)
    for group, span, table in tables.attention:
        at0, at1 = (table.basis(attention_terms(group, c, bpe, np.inf, k) | constant) for k in (zero, one))
        rate = r.flops_per_s[table.kind_index]
        f0, m0 = table.flops @ at0, table.memory_bytes @ at0
        f1, m1 = table.flops @ at1 - f0, table.memory_bytes @ at1 - m0
        u0, u1 = (f0 + f1 * c.prompt_len) / rate, f1 / rate
        v0, v1 = (m0 + m1 * c.prompt_len) / r.bytes_per_s, m1 / r.bytes_per_s
        step_sum = sum_max_linear(u0, u1, v0, v1, one, np.minimum(steps, span - c.prompt_len))
        if np.isfinite(span):
            capped_steps = np.maximum(steps - np.maximum(1.0, span - c.prompt_len + 1.0) + 1.0, 0.0)
            step_sum = step_sum + capped_steps * np.maximum((f0 + f1 * span) / rate, (m0 + m1 * span) / r.bytes_per_s)
        total += table.counts @ step_sum
        keys = np.minimum(c.prompt_len, span)
        f_p, m_p = f0 + f1 * keys, m0 + m1 * keys
        step += table.counts @ np.maximum(f_p / rate, m_p / r.bytes_per_s)
        flops += table.counts @ f_p
        nbytes += table.counts @ m_p
        overhead += overhead_s(table, r, fused)
    return _AttentionCost(total / steps, step, flops, nbytes, overhead)


def evaluate_candidates(
    model: ModelSpec, c: Candidates, tables: ModelTables | None = None, *, detail: bool = False
) -> Evaluation:
    """Score every candidate: the whole cost model, vectorised (no Python loop over candidates).

    ``tables`` (from ``compile_model``) may be passed to reuse the compiled operator tables across chunks;
    ``detail`` also evaluates every decode operator one by one (``Evaluation.decode_ops``), for analysis.
    """
    tables = tables or compile_model(model)
    r = rates_of(c)
    bpe = BytesPerElement.of(c)
    fused = c.flash.astype(np.float64)
    prefill = evaluate_table(tables.prefill, pass_terms(model, c, bpe), r, fused)
    decode_terms = pass_terms(model, c, bpe, keys=c.prompt_len)
    steady = evaluate_table(tables.context_free, decode_terms, r, fused)
    # Steps j = 1..G-1 feed the token at position P + j - 1, which attends to P + j keys; with G = 1 the
    # single step that would follow the prompt stands in (so TPOT stays defined).
    attention = _decode_attention(tables, c, bpe, r, np.maximum(c.gen_len - 1.0, 1.0))
    decode_step = PhaseCost(
        steady.total("flops") + attention.step_flops,
        steady.total("memory_bytes") + attention.step_bytes,
        steady.time_s + attention.overhead_s + attention.step_s,
    )
    return Evaluation(
        prefill=_phase(prefill),
        decode_step=decode_step,
        tpot_s=steady.time_s + attention.overhead_s + attention.mean_s,
        memory=memory_breakdown(model, c, bpe, prefill),
        prefill_ops=prefill,
        decode_ops=evaluate_table(tables.decode, decode_terms, r, fused) if detail else None,
        rates=r,
    )
