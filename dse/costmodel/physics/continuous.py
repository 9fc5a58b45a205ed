"""Continuous batching with chunked prefill, under a load: the steady state of a serving engine
(docs/cost-model.md §16).

An engine step (Orca, Yu et al. OSDI 2022: iteration-level scheduling) runs every admitted sequence's next
token, and fills what is left of a token budget C with a chunk of a waiting prompt (Sarathi-Serve, Agrawal
et al. OSDI 2024, arXiv 2403.02310; vLLM's scheduler schedules running decodes first, then prefill chunks,
under ``max_num_batched_tokens``). With b sequences in the engine (at most ``max_num_seqs``):

- a **mixed step** carries k prompt tokens beside the other sequences' decode tokens: with π = max(1, b / G)
  prompts a step, the room is C - (b - π); a prompt of P new tokens longer than the room runs in
  s = ceil(P / room) chunks of k = P / s, one per step; shorter prompts share a step, k = min(room, π P)
  (``chunks``);
- a **decode step** carries the b sequences' decode tokens alone.

Step times come from the roofline of the step's pass (``passes.mixed_pass``; a decode step is the static
model's decode step at batch b). Steady state per step: a share φ of the steps are mixed; requests complete
at r = φ k / P per step, and b - φ π decode tokens are produced per step (π = max(k / P, 1) sequences
prefill in a mixed step), so r (G - 1) = b - φ π, which gives ``φ = b P / ((G - 1) k + π P)``
(``prefill_share``). Everything else follows:

- TPOT (token-weighted mean) = (φ (b - π) T_m + (1 - φ) b T_d) / (b - φ π); TTFT of the chunks = s T_m;
- requests/s X = r / (φ T_m + (1 - φ) T_d); Little's law X (TTFT + (G - 1) TPOT) = b holds exactly.

With pp pipeline stages the engine keeps pp micro-batches in flight, each scheduled on its own with its own
token budget (vLLM's virtual engines, its batch queue): b sequences are min(b, pp) virtual engines of
v = max(b / pp, 1) each (``per_engine``). The formulas above are one virtual engine's at v, a step being a
cycle of every micro-batch's pass (T_m with a chunk in each), and the engine completes min(b, pp) times its
requests at its latencies.

Under Poisson arrivals at rate λ the engine runs at the b where X(b) = λ; requests queue for it as in an
M/G/1 queue at ρ = λ / X(b_max) (Pollaczek-Khinchine mean wait; M/D/1 when every request brings the same
work, ``Work`` when lengths vary), and a new request waits for the step in progress. A fixed concurrency
n (a closed loop, as benchmark tools drive engines) runs at b = min(n, slots); requests beyond the slots
wait, and Little's law gives their wait.

Assumptions (each said in docs/cost-model.md §16): the steady state at the mean lengths (lengths that vary add
the spread of their context and TTFT over the prompts, §19); one prompt prefills per
mixed step when its prompt is longer than the room; step times between b = 1 and the largest b are
interpolated linearly, the mixed step's with a knot at b = G where its prompts go from one a step to b / G
(``StepTimes``; exact at the knots, above the convex roofline in between: conservative), the mixed step
corrected by the chunk a step carries where a prompt's chunk count changes between the knots, at a prompt
token's cost measured at each end (``StepTimes.with_chunk_slopes``), a mixture of experts' decode step with
a bulge of the experts it touches; the waiting time's tail is exponential beyond its atom at zero (exact
for M/M/1, Kingman's heavy-traffic form otherwise); a request's number of mixed steps is binomial, read at
its normal quantile.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

import numpy as np

from dse.costmodel.physics.lengths import Spread
from dse.costmodel.physics.queueing import closed_wait_s, pk_wait_s, ttft_quantile_s, ttft_quantile_within

QUANTILES = (0.5, 0.9, 0.99)
"""The percentiles reported: p50, p90, p99."""
_Z = {0.5: 0.0, 0.9: 1.2815515655446004, 0.99: 2.3263478740408408}
"""Standard normal quantiles of ``QUANTILES``."""
BISECTION_STEPS = 24
"""Halvings of the slot interval when solving for a rate: 2^-24 of it (1e-4 of a sequence at 1,024 slots)."""


def normal_quantile(q: Any) -> Any:
    """z with Φ(z) = q for q in ``QUANTILES`` (NaN for any other)."""
    q = np.asarray(q, dtype=np.float64)
    return np.select([q == p for p in QUANTILES], [_Z[p] for p in QUANTILES], np.nan)


def per_engine(b: Any, stages: Any = 1.0) -> Any:
    """v = max(b / pp, 1): the sequences each of an engine's virtual engines holds when b sequences are spread
    over its pp pipeline stages (``stages``), one virtual engine per micro-batch in flight (module doc):
    min(b, pp) of them busy, b / pp sequences each beyond pp, one each up to it. With one stage (a scalar
    1), b itself: below one sequence a mixed step's room and chunks are those of one."""
    if _one_stage(stages):
        return b
    return np.maximum(b / stages, 1.0)


def _one_stage(stages: Any) -> bool:
    """Whether ``stages`` is the scalar 1 (``stages_of``): no virtual engines to spread sequences over."""
    return np.ndim(stages) == 0 and stages == 1.0


def stages_of(pp: Any) -> Any:
    """pp as the virtual engines' functions take it: the scalar 1 where every candidate has one stage (their
    arithmetic then skips the spread), else pp."""
    return 1.0 if np.all(np.asarray(pp) == 1.0) else pp


def room(G: Any, b: Any, C: Any, tokens: Any = 1.0, stages: Any = 1.0) -> Any:
    """C - t (v - π), at least one token: what a mixed step leaves for a virtual engine's prompts beside its
    v - π decoding sequences' t tokens each (v = ``per_engine``; t = γ + 1 under speculative decoding, whose
    verification counts against the budget as vLLM's scheduler counts it), with π = max(1, v / G) prompts a
    step (``chunks``)."""
    v = per_engine(b, stages)
    return _room(np.maximum(1.0, v / G), v, C, tokens)


def _room(prompts: Any, b: Any, C: Any, tokens: Any) -> Any:
    """``room`` given π, the prompts a step."""
    return np.maximum(C - np.maximum(b - prompts, 0.0) * tokens, 1.0)


def chunks(P: Any, G: Any, b: Any, C: Any, tokens: Any = 1.0, stages: Any = 1.0) -> tuple[Any, Any]:
    """(s, k): the steps a prompt of P new tokens spans, and the prompt tokens a (virtual engine's) mixed step
    carries.

    The v sequences of a virtual engine (``per_engine``: b with one stage) turn over every G steps, so a mixed
    step carries π = max(1, v / G) prompts, beside v - π decode tokens; the room it leaves for prompts is
    C - (v - π) (at least one token). A prompt longer than the room runs in s = ceil(P / room) chunks of
    k = P / s, one prompt per step; a shorter one in one step with the other prompts that arrived since the
    last step: k = min(room, π P). Decoding sequences bring ``tokens`` tokens each (``room``)."""
    v = per_engine(b, stages)
    return _chunks(P, G, v, room(G, v, C, tokens))


def _chunks(P: Any, G: Any, b: Any, space: Any, prompts: Any = None) -> tuple[Any, Any]:
    """``chunks`` given the room (and π, the prompts a step, where the caller has it)."""
    prompts = np.maximum(1.0, b / G) if prompts is None else prompts
    s = np.maximum(np.ceil(P / space), 1.0)
    return s, np.where(s > 1.0, P / s, np.minimum(space, prompts * P))


def prefill_share(b: Any, P: Any, G: Any, k: Any) -> tuple[Any, Any]:
    """(φ, b'): the share of steps that carry prompt tokens, ``φ = b P / ((G - 1) k + π P)`` with π = max(k /
    P, 1) prompts prefilling in a mixed step, at most 1; and the sequences b' the engine holds in steady
    state: b, or, where prefill cannot keep b slots fed (φ capped), the ``(G - 1) k / P + π`` it can.

    From the balance per step: requests complete at r = φ k / P, decode tokens come at b - φ π, and each
    request decodes G - 1 of them."""
    phi, held, _ = _prefill_share(b, P, G, k)
    return phi, held


def _prefill_share(b: Any, P: Any, G: Any, k: Any) -> tuple[Any, Any, Any]:
    """``prefill_share``, and π = max(k / P, 1) with it."""
    pi = np.maximum(k / P, 1.0)
    decode = (G - 1.0) * k
    phi = np.minimum(b * P / (decode + pi * P), 1.0)
    return phi, phi * (decode / P + pi), pi


@dataclass(frozen=True)
class Steady:
    """The engine's steady state at b sequences (floats or arrays; times in s)."""

    slots: Any
    """b: sequences in the engine (prefilling or decoding)."""
    chunks: Any
    """s: chunks per prompt."""
    prefill_share: Any
    """φ: share of the steps carrying a prompt chunk."""
    mixed_s: Any
    """T_m: a step with prompt tokens and the other sequences' decode tokens."""
    decode_s: Any
    """T_d: a step of b decode tokens."""
    step_s: Any
    """The mean step: φ T_m + (1 - φ) T_d."""
    requests_per_s: Any
    """X: requests completed per second."""
    ttft_s: Any
    """s T_m: the prompt's chunks, without waiting."""
    tpot_s: Any
    """Token-weighted mean TPOT, prefill interference included."""
    mixed_token_share: Any
    """φ': the share of a decoding sequence's steps that carry another prompt's chunk."""
    prompts_per_step: Any
    """π: prompts prefilling in a mixed step (1 for a chunk of a longer prompt)."""
    room: Any
    """Prompt tokens a mixed step may carry: C - (b - π)."""
    prompt_tokens_per_step: Any
    """k: prompt tokens a mixed step carries."""
    full_s: Any = None
    """A mixed step with the room full of prompt tokens (prompts that vary; None: not evaluated)."""
    engines: Any = 1.0
    """m = b / v: the virtual engines busy (``per_engine``; 1 with one pipeline stage). ``prompts_per_step``,
    ``room`` and ``prompt_tokens_per_step`` are one virtual engine's, ``slots`` and ``requests_per_s`` all
    of them."""
    stages: Any = 1.0
    """pp: the virtual engines there are, busy or not (``step_in_progress_s``)."""


def steady_state(
    b: Any, P: Any, G: Any, C: Any, mixed_s: Any, decode_s: Any, tokens: Any = 1.0, stages: Any = 1.0
) -> Steady:
    """The steady state at b sequences (module doc), each decoding sequence bringing ``tokens`` tokens a step,
    spread over the virtual engines of ``stages`` pipeline stages: each holds v = ``per_engine`` sequences
    and runs one step (mixed or decode) a cycle of T_m or T_d, the pass of every micro-batch, so the m = b / v
    of them complete m times one's requests. Below one sequence (a lightly loaded engine, b < 1) a request
    runs alone: TTFT s T_m, TPOT T_d, and X = b / (s T_m + (G - 1) T_d) (Little's law)."""
    return _steady(_Geometry.at(b, P, G, C, tokens, stages), P, G, mixed_s, decode_s, stages)


@dataclass(frozen=True)
class _Geometry:
    """What a step at max(b, 1) sequences carries, whatever its time: one virtual engine's sequences v and the
    engines busy m (``per_engine``), π, the room and (s, k) (``chunks``)."""

    per_engine: Any
    engines: Any
    prompts: Any
    room: Any
    chunks: Any
    prompt_tokens: Any

    @classmethod
    def at(cls, b: Any, P: Any, G: Any, C: Any, tokens: Any, stages: Any) -> _Geometry:
        b = np.maximum(b, 1.0)
        one = _one_stage(stages)
        v = b if one else per_engine(b, stages)
        prompts = np.maximum(1.0, v / G)
        space = _room(prompts, v, C, tokens)
        s, k = _chunks(P, G, v, space, prompts)
        return cls(v, 1.0 if one else b / v, prompts, space, s, k)

    @property
    def drafted(self) -> Any:
        """``drafted``: the share of a mixed step that runs the draft's steps."""
        return _drafted(self.per_engine, self.prompts)


def drafted(b: Any, G: Any, stages: Any = 1.0) -> Any:
    """Under speculative decoding, the share of a mixed step at b sequences that runs the draft's steps: its v -
    π decoding sequences (``_Geometry``), at most one (a step with any drafts for them all in one go), none
    beside a lone prompt."""
    v = per_engine(np.maximum(b, 1.0), stages)
    return _drafted(v, np.maximum(1.0, v / G))


def _drafted(per_engine: Any, prompts: Any) -> Any:
    return np.clip(per_engine - prompts, 0.0, 1.0)


def _steady(geometry: _Geometry, P: Any, G: Any, mixed_s: Any, decode_s: Any, stages: Any) -> Steady:
    """``steady_state`` given the step's ``_Geometry``."""
    one = _one_stage(stages)
    engines, space, s, k = geometry.engines, geometry.room, geometry.chunks, geometry.prompt_tokens
    phi, v, pi = _prefill_share(geometry.per_engine, P, G, k)
    step = phi * mixed_s + (1.0 - phi) * decode_s
    decoding = v - phi * pi  # decode tokens per step
    with np.errstate(divide="ignore", invalid="ignore"):
        interfered = np.where(decoding > 0, phi * (v - pi) / decoding, 0.0)
    tpot = decode_s + (mixed_s - decode_s) * interfered
    ttft = s * mixed_s
    x = phi * k / P / step
    if not one:
        x, v = engines * x, engines * v
    return Steady(v, s, phi, mixed_s, decode_s, step, x, ttft, tpot, interfered, pi, space, k, None, engines, stages)


def lone(b: Any, one: Steady, G: Any) -> Steady:
    """``one`` (the state at one sequence) scaled to b < 1 sequences: X = b / (TTFT + (G - 1) TPOT)."""
    return replace(one, slots=b, requests_per_s=b / (one.ttft_s + (G - 1.0) * one.tpot_s))


@dataclass(frozen=True)
class Work:
    """How much a request's work varies when lengths vary (floats or arrays): Var(P) of the prompt tokens it
    prefills (tokens²), Var(G) of the steps it decodes (steps²) and their covariance."""

    prompt_variance: Any
    step_variance: Any
    covariance: Any
    inverse_steps: Any = None
    """E[1 / (G - 1)] over requests, G - 1 in decode steps (NaN or None: fixed outputs; ``tpot_quantile_s``)."""

    @classmethod
    def of_lengths(
        cls, prompt_variance: Any, output_variance: Any, covariance: Any, inverse: Any, new_share: Any, per_step: Any
    ) -> Work:
        """From the lengths' Var(P), Var(G), Cov(P, G) (tokens²) and E[1 / (G - 1)] (tokens⁻¹; NaN: fixed
        outputs): a share ``new_share`` of each prompt prefilled (the rest from the prefix cache), and
        ``per_step`` tokens a decode step (speculative decoding), so G - 1 tokens are (G - 1) / per_step
        steps."""
        finite = np.any(np.isfinite(inverse))
        return cls(
            prompt_variance * new_share**2,
            output_variance / per_step**2,
            covariance * new_share / per_step,
            inverse * per_step if finite else None,
        )

    @staticmethod
    def _parts(state: Steady) -> tuple[Any, Any, Any]:
        """(α, β, what holding a slot while prefilling adds per prompt token: β / k for a chunked prompt)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            # a prompt token adds α to its virtual engine's step, which the m engines' steps share
            per = state.prompt_tokens_per_step
            per = per if _one_stage(state.engines) else per * state.engines
            alpha = np.maximum(state.mixed_s - state.decode_s, 0.0) / per
            beta = state.decode_s / state.slots
            held = np.where(state.chunks > 1.0, beta / state.prompt_tokens_per_step, 0.0)
        return alpha, beta, held

    @staticmethod
    def mean_s(state: Steady, P: Any, G: Any) -> Any:
        """E[w], a mean request's share of the engine at ``state``: α P + β (G - 1) + β π P / k, which is 1 / X
        (module doc: X = m φ k / P / (φ T_m + (1 - φ) T_d) with φ = v P / ((G - 1) k + π P), m v = b; α a
        prompt token's share of the m virtual engines' steps)."""
        alpha, beta, _ = Work._parts(state)
        with np.errstate(divide="ignore", invalid="ignore"):
            return alpha * P + beta * (G - 1.0) + beta * state.prompts_per_step * P / state.prompt_tokens_per_step

    def cv2(self, state: Steady, P: Any, G: Any) -> Any:
        """c², the squared coefficient of variation of a request's work at the engine's ``state`` (every slot
        busy). A request's work: α per prompt token, α = (T_m - T_d) / k, what it adds to a mixed step; β per
        decode step it holds a slot, β = T_d / b, a sequence's share of a decode step; and β for each step its
        prompt holds a slot while prefilling: P / k steps for a chunked prompt (so β / k a token more), one
        step for a prompt that shares a step (not growing with its length). Its mean is ``mean_s``, 1 / X;
        c² = (a² Var(P) + β² Var(G) + 2 a β Cov(P, G)) / E[w]², a the work per prompt token."""
        alpha, beta, held = self._parts(state)
        a = alpha + held
        mean = self.mean_s(state, P, G)
        var = a**2 * self.prompt_variance + beta**2 * self.step_variance + 2.0 * a * beta * self.covariance
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(mean > 0.0, np.maximum(var, 0.0) / mean**2, 0.0)


def work_cv2(work: Work | None, state: Steady, P: Any, G: Any) -> Any:
    """``Work.cv2``; 0 (M/D/1) without ``work``."""
    return 0.0 if work is None else work.cv2(state, P, G)


def inverse_steps(work: Work | None) -> Any:
    """``Work.inverse_steps``; None (fixed outputs) without ``work``."""
    return None if work is None else work.inverse_steps


def along(b: Any, b_max: Any) -> Any:
    """b's share of the way from one sequence to b_max, clipped to [0, 1] (0 where b_max <= 1): the weight of
    b_max's step in a line between the two (``StepTimes``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b_max > 1.0, (np.minimum(np.maximum(b, 1.0), b_max) - 1.0) / (b_max - 1.0), 0.0)


@dataclass(frozen=True)
class StepTimes:
    """Step times of one deployment evaluated at knots, interpolated linearly in between (module doc): T_d at
    b = 1 and at its largest b (``b_max``; a mixture of experts' also at ``b_expert``), T_m there and at
    ``b_mid``."""

    b_max: Any
    mixed_1: Any
    decode_1: Any
    mixed_max: Any
    decode_max: Any
    tokens: Any = 1.0
    """Tokens a decoding sequence brings to a step (γ + 1 under speculative decoding)."""
    full_1: Any = None
    full_max: Any = None
    """A mixed step with its room full of prompt tokens, at b = 1 and b_max (None: not needed, prompts
    that do not vary)."""
    b_mid: Any = None
    mixed_mid: Any = None
    """A third knot of T_m, the mixed step at b_mid = min(G, b_max) (None: T_m straight from b = 1 to b_max).
    Up to b = G a mixed step carries one prompt (k about constant, the prompt or its chunk), beyond it b / G
    prompts (k growing with b), so T_m bends at G: the straight line carried b_max's step, full of prompt
    tokens, to loads whose steps carry one prompt (``mid_knot``)."""
    b_expert: Any = None
    decode_expert: Any = None
    expert_rate: Any = None
    expert_reach: Any = None
    expert_scale: Any = None
    """A knot of T_d for a mixture of experts (None: T_d is the line from b = 1 to b_max; ``with_experts``):
    b_e, T_d there, r = -ln(1 - k / E) t / pp (t tokens a sequence routes a step), w(b_max) and the bulge's
    scale. Each sequence more reads the experts no other touched, 1 - (1 - k / E)^(b / pp) of them under
    uniform routing (``moe.experts_touched_fraction``), most within a few sequences, so T_d is concave there
    and the line from one sequence runs under it: Mixtral-8x7B on an H200 at 5.6 sequences read 8.6 ms for steps of
    18-23 ms (the static model at 4 and 8). T_d is the line plus a bulge of that curve's shape, w(b) = 1 -
    e^(-r (b - 1)) less its own chord, w(b) - t w(b_max) with t = (b - 1) / (b_max - 1), scaled so T_d(b_e)
    is the evaluated step: exact at 1, b_e and b_max, the parts that grow linearly with b (KV reads,
    compute) left on the line."""
    stages: Any = 1.0
    """pp: pipeline stages, one virtual engine per micro-batch in flight, which share the slots
    (``steady_state``)."""
    prompt_1: Any = None
    prompt_mid: Any = None
    prompt_max: Any = None
    """k, the prompt tokens a (virtual engine's) mixed step carries at each knot (``with_chunk_slopes``; None:
    T_m is the line through the knots' own steps)."""
    slope_1: Any = None
    slope_max: Any = None
    """σ, what one prompt token more adds to a mixed step at b = 1 and at b_max, at the same b and decoding
    sequences (s⁻¹; ``with_chunk_slopes``; 0 where a prompt's chunk count is the same at both knots)."""
    draft_1: Any = None
    draft_max: Any = None
    """Under speculative decoding, the draft model's steps for a mixed step's decoding sequences at b = 1 and
    b_max, γ c_d T_d' (s; T_d' the plain one-token decode step there, c_d the draft's cost over it; None: no
    speculation): a mixed step with at least one decoding sequence runs them, one carrying a lone prompt
    does not (``_mixed``). The knots' own T_m are without them."""

    def with_chunk_slopes(self, P: Any, G: Any, C: Any, other_1: Any = None, other_max: Any = None) -> StepTimes:
        """These steps with the chunk a step carries taken into account between the knots (``mixed_at``).

        The line through the knots' T_m carries their chunks along it, which a step between them does not carry
        where a prompt's chunk count changes (s_1 chunks beside one sequence, s_max at b_max): with a
        2,048-token budget, a 4,075-token prompt runs in two chunks up to 11 sequences and in three at b_max =
        86, and the line charged a step of 11 sequences for 1,958 prompt tokens where it carries 2,038, one of
        12 for 1,950 where it carries 1,358 (docs/cost-model.md §16). ``other_1`` is the mixed step at b = 1
        carrying b_max's chunk, P / s_max, and ``other_max`` the one at b_max carrying the lone prompt's, P /
        s_1 (None where no candidate's chunk count changes). Their differences over the chunks' give σ at each
        end, the cost of a prompt token at that b measured, not assumed proportional: a mixture of experts'
        prompt part is mostly the experts its chunk touches, whatever the chunk's size."""

        def at(b: Any) -> Any:
            return (None, None) if b is None else chunks(P, G, b, C, self.tokens, self.stages)

        (s_1, k_1), (s_max, k_max) = at(1.0), at(self.b_max)
        out = replace(self, prompt_1=k_1, prompt_mid=at(self.b_mid)[1], prompt_max=k_max)
        if other_1 is None:
            return replace(out, slope_1=0.0, slope_max=0.0)
        span = k_1 - k_max
        with np.errstate(divide="ignore", invalid="ignore"):
            changes = s_1 != s_max
            one = np.where(changes, (self.mixed_1 - other_1) / span, 0.0)
            top = np.where(changes, (other_max - self.mixed_max) / span, 0.0)
        return replace(out, slope_1=one, slope_max=top)

    def with_experts(self, b_e: Any, decode_e: Any, E: int, k: int, pp: Any) -> StepTimes:
        """These steps with a MoE model's decode step evaluated at b_e (``decode_e``; E experts, k a token, pp
        pipeline stages, ``tokens`` a sequence: a verification step routes γ + 1): ``b_expert``. The bulge
        only adds to the line (a step evaluated under it, as on a stair of whole micro-batches, leaves the
        line)."""
        rate = -np.log1p(-k / E) * self.tokens / pp
        reach = -np.expm1(-rate * (self.b_max - 1.0))
        shaped = replace(self, b_expert=b_e, decode_expert=decode_e, expert_rate=rate, expert_reach=reach)
        line = self.decode_at(b_e)
        bulge = replace(shaped, expert_scale=1.0).decode_at(b_e) - line  # the curve less its chord, at b_e
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(bulge > 0.0, np.maximum(decode_e - line, 0.0) / bulge, 0.0)
        return replace(shaped, expert_scale=scale)

    @cached_property
    def _rises(self) -> _Rises:
        """What the lines of ``decode_at`` and ``mixed_at`` take from the knots alone, whatever b."""
        with np.errstate(invalid="ignore"):
            mid, span = self.b_mid, None if self.b_mid is None else self.b_max - self.b_mid
            return _Rises(
                rising=self.b_max > 1.0,
                run=self.b_max - 1.0,
                decode=self.decode_max - self.decode_1,
                mixed=self.mixed_max - self.mixed_1,
                full=None if self.full_1 is None else self.full_max - self.full_1,
                mid_rising=None if mid is None else mid > 1.0,
                mid_run=None if mid is None else mid - 1.0,
                span=span,
                spanned=None if span is None else span > 0.0,
                low=None if mid is None else self.mixed_mid - self.mixed_1,
                high=None if mid is None else self.mixed_max - self.mixed_mid,
            )

    def _along(self, lift: Any) -> Any:
        """``along`` of b given ``lift``, min(max(b, 1), b_max) - 1."""
        rises = self._rises
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(rises.rising, lift / rises.run, 0.0)

    def _decode(self, lift: Any, t: Any) -> Any:
        """``decode_at`` given ``lift`` and t = ``along``."""
        line = self.decode_1 + t * self._rises.decode
        if self.b_expert is None:
            return line
        bulge = -np.expm1(-self.expert_rate * lift) - t * self.expert_reach
        return line + self.expert_scale * bulge

    def _mixed(self, b: Any, one: Any, t: Any, geometry: _Geometry | None) -> Any:
        """``mixed_at`` given ``one``, max(b, 1), t = ``along`` and the step's ``_Geometry`` at min(max(b, 1),
        b_max) (None: the line, and one prompt a step for the draft's share)."""
        rises = self._rises
        if self.b_mid is None:
            line = self.mixed_1 + t * rises.mixed
            weights: tuple[Any, ...] = (t,)
        else:
            weights = self._segments(b, one)
            line = self.mixed_1 + weights[0] * rises.low + weights[1] * rises.high
        if self.draft_1 is not None:  # the draft's steps, where a decoding sequence is there to draft for
            share = _drafted(one, 1.0) if geometry is None else geometry.drafted
            line = line + (self.draft_1 + t * (self.draft_max - self.draft_1)) * share
        if geometry is None or self.slope_1 is None:
            return line
        k = geometry.prompt_tokens
        carried = _on_line(self.prompt_1, self.prompt_mid, self.prompt_max, weights)  # k̄, the line's chunk
        more = k - carried
        # σ between the ends is not linear in b (it bends where the step turns compute-bound): the larger end's
        # for tokens the line lacks, the smaller's for tokens it has too many, so the correction is never more
        # than either end's reading allows (the line stays conservative)
        low, high = np.minimum(self.slope_1, self.slope_max), np.maximum(self.slope_1, self.slope_max)
        return line + np.where(more > 0.0, high, low) * more

    def _segments(self, b: Any, one: Any) -> tuple[Any, Any]:
        """How far along each of the mixed line's segments b is, from 1 to b_mid and from b_mid to b_max."""
        rises = self._rises
        with np.errstate(divide="ignore", invalid="ignore"):
            low = np.where(rises.mid_rising, (np.minimum(one, self.b_mid) - 1.0) / rises.mid_run, 1.0)
            above = np.minimum(np.maximum(b, self.b_mid), self.b_max) - self.b_mid
            high = np.where(rises.spanned, above / rises.span, 0.0)
        return low, high

    def decode_at(self, b: Any) -> Any:
        """T_d at b sequences: the line from b = 1 to b_max, plus a mixture of experts' bulge (``b_expert``)."""
        lift = np.minimum(np.maximum(b, 1.0), self.b_max) - 1.0
        return self._decode(lift, self._along(lift))

    def mixed_at(self, b: Any, P: Any = None, G: Any = None, C: Any = None) -> Any:
        """T_m at b sequences: linear between the knots (1, b_mid, b_max; no b_mid: from 1 to b_max), constant
        beyond the ends; given the chunk slopes (``with_chunk_slopes``) and P, G and C, plus σ (k(b) - k̄(b)):
        k(b) the chunk a step at b carries, k̄(b) the one the line carries (the knots' k on the same line), σ the
        cost of a prompt token, the larger end's where k > k̄ and the smaller's where k < k̄. Exact at the
        knots; the line itself where a prompt's chunk count is the same at both ends. Under speculative
        decoding, plus the draft's steps where the step has a decoding sequence (``drafted``; without P, G and
        C, one prompt a step)."""
        one = np.maximum(b, 1.0)
        inside = np.minimum(one, self.b_max)
        t = self._along(inside - 1.0)
        geometry = None if P is None else _Geometry.at(inside, P, G, C, self.tokens, self.stages)
        return self._mixed(b, one, t, geometry)

    def at(self, b: Any, P: Any, G: Any, C: Any) -> Steady:
        """The steady state at b sequences, 0 < b <= b_max; below one, a lone request's (``lone``)."""
        one = np.maximum(b, 1.0)
        lift = np.minimum(one, self.b_max) - 1.0
        t = self._along(lift)
        decode = self._decode(lift, t)
        geometry = _Geometry.at(one, P, G, C, self.tokens, self.stages)
        inside = geometry
        if np.any(one > self.b_max):  # the ends' chunk beyond them, as T_m's
            inside = _Geometry.at(np.minimum(one, self.b_max), P, G, C, self.tokens, self.stages)
        mixed = self._mixed(b, one, t, inside)
        # a mixed step carries the b - π decoding sequences and k >= π prompt tokens: never less than T_d
        # (a MoE model's T_d follows its experts' curve, which the mixed knots' line does not)
        mixed = mixed if self.b_expert is None else np.maximum(mixed, decode)
        state = _steady(geometry, P, G, mixed, decode, self.stages)
        changes = {}
        if self.full_1 is not None:
            changes["full_s"] = self.full_1 + t * self._rises.full
        below = b < 1.0
        if np.any(below):  # the state at max(b, 1) is the state at one sequence where b < 1
            alone = lone(b, state, G)
            changes["slots"] = np.where(below, alone.slots, state.slots)
            changes["requests_per_s"] = np.where(below, alone.requests_per_s, state.requests_per_s)
        return replace(state, **changes) if changes else state


def _on_line(first: Any, mid: Any, last: Any, weights: tuple[Any, ...]) -> Any:
    """A value at b on the mixed step's line through its knots (``StepTimes._segments``' weights, or
    ``along`` alone without a middle knot)."""
    if len(weights) == 1:
        return first + weights[0] * (last - first)
    low, high = weights
    return first + low * (mid - first) + high * (last - mid)


@dataclass(frozen=True)
class _Rises:
    """``StepTimes``'s knots as its lines read them: whether b_max > 1 and b_max - 1, each line's rise over its
    segment, and the middle knot's segments (None without one)."""

    rising: Any
    run: Any
    decode: Any
    mixed: Any
    full: Any
    mid_rising: Any
    mid_run: Any
    span: Any
    spanned: Any
    low: Any
    high: Any


# --- load -------------------------------------------------------------------------------------------------


def _prefill(spread: Spread | None, state: Steady) -> Any:
    """``Spread.service_s`` at the engine's state (None: fixed prompts)."""
    if spread is None:
        return None
    prefill = spread.service_s(state.decode_s, state.mixed_s, state.prompt_tokens_per_step, state.room, state.full_s)
    if prefill is None:
        return None
    fixed = np.all(np.asarray(spread.quantiles) == 1.0, axis=-1, keepdims=True)  # a fixed length: its own
    return np.where(fixed, np.asarray(state.ttft_s)[..., None], prefill)


def _edges(spread: Spread | None) -> tuple[float, ...]:
    return spread.edges if spread is not None else ()


def tpot_quantile_s(q: Any, state: Steady, G: Any, z: Any = None, inverse: Any = None) -> Any:
    """A request's TPOT at quantile q: its G - 1 steps are mixed with probability φ' each, a binomial count
    read at its normal quantile z (clipped to [0, G - 1]); TPOT = T_d + (T_m - T_d) M / (G - 1).

    Outputs that vary (``inverse``: E[1 / (G - 1)] over requests, NaN where the outputs are fixed): a request
    of n steps has a mixed share of mean φ' and variance φ' (1 - φ') / n, so over requests the variance is
    φ' (1 - φ') E[1 / n] (n at least one step), read at the normal quantile (short answers' TPOT varies most;
    the mixture's far tail is heavier than the normal's). Where a mixed step is the shorter (a prompt of a few
    tokens beside one decode token fewer), the slower requests are those with fewer mixed steps: z counts
    down."""
    n = np.maximum(G - 1.0, 1.0)
    p = np.clip(state.mixed_token_share, 0.0, 1.0)
    z = normal_quantile(q) if z is None else z
    z = np.where(state.mixed_s >= state.decode_s, z, -z)
    mixed = np.clip(n * p + z * np.sqrt(n * p * (1.0 - p)), 0.0, n)
    fixed = state.decode_s + (state.mixed_s - state.decode_s) * mixed / n
    if inverse is None:
        return fixed
    with np.errstate(invalid="ignore"):
        share = np.clip(p + z * np.sqrt(p * (1.0 - p) * np.minimum(inverse, 1.0)), 0.0, 1.0)
    return np.where(np.isnan(inverse), fixed, state.decode_s + (state.mixed_s - state.decode_s) * share)


@dataclass(frozen=True)
class Load:
    """The engine under a load: its steady state, the prompts' queue, and the latency percentiles."""

    state: Steady
    rate: Any
    """Requests/s one replica serves."""
    utilization: Any
    """ρ: the share of the replica's capacity in use (requests/s over those it completes with every slot
    busy)."""
    wait_s: Any
    """Mean wait before a request's first chunk (queue, and the step in progress under Poisson arrivals)."""
    ttft_s: Any
    tpot_s: Any
    ttft_quantiles_s: tuple[Any, ...]
    tpot_quantiles_s: tuple[Any, ...]
    """At ``QUANTILES``."""
    overloaded: Any
    """The rate exceeds what the replica sustains with all its slots."""


def step_in_progress_s(q: Any, state: Steady) -> Any:
    """What a Poisson arrival waits for the step in progress (``q``: its q-quantile; None: its mean). Poisson
    arrivals see time averages (Wolff 1982, PASTA): the engine runs a step a share u = min(b, 1) of the time
    (b < 1: a lone request at a time, in the engine a share b of the time by Little's law; an idle engine has
    no step to finish, so at light load TTFT is a lone prompt's), and the step an arrival falls in is picked
    in proportion to its length, mixed (T_m) a share φ of the steps and decode (T_d) the rest: what is left
    of it has mean E[T²] / (2 E[T]) (renewal theory's residual life; Kleinrock 1975, §5.2), read as uniform
    on [0, T_e], T_e = E[T²] / E[T]. Mean u T_e / 2; q-quantile T_e max(0, q - (1 - u)) / u.

    With pp virtual engines (``Steady.stages``) a new request goes into the next batch the engine puts in
    flight: at once while fewer than pp are (vLLM schedules a batch whenever its batch queue has room), else
    when the oldest completes, a cycle's pp-th part: u = min(b / pp, 1) (the share of the time every engine
    is busy, taken as the fluid one) and T_e / pp."""
    one = _one_stage(state.stages)
    busy = np.clip(state.slots if one else state.slots / state.stages, 0.0, 1.0)
    phi = state.prefill_share
    with np.errstate(divide="ignore", invalid="ignore"):
        second = phi * state.mixed_s**2 + (1.0 - phi) * state.decode_s**2
        length = np.where(state.step_s > 0.0, second / state.step_s, 0.0)  # T_e
        length = length if one else length / state.stages
        if q is None:
            return busy * length / 2.0
        share = np.where(busy > 0.0, np.maximum(q - (1.0 - busy), 0.0) / busy, 0.0)
    return share * length


def poisson_load(
    state: Steady,
    rate: Any,
    G: Any,
    capacity: Any,
    spread: Spread | None = None,
    cv2: Any = 0.0,
    inverse: Any = None,
) -> Load:
    """Poisson arrivals at ``rate`` on the engine at ``state`` (the b where X(b) = rate), whose every slot
    busy completes ``capacity`` requests/s: requests queue as in an M/G/1 queue at ρ = rate / capacity, each
    taking 1 / capacity of the engine on average (the replica as one server at its full rate, so the wait
    grows with the load whatever the batching) with the squared coefficient of variation ``cv2`` (``Work``;
    0: M/D/1); plus what is left of a step in progress where one runs (``step_in_progress_s``). The service
    is the prompt's s mixed steps. A percentile adds the quantile of the queue and the service
    (``ttft_quantile_s``: prompts may vary) and that of the step in progress (a sum of quantiles:
    conservative); ``inverse``: outputs that vary (``tpot_quantile_s``)."""
    service = state.ttft_s
    rho = rate / capacity
    queue = pk_wait_s(rho, 1.0 / capacity, cv2)
    wait = queue + step_in_progress_s(None, state)
    prefill, edges = _prefill(spread, state), _edges(spread)
    ttft_q = tuple(
        ttft_quantile_s(q, rho, queue, service, prefill, edges) + step_in_progress_s(q, state) for q in QUANTILES
    )
    tpot_q = tuple(tpot_quantile_s(q, state, G, inverse=inverse) for q in QUANTILES)
    return Load(state, rate, rho, wait, wait + service, state.tpot_s, ttft_q, tpot_q, rho >= 1.0)


def closed_load(
    state: Steady,
    concurrency: Any,
    G: Any,
    capacity: Any,
    prompt_s: Any,
    spread: Spread | None = None,
    inverse: Any = None,
    prompt_cv2: Any = 0.0,
) -> Load:
    """A closed loop of n requests (each replaced as it completes) on the engine at ``state`` (n = 0: every
    slot busy, nobody waiting), whose every slot busy completes ``capacity`` requests/s. Prompts contend for
    the mixed steps: a request waits for the prompts ahead of it as at one server in a closed loop
    (``closed_wait_s``) which takes ``prompt_s`` a prompt (``closed_loop``; c² ``prompt_cv2``, the prompts'
    spread), the rest of the request's cycle elsewhere. Requests beyond the slots wait at least what the
    engine's rate imposes, n / X - (TTFT + (G - 1) TPOT) (Little's law). The rate is n over the cycle, so
    Little's law holds exactly; no step in progress to wait for (a request arrives as another completes, at
    a step boundary). Percentiles: the mean wait plus the prefill's (prompts may vary); TPOT's over the
    outputs (``inverse``, ``tpot_quantile_s``)."""
    latency = state.ttft_s + (G - 1.0) * state.tpot_s
    loop = concurrency > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = np.where(loop, closed_wait_s(concurrency, prompt_s, latency - prompt_s, prompt_cv2), 0.0)
        beyond = loop & (concurrency > state.slots)  # requests outside the engine: what its rate imposes
        wait = np.maximum(wait, np.where(beyond, concurrency / state.requests_per_s - latency, 0.0))
        rate = np.where(loop, concurrency / (wait + latency), state.requests_per_s)
    rho = rate / capacity
    prefill, edges = _prefill(spread, state), _edges(spread)
    ttft_q = tuple(wait + ttft_quantile_s(q, 0.0, 0.0, state.ttft_s, prefill, edges) for q in QUANTILES)
    tpot_q = tuple(tpot_quantile_s(q, state, G, inverse=inverse) for q in QUANTILES)
    overloaded = np.zeros(np.shape(wait), dtype=bool)
    return Load(state, rate, rho, wait, wait + state.ttft_s, state.tpot_s, ttft_q, tpot_q, overloaded)


def closed_loop(
    steps: StepTimes,
    concurrency: Any,
    P: Any,
    G: Any,
    C: Any,
    capacity: Any,
    spread: Spread | None = None,
    work: Work | None = None,
    *,
    one: Steady | None = None,
    base_s: Any = None,
) -> Load:
    """n requests per replica in a closed loop (n = 0: every slot busy, nobody waiting), on an engine whose
    every slot busy completes ``capacity`` requests/s (``closed_load``; the prompts' c² from ``work``). A
    prompt ahead holds the server for S = α P, α = (T_m - T_d) / k what a prompt token adds to a mixed step
    (``Work``), read with the prompt alone (b = 1): about its s chunks' steps for a long prompt, little for
    short prompts that share a step. (Read at the load's b it would fall as the load grows where a decode
    step already loads what a prompt needs, as a MoE model's experts, and TTFT with it.) The engine holds the
    n requests less those waiting, b = X (TTFT + (G - 1) TPOT) (Little's law inside the engine), at most its
    slots: evaluated at b = min(n, b_max) first, then once more at the b that load gives (below one request
    a replica idles: ``lone``). ``one``: the state at b = 1, where the caller has it. ``base_s``: the step a
    prompt's tokens add to (default T_d at b = 1): under speculative decoding T_d verifies γ + 1 tokens, more
    than the lone prompt's step carries besides it, so the caller gives the plain one-token decode step."""
    held = np.where(concurrency > 0, np.minimum(concurrency, steps.b_max), steps.b_max)
    inverse = inverse_steps(work)
    one = steps.at(np.ones_like(held), P, G, C) if one is None else one
    with np.errstate(divide="ignore", invalid="ignore"):
        cv2 = 0.0 if work is None else np.where(P > 0, work.prompt_variance / P**2, 0.0)
        # the virtual engines, min(pp, b_max) of them, prefill a prompt each at once: one server that many times
        # as fast
        engines = steps.stages if _one_stage(steps.stages) else np.minimum(steps.stages, steps.b_max)
        base = one.decode_s if base_s is None else base_s
        prompt = P * np.maximum(one.mixed_s - base, 0.0) / (one.prompt_tokens_per_step * engines)
    load = closed_load(steps.at(held, P, G, C), concurrency, G, capacity, prompt, spread, inverse, cv2)
    waiting = load.wait_s > 0
    if not np.any(waiting):
        return load
    with np.errstate(invalid="ignore"):
        inside = load.rate * (load.state.ttft_s + (G - 1.0) * load.state.tpot_s)
        engine = np.where(waiting, np.clip(inside, np.minimum(held, 1.0), held), held)
    return closed_load(steps.at(engine, P, G, C), concurrency, G, capacity, prompt, spread, inverse, cv2)


def _take(x: Any, rows: Any) -> Any:
    """``x`` at ``rows`` (a scalar stays itself)."""
    return x[rows] if np.ndim(x) else x


def _put(whole: Any, rows: Any, part: Any) -> Any:
    """``whole`` with ``part`` at ``rows`` (a copy); ``part`` itself for one candidate (``whole`` a scalar)."""
    if not np.ndim(whole):
        return part
    out = np.array(whole, dtype=np.float64)
    out[rows] = part
    return out


def _largest(holds: Any, low: Any, high: Any) -> Any:
    """The largest b in [low, high] for which ``holds(b)`` is true, ``holds`` being monotone (true up to some
    b, false beyond): ``BISECTION_STEPS`` halvings; ``low`` where it fails everywhere above it."""
    lo = np.zeros(np.shape(high)) + low
    hi = np.asarray(high, dtype=np.float64) + np.zeros_like(lo)
    top = holds(hi)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        ok = holds(mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.where(top, hi, lo)


def _bisect_slots(steps: StepTimes, P: Any, G: Any, C: Any, passes: Any, low: Any = 0.0) -> Any:
    """The largest b in [low, b_max] whose steady state ``passes`` (``_largest``)."""
    return _largest(lambda b: passes(steps.at(np.maximum(b, 1e-12), P, G, C)), low, steps.b_max)


def _on(rows: Any, steps: StepTimes, *values: Any) -> tuple[Any, ...]:
    """``steps`` and ``values`` at ``rows`` (all of them for one candidate)."""
    if not np.ndim(steps.b_max):
        return (steps, *values)
    part = StepTimes(*(_take(getattr(steps, f.name), rows) for f in fields(StepTimes)))
    return (part, *(_take(v, rows) for v in values))


EXPERT_SPAN = 3.0
"""b_e k / (E pp) for the knot where a decode step has touched nearly all its experts (``expert_knot``): under
uniform routing 1 - e^-3 = 95 % of them."""


def expert_knot(E: int, k: int, pp: Any, b_max: Any, tokens: Any = 1.0) -> Any:
    """b_e = 3 E pp / (k t), the sequences whose decode step touches about 95 % of a mixture of experts' E
    experts (k per token, t tokens a sequence: γ + 1 under speculative decoding, a micro-batch of b / pp
    sequences; ``StepTimes.b_expert``), at most b_max / 2 so that the bulge is measured inside the line's
    span, and at least 1."""
    return np.clip(np.minimum(EXPERT_SPAN * E * pp / (k * tokens), b_max / 2.0), 1.0, b_max)


def mid_knot(G: Any, b_max: Any, stages: Any = 1.0) -> Any:
    """b_mid = min(pp G, b_max), at least one: where a mixed step goes from one prompt to v / G (``StepTimes``;
    v = b / pp a virtual engine's sequences, pp ``stages``).
    Llama-3.1-8B on an H100, 2,000-token prompts and 8-token answers: T_m read 62.7 ms at b = 8 on the line
    from one sequence to b_max's step (32 sequences, its room full of prompts) for a 37.9 ms pass."""
    return np.clip(G * stages, 1.0, b_max)


def fed_slots(b_max: Any, P: Any, G: Any, C: Any, tokens: Any = 1.0, stages: Any = 1.0) -> Any:
    """The most sequences (b_max at most) whose prompts' chunks keep the engine fed: beyond it the steady
    state holds b' < b (``prefill_share``: every step mixed, the room shrinking as decode tokens fill the
    budget), so an engine admits no more; by ``_largest`` (b' = b holds up to it: the room only shrinks with
    b). Each of ``stages`` virtual engines feeds its own share (``per_engine``). It depends on the chunks
    alone, not on step times."""

    def fed(b: Any, p: Any, g: Any, c: Any, t: Any, m: Any) -> Any:
        v = per_engine(b, m)
        _, k = chunks(p, g, v, c, t)
        return prefill_share(v, p, g, k)[1] >= v * (1.0 - 1e-12)

    starved = ~fed(b_max, P, G, C, tokens, stages)
    if not np.any(starved):
        return b_max
    rows = np.flatnonzero(starved) if np.ndim(starved) else slice(None)
    top, p, g, c, t, m = (_take(x, rows) for x in (b_max, P, G, C, tokens, stages))
    lo = _largest(lambda b: fed(b, p, g, c, t, m), 1.0, top)
    # the bisection stops a hair below a boundary that falls on a whole number of sequences (b' = b exactly
    # at 128, say), which the caller's floor would turn into one sequence fewer than a smaller b_max admits
    whole = np.floor(lo) + 1.0
    lo = np.where((whole <= top) & fed(whole, p, g, c, t, m), whole, lo)
    return lo if not np.ndim(starved) else _put(b_max, rows, lo)


def slots_for_rate(
    steps: StepTimes, rate: Any, P: Any, G: Any, C: Any, *, one: Steady | None = None, busy: Steady | None = None
) -> Any:
    """The b at which the engine completes ``rate`` requests/s: ``rate / X(1)`` up to one sequence (X is linear
    there), by bisection above it, at the first b where X reaches the rate (``first_crossing``: X falls where a
    prompt takes one more chunk); b_max where the rate is beyond what every slot busy completes. ``one``,
    ``busy``: the states at b = 1 and at b_max, where the caller has them."""
    one = steps.at(np.ones_like(steps.b_max), P, G, C) if one is None else one
    busy = steps.at(steps.b_max, P, G, C) if busy is None else busy
    b = rate / one.requests_per_s
    if not np.ndim(b):
        if b <= 1.0 or busy.requests_per_s <= rate:
            return b if b <= 1.0 else steps.b_max
        found = _bisect_slots(steps, P, G, C, lambda state: state.requests_per_s <= rate, 1.0)
        return first_crossing(steps, rate, P, G, C, before_interior_peak(steps, rate, P, G, C, found))
    above = np.flatnonzero(~(b <= 1.0))  # NaN too, as one candidate is
    if len(above):  # a rate every slot busy cannot beat takes them all: no search (as the bisection finds)
        part, r, capacity = _on(above, steps, rate, busy.requests_per_s)
        top = np.zeros(len(above)) + part.b_max
        beyond = capacity <= r
        b[above[beyond]] = top[beyond]
        above = above[~beyond]
    if len(above):
        part, r, p, g, c = _on(above, steps, rate, P, G, C)
        found = _bisect_slots(part, p, g, c, lambda state: state.requests_per_s <= r, low=1.0)
        b[above] = first_crossing(part, r, p, g, c, before_interior_peak(part, r, p, g, c, found))
    return b


def interior_peak(steps: StepTimes, P: Any, G: Any, C: Any) -> Any:
    """The b <= pp G at which X peaks inside a segment of equal chunk counts, where the prompt's part of a
    mixed step, Δ = T_m - T_d, grows with b (NaN where it does not, or the peak is not below pp G; pp the
    stages, ``StepTimes.stages``). There, with s chunks and one prompt a step, each of the pp virtual engines
    holds v = b / pp sequences and φ = v / D, D = (G - 1) / s + 1; with T_d = t0 + m b, Δ = Δ0 + δ b (the
    interpolated steps), 1 / X = (s / pp) (Δ0 + pp D m + δ b + pp D t0 / b), least at b* = sqrt(pp D t0 / δ):
    X rises to it and falls beyond, within one segment. Up to b = pp each virtual engine holds one sequence
    and X = b / (s (D T_d + Δ)) only rises, so the peak is at pp where b* falls below it. (With Δ constant or
    shrinking, as a prompt's own work usually is, X only grows there.) s is read at b* computed with one
    chunk, then once more at that b*."""
    with np.errstate(divide="ignore", invalid="ignore"):
        span = np.where(steps.b_max > 1.0, steps.b_max - 1.0, np.nan)
        slope = (steps.decode_max - steps.decode_1) / span
        if steps.b_expert is not None:  # T_d's chord up to the experts' knot, where the peak would be
            slope = np.where(
                steps.b_expert > 1.0, (steps.decode_expert - steps.decode_1) / (steps.b_expert - 1.0), slope
            )
        t0 = steps.decode_1 - slope
        # Δ's slope on the knots' first segment, from b = 1 to b_mid (the whole span without a middle knot)
        mid = steps.b_max if steps.b_mid is None else steps.b_mid
        first = np.where(mid > 1.0, mid - 1.0, np.nan)
        delta = ((steps.mixed_at(mid) - steps.decode_at(mid)) - (steps.mixed_1 - steps.decode_1)) / first
        pp = steps.stages
        b = np.maximum(np.sqrt(pp * G * t0 / delta), pp)  # one chunk: D = G
        s = chunks(P, G, np.clip(b, 1.0, steps.b_max), C, steps.tokens, pp)[0]
        b = np.maximum(np.sqrt(pp * ((G - 1.0) / s + 1.0) * t0 / delta), pp)
        inside = (delta > 0) & (t0 > 0) & (b > 1.0) & (b < np.minimum(pp * G, steps.b_max))
    return np.where(inside, b, np.nan)


def before_interior_peak(steps: StepTimes, rate: Any, P: Any, G: Any, C: Any, b: Any) -> Any:
    """A crossing of ``rate`` below ``interior_peak`` where that peak is below b and reaches the rate (by
    bisection between one sequence and the peak), else b: the engine stops at the first b that completes the
    rate, and past an interior peak X falls before it rises again (``first_crossing`` then looks below it for
    chunk boundaries)."""
    peak = interior_peak(steps, P, G, C)
    with np.errstate(invalid="ignore"):
        earlier = (peak < b) & (steps.at(np.where(np.isfinite(peak), peak, 1.0), P, G, C).requests_per_s >= rate)
    if not np.any(earlier):
        return b
    rows = np.flatnonzero(earlier) if np.ndim(earlier) else slice(None)
    part, r, p, g, c, top = _on(rows, steps, rate, P, G, C, peak)
    return _put(b, rows, _largest(lambda x: part.at(x, p, g, c).requests_per_s < r, 1.0, top))


BOUNDARY_SIDE = 1e-6
"""How far below a chunk boundary, relative to it, the engine is read at its fewer chunks (``peak_rate``)."""


def chunk_boundary(n: Any, P: Any, G: Any, C: Any, tokens: Any = 1.0, stages: Any = 1.0) -> Any:
    """The b at which a mixed step's room is P / n tokens (``room`` inverted): a prompt of P new tokens runs in
    n chunks below it and n + 1 beyond. The room is C - t (v - π) with π = max(1, v / G), so v - π = D =
    (C - P / n) / t: v = D + 1 up to v = G, D G / (G - 1) beyond, and b = pp v (v = ``per_engine``, one
    virtual engine's sequences; pp ``stages``). NaN where no b >= 1 has that room (D < 0, or G <= 1: an
    engine whose requests leave after their prompt keeps the room at C)."""
    n, G = np.asarray(n, dtype=np.float64), np.asarray(G, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (C - P / n) / tokens
        v = np.where(d <= G - 1.0, d + 1.0, d * G / (G - 1.0))
    return np.where((d >= 0.0) & (G > 1.0), v * stages, np.nan)


def peak_rate(steps: StepTimes, n: Any, P: Any, G: Any, C: Any) -> tuple[Any, Steady]:
    """(X, state) just below the boundary where prompts go from n chunks to n + 1 (``chunk_boundary``): the
    most the engine completes with n chunks a prompt, X falling past it as each prompt takes one more step
    (NaN where there is no such boundary)."""
    b = chunk_boundary(n, P, G, C, steps.tokens, steps.stages) * (1.0 - BOUNDARY_SIDE)
    state = steps.at(b, P, G, C)
    return state.requests_per_s, state


def first_crossing(steps: StepTimes, rate: Any, P: Any, G: Any, C: Any, b: Any) -> Any:
    """The first b >= 1 at which X reaches ``rate``, given b >= 1 where it does (a bisection's crossing).

    X is not monotone in b: where the room shrinks enough that a prompt takes one more chunk, each mixed step
    carries fewer of its tokens, and X may fall (one step more a prompt) as well as rise (more decode tokens
    riding compute-bound mixed steps: Llama-3.1-70B FP8 on an H200, 2,000-token prompts and 1,024-token steps,
    by 1.2-3.4 % at 25 sequences), so a rate may be crossed more than once. An engine whose load rises stops at
    the first crossing. Within a segment of equal chunk counts X is taken to grow with b, and the peaks at
    the segments' ends to grow from one segment to the next, so: if the peak just below b's segment does not
    reach the rate, b is the first crossing; otherwise a bisection over the chunk counts finds the first
    segment whose peak does, and a bisection within it the crossing."""
    t, pp = steps.tokens, steps.stages
    first = chunks(P, G, np.ones_like(b), C, t)[0]  # chunks a prompt takes beside one sequence
    last = chunks(P, G, b, C, t, pp)[0] - 1.0  # the boundary just below b is from ``last`` chunks to one more
    with np.errstate(invalid="ignore"):
        earlier = (last >= first) & (peak_rate(steps, last, P, G, C)[0] >= rate)
    if not np.any(earlier):
        return b
    rows = np.flatnonzero(earlier) if np.ndim(earlier) else slice(None)
    part, r, p, g, c, lo, hi = _on(rows, steps, rate, P, G, C, first - 1.0, last)
    while np.any(wide := hi - lo > 1.0):  # the peak at ``lo`` misses the rate (none at first - 1), at ``hi`` not
        mid = np.where(wide, np.floor((lo + hi) / 2.0), hi)
        reaches = peak_rate(part, mid, p, g, c)[0] >= r
        lo, hi = np.where(wide & ~reaches, mid, lo), np.where(wide & reaches, mid, hi)
    start = np.where(hi - 1.0 >= _take(first, rows), chunk_boundary(hi - 1.0, p, g, c, part.tokens, part.stages), 1.0)
    end = chunk_boundary(hi, p, g, c, part.tokens, part.stages) * (1.0 - BOUNDARY_SIDE)
    return _put(b, rows, _largest(lambda x: part.at(x, p, g, c).requests_per_s <= r, start, end))


def at_rate(
    steps: StepTimes,
    rate: Any,
    P: Any,
    G: Any,
    C: Any,
    spread: Spread | None = None,
    work: Work | None = None,
    *,
    one: Steady | None = None,
    busy: Steady | None = None,
) -> Load:
    """The engine under Poisson arrivals at ``rate`` requests/s (per replica); overloaded beyond what every
    slot busy completes. ``work``: how a request's work varies (None: it does not). ``one``, ``busy``: the
    states at b = 1 and at b_max, where the caller has them."""
    busy = steps.at(steps.b_max, P, G, C) if busy is None else busy
    b = slots_for_rate(steps, rate, P, G, C, one=one, busy=busy)
    state = steps.at(np.maximum(b, 1e-12), P, G, C)
    return poisson_load(state, rate, G, busy.requests_per_s, spread, work_cv2(work, busy, P, G), inverse_steps(work))


def max_rate(
    steps: StepTimes,
    P: Any,
    G: Any,
    C: Any,
    ttft_slo_s: Any,
    tpot_slo_s: Any,
    quantile: Any,
    spread: Spread | None = None,
    work: Work | None = None,
    *,
    busy: Steady | None = None,
) -> Any:
    """The largest Poisson rate (requests/s per replica) whose TTFT and TPOT at ``quantile`` (one of
    ``QUANTILES``) meet the SLOs (inf: none), within the slots: found over b, since every latency grows with
    it; 0 where even a lone request misses them. Without SLOs: the rate at every slot busy. ``busy``: the
    state at b_max, where the caller has it."""
    busy = steps.at(steps.b_max, P, G, C) if busy is None else busy
    capacity = busy.requests_per_s
    bounded = np.isfinite(ttft_slo_s) | np.isfinite(tpot_slo_s)
    if not np.any(bounded):
        return capacity
    rows = np.flatnonzero(bounded) if np.ndim(bounded) else slice(None)
    part, p, g, c, cap, ttft_slo, tpot_slo, q, cv2, inverse = _on(
        rows,
        steps,
        P,
        G,
        C,
        capacity,
        ttft_slo_s,
        tpot_slo_s,
        quantile,
        work_cv2(work, busy, P, G),
        inverse_steps(work),
    )  # ``_take`` leaves None (fixed outputs) as it is
    part_spread = spread.take(rows) if spread is not None and np.ndim(steps.b_max) else spread

    z = normal_quantile(q)

    def meets(state: Steady, rows: Any = None) -> Any:  # poisson_load's figures at quantile q alone (at ``rows``)
        at = (lambda x: x) if rows is None else (lambda x: _take(x, rows))
        limit, spread_ = at(cap), part_spread if rows is None or part_spread is None else part_spread.take(rows)
        rho = state.requests_per_s / limit
        queue = pk_wait_s(rho, 1.0 / limit, at(cv2))
        prefill, edges = _prefill(spread_, state), _edges(spread_)  # TTFT's percentile vs its SLO, unsolved
        step = step_in_progress_s(at(q), state)
        ttft = ttft_quantile_within(at(q), rho, queue, state.ttft_s, prefill, edges, at(ttft_slo), step)
        tpot = tpot_quantile_s(at(q), state, at(g), at(z), at(inverse))
        return ttft & (tpot <= at(tpot_slo)) & (rho < 1.0)

    first = chunks(p, g, np.ones_like(part.b_max), c, part.tokens)[0]  # chunks a prompt takes beside one sequence
    # a row's peak below its segment, and whether the SLOs hold there, depend on its chunk count alone: read
    # once for each count the halvings pass through, not at every halving
    seen, peaks = np.full(np.shape(first), np.nan), np.full(np.shape(first), np.nan)
    held = np.zeros(np.shape(first), dtype=bool)

    def reached(b: Any) -> Any:  # the SLOs where a rising load serving X(b) runs (``first_crossing``)
        state = part.at(np.maximum(b, 1e-12), p, g, c)
        ok = meets(state)
        last = state.chunks - 1.0  # the chunks at max(b, 1)
        past = last >= first  # a chunk boundary below b: X may be in the dip past it
        if not np.any(past):
            return ok
        if not np.ndim(past):
            peak, at_peak = peak_rate(part, last, p, g, c)
            return meets(at_peak) if peak > state.requests_per_s else ok
        fresh = np.flatnonzero(past & (last != seen))
        if len(fresh):
            sub, sp, sg, sc, below = _on(fresh, part, p, g, c, last)
            with np.errstate(invalid="ignore"):
                peak, at_peak = peak_rate(sub, below, sp, sg, sc)
            seen[fresh], peaks[fresh], held[fresh] = below, peak, meets(at_peak, fresh)
        with np.errstate(invalid="ignore"):
            dip = past & (peaks > state.requests_per_s)
        return np.where(dip, held, ok)

    # over b, the SLOs read in a dip past a chunk boundary (X below the peak just before it) are the peak's:
    # a load rising to X(b) there stops at that peak, and the latencies read at b itself, lower in load and
    # higher in TPOT, made the check flip back and forth (a looser TPOT SLO gave a lower rate)
    b = _largest(reached, 0.0, part.b_max)
    rate = np.where(b > 0, part.at(np.maximum(b, 1e-12), p, g, c).requests_per_s, 0.0)
    # past a chunk boundary X falls (``first_crossing``): the peak just below b's segment may be a higher rate
    # the SLOs still allow, its operating point lying below b
    last = chunks(p, g, np.maximum(b, 1.0), c, part.tokens, part.stages)[0] - 1.0
    with np.errstate(invalid="ignore"):
        peak, state = peak_rate(part, np.maximum(last, 1.0), p, g, c)
        better = (last >= 1.0) & (peak > rate) & meets(state)
    rate = np.where(better, peak, rate)
    # and X may peak inside a segment (``interior_peak``), below b
    inner = interior_peak(part, p, g, c)
    with np.errstate(invalid="ignore"):
        state = part.at(np.where(np.isfinite(inner), inner, 1.0), p, g, c)
        better = (inner < np.maximum(b, 1.0)) & (state.requests_per_s > rate) & meets(state)
    rate = np.where(better, state.requests_per_s, rate)
    return _put(capacity, rows, rate)


# --- a deployment under continuous batching ----------------------------------------------------------------


@dataclass(frozen=True)
class ContinuousServing:
    """What continuous batching adds to an evaluation (floats or arrays; NaN for static candidates)."""

    slots: Any
    """Sequences in a replica's engine at the operating point (b)."""
    max_slots: Any
    """The most it may hold: ``max_num_seqs``, what fits in memory (KV at mean occupancy), the token budget
    and a fixed concurrency, the smallest."""
    busy_slots: Any
    """b_max: the sequences of every slot busy, whose steps the load's are interpolated from (a replica's
    decode step and operators are reported there)."""
    chunks: Any
    """Chunks per prompt (s)."""
    prefill_share: Any
    """Share of steps that carry a prompt chunk (φ)."""
    utilization: Any
    """ρ: the share of the replica's capacity in use (``Load.utilization``)."""
    wait_s: Any
    """Mean wait before a request's first chunk."""
    request_rate: Any
    """Requests/s the deployment serves at this load."""
    max_request_rate: Any
    """Requests/s the deployment sustains with TTFT and TPOT at the SLO percentile within the SLOs."""
    mixed_step_s: Any
    decode_step_s: Any
    ttft_quantiles_s: tuple[Any, ...]
    tpot_quantiles_s: tuple[Any, ...]
    """At ``QUANTILES`` (p50, p90, p99)."""

    @classmethod
    def unknown(cls, n: int) -> ContinuousServing:
        """All NaN, for n static candidates."""
        nan: Any = np.full(n, np.nan)
        quantiles: Any = (nan,) * len(QUANTILES)
        return cls(**{f.name: quantiles if f.name.endswith("quantiles_s") else nan for f in fields(cls)})


# --- disaggregated prefill and decode ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pools:
    """Disaggregated serving (DistServe, Zhong et al. OSDI 2024, arXiv 2401.09670; Splitwise, Patel et al. ISCA
    2024): x instances prefill prompts, y instances decode, and each request's KV cache crosses a link from
    one to the other. Per deployment (floats or arrays; times in s)."""

    x: Any
    y: Any
    prefill_s: Any
    """A lone prompt's prefill on a prefill instance: s chunk steps."""
    prefill_step_s: Any
    """One of those steps."""
    prefill_rate: Any
    """μ_p: prompts/s one prefill instance completes with its token budget full."""
    transfer_s: Any
    """A request's KV cache over the link between the pools."""
    decode: StepTimes
    """A decode instance's steps (no prompt chunks: mixed = decode)."""
    spread: Spread | None = None
    """Prompts of varying length (TTFT percentiles)."""
    prompt_cv2: Any = 0.0
    """c² of a prompt's length, and so of its prefill, the prefill queue's service (0: M/D/1)."""

    def _service(self) -> tuple[Any, Any]:
        """(a request's prefill and transfer, the same at the prompt's quantiles; None: prompts that do not
        vary): a prompt's prefill and its KV's transfer in proportion to its length."""
        spread, service = self.spread, self.prefill_s + self.transfer_s
        if spread is None or not spread.varies:
            return service, None
        return service, np.asarray(service)[..., None] * np.asarray(spread.quantiles)

    def _service_quantile_s(self, q: Any, rho: Any, queue: Any) -> Any:
        """The wait in the queue and a request's prefill and transfer at quantile q (``ttft_quantile_s``)."""
        return ttft_quantile_s(q, rho, queue, *self._service(), _edges(self.spread))

    def take(self, rows: Any) -> Pools:
        """The pools of the deployments at ``rows`` (arrays; one deployment's: itself)."""
        if not any(np.ndim(getattr(self, f.name)) for f in fields(self) if f.name != "spread") and not np.ndim(
            self.decode.b_max
        ):
            return self
        spread = self.spread.take(rows) if self.spread is not None else None
        own = {f.name: _take(getattr(self, f.name), rows) for f in fields(self) if f.name not in ("decode", "spread")}
        return replace(self, **own, decode=_on(rows, self.decode)[0], spread=spread)

    def decode_rate(self, b: Any, G: Any) -> Any:
        """X_d(b) = b / ((G - 1) T_d(b)): requests/s a decode instance with b sequences completes."""
        return b / (np.maximum(G - 1.0, 1e-12) * self._decode_s(b))

    def _decode_s(self, b: Any) -> Any:
        return self.decode.decode_at(b)

    def decode_slots(self, rate: Any, G: Any) -> Any:
        """The b at which a decode instance completes ``rate`` requests/s, X_d(b) = b / ((G - 1) T_d(b)): with
        T_d linear in b, T_d = t1 + (b - 1) m, X_d = rate solves to b = n (t1 - m) / (1 - n m) with n = rate
        (G - 1); a mixture of experts' T_d (its bulge, ``StepTimes.b_expert``) by bisection over [1, b_max]
        (b / T_d grows with b: T_d grows slower than b); at most b_max."""
        d = self.decode
        n = np.maximum(G - 1.0, 1e-12) * rate
        if d.b_expert is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                slope = np.where(d.b_max > 1.0, (d.decode_max - d.decode_1) / (d.b_max - 1.0), 0.0)
                b = np.where(n * slope < 1.0, n * (d.decode_1 - slope) / (1.0 - n * slope), np.inf)
        else:
            b = np.asarray(d.b_max, dtype=np.float64) + np.zeros(np.shape(n))
            above = n * d.decode_1 > 1.0
            if np.any(above):
                rows = np.flatnonzero(above) if np.ndim(above) else slice(None)
                part, m = _on(rows, d, n)
                b = _put(b, rows, _largest(lambda x: x <= m * part.decode_at(x), 1.0, part.b_max))
        b = np.where(n * d.decode_1 <= 1.0, n * d.decode_1, b)  # below one sequence: linear
        return np.minimum(b, d.b_max)

    def capacity(self, G: Any) -> Any:
        """Requests/s the deployment completes with both pools busy: the smaller pool's."""
        return np.minimum(self.x * self.prefill_rate, self.y * self.decode_rate(self.decode.b_max, G))

    def load(self, rate: Any, G: Any) -> Load:
        """Poisson arrivals at ``rate`` (deployment): prompts queue at the prefill instances as in an M/G/1
        queue at ρ = rate / (x μ_p) (each taking 1 / μ_p on average, with c² ``prompt_cv2``), wait ρ half a
        step for the one in progress, prefill, and hand their KV over; the decode instances run at the b where
        y X_d(b) = rate, no prompt chunks among their steps, so every percentile of TPOT is T_d(b)."""
        rho = rate / (self.x * self.prefill_rate)
        queue = pk_wait_s(rho, 1.0 / self.prefill_rate, self.prompt_cv2)
        service = self.prefill_s + self.transfer_s
        wait = queue + rho * self.prefill_step_s / 2.0
        ttft_q = tuple(self._service_quantile_s(q, rho, queue) + q * rho * self.prefill_step_s for q in QUANTILES)
        b = self.decode_slots(rate / self.y, G)
        tpot = self._decode_s(b)
        overloaded = rate > self.capacity(G)
        state = self._state(b, G, tpot, service)
        return Load(state, rate, rho, wait, wait + service, tpot, ttft_q, (tpot,) * len(QUANTILES), overloaded)

    def busy(self, concurrency: Any, G: Any) -> Load:
        """A closed loop of n requests (n = 0: every decode slot busy, nobody waiting): a request spends the
        service (prefill and transfer) and G - 1 decode steps in the system, so the decode instances hold
        b = n / (y (1 + service / ((G - 1) T_d))) of them (T_d at n / y, at most b_max), and the deployment
        completes at most the smaller of y X_d(b) and the prefill instances' rate. A request waits for the
        others' prompts at the prefill pool as at one server in a closed loop (``closed_wait_s``: the pool
        taking 1 / (x μ_p) a prompt, c² ``prompt_cv2``), and at least what the smaller rate imposes
        (Little's law); the rate is n over the cycle."""
        loop = concurrency > 0
        n = np.where(loop, concurrency, self.y * self.decode.b_max)
        service = self.prefill_s + self.transfer_s
        first = self._decode_s(np.minimum(n / self.y, self.decode.b_max))
        share = 1.0 + service / (np.maximum(G - 1.0, 1e-12) * first)
        b = np.minimum(n / (self.y * share), self.decode.b_max)
        tpot = self._decode_s(b)
        rate = np.minimum(self.y * self.decode_rate(b, G), self.x * self.prefill_rate)
        latency = service + (G - 1.0) * tpot
        with np.errstate(divide="ignore", invalid="ignore"):  # a candidate that cannot run: unknown stays unknown
            S = 1.0 / (self.x * self.prefill_rate)
            wait = np.maximum(closed_wait_s(n, S, latency - S, self.prompt_cv2), n / rate - latency)
            wait = np.where(loop, np.maximum(wait, 0.0), 0.0)
            rate = np.where(loop, n / (wait + latency), rate)
        rho = rate / (self.x * self.prefill_rate)
        state = self._state(b, G, tpot, service)
        quantiles = tuple(wait + self._service_quantile_s(q, 0.0, 0.0) for q in QUANTILES)
        never = np.zeros(np.shape(rate), dtype=bool)
        return Load(state, rate, rho, wait, wait + service, tpot, quantiles, (tpot,) * len(QUANTILES), never)

    def _state(self, b: Any, G: Any, tpot: Any, service: Any) -> Steady:
        """The decode instance's state, for the figures every load reports."""
        zero = np.zeros(np.shape(b))
        return Steady(
            slots=b,
            chunks=zero + 1.0,
            prefill_share=zero,
            mixed_s=self.prefill_step_s + zero,
            decode_s=tpot,
            step_s=tpot,
            requests_per_s=self.y * self.decode_rate(b, G),
            ttft_s=service + zero,
            tpot_s=tpot,
            mixed_token_share=zero,
            prompts_per_step=zero + 1.0,
            room=zero + np.inf,
            prompt_tokens_per_step=zero + 1.0,
        )

    def max_rate(self, G: Any, ttft_slo_s: Any, tpot_slo_s: Any, quantile: Any) -> Any:
        """The largest Poisson rate (deployment) whose TTFT and TPOT at ``quantile`` meet the SLOs (inf: none):
        by bisection over the rate, every latency growing with it; without SLOs, the capacity. TTFT is tested
        against its SLO by one evaluation of its distribution (``ttft_quantile_within``), not solved."""
        capacity = self.capacity(G)
        bounded = np.isfinite(ttft_slo_s) | np.isfinite(tpot_slo_s)
        if not np.any(bounded):
            return capacity
        rows = np.flatnonzero(bounded) if np.ndim(bounded) else slice(None)
        pools = self.take(rows) if np.ndim(bounded) else self
        cap, g, ttft_slo, tpot_slo, q = (_take(x, rows) for x in (capacity, G, ttft_slo_s, tpot_slo_s, quantile))
        service, prefill = pools._service()
        edges = _edges(pools.spread)

        def meets(rate: Any) -> Any:  # ``load``'s figures at the quantile alone
            rho = rate / (pools.x * pools.prefill_rate)
            queue = pk_wait_s(rho, 1.0 / pools.prefill_rate, pools.prompt_cv2)
            step = q * rho * pools.prefill_step_s
            ttft = ttft_quantile_within(q, rho, queue, service, prefill, edges, ttft_slo, step)
            tpot = pools._decode_s(pools.decode_slots(rate / pools.y, g))
            return ttft & (tpot <= tpot_slo) & (rho < 1.0) & ~(rate > cap)

        lo, hi = np.zeros(np.shape(cap)), np.asarray(cap, dtype=np.float64) + 0.0
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2.0
            ok = meets(mid)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        if not np.ndim(bounded):
            return lo
        out = np.array(np.broadcast_to(capacity, np.shape(bounded)), dtype=np.float64)
        out[rows] = lo
        return out
