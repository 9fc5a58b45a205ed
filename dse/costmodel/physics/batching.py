"""A deployment under continuous batching: the formulas of ``continuous`` applied to the step times an
evaluator computes (docs/cost-model.md §16).

The reference evaluator and the fast engine each bring two things: their static evaluation (whose mean
decode step at batch b is a decode step of b sequences, and whose memory gives the weights, the reserve and
the capacity) and the time of a pass's operators (for ``passes.mixed_pass``). Everything else is here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from typing import Any

import numpy as np

from dse import units
from dse.costmodel.candidates import TTFT_EDGES, Candidates
from dse.costmodel.physics import continuous, kvcache, memory, parallel, schedule, serving, speculative
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.continuous import ContinuousServing, StepTimes
from dse.costmodel.physics.evaluation import DecodeEvaluation, Evaluation, PhaseCost
from dse.costmodel.physics.feasibility import PREFILL_POOL_REASONS, Reason
from dse.costmodel.physics.lengths import Spread
from dse.costmodel.physics.parallel import Layout
from dse.costmodel.physics.passes import mixed_pass
from dse.costmodel.physics.speculative import PassParts

Static = Callable[[Candidates], Evaluation]
"""The evaluator's static evaluation of candidates."""
Decode = Callable[[Candidates], DecodeEvaluation]
"""The evaluator's decode step of a static batch of candidates (without speculative decoding): its static
evaluation's decode figures, which an evaluator may compute alone."""

SEQUENCE_DIGITS = 9
"""Decimals a mean number of sequences is rounded to before it is rounded up to whole ones (``evaluate``)."""

MEMORY_REASONS = (Reason.WEIGHTS_EXCEED_MEMORY, Reason.MEMORY_EXCEEDED, Reason.HOST_MEMORY_EXCEEDED)


def _step(
    arch: Architecture,
    c: Candidates,
    lay: Layout,
    parts: PassParts,
    b: Any,
    P: Any,
    G: Any,
    cached: Any,
    tokens: Any,
    full: bool = False,
    chunk: Any = None,
) -> tuple[Any, Any]:
    """(time, activation peak) of the mixed step at b sequences (``continuous.chunks``; G: decode steps per
    request plus one), each decoding sequence bringing ``tokens`` tokens: its pass's operators, its
    collectives, scheduled on the pipeline like a decode step (every micro-batch's rows through every
    stage). Each micro-batch is a virtual engine's (``continuous.per_engine``: v = b / pp sequences, one up to
    pp) and carries its own chunk beside its v - π decoding sequences. ``full``: the step with its room full
    of prompt tokens instead (prompts that vary, §19). ``chunk``: the step carrying a chunk of P / ``chunk``
    tokens instead of its own (``StepTimes.with_chunk_slopes``)."""
    stages = continuous.stages_of(c.pp)
    v = continuous.per_engine(b, stages)
    engines = np.maximum(b, 1.0) / v
    s, k = continuous.chunks(P, G, v, c.chunk_tokens, tokens)
    if chunk is not None:
        s, k = chunk, P / chunk
    with np.errstate(divide="ignore", invalid="ignore"):
        prompts = k / P
        decoding = b - engines * np.maximum(prompts, 1.0)
        if full:  # beside the v - π decoding sequences of ``continuous.room`` (P = 0: all cached, no prompt)
            s, k = np.ones_like(s), continuous.room(G, v, c.chunk_tokens, tokens)
            decoding = np.maximum(b - engines * np.maximum(1.0, v / G), 0.0)
            prompts = np.where(P > 0, k / P, 0.0)
    p = mixed_pass(arch, c, lay, decoding, prompts, s, cached, tokens)
    layers, other, largest = parts(c, p)
    time = schedule.pass_step_s(c, lay, layers, other, p, arch)
    return time, memory.activation_bytes(p.R, arch.hidden_size, p.a, largest, p.B, arch.vocab_size)


def _rows(x: Any, rows: Any, n: tuple[int, ...]) -> Any:
    """``x`` at ``rows`` of the n candidates: arrays over the candidates, and dataclasses of them field by field
    (scalars, shared by every candidate, stay themselves)."""
    if is_dataclass(x):
        return type(x)(**{f.name: _rows(getattr(x, f.name), rows, n) for f in fields(x)})  # type: ignore[misc]
    return x[rows] if np.ndim(x) and np.shape(x)[0] == n[0] else x


def _select(use: Any, a: Any, b: Any) -> Any:
    """``a`` where ``use``, else ``b``: arrays, and dataclasses and tuples of them, field by field."""
    if is_dataclass(a):
        return type(a)(**{f.name: _select(use, getattr(a, f.name), getattr(b, f.name)) for f in fields(a)})  # type: ignore[misc]
    if isinstance(a, tuple):
        return tuple(_select(use, x, y) for x, y in zip(a, b, strict=True))
    return np.where(use, a, b)


def _pools(
    arch: Architecture,
    c: Candidates,
    prefill: Candidates,
    lone: Evaluation,
    decode_layout: Layout | None,
    own: Any,
    parts: PassParts,
    P: Any,
    C: Any,
    cached: Any,
    s1: Any,
    mixed1: Any,
    decode: StepTimes,
    spread: Spread | None,
) -> continuous.Pools:
    """The two pools of disaggregated candidates (``continuous.Pools``): a prefill instance (``prefill``: the
    candidates at one sequence on the prefill pool's configuration, ``lone`` their static evaluation, whose
    lone prompt takes s1 steps of ``mixed1``) runs prompt steps alone (a lone prompt's s chunks; with its
    budget full, C / P prompts a step when they are shorter, in each of its pp micro-batches in flight, as
    virtual engines run them: ``continuous.per_engine``), and a request's KV cache crosses the link between
    the pools: from each prefill device's share, and where a row's pool is of its own (``own``; the decode
    pool's ``decode_layout`` given) into each decode device's share, at the slower side."""
    x = np.maximum(c.prefill_replicas, 1.0)
    y = np.maximum(c.replicas - x, 1.0)
    short = P <= C
    full = np.where(short, C / P, 1.0 / s1)
    pp = prefill.pp
    piped = parallel.layout(arch, pp, prefill.tp, pp, prefill.ep, prefill.devices_per_node, prefill.expert_imbalance)
    p = mixed_pass(arch, prefill, piped, 0.0, full, np.where(short, 1.0, s1), cached)
    layers, other, _ = parts(prefill, p)
    full_s = schedule.pass_step_s(prefill, piped, layers, other, p, arch)
    transfer = _kv_transfer_s(arch, prefill, lone.layout)
    if decode_layout is not None:  # a pool of its own may sit on another machine: what leaves each one
        sent = _kv_transfer_s(arch, prefill, lone.layout, apart=True)
        apart = np.maximum(sent, _kv_transfer_s(arch, c, decode_layout, apart=True))
        transfer = np.where(own, apart, transfer)
    with np.errstate(divide="ignore", invalid="ignore"):  # a prefill takes time in proportion to its prompt
        cv2 = np.where(c.prompt_len > 0, c.prompt_variance / c.prompt_len**2, 0.0)
    return continuous.Pools(x, y, s1 * mixed1, mixed1, pp * full / full_s, transfer, decode, spread, cv2)


def _prefill_pool_reason(arch: Architecture, p1: Candidates, lone: Evaluation, activations: Any, P: Any, C: Any) -> Any:
    """Why a prefill pool of its own cannot run (``Reason``, 0: it can; its own codes,
    ``feasibility.PREFILL_POOL_REASONS``): the static reasons of its lone request (``lone``: formats, parallel
    split, system size, context), and for memory what a prefill instance holds: its weights and reserve, the
    ``activations`` of a step with its budget full (chunked: not the whole prompt's), and the KV cache of the
    prompts of a step (C / P of them, at least one; no output yet) in each of its pp micro-batches in flight
    (a stage holds its layers' share of every one) until they leave for the decode pool."""
    mem = lone.memory
    kv = kvcache.kv_cache_bytes(
        arch, lone.layout, p1.tp, p1.prompt_len, 0.0, units.bits_to_bytes(p1.kv_bits), p1.kv_block_tokens,
        p1.kv_budget_tokens,
    )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        prompts = np.maximum(C / P, 1.0) * p1.pp
    free = mem.capacity_bytes - mem.weights_bytes - mem.reserve_bytes - activations
    memory = np.where(
        mem.weights_bytes + mem.reserve_bytes > mem.capacity_bytes,
        Reason.WEIGHTS_EXCEED_MEMORY,
        np.where(free < kv * prompts, Reason.MEMORY_EXCEEDED, Reason.OK),
    )
    static = np.asarray(lone.metrics.reason)
    base = np.where(np.isin(static, (Reason.OK, *MEMORY_REASONS)), memory, static)
    own = np.arange(len(Reason), dtype=np.int8)  # the prefill pool's code of each reason (its own if none)
    for reason, pool in PREFILL_POOL_REASONS.items():
        own[reason] = pool
    return own[base]


def _fleet(c: Candidates, prefill: Candidates, prefill_devices: Any, decode_devices: Any) -> tuple[Any, Any, Any]:
    """(devices per replica, candidates with the price and power per device, devices) of a deployment whose x
    prefill replicas run ``prefill_devices`` devices of ``prefill``'s hardware and whose other y replicas
    ``decode_devices`` of ``c``'s: the fleet's devices over its replicas, and its price and power over its
    devices, so that replicas x devices x price is the fleet's x n_p p_p + y n_d p_d. x and y are counted
    as ``_pools`` counts them (at least one each: a split without both is infeasible anyway)."""
    split = c.disaggregated
    x = np.maximum(c.prefill_replicas, 1.0)
    n_p, n_d = x * prefill_devices, np.maximum(c.replicas - x, 1.0) * decode_devices
    total = np.where(split, n_p + n_d, c.replicas * decode_devices)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows that do not split keep their own figures
        price = np.where(
            split, (n_p * prefill.usd_per_device_hour + n_d * c.usd_per_device_hour) / total, c.usd_per_device_hour
        )
        power = np.where(split, (n_p * prefill.power_w + n_d * c.power_w) / total, c.power_w)
        devices = np.where(split, total / c.replicas, decode_devices)
    return devices, replace(c, usd_per_device_hour=price, power_w=power), total


def _kv_transfer_s(arch: Architecture, c: Candidates, lay: Layout, *, apart: bool = False) -> Any:
    """A request's KV cache (a device's share, at P tokens) over one side's link: the inter-node link where
    the system has one (pools on separate nodes), else the intra-node link, else the host link. ``apart``
    (pools on machines of their own, as pools of different hardware are): the inter-node link, else the host
    link, which whatever network the machine has sits behind; never the intra-node link."""
    kv = kvcache.kv_cache_bytes(
        arch, lay, c.tp, c.prompt_len, 0.0, units.bits_to_bytes(c.kv_bits), c.kv_block_tokens, c.kv_budget_tokens
    )
    inter = c.inter_link_bytes_per_s > 0
    intra = c.intra_link_bytes_per_s * c.intra_transfer_share  # a transfer, not an all-reduce: its share
    inside = c.host_link_bytes_per_s if apart else np.where(np.isfinite(intra), intra, c.host_link_bytes_per_s)
    link = np.where(inter, c.inter_link_bytes_per_s * c.inter_transfer_share, inside)
    latency = np.where(inter, c.inter_link_latency_s, c.intra_link_latency_s)
    with np.errstate(divide="ignore"):
        return latency + kv / link


def _disaggregated_load(
    pools: continuous.Pools, c: Candidates, G: Any, per_step: Any, closed: Any
) -> tuple[continuous.Load, Any]:
    """The pools at the candidates' load, and their max request rate, per replica (as the aggregated figures
    are: the caller multiplies by the replicas): Poisson arrivals, a closed loop, or every slot busy (no
    wait, as for one engine)."""
    load = pools.busy(np.where(closed, c.concurrency, 0.0), G)
    poisson = np.isfinite(c.request_rate)
    if np.any(poisson):
        at_rate = pools.load(np.where(poisson, c.request_rate, 0.0), G)
        over = at_rate.overloaded
        load = _select(poisson & ~over, at_rate, replace(load, overloaded=poisson & over))
    max_rate = pools.max_rate(G, c.slo_ttft_s, c.slo_tpot_s * per_step, c.slo_quantile)
    return replace(load, rate=load.rate / c.replicas), max_rate / c.replicas


def evaluate(
    arch: Architecture, c: Candidates, static: Static, parts: PassParts, decode: Decode | None = None
) -> Evaluation:
    """Candidates under continuous batching (``Candidates.continuous``), at their load: Poisson arrivals at
    ``request_rate``, a closed loop of ``concurrency`` requests, or, with neither, every slot busy; with
    ``disaggregated``, as separate prefill and decode pools (``continuous.Pools``). The decode steps of b
    sequences come from ``decode`` (None: from ``static``); the lone request's whole static evaluation from
    ``static``."""
    decode = decode or (lambda s: DecodeEvaluation.of(static(s)))
    nothing = np.zeros_like(c.spec_tokens)
    off = np.zeros_like(c.continuous)
    as_static = replace(c, continuous=off, disaggregated=off, request_rate=nothing + np.nan, spec_tokens=nothing)
    n = np.shape(c.batch)
    cached = kvcache.prefix_cached_tokens(c.prefix_hit_rate, c.prompt_len)
    P, C = c.prompt_len - cached, c.chunk_tokens
    # speculative decoding: a decode step verifies γ + 1 tokens a sequence and yields E, so a request takes
    # 1 + (G - 1) / E steps; the formulas run in steps, TPOT is a step over E (``speculative``)
    gamma, draft = c.spec_tokens, c.spec_tokens * c.draft_cost_ratio
    per_step = speculative.expected_tokens(gamma, c.spec_acceptance)
    G = 1.0 + (c.gen_len - 1.0) / per_step
    varies = np.any(c.prompt_quantiles != 1.0)  # prompts of varying length (§19)
    spread = Spread(P, c.prompt_quantiles, TTFT_EDGES) if varies else None
    # how a request's work varies, for the queue (M/G/1): the new prompt tokens' share of the prompt, and the
    # output in decode steps
    work = None
    if np.any(c.prompt_variance > 0) or np.any(c.output_variance > 0):
        work = continuous.Work.of_lengths(
            c.prompt_variance,
            c.output_variance,
            c.length_covariance,
            c.inverse_output_tokens,
            P / np.maximum(c.prompt_len, 1.0),
            per_step,
        )
    # a decode step's keys: the token-weighted mean context, beyond P + G / 2 where lengths vary (§19)
    widened = np.any(c.context_spread != 0)

    def decoding(cand: Candidates) -> Candidates:
        return replace(cand, prompt_len=cand.prompt_len + c.context_spread) if widened else cand

    # one sequence: the lone request's steps, and what a device has left for KV after weights and reserve
    c1 = replace(as_static, batch=np.ones(n))
    one = static(c1)
    s1, k1 = continuous.chunks(P, G, 1.0, C, gamma + 1.0)
    mixed1, act1 = _step(arch, c1, one.layout, parts, 1.0, P, G, cached, gamma + 1.0)
    decode1 = decode(decoding(c1)).tpot_s if widened else one.tpot_s
    plain1 = decode1  # a one-token decode step: what a lone prompt's step would be without the prompt
    if np.any(gamma > 0):
        verify1 = speculative.verify_step_s(arch, replace(c1, spec_tokens=gamma), one.layout, parts, 1.0)
        decode1 = np.where(gamma > 0, speculative.step_s(verify1, decode1, c), decode1)  # alone, no mixed decode
    # the engine reserves activations for a forward pass of its whole budget, C rows, and its sampler's fp32
    # logits for every sequence it may hold, max_num_seqs (γ + 1 rows each under speculation), at most C:
    # vLLM measures its peak memory on a forward pass of max_num_batched_tokens tokens and a sampler run over
    # max_num_seqs sequences. The pass's part grows with its rows, the logits with sequences (one sequence's
    # step holds k1 / P of a prompt's last position)
    logits = memory.logit_bytes(1.0, arch.vocab_size)
    sampled = np.minimum(C, c.max_num_seqs * (gamma + 1.0))
    activations = (act1 - logits * np.minimum(k1 / P, 1.0)) * np.maximum(C / k1, 1.0) + logits * sampled
    kv_one = kvcache.kv_cache_bytes(
        arch,
        one.layout,
        c.tp,
        c.prompt_len + c.context_spread,
        c.gen_len / 2.0,
        units.bits_to_bytes(c.kv_bits),
        c.kv_block_tokens,
        c.kv_budget_tokens,
    )
    mem1, dp = one.memory, one.layout.attention_dp
    weights = mem1.weights_bytes + np.where(gamma > 0, c.draft_weight_bytes, 0.0)
    free = mem1.capacity_bytes - weights - mem1.reserve_bytes - activations
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.floor(dp * np.maximum(free, 0.0) / (kv_one * (1.0 - c.kv_offload_fraction)))
        if np.any(c.kv_offload_fraction > 0):
            fit = np.fmin(fit, np.floor(dp * np.fmax(c.host_memory_bytes, 0.0) / (kv_one * c.kv_offload_fraction)))
    closed = np.isfinite(c.concurrency)
    # every slot's tokens within the budget: a budget for each of the pp micro-batches in flight
    cap = np.fmin(np.fmin(c.max_num_seqs, fit), c.pp * C / (gamma + 1.0))
    # a closed loop's requests spread over the engines that hold them (the decode instances of a split): the
    # busiest holds the share rounded up (5 over 3 replicas: 2), which every engine may
    holders = np.where(c.disaggregated, np.maximum(c.replicas - np.maximum(c.prefill_replicas, 1.0), 1.0), c.replicas)
    cap = np.where(closed, np.minimum(cap, np.ceil(c.concurrency / holders)), cap)
    b_max = np.maximum(np.floor(cap), 1.0)
    # and no more than the prompts' chunks keep fed (a small budget beside many decoding sequences); a
    # disaggregated decode instance is fed by the prefill instances instead
    stages = continuous.stages_of(c.pp)
    fed = np.maximum(np.floor(continuous.fed_slots(b_max, P, G, C, gamma + 1.0, stages)), 1.0)
    b_max = np.where(c.disaggregated, b_max, fed)

    # every slot busy
    cb = replace(as_static, batch=b_max)
    full = decode(decoding(cb))  # its decode step and layout (the mixed step is cb's)
    mixed_max, _ = _step(arch, cb, full.layout, parts, b_max, P, G, cached, gamma + 1.0)
    decode_max = full.tpot_s
    if np.any(gamma > 0):
        verify = speculative.verify_step_s(arch, replace(cb, spec_tokens=gamma), full.layout, parts, b_max)
        decode_max = np.where(gamma > 0, speculative.step_s(verify, full.tpot_s, c), decode_max)
    # a mixture of experts' decode step: where it has touched nearly all its experts (``StepTimes.b_expert``)
    expert: tuple[Any, ...] | None = None
    if arch.moe is not None and arch.moe.experts_per_token < arch.moe.num_experts:  # k = E: all, always
        b_e = continuous.expert_knot(arch.moe.num_experts, arch.moe.experts_per_token, c.pp, b_max, gamma + 1.0)
        ce = replace(as_static, batch=b_e)
        at_e = decode(decoding(ce))
        decode_e = at_e.tpot_s
        if np.any(gamma > 0):
            verify_e = speculative.verify_step_s(arch, replace(ce, spec_tokens=gamma), at_e.layout, parts, b_e)
            decode_e = np.where(gamma > 0, speculative.step_s(verify_e, at_e.tpot_s, c), decode_e)
        expert = (b_e, decode_e, arch.moe.num_experts, arch.moe.experts_per_token, c.pp)
    # and where T_m bends, at b = G (one prompt a mixed step below, b / G beyond): its own pass
    b_mid = continuous.mid_knot(G, b_max, c.pp)
    cm = replace(as_static, batch=b_mid)
    mid_layout = parallel.layout(arch, b_mid, c.tp, c.pp, c.ep, c.devices_per_node, c.expert_imbalance)
    mixed_mid, _ = _step(arch, cm, mid_layout, parts, b_mid, P, G, cached, gamma + 1.0)
    steps = StepTimes(
        b_max, mixed1, decode1, mixed_max, decode_max, gamma + 1.0, b_mid=b_mid, mixed_mid=mixed_mid, stages=stages
    )
    if np.any(gamma > 0):  # the draft's steps for a mixed step's decoding sequences: its plain decode step's
        drafting = gamma > 0  # a row without speculation has no draft (its cost ratio NaN)
        steps = replace(
            steps,
            draft_1=np.where(drafting, draft * one.tpot_s, 0.0),
            draft_max=np.where(drafting, draft * full.tpot_s, 0.0),
        )
    steps = steps if expert is None else steps.with_experts(*expert)
    # where a prompt's chunk count changes between b = 1 and b_max, each end's step with the other's chunk
    # (on those rows alone)
    s_max = continuous.chunks(P, G, b_max, C, gamma + 1.0, stages)[0]
    changes = s1 != s_max
    if np.any(changes):
        some = np.ndim(changes) and not np.all(changes)
        rows = np.flatnonzero(changes) if some else slice(None)

        def at(x: Any) -> Any:
            return _rows(x, rows, n) if some else x

        def other(cand: Candidates, lay: Layout, b: Any, chunk: Any) -> Any:
            args = (at(b), at(P), at(G), at(cached), at(gamma + 1.0))
            part = cand.take(rows) if some else cand  # type: ignore[arg-type]
            time, _ = _step(arch, part, at(lay), parts, *args, chunk=at(chunk))
            if not some:
                return time
            out = np.full(n, np.nan)
            out[rows] = time
            return out

        other_1, other_max = other(c1, one.layout, 1.0, s_max), other(cb, full.layout, b_max, s1)
        steps = steps.with_chunk_slopes(P, G, C, other_1, other_max)
    else:
        steps = steps.with_chunk_slopes(P, G, C)
    if spread is not None:  # a long prompt's step: the room full of prompt tokens (TTFT percentiles, §19)
        full_1, _ = _step(arch, c1, one.layout, parts, 1.0, P, G, cached, gamma + 1.0, full=True)
        full_max, _ = _step(arch, cb, full.layout, parts, b_max, P, G, cached, gamma + 1.0, full=True)
        drafted = continuous.drafted(b_max, G, stages)
        full_max = np.where(gamma > 0, full_max + draft * full.tpot_s * drafted, full_max)
        steps = replace(steps, full_1=full_1, full_max=full_max)

    # the operating point
    rate, concurrency = c.request_rate / c.replicas, c.concurrency / c.replicas
    # the states at one sequence and at every slot busy, which the load and the rate searches start from
    alone, capacity = steps.at(np.ones(n), P, G, C), steps.at(b_max, P, G, C)
    # a closed loop of its concurrency, or every slot busy: nobody waiting (exactly 0, not Little's law's
    # b / X - latency, which cancels to rounding)
    load = continuous.closed_loop(
        steps, np.where(closed, concurrency, 0.0), P, G, C, capacity.requests_per_s, spread, work, one=alone,
        base_s=plain1,
    )  # fmt: skip
    poisson = np.isfinite(rate)
    if np.any(poisson):
        rates = np.where(poisson, rate, 0.0)
        at_rate = continuous.at_rate(steps, rates, P, G, C, spread, work, one=alone, busy=capacity)
        over = at_rate.overloaded  # beyond capacity: every slot busy, and the reason says so
        load = _select(poisson & ~over, at_rate, replace(load, overloaded=poisson & over))
    slo_tpot = c.slo_tpot_s * per_step
    max_rate = continuous.max_rate(steps, P, G, C, c.slo_ttft_s, slo_tpot, c.slo_quantile, spread, work, busy=capacity)
    pool_reason = np.zeros(n, dtype=np.int8)
    devices, fleet, total = full.layout.devices, c, None
    prefill1, lone, mixed_p, decode_layout = c1, one, mixed1, None
    own_pool = c.own_prefill_pool()  # prefill on a pool of its own
    if np.any(c.disaggregated):
        if c.prefill_pool.shape[-1]:  # prefill instances of their own hardware, tp or pp: their lone prompt
            prefill1, decode_layout = c1.prefill_candidates(), one.layout
            lone = static(prefill1)
            mixed_p, act_p = _step(arch, prefill1, lone.layout, parts, 1.0, P, G, cached, gamma + 1.0)
            why = _prefill_pool_reason(arch, prefill1, lone, act_p * np.maximum(C / k1, 1.0), P, C)
            pool_reason = np.where(own_pool, why, pool_reason)
            devices, fleet, total = _fleet(c, prefill1, lone.layout.devices, full.layout.devices)
        decode_steps = StepTimes(b_max, decode1, decode1, decode_max, decode_max, gamma + 1.0)  # no prompts: T_m = T_d
        pools = _pools(
            arch,
            c,
            prefill1,
            lone,
            decode_layout,
            own_pool,
            parts,
            P,
            C,
            cached,
            s1,
            mixed_p,
            decode_steps if expert is None else decode_steps.with_experts(*expert),
            spread,
        )
        apart, apart_max = _disaggregated_load(pools, c, G, per_step, closed)
        load = _select(c.disaggregated, apart, load)
        max_rate = np.where(c.disaggregated, apart_max, max_rate)
    load = replace(  # TPOT per token
        load,
        tpot_s=load.tpot_s / per_step,
        tpot_quantiles_s=tuple(q / per_step for q in load.tpot_quantiles_s),
    )

    # memory at the operating point, and why a candidate cannot run
    b = load.state.slots
    lay = full.layout
    # sequences a data-parallel rank holds, whole; b comes out of the steady state's arithmetic (8 sequences
    # read 7.999999999999999 one way and 8.000000000000002 another), so its last bits are rounded away first
    held = np.ceil(np.round(np.maximum(b, 1.0) / dp, SEQUENCE_DIGITS))
    kv = kv_one * held
    mem = memory.memory_breakdown(
        weights, kv, activations, c.memory_bytes, c.memory_utilization, c.runtime_reserve_bytes,
        c.kv_offload_fraction, c.host_memory_bytes, held, 1.0, dp, c.pp,
    )  # fmt: skip
    mem = replace(mem, max_batch=fit)
    static_reason = np.asarray(one.metrics.reason)
    memory_reason = np.where(
        mem1.weights_bytes + mem1.reserve_bytes > mem1.capacity_bytes,
        Reason.WEIGHTS_EXCEED_MEMORY,
        np.where(fit < 1.0, Reason.MEMORY_EXCEEDED, Reason.OK),
    )
    pool_split = np.logical_and(c.disaggregated, (c.prefill_replicas < 1.0) | (c.prefill_replicas >= c.replicas))
    memory_reason = np.where(pool_split, Reason.POOL_SPLIT, memory_reason)  # in ``CHECK_ORDER``: before memory
    reason = np.where(np.isin(static_reason, (Reason.OK, *MEMORY_REASONS)), memory_reason, static_reason)
    reason = np.where((reason == Reason.OK) & (pool_reason != Reason.OK), pool_reason, reason)  # prefill pool's
    reason = np.where((reason == Reason.OK) & load.overloaded, Reason.OVERLOADED, reason).astype(np.int8)

    # serving metrics: Little's law gives the requests in the system, B = X (W + TTFT + (G - 1) TPOT)
    e2e = load.ttft_s + (c.gen_len - 1.0) * load.tpot_s
    with np.errstate(invalid="ignore"):  # a pool that cannot hand its KV over (no link): no rate, no end
        in_system = load.rate * e2e
    metrics = serving.metrics_for(
        replace(fleet, batch=in_system, gen_padding=np.zeros_like(c.gen_padding)),
        devices,
        load.ttft_s,
        load.tpot_s,
        mem.total_bytes,
        reason,
    )
    # decoding: the sequences in an engine over TPOT (``in_system`` counts those queued before it too); a
    # disaggregated group's pools keep ``in_system``'s reading, their state being the group's, not an engine's
    with np.errstate(divide="ignore", invalid="ignore"):
        decoding = np.where(c.disaggregated, metrics.decode_throughput_tokens_per_s, c.replicas * b / load.tpot_s)
    metrics = replace(metrics, max_request_rate=c.replicas * max_rate, decode_throughput_tokens_per_s=decoding)
    if total is not None:  # the fleet's count itself, not replicas x its mean per replica (rounding)
        metrics = replace(metrics, devices=np.where(c.disaggregated, total, metrics.devices))
    extra = ContinuousServing(
        slots=b,
        max_slots=fit,
        busy_slots=b_max,
        chunks=load.state.chunks,
        prefill_share=load.state.prefill_share,
        utilization=load.utilization,
        wait_s=load.wait_s,
        request_rate=c.replicas * load.rate,
        max_request_rate=c.replicas * max_rate,
        mixed_step_s=load.state.mixed_s,
        decode_step_s=load.state.decode_s,
        ttft_quantiles_s=load.ttft_quantiles_s,
        tpot_quantiles_s=load.tpot_quantiles_s,
    )
    return Evaluation(
        prefill=_select(  # a prefill pool of its own: its prefill is the one a request gets
            own_pool,
            PhaseCost(lone.prefill.flops, lone.prefill.memory_bytes, mixed_p * s1),
            PhaseCost(one.prefill.flops, one.prefill.memory_bytes, mixed1 * s1),
        ),
        decode_step=full.decode_step,
        tpot_s=load.tpot_s,
        memory=mem,
        layout=lay,
        # prefill's collectives and host writes are a request's (the lone prompt's, as its phase above), not
        # those of a static batch of every slot; a decode step's are at every slot busy
        communication=(_select(own_pool, lone.communication[0], one.communication[0]), full.communication),
        host_kv_write_bytes=_select(own_pool, lone.host_kv_write_bytes, one.host_kv_write_bytes),
        host_kv_write_s=_select(own_pool, lone.host_kv_write_s, one.host_kv_write_s),
        metrics=metrics,
        operators=(lone.operators[0] if np.all(own_pool) else one.operators[0], full.operators),
        serving=extra,
    )
