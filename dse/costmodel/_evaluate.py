"""Scoring N candidates of one model: prefill, the exact mean decode step, memory, and feasibility."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse import units
from dse.catalog import ModelSpec
from dse.costmodel._attention import attention_geometry, attention_ops, decode_work, prefill_work
from dse.costmodel._candidates import Candidates
from dse.costmodel._layers import PassInputs, layer_ops, window_of
from dse.costmodel._memory import MemoryBreakdown, memory_breakdown
from dse.costmodel._ops import Op
from dse.costmodel._roofline import Array, sum_max_linear


@dataclass(frozen=True)
class PhaseCost:
    """Totals of one phase over all operators: FLOPs, bytes moved, time (s)."""

    flops: Array
    memory_bytes: Array
    time_s: Array


@dataclass(frozen=True)
class OpTimes:
    """Per-operator totals (multiplicity included) of one phase, aligned with its ``ops``."""

    ops: list[Op]
    time_s: list[Array]
    compute_s: list[Array]
    memory_s: list[Array]


@dataclass(frozen=True)
class Evaluation:
    """Everything the cost model computes for N candidates."""

    prefill: PhaseCost
    decode_step: PhaseCost
    """One decode step at context = prompt length (the step LLM-Viewer reports)."""
    tpot_s: Array
    """Exact mean step time over the generated positions."""
    memory: MemoryBreakdown
    prefill_ops: OpTimes
    decode_ops: OpTimes


@dataclass(frozen=True)
class _Rates:
    """Achievable rates: peak x efficiency, per operator kind; bandwidth x efficiency."""

    flops_per_s: dict[str, Array]
    bytes_per_s: Array
    overhead_s: Array


def _rates(c: Candidates) -> _Rates:
    eff = c.compute_efficiency
    kinds = {
        "matmul": c.matmul_flops_per_s * eff,
        "attention": c.attention_flops_per_s * eff,
        "vector": c.vector_flops_per_s * eff,
    }
    return _Rates(kinds, c.bandwidth_bytes_per_s * c.bandwidth_efficiency, c.kernel_overhead_s)


def _op_times(ops: list[Op], r: _Rates) -> OpTimes:
    times, computes, memories = [], [], []
    for op in ops:
        compute = op.flops / r.flops_per_s[op.kind]
        memory = op.memory_bytes / r.bytes_per_s
        busy = np.maximum(compute, memory) + r.overhead_s
        times.append(op.count * (busy if op.active is None else np.where(op.active, busy, 0.0)))
        computes.append(op.count * compute)
        memories.append(op.count * memory)
    return OpTimes(ops, times, computes, memories)


def _phase(times: OpTimes) -> PhaseCost:
    flops = sum(op.count * op.flops for op in times.ops)
    memory = sum(op.count * op.memory_bytes for op in times.ops)
    return PhaseCost(np.asarray(flops), np.asarray(memory), np.asarray(sum(times.time_s)))


def _pass(c: Candidates, model: ModelSpec, bpe: tuple[Array, ...], keys: Array | None = None) -> PassInputs:
    """Inputs of prefill (``keys`` None) or of one decode step attending ``keys`` keys."""
    window = window_of(model)
    if keys is not None:
        full, win = decode_work(keys), decode_work(np.minimum(keys, window))
        queries = np.ones_like(c.batch)
    else:
        full = prefill_work(c.prompt_len, np.inf, c.flash_block_rows)
        win = full if not np.isfinite(window) else prefill_work(c.prompt_len, window, c.flash_block_rows)
        queries = c.prompt_len
    return PassInputs(c.batch, queries, *bpe, c.flash, keys is not None, full, win)


def _mean_attention_step_s(
    c: Candidates, model: ModelSpec, r: _Rates, act_bpe: Array, kv_bpe: Array, steps: Array
) -> Array:
    """Mean over decode steps j = 1..n of the attention operators' time, exactly (keys = P + j, windowed).

    Attention cost is linear in the number of keys k, so each operator's time is the max of two linear
    functions of j on each side of the window boundary; ``sum_max_linear`` sums that in closed form.
    """
    geo = attention_geometry(model, decode=True)
    zero, one = np.zeros_like(c.batch), np.ones_like(c.batch)
    total = np.zeros_like(c.batch)
    for count, window in ((model.num_full_attention_layers, np.inf), (model.num_window_layers, window_of(model))):
        if not count:
            continue
        at0 = attention_ops("", count, c.batch, decode_work(zero), geo, c.flash, act_bpe, kv_bpe, from_cache=True)
        at1 = attention_ops("", count, c.batch, decode_work(one), geo, c.flash, act_bpe, kv_bpe, from_cache=True)
        growing_last = np.minimum(steps, window - c.prompt_len)
        capped_steps = np.maximum(steps - np.maximum(1.0, window - c.prompt_len + 1.0) + 1.0, 0.0)
        for op0, op1 in zip(at0, at1, strict=True):
            rate = r.flops_per_s[op0.kind]
            f0, f1 = op0.flops, op1.flops - op0.flops
            b0, b1 = op0.memory_bytes, op1.memory_bytes - op0.memory_bytes
            u0, u1 = (f0 + f1 * c.prompt_len) / rate, f1 / rate
            v0, v1 = (b0 + b1 * c.prompt_len) / r.bytes_per_s, b1 / r.bytes_per_s
            step_sum = sum_max_linear(u0, u1, v0, v1, one, growing_last) + steps * r.overhead_s
            if np.isfinite(window):
                step_sum = step_sum + capped_steps * np.maximum(
                    (f0 + f1 * window) / rate, (b0 + b1 * window) / r.bytes_per_s
                )
            total += count * (step_sum if op0.active is None else np.where(op0.active, step_sum, 0.0))
    return total / steps  # type: ignore[no-any-return]


def evaluate_candidates(model: ModelSpec, c: Candidates) -> Evaluation:
    """Score every candidate: the whole cost model, vectorised (no Python loop over candidates)."""
    r = _rates(c)
    bpe = tuple(units.bits_to_bytes(bits) for bits in (c.weight_bits, c.embedding_bits, c.act_bits, c.kv_bits))
    prefill = _op_times(layer_ops(model, _pass(c, model, bpe)), r)
    decode = _op_times(layer_ops(model, _pass(c, model, bpe, keys=c.prompt_len)), r)
    # Steps j = 1..G-1 feed the token at position P + j - 1, which attends to P + j keys; with G = 1 the
    # single step that would follow the prompt stands in (so TPOT stays defined).
    steps = np.maximum(c.gen_len - 1.0, 1.0)
    context_free = sum(t for op, t in zip(decode.ops, decode.time_s, strict=True) if not _is_attention(op))
    tpot = context_free + _mean_attention_step_s(c, model, r, bpe[2], bpe[3], steps)
    return Evaluation(
        prefill=_phase(prefill),
        decode_step=_phase(decode),
        tpot_s=np.asarray(tpot),
        memory=memory_breakdown(model, c, prefill.ops),
        prefill_ops=prefill,
        decode_ops=decode,
    )


_ATTENTION_OPS = ("qk_matmul", "softmax", "sv_matmul", "attention")


def _is_attention(op: Op) -> bool:
    return op.name.split("[")[0] in _ATTENTION_OPS
