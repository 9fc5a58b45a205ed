"""Scoring N candidates of one model: prefill, the exact mean decode step, memory, and feasibility."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.catalog import ModelSpec
from dse.costmodel._candidates import Candidates
from dse.costmodel._layers import layer_specs, window_of
from dse.costmodel._memory import MemoryBreakdown, memory_breakdown
from dse.costmodel._ops import OpSpec
from dse.costmodel._parallel import (
    Communication,
    Layout,
    collective_costs,
    communication,
    layout,
    overlapped,
    shares,
)
from dse.costmodel._roofline import Array, sum_max_linear
from dse.costmodel._table import OpTable, PassCost, Rates, evaluate_table, overhead_s, stack_terms
from dse.costmodel._terms import BytesPerElement, PassShape, attention_terms, pass_terms, query_terms

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
    layout: Layout
    communication: tuple[Communication, Communication]
    """Collectives of one prefill pass and one decode step (per device of the busiest stage)."""
    host_kv_write_bytes: Array
    host_kv_write_s: Array
    """Copying the offloaded share of one prefill pass's new KV entries to host memory, per device of the
    busiest stage (0 without offload)."""


Kernels = str
"""Which attention kernels a chunk of candidates uses: ``fused``, ``unfused`` or ``mixed``."""


def _variants(specs: list[OpSpec]) -> dict[Kernels, OpTable]:
    """The table of ``specs``, and the tables without the operators a fused-only or unfused-only chunk never
    runs (their rows would be zero: skipping them is exact and saves their share of the work)."""
    return {
        "mixed": OpTable.compile(specs),
        "fused": OpTable.compile([s for s in specs if s.active != "unfused"]),
        "unfused": OpTable.compile([s for s in specs if s.active != "fused"]),
    }


@dataclass(frozen=True)
class ModelTables:
    """A model's operator tables, compiled once and reused for every chunk of candidates."""

    prefill: dict[Kernels, OpTable]
    """Every prefill operator (``mixed``), and without unused attention kernels (``fused``, ``unfused``)."""
    decode: OpTable
    """Every decode operator (evaluated only when per-operator detail is asked for)."""
    context_free: OpTable
    """Decode operators whose cost does not depend on the context (all but attention)."""
    attention: tuple[tuple[str, float, dict[Kernels, OpTable]], ...]
    """Decode attention operators per group: (group, span in tokens, tables by kernels)."""


_COMPILED: dict[int, tuple[ModelSpec, ModelTables]] = {}
"""Tables by model object (its id, checked against the object itself): specs need not be hashable."""


def compile_model(model: ModelSpec) -> ModelTables:
    """The prefill, decode, context-free and per-group attention tables of ``model``, compiled once per model
    object (the tables are never modified, so every evaluation of the same model shares them)."""
    cached = _COMPILED.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]
    if len(_COMPILED) >= 64:
        _COMPILED.clear()
    tables = _compile(model)
    _COMPILED[id(model)] = (model, tables)
    return tables


def _compile(model: ModelSpec) -> ModelTables:
    decode_specs = layer_specs(model, decode=True)
    groups = []
    for group, span in (("full", np.inf), ("window", window_of(model))):
        specs = [s for s in decode_specs if _group(s) == group]
        if specs:
            groups.append((group, float(span), _variants(specs)))
    context_free = OpTable.compile([s for s in decode_specs if _group(s) is None])
    prefill = _variants(layer_specs(model, decode=False))
    return ModelTables(prefill, OpTable.compile(decode_specs), context_free, tuple(groups))


def kernels_of(c: Candidates) -> Kernels:
    """``fused`` / ``unfused`` when every candidate of the chunk uses that attention, else ``mixed``."""
    if np.all(c.flash):
        return "fused"
    return "mixed" if np.any(c.flash) else "unfused"


def rates_of(c: Candidates) -> Rates:
    """Achievable FLOP/s per operator kind and bytes/s: peaks x the profile's efficiencies."""
    peaks = np.stack([c.matmul_flops_per_s, c.matmul16_flops_per_s, c.vector_flops_per_s])
    return Rates(peaks * c.compute_efficiency, c.bandwidth_bytes_per_s * c.bandwidth_efficiency, c.kernel_overhead_s)


def _group(spec: OpSpec) -> str | None:
    """The attention group (``full`` or ``window``) of an attention operator, else None."""
    base, _, rest = spec.name.partition("[")
    if base not in ATTENTION_OPS:
        return None
    return rest.rstrip("]") or "full"


@dataclass(frozen=True)
class _AttentionCost:
    """Decode attention over all layers (per device of the stages holding them): the exact mean over steps,
    and the one step at context = prompt length."""

    mean_s: Array
    step_s: Array
    step_flops: Array
    step_bytes: Array
    overhead_s: Array


def _decode_attention(
    tables: ModelTables,
    c: Candidates,
    bpe: BytesPerElement,
    r: Rates,
    steps: Array,
    shape: PassShape,
    host_extra: Array,
    at_prompt: bool = True,
) -> _AttentionCost:
    """Attention operators over decode steps j = 1..n, exactly, and at context = prompt length.

    Step j attends to keys k = P + j, capped at the span (the window, and the KV budget of an eviction
    policy). Attention FLOPs and bytes are linear in k, so each operator's time is the max of two linear
    functions of j on each side of the span boundary; ``sum_max_linear`` sums that in closed form. The same
    lines give the one step at k = P (when ``at_prompt``; else those stay 0). A share ``f`` of the KV cache
    offloaded to host memory is read over the host link: its bytes take ``1 / host bandwidth`` instead of
    ``1 / HBM bandwidth`` (no overlap of the two streams: the conservative reading; ``host_extra_s_per_byte``).
    """
    total, step, flops, nbytes, overhead = (np.zeros_like(c.batch) for _ in range(5))
    one = np.ones_like(c.batch)
    queries = query_terms(c, bpe, shape.batch)  # one new token per sequence, whatever the keys
    fused = c.flash.astype(np.float64)
    kernels = kernels_of(c)
    everyone = slice(None)
    for group, group_span, variants in tables.attention:
        span = np.minimum(group_span, c.kv_budget_tokens)
        # a decode step's attention work is proportional to its keys (``decode_work``): the terms at one key
        # are the lines' slopes, and the query terms their intercepts
        per_key = attention_terms(group, c, bpe, shape, np.inf, one)
        overhead += overhead_s(variants["mixed"], r, fused)
        # Each candidate runs one kind of kernel, and the terms of the other kind are 0 for it (they carry the
        # kernel's 0/1 mask), so those rows add nothing. A mixed chunk evaluates each kind on all candidates
        # when at least half use it (no gathering: measured faster), else on its own candidates only.
        parts: list[tuple[OpTable, slice | NDArray[np.intp]]] = [(variants[kernels], everyone)]
        if kernels == "mixed":
            flash = c.flash.astype(bool)
            parts = [
                (variants[kind], everyone if 2 * np.count_nonzero(uses) >= len(uses) else np.flatnonzero(uses))
                for kind, uses in (("fused", flash), ("unfused", ~flash))
            ]
        for table, rows in parts:
            lines = _AttentionLines.of(table, queries, per_key, shape.shares, r, host_extra, rows)
            at = (c.prompt_len[rows], steps[rows], span[rows])
            total[rows] += table.layer_counts @ lines.step_sum(*at)
            if at_prompt:
                step_s, step_flops, step_bytes = lines.at_prompt(table, *at)
                step[rows] += step_s
                flops[rows] += step_flops
                nbytes[rows] += step_bytes
    return _AttentionCost(total / steps, step, flops, nbytes, overhead)


@dataclass(frozen=True)
class _AttentionLines:
    """Per operator (rows) and candidate (columns): FLOPs f0 + f1 k, bytes m0 + m1 k, compute time
    (f0 + f1 k) / rate and memory time w0 + w1 k of one decode step attending to k keys."""

    f0: NDArray[np.float64]
    f1: NDArray[np.float64]
    m0: NDArray[np.float64]
    m1: NDArray[np.float64]
    w0: NDArray[np.float64]
    w1: NDArray[np.float64]
    rate: NDArray[np.float64]

    @classmethod
    def of(
        cls,
        table: OpTable,
        constant: dict[str, Array],
        per_key: dict[str, Array],
        shares: dict[str, Array],
        r: Rates,
        host_extra: Array,
        rows: slice | NDArray[np.intp],
    ) -> _AttentionLines:
        """The lines of ``table``'s operators for candidates ``rows``: their intercepts from the terms that
        do not depend on the keys (``constant``), their slopes from the terms at one key (``per_key``)."""
        grows = np.asarray([name.partition("|")[0] in per_key for name in table.names])
        fixed, growing = np.flatnonzero(~grows), np.flatnonzero(grows)
        at0 = stack_terms(constant | shares, [table.names[i] for i in fixed])[:, rows]
        at1 = stack_terms(per_key | shares, [table.names[i] for i in growing])[:, rows]
        f0, m0 = table.flops[:, fixed] @ at0, table.memory_bytes[:, fixed] @ at0
        f1, m1 = table.flops[:, growing] @ at1, table.memory_bytes[:, growing] @ at1
        spb, extra = r.seconds_per_byte[rows], host_extra[rows]
        w0, w1 = m0 * spb, m1 * spb
        if table.kv_read_bytes is not None and np.any(extra):
            kv = table.kv_read_bytes
            w0, w1 = w0 + (kv[:, fixed] @ at0) * extra, w1 + (kv[:, growing] @ at1) * extra
        return cls(f0, f1, m0, m1, w0, w1, r.flops_per_s[table.kind_index][:, rows])

    def step_sum(self, prompt: Array, steps: Array, span: Array) -> NDArray[np.float64]:
        """Per operator, the sum over steps j = 1..steps of the roofline time at k = prompt + j, capped at span."""
        f0, f1, w0, w1, rate = self.f0, self.f1, self.w0, self.w1, self.rate
        u0, u1 = (f0 + f1 * prompt) / rate, f1 / rate
        v0, v1 = w0 + w1 * prompt, w1
        total = sum_max_linear(u0, u1, v0, v1, 1.0, np.minimum(steps, span - prompt))
        if np.any(np.isfinite(span)):  # steps past the span attend to exactly `span` keys
            capped = np.minimum(span, prompt + steps)  # finite; where the span is never reached, no step is capped
            capped_steps = np.maximum(steps - np.maximum(1.0, capped - prompt + 1.0) + 1.0, 0.0)
            total = total + capped_steps * np.maximum((f0 + f1 * capped) / rate, w0 + w1 * capped)
        return total  # type: ignore[no-any-return]

    def at_prompt(self, table: OpTable, prompt: Array, steps: Array, span: Array) -> tuple[Array, Array, Array]:
        """Time, FLOPs and bytes of the one step at k = prompt keys (capped at span), summed over operators."""
        keys = np.minimum(prompt, span)
        f_p, m_p = self.f0 + self.f1 * keys, self.m0 + self.m1 * keys
        counts = table.layer_counts
        return counts @ np.maximum(f_p / self.rate, self.w0 + self.w1 * keys), counts @ f_p, counts @ m_p


def host_extra_s_per_byte(c: Candidates, r: Rates) -> Array:
    """Extra seconds per decode KV byte when a share f of the cache lives in host memory: f of the bytes take
    1 / host-link bandwidth instead of 1 / HBM bandwidth (read serially, the conservative reading)."""
    f = c.kv_offload_fraction
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, f * (1.0 / c.host_link_bytes_per_s - r.seconds_per_byte), 0.0)  # type: ignore[no-any-return]


def host_kv_writes(c: Candidates, prefill: PassCost) -> tuple[Array, Array]:
    """Bytes and time of copying the offloaded share f of a prefill pass's new KV entries (every layer's, per
    device) to host memory over the host link, after they are written to device memory; serial with the
    pass (the conservative reading, as for the reads in decode)."""
    f = c.kv_offload_fraction
    if not np.any(f > 0):
        return np.zeros_like(f), np.zeros_like(f)
    assert prefill.kv_written_bytes is not None, "prefill evaluated without the KV bytes it writes"
    sent = f * prefill.kv_written_bytes
    with np.errstate(divide="ignore", invalid="ignore"):
        return sent, np.where(f > 0, sent / c.host_link_bytes_per_s, 0.0)


def prefix_cached_tokens(hit_rate: Array | float, prompt_len: Array | float) -> Array:
    """Prompt tokens per sequence served from the prefix cache: hit rate x prompt, whole tokens, and never
    the last one (an engine recomputes the last prompt token to produce the first output's logits, as vLLM
    does on a full hit)."""
    return np.minimum(np.floor(hit_rate * np.asarray(prompt_len)), np.asarray(prompt_len) - 1.0)  # type: ignore[no-any-return]


def evicts(model: ModelSpec, kv_budget: Array | float | None, context: Array | float) -> NDArray[np.bool_]:
    """Whether an eviction budget drops tokens the model would otherwise attend to (and so changes its
    outputs): below prompt + output, and below the model's own longest span (a model whose every layer is
    windowed already keeps only its window)."""
    budget = np.inf if kv_budget is None else kv_budget
    longest = np.inf if model.num_full_attention_layers else window_of(model)
    return np.asarray(budget) < np.minimum(np.asarray(context, dtype=np.float64), longest)  # type: ignore[no-any-return]


def evaluate_candidates(
    model: ModelSpec,
    c: Candidates,
    tables: ModelTables | None = None,
    *,
    detail: bool = False,
    totals: bool = True,
) -> Evaluation:
    """Score every candidate: the whole cost model, vectorised (no Python loop over candidates).

    ``tables`` (from ``compile_model``) may be passed to reuse the compiled operator tables across chunks;
    ``detail`` also evaluates every decode operator one by one (``Evaluation.decode_ops``), for analysis;
    ``totals`` = False leaves the phases' FLOPs and bytes and the one-step decode figure NaN (a search needs
    only TTFT, the mean TPOT and memory).

    A stage pass is its operators' roofline time plus its collectives (``overlapped``); figures per device
    are those of the busiest pipeline stage (``_parallel``). The pipeline runs ``m`` micro-batches (GPipe's
    schedule, arXiv 1811.06965): the last one's prefill ends after one trip through every stage (the sum of
    the stage passes and the ``pp - 1`` sends) plus ``m - 1`` passes of the busiest stage; a decode step
    takes a token through every stage, and no stage can serve its ``m`` micro-batches faster than ``m``
    passes, so a step is the larger of the two. The mean step applies that max to the mean stage times (an
    approximation only where the two cross within one generation).
    """
    tables = tables or compile_model(model)
    r = rates_of(c)
    bpe = BytesPerElement.of(c)
    fused = c.flash.astype(np.float64)
    lay = layout(model, c)
    one = np.ones_like(c.batch)
    cached: Array | float = prefix_cached_tokens(c.prefix_hit_rate, c.prompt_len)
    if not np.any(cached):
        cached = 0.0  # no hits in this chunk: the prefill formulas' cached terms vanish
    new = c.prompt_len - cached
    prefill_shape = PassShape(
        lay.group_batch, new, cached, lay.micro_batch * new, shares(model, c, lay, decode=False), lay.layer_share
    )
    decode_shape = PassShape(
        lay.group_batch, one, np.zeros_like(one), lay.micro_batch, shares(model, c, lay, decode=True), lay.layer_share
    )
    prefill_terms = pass_terms(model, c, bpe, prefill_shape)
    # per-operator detail reports every operator; otherwise the chunk's unused attention kernels are skipped
    prefill_table = tables.prefill["mixed" if detail else kernels_of(c)]
    prefill = evaluate_table(
        prefill_table, prefill_table.basis(prefill_terms), r, fused, lay.layer_share, per_operator=detail
    )
    # the attention terms at K = P serve only the per-operator decode table (the search sums attention apart)
    decode_terms = pass_terms(model, c, bpe, decode_shape, keys=c.prompt_len, attention=detail)
    host_extra = host_extra_s_per_byte(c, r)
    context_free = tables.context_free
    steady = evaluate_table(
        context_free,
        context_free.basis(decode_terms),
        r,
        fused,
        lay.layer_share,
        host_extra,
        per_operator=False,
        side=False,
    )
    # Steps j = 1..G-1 feed the token at position P + j - 1, which attends to P + j keys; with G = 1 the
    # single step that would follow the prompt stands in (so TPOT stays defined).
    steps = np.maximum(c.gen_len - 1.0, 1.0)
    attention = _decode_attention(tables, c, bpe, r, steps, decode_shape, host_extra, totals)
    links = collective_costs(model, c, lay, bpe.act)
    comm_prefill = communication(model, c, lay, links, new)
    comm_decode = communication(model, c, lay, links, one)
    share, m = lay.layer_share, lay.micro_batches

    def schedule(layers_s: Array, other_s: Array, comm: Communication, decode: bool) -> Array:
        busiest = overlapped(share * layers_s + other_s, comm.stage_s, c.comm_overlap)
        through = overlapped(layers_s + other_s, comm.all_stages_s, c.comm_overlap) + comm.pp_send_s
        if decode:  # a token crosses every stage; each stage serves all m micro-batches per step
            return np.maximum(through, m * busiest)  # type: ignore[no-any-return]
        return through + (m - 1.0) * busiest  # type: ignore[no-any-return]

    host_bytes, host_write = host_kv_writes(c, prefill)  # all layers, one pass; 0 without offload
    ttft = schedule(prefill.layers_s + host_write, prefill.other_s, comm_prefill, decode=False)
    passes = m  # a device runs every micro-batch's pass
    att = attention
    unknown = np.full_like(share, np.nan)
    if totals:
        decode_step = PhaseCost(
            passes * (steady.total("flops") + share * att.step_flops),
            passes * (steady.total("memory_bytes") + share * att.step_bytes),
            schedule(steady.layers_s + att.overhead_s + att.step_s, steady.other_s, comm_decode, decode=True),
        )
    else:
        decode_step = PhaseCost(unknown, unknown, unknown)
    tpot = schedule(steady.layers_s + att.overhead_s + att.mean_s, steady.other_s, comm_decode, decode=True)
    return Evaluation(
        prefill=PhaseCost(
            passes * prefill.total("flops") if totals else unknown,
            passes * prefill.total("memory_bytes") if totals else unknown,
            ttft,
        ),
        decode_step=decode_step,
        tpot_s=tpot,
        memory=memory_breakdown(model, c, bpe, prefill, prefill_terms, lay),
        prefill_ops=prefill,
        decode_ops=evaluate_table(
            tables.decode, tables.decode.basis(decode_terms), r, fused, lay.layer_share, host_extra
        )
        if detail
        else None,
        rates=r,
        layout=lay,
        communication=(comm_prefill, comm_decode),
        host_kv_write_bytes=share * host_bytes,
        host_kv_write_s=share * host_write,
    )
