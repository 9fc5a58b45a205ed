"""Continuous batching with chunked prefill, loads and percentiles (docs/cost-model.md §16): hand-checked
formulas, the static limit, Little's law, and the model's monotonicity."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from candidate_rows import candidates, candidates_of
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import dse
from dse.catalog import load_model
from dse.costmodel import evaluate, evaluate_reference
from dse.costmodel.physics import continuous, queueing
from dse.costmodel.physics import lengths as lengths_of
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.attention import causal_pairs
from dse.costmodel.physics.parallel import layout
from dse.costmodel.physics.passes import chunk_prefix_reads, mean_attended_keys, mixed_pass
from dse.scoring import analyze, architecture

MODEL, HARDWARE = "llama-3.1-8b", "h100-sxm"


def _arch() -> Architecture:
    return architecture(load_model(MODEL))


def _row(**over: Any) -> dict[str, Any]:
    return {"model": MODEL, "hardware": HARDWARE, "quant": "bf16", "prompt_len": 1000, "gen_len": 201} | over


def _frame(rows: list[dict[str, Any]], profile: str = "default") -> pd.DataFrame:
    return dse.evaluate(pd.DataFrame(rows), profile=profile)


def dse_analyze(model: str, hardware: str, **kw: Any) -> dict[str, Any]:
    """``dse analyze``'s continuous figures (the JSON's ``continuous``) under the generic profile."""
    return analyze(model, hardware, profile="default", **kw).to_dict()["continuous"]  # type: ignore[no-any-return]


# --- the formulas, by hand -------------------------------------------------------------------------------


def test_chunks_and_the_share_of_mixed_steps_by_hand() -> None:
    # 16 sequences, budget 512: the room beside 15 decode tokens is 497, so a 1000-token prompt takes 3
    # chunks of 333.3; with 8192 it takes one step, and one prompt a step while b <= G
    s, k = continuous.chunks(1000.0, 201.0, 16.0, 512.0)
    assert (s, k) == (3.0, pytest.approx(1000.0 / 3.0))
    assert continuous.chunks(1000.0, 201.0, 16.0, 8192.0) == (1.0, 1000.0)
    # 400 sequences turn over every 201 steps: 400 / 201 prompts a step, 1990 tokens, within the room
    s, k = continuous.chunks(1000.0, 201.0, 400.0, 8192.0)
    assert s == 1.0 and k == pytest.approx(1000.0 * 400.0 / 201.0)
    # φ = b P / ((G - 1) k + π P): 16 x 1000 / (200 x 1000 + 1000)
    phi, b = continuous.prefill_share(16.0, 1000.0, 201.0, 1000.0)
    assert phi == pytest.approx(16_000.0 / 201_000.0) and b == pytest.approx(16.0)
    # prefill cannot feed 400 sequences with chunks of 100 tokens: every step mixed, 1 + 200 x 100 / 1000 = 21
    phi, b = continuous.prefill_share(400.0, 1000.0, 201.0, 100.0)
    assert phi == 1.0 and b == pytest.approx(21.0)


def test_steady_state_by_hand() -> None:
    # b = 16, P = 1000, G = 201, one prompt per mixed step: φ = 16/201, TPOT = T_d + (T_m - T_d) φ (b - 1) / (b - φ)
    state = continuous.steady_state(16.0, 1000.0, 201.0, 8192.0, mixed_s=0.030, decode_s=0.010)
    phi = 16.0 / 201.0
    assert state.prefill_share == pytest.approx(phi)
    assert state.tpot_s == pytest.approx(0.010 + 0.020 * phi * 15.0 / (16.0 - phi))
    assert state.ttft_s == pytest.approx(0.030)
    step = phi * 0.030 + (1.0 - phi) * 0.010
    assert state.requests_per_s == pytest.approx(phi / step)  # r = φ k / P with k = P
    # Little's law: X (TTFT + (G - 1) TPOT) = b
    assert state.requests_per_s * (state.ttft_s + 200.0 * state.tpot_s) == pytest.approx(16.0)


def test_pipeline_stages_run_a_virtual_engine_per_micro_batch_by_hand() -> None:
    """pp = 2: each micro-batch in flight is a virtual engine with its own token budget and its own chunk, so
    32 sequences are two engines of 16 (the cycle's step times given), completing twice one engine's
    requests at its latencies; up to pp sequences, one a virtual engine."""
    P, G, C, mixed, decode = 1000.0, 201.0, 512.0, 0.030, 0.010
    one = continuous.steady_state(16.0, P, G, C, mixed, decode)
    two = continuous.steady_state(32.0, P, G, C, mixed, decode, stages=2.0)
    assert two.requests_per_s == pytest.approx(2.0 * one.requests_per_s)
    assert (two.slots, two.engines) == (pytest.approx(32.0), 2.0)
    for field in ("ttft_s", "tpot_s", "chunks", "prefill_share", "room", "prompt_tokens_per_step"):
        assert getattr(two, field) == pytest.approx(getattr(one, field)), field
    # the room is one engine's: 512 - (16 - 1) = 497 tokens beside its 15 decoding sequences, not 512 - 31
    assert two.room == 497.0 and continuous.room(G, 32.0, C, stages=2.0) == 497.0
    # 1.5 sequences over 2 stages: 1.5 engines of one sequence each, X = 1.5 X(1) at these step times
    lone = continuous.steady_state(1.5, P, G, C, mixed, decode, stages=2.0)
    assert lone.requests_per_s == pytest.approx(
        1.5 * continuous.steady_state(1.0, P, G, C, mixed, decode).requests_per_s
    )
    for state in (two, lone):  # Little's law over the whole engine
        assert state.requests_per_s * (state.ttft_s + (G - 1.0) * state.tpot_s) == pytest.approx(state.slots)
    # each engine feeds its own share: twice the sequences fed, the chunk boundary twice as far, the middle
    # knot (one prompt a step per engine up to G) at 2 G
    assert continuous.fed_slots(1024.0, P, G, C, stages=2.0) == pytest.approx(
        2.0 * continuous.fed_slots(1024.0, P, G, C)
    )
    assert continuous.chunk_boundary(2.0, *DIP, stages=2.0) == pytest.approx(2.0 * 25.0)  # 25 sequences an engine
    assert continuous.mid_knot(G, 1000.0, 2.0) == 402.0


def test_how_much_a_requests_work_varies_by_hand() -> None:
    # every slot busy: b = 20 sequences, T_d = 10 ms, T_m = 30 ms carrying k = 400 prompt tokens of a
    # 1,000-token prompt (chunked: 2.5 steps of a slot while prefilling), G - 1 = 100 decode steps. A prompt
    # token costs α = 20 / 400 = 0.05 ms of mixed step plus β / k = 0.5 / 400 ms of its slot, a step
    # β = 10 / 20 = 0.5 ms: E[w] = 0.05 x 1,000 + 0.5 x 100 + 0.5 x 1,000 / 400 = 101.25 ms
    state = continuous.Steady(
        slots=20.0, chunks=2.5, prefill_share=0.1, mixed_s=0.030, decode_s=0.010, step_s=0.012,
        requests_per_s=0.0, ttft_s=0.0, tpot_s=0.0, mixed_token_share=0.0, prompts_per_step=1.0, room=400.0,
        prompt_tokens_per_step=400.0,
    )  # fmt: skip
    a, beta, mean = 0.05 + 0.5 / 400.0, 0.5, 50.0 + 50.0 + 1.25  # ms
    assert continuous.Work.mean_s(state, 1000.0, 101.0) == pytest.approx(mean / 1e3, rel=1e-12)
    # Var(P) = 400²: c² = (a 400)² / E[w]²; outputs of Var(G) = 40² steps² and Cov(P, G) = 8,000 add
    # β² 40² + 2 a β 8,000
    prompts_only = continuous.Work(400.0**2, 0.0, 0.0)
    assert prompts_only.cv2(state, 1000.0, 101.0) == pytest.approx((a * 400.0) ** 2 / mean**2, rel=1e-12)
    both = continuous.Work(400.0**2, 40.0**2, 8000.0)
    var = (a * 400.0) ** 2 + beta**2 * 40.0**2 + 2.0 * a * beta * 8000.0
    assert both.cv2(state, 1000.0, 101.0) == pytest.approx(var / mean**2, rel=1e-12)
    assert continuous.work_cv2(None, state, 1000.0, 101.0) == 0.0  # fixed lengths: M/D/1
    # from the lengths: half of each prompt from the prefix cache, two tokens a decode step
    work = continuous.Work.of_lengths(400.0**2, 40.0**2, 8000.0, 0.01, 0.5, 2.0)
    assert (work.prompt_variance, work.step_variance, work.covariance) == (200.0**2, 20.0**2, 2000.0)
    assert work.inverse_steps == 0.02
    assert continuous.Work.of_lengths(1.0, 1.0, 0.0, np.nan, 1.0, 1.0).inverse_steps is None


@settings(max_examples=40, deadline=None)
@given(
    st.floats(1.0, 1024.0), st.integers(16, 8000), st.integers(2, 1000), st.sampled_from([256, 512, 2048, 8192]),
    st.floats(0.001, 0.05), st.floats(1.0, 5.0), st.sampled_from([1.0, 2.0, 4.0]),
)  # fmt: skip
def test_a_mean_requests_work_is_its_share_of_the_engine(
    b: float, P: int, G: int, C: int, decode: float, slower: float, stages: float
) -> None:
    """E[w] = 1 / X in every regime (shared steps, chunked prompts, an engine its chunks cannot keep fed, the
    virtual engines of pipeline stages)."""
    state = continuous.steady_state(b, float(P), float(G), float(C), decode * slower, decode, stages=stages)
    assert continuous.Work.mean_s(state, float(P), float(G)) * state.requests_per_s == pytest.approx(1.0, rel=1e-9)


def test_tpot_percentiles_over_outputs_that_vary_by_hand() -> None:
    # φ' = 0.2 of a sequence's steps mixed, T_d = 10 ms, T_m = 30 ms. Every request 101 tokens (100 steps): the
    # p90 share is 0.2 + 1.2816 sqrt(0.16 / 100). Half of them 11 tokens, half 191 (the same mean): E[1 / n] =
    # (1 / 10 + 1 / 190) / 2, and the p90 share 0.2 + 1.2816 sqrt(0.16 E[1 / n]); the p50 stays at 0.2
    state = replace(continuous.steady_state(16.0, 1000.0, 101.0, 2048.0, 0.030, 0.010), mixed_token_share=0.2)
    z = 1.2815515655446004
    fixed = continuous.tpot_quantile_s(0.9, state, 101.0)
    assert fixed == pytest.approx(0.010 + 0.020 * (0.2 + z * math.sqrt(0.16 / 100.0)), rel=1e-12)
    inverse = (1.0 / 10.0 + 1.0 / 190.0) / 2.0
    assert lengths_of.histogram([11.0, 191.0]).inverse_decode_mean == pytest.approx(inverse, rel=1e-12)
    varied = continuous.tpot_quantile_s(0.9, state, 101.0, inverse=inverse)
    assert varied == pytest.approx(0.010 + 0.020 * (0.2 + z * math.sqrt(0.16 * inverse)), rel=1e-12)
    assert varied > fixed
    assert continuous.tpot_quantile_s(0.5, state, 101.0, inverse=inverse) == pytest.approx(0.010 + 0.020 * 0.2)
    # a fixed output among them (NaN) keeps its own figure
    both = continuous.tpot_quantile_s(0.9, state, 101.0, inverse=np.asarray([np.nan, inverse]))
    assert both[0] == pytest.approx(fixed, rel=1e-12) and both[1] == pytest.approx(varied, rel=1e-12)


def test_queue_figures_by_hand() -> None:
    # M/D/1: ρ = 0.5, S = 2 s: W = ρ S / (2 (1 - ρ)) = 1 s; p90 = (W / ρ) ln(ρ / 0.1) = 2 ln 5
    assert queueing.pk_wait_s(0.5, 2.0) == pytest.approx(1.0)
    assert queueing.pk_wait_s(1.0, 2.0) == math.inf
    # M/G/1: work that varies (c² = 1, as exponential service) doubles the M/D/1 wait (M/M/1: ρ S / (1 - ρ))
    assert queueing.pk_wait_s(0.5, 2.0, 1.0) == pytest.approx(0.5 * 2.0 / 0.5)
    assert queueing.wait_quantile_s(0.9, 0.5, 1.0) == pytest.approx(2.0 * math.log(5.0))
    assert queueing.wait_quantile_s(0.5, 0.5, 1.0) == 0.0  # half the requests do not wait at ρ = 0.5
    assert continuous.normal_quantile(0.9) == pytest.approx(1.2815515655446004)


def _exact_mva_wait(n: int, S: float, Z: float) -> float:
    """Mean value analysis, exact for one exponential server and a delay Z (Reiser & Lavenberg 1980): the
    response at k requests is S (1 + Q(k - 1)), Q(k) = k R / (R + Z)."""
    queue, response = 0.0, S
    for k in range(1, n + 1):
        response = S * (1.0 + queue)
        queue = k * response / (response + Z)
    return response - S


def test_a_closed_loops_wait_by_hand() -> None:
    # S = 1, Z = 9, n = 10, exponential service (c² = 1): R² + (Z - n S) R - S Z = 0, R = (1 + sqrt(1 + 36)) / 2
    R = (1.0 + math.sqrt(37.0)) / 2.0
    assert queueing.closed_wait_s(10, 1.0, 9.0, 1.0) == pytest.approx(R - 1.0, rel=1e-12)
    # fixed service (c² = 0): the one in service has S / 2 left, h = -1/2: R² - R - (9 - 9 / 2) = 0
    assert queueing.closed_wait_s(10, 1.0, 9.0) == pytest.approx((math.sqrt(19.0) - 1.0) / 2.0, rel=1e-12)
    # a heavy tail (c² = 54) waits longer, but no more than every other request's work ahead, the one in
    # service at its residual: (n - 2) S + S (1 + c²) / 2
    heavy = queueing.closed_wait_s(32, 0.01, 0.5, 54.0)
    assert queueing.closed_wait_s(32, 0.01, 0.5, 1.0) < heavy < (30 + 27.5) * 0.01
    assert queueing.closed_wait_s(1, 1.0, 9.0) == 0.0  # alone: nobody ahead
    assert queueing.closed_wait_s(0.5, 1.0, 9.0) == 0.0
    # nothing elsewhere (Z = 0): every request queues, a full service each ahead, whatever the service's spread
    assert queueing.closed_wait_s(5, 2.0, 0.0) == pytest.approx(8.0)
    # far beyond the server's rate the wait is what the rate imposes: n S - (S + Z)
    assert queueing.closed_wait_s(1000, 1.0, 9.0) == pytest.approx(990.0, rel=1e-3)


@pytest.mark.parametrize(("S", "Z"), [(1.0, 9.0), (0.35, 19.3), (1.0, 1.0), (1.0, 50.0), (0.1, 100.0)])
def test_a_closed_loops_wait_is_near_exact_mean_value_analysis(S: float, Z: float) -> None:
    """Schweitzer-Bard against exact MVA for exponential service: never below it and within 30 % (its error
    peaks near the knee, n S = S + Z, and vanishes at both ends)."""
    for n in (2, 3, 5, 10, 25, 50, 100, 200):
        exact = _exact_mva_wait(n, S, Z)
        approx = float(queueing.closed_wait_s(n, S, Z, 1.0))
        assert exact * (1 - 1e-9) <= approx <= exact * 1.3, (n, exact, approx)


def test_prompts_wait_for_each_other_in_a_closed_loop() -> None:
    """Within the slots a closed loop's requests wait for the prompts ahead of them: more with more requests,
    none for a lone one; every slot busy still waits for nothing."""
    base = _row(prompt_len=4000, gen_len=101, scheduler="continuous", max_num_seqs=256)
    rows = [base] + [base | {"concurrency": n} for n in (1, 4, 16, 64)]
    serving = evaluate(_arch(), candidates_of(rows)).serving
    assert serving.wait_s[0] == 0.0 and serving.wait_s[1] == 0.0
    assert np.all(np.diff(serving.wait_s[1:]) > 0)
    assert np.all(serving.slots[2:] < [4, 16, 64])  # some of the loop's requests wait outside the engine
    out = _frame(rows).iloc[1:]
    assert np.all(np.diff(out["ttft_s"]) > 0)
    for _, row in out.iterrows():  # Little's law: the loop's requests = rate x (wait + latency)
        assert row["throughput_tokens_per_s"] / 101.0 * row["e2e_latency_s"] == pytest.approx(row["concurrency"])


def test_a_closed_loop_spread_over_replicas_fills_the_busiest_engine() -> None:
    """5 requests over 3 replicas put 2 in the busiest engine, which holds them: no wait beyond the slots (the
    cap was floor(5 / 3) = 1, and TTFT jumped from 24 ms to 0.9 s between 3 and 5 requests); the decode
    instances of a split hold its requests (2 replicas, 1 prefilling: 16 requests, 16 slots)."""
    rows = [_row(scheduler="continuous", concurrency=n, replicas=3) for n in (3, 4, 5, 6, 7)]
    out = _frame(rows)
    assert np.all(np.diff(out["ttft_s"]) >= 0) and out["ttft_s"].max() < 0.05
    assert out["requests_in_engine"].to_numpy() == pytest.approx(np.array([3, 4, 5, 6, 7]) / 3, rel=1e-3)
    split = _row(hardware="dgx-h100", scheduler="continuous", mode="disaggregated", replicas=2, prefill_replicas=1)
    ttft = _frame([split | {"concurrency": n} for n in (4, 8, 16, 32)])["ttft_s"].to_numpy()
    assert np.all(np.diff(ttft) >= 0) and ttft[2] < 0.05


@settings(max_examples=25, deadline=None)
@given(
    st.integers(16, 8000),
    st.integers(2, 2000),
    st.integers(1, 512),
    st.integers(1, 400),
    st.integers(1, 400),
    st.sampled_from([MODEL, "qwen3-30b-a3b"]),
)
@example(16, 2, 5, 3, 5, MODEL)  # short prompts sharing a step: a prompt's service is its work, not a step
@example(128, 16, 256, 5, 8, "qwen3-30b-a3b")  # experts a decode step loads anyway: a prompt's work read alone
def test_more_requests_in_a_closed_loop_never_lower_ttft(P: int, G: int, N: int, n1: int, n2: int, model: str) -> None:
    low, high = sorted((n1, n2))
    base = _row(model=model, prompt_len=P, gen_len=G, scheduler="continuous", max_num_seqs=N)
    few, many = _frame([base | {"concurrency": low}, base | {"concurrency": high}])[
        ["ttft_s_p50", "ttft_s_p90", "ttft_s_p99", "ttft_s"]
    ].to_numpy()
    assert np.all(many >= few * (1 - 1e-9))


def test_the_mixed_pass_from_its_parts() -> None:
    """15 decode tokens beside a whole 1000-token prompt: 1015 rows through the linear layers (the weights
    read once), 16 sequences for the LM head, and attention over the decode tokens' mean keys plus the
    prompt's causal pairs."""
    arch = _arch()
    c = candidates(_row()).row(0)
    lay = layout(arch, 16.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    p = mixed_pass(arch, c, lay, decoding=15.0, prompts=1.0, s=1.0, cached=0.0)
    assert pytest.approx(1015.0) == p.R and pytest.approx(16.0) == p.B
    keys = mean_attended_keys(1000.0, 201.0, math.inf, math.inf)
    assert keys == pytest.approx(1000.0 + 100.5)  # P + j over j = 1..200
    work = p.attention["full"]
    assert work.pairs * p.B == pytest.approx(15.0 * keys + causal_pairs(1000.0, math.inf))
    # a bf16 cache is read at the attention width: the decode tokens' reads are their keys, from the cache
    assert work.cached * p.B == pytest.approx(15.0 * keys) and work.reads * p.B >= 1000.0
    # chunks re-read the prefix earlier chunks wrote: 0 + 250 + 500 + 750 for 4 chunks of 250
    assert chunk_prefix_reads(1000.0, 4.0, math.inf) == pytest.approx(1500.0)
    assert chunk_prefix_reads(1000.0, 4.0, 300.0) == pytest.approx(0.0 + 250.0 + 300.0 + 300.0)


def test_a_mixed_step_costs_at_least_its_prompt_and_shares_the_weights() -> None:
    """The step with 15 decode tokens and a prompt costs more than the prompt alone and less than the prompt
    plus a separate 15-sequence decode step (the weights are read once for both)."""
    arch = _arch()
    row = _row(scheduler="continuous", max_num_seqs=16)
    ev = evaluate_reference(arch, candidates(row).row(0))
    assert ev.serving is not None
    alone = evaluate_reference(arch, candidates(_row()).row(0)).metrics.ttft_s  # one prompt, static
    decode16 = evaluate_reference(arch, candidates(_row(batch=15)).row(0)).tpot_s
    assert alone < ev.serving.mixed_step_s < alone + decode16


def test_the_mixed_step_bends_where_a_step_starts_carrying_more_than_one_prompt() -> None:
    """T_m from three knots: b = 1, b_mid = min(G, b_max) and b_max, a line on each segment (by hand)."""
    steps = continuous.StepTimes(256.0, 0.030, 0.010, 0.100, 0.020, b_mid=101.0, mixed_mid=0.034)
    assert steps.mixed_at(1.0) == pytest.approx(0.030) and steps.mixed_at(0.5) == pytest.approx(0.030)
    assert steps.mixed_at(51.0) == pytest.approx(0.032)  # halfway to b_mid
    assert steps.mixed_at(101.0) == pytest.approx(0.034)
    assert steps.mixed_at(178.5) == pytest.approx(0.067)  # halfway from b_mid to b_max
    assert steps.mixed_at(300.0) == pytest.approx(0.100)
    assert continuous.mid_knot(101.0, 256.0) == 101.0 and continuous.mid_knot(501.0, 256.0) == 256.0
    assert continuous.mid_knot(0.5, 256.0) == 1.0
    # a one-token answer puts the knot at one sequence: the line from there to b_max
    single = continuous.StepTimes(256.0, 0.030, 0.010, 0.100, 0.020, b_mid=1.0, mixed_mid=0.032)
    assert single.mixed_at(256.0) == pytest.approx(0.100) and single.mixed_at(128.5) == pytest.approx(0.066)


def test_between_knots_a_mixed_step_carries_the_chunk_of_its_own_b_by_hand() -> None:
    """P = 4,075, G = 256, C = 2,048: one sequence leaves a 2,048-token room (2 chunks of 2,037.5), b_max = 86
    leaves 1,963 (3 chunks of 1,358.3), and b = 5 leaves 2,044 (still 2 chunks). The line through T_m (50 ms at
    b = 1, 40 ms at 86) carries the knots' chunks along it, 2,005.5 tokens at b = 5 (t = 4 / 85); the step
    carries 2,037.5. Each end's step with the other's chunk (35 ms at b = 1 carrying 1,358.3; 60 ms at b_max
    carrying 2,037.5) gives what a prompt token costs there, σ = 15 ms and 20 ms over 679.2 tokens:
    T_m = line + σ (k - k̄), σ the larger end's where the line lacks tokens (k > k̄), the smaller's where it
    has too many."""
    P, G, C = 4075.0, 256.0, 2048.0
    line_only = continuous.StepTimes(86.0, 0.050, 0.010, 0.040, 0.020)
    steps = line_only.with_chunk_slopes(P, G, C, 0.035, 0.060)
    assert (steps.prompt_1, steps.prompt_max) == (pytest.approx(2037.5), pytest.approx(4075.0 / 3.0))
    span = 2037.5 - 4075.0 / 3.0
    assert (steps.slope_1, steps.slope_max) == (pytest.approx(0.015 / span), pytest.approx(0.020 / span))
    t = 4.0 / 85.0
    line, carried = 0.050 - 0.010 * t, 2037.5 - t * span
    assert steps.mixed_at(5.0, P, G, C) == pytest.approx(line + 0.020 / span * (2037.5 - carried))
    assert steps.mixed_at(5.0) == pytest.approx(line)  # without P, G, C: the line
    assert steps.at(5.0, P, G, C).mixed_s == pytest.approx(line + 0.020 / span * (2037.5 - carried))
    for b in (1.0, 86.0, 200.0):  # exact at the knots, constant beyond them
        assert steps.mixed_at(b, P, G, C) == pytest.approx(steps.mixed_at(b))
    # past the boundary (room 2,037.5 at b = 11.5) the step carries 1,358.3: below the line, by the smaller σ
    t = 11.0 / 85.0
    line, carried = 0.050 - 0.010 * t, 2037.5 - t * span
    assert steps.mixed_at(12.0, P, G, C) == pytest.approx(line - 0.015 / span * (carried - 4075.0 / 3.0))
    # a prompt whose chunk count does not change between the knots (1,000 tokens, one chunk): the line
    short = line_only.with_chunk_slopes(1000.0, G, C)
    assert short.mixed_at(5.0, 1000.0, G, C) == pytest.approx(short.mixed_at(5.0))


def test_a_mixture_of_experts_mixed_step_between_knots_is_near_its_direct_evaluation() -> None:
    """Mixtral-8x7B on a DGX H100 at tp 2, 203-token prompts, 142-token answers, a 256-token budget: a lone
    prompt runs in one step, 60 sequences and more in two. Most of a mixed step's prompt part is the experts
    its chunk touches, whatever the chunk's size, so scaling the whole part by the chunk read it 9-11 % high
    below the boundary: the measured cost of a prompt token keeps it to 1 % (a direct evaluation at b is the
    engine with b sequences every slot busy, its own knot)."""
    kw = {"quant": "bf16", "tp": 2, "prompt_len": 203, "gen_len": 142, "scheduler": "continuous", "chunk_tokens": 256}
    row = {"model": "mixtral-8x7b", "hardware": "dgx-h100", **kw}
    rates = [row | {"max_num_seqs": 512, "request_rate": r} for r in (18.0, 19.0, 19.5, 21.0)]
    out = _frame(rates)
    assert np.all(np.diff(out["tpot_s"].to_numpy()) > 0)  # more load, longer TPOT
    for rate in (18.0, 19.5):
        served = dse_analyze("mixtral-8x7b", "dgx-h100", max_num_seqs=512, request_rate=rate, **kw)
        b = math.floor(served["sequences_in_engine"])
        direct = dse_analyze("mixtral-8x7b", "dgx-h100", max_num_seqs=b, **kw)
        assert direct["sequences_every_slot_busy"] == b
        assert served["mixed_step_s"] == pytest.approx(direct["mixed_step_s"], rel=0.01)


def test_a_prompt_a_few_tokens_longer_reads_about_the_same_latencies() -> None:
    """Llama-3.1-70B FP8 at tp 4, a 2,048-token budget, 3 requests/s: a lone prompt of 4,075 tokens takes two
    chunks, 4,100 three; every slot busy both take three. Reading T_m on the line through the knots, the
    4,075-token prompt read TTFT 533 ms and TPOT 40.6 ms against 464 and 23.9 (calibrated): the line charged
    steps carrying 2,038 tokens as if they carried fewer, below the boundary, and the load ran at 32 sequences
    instead of 19."""
    kw = {"quant": "fp8", "tp": 4, "gen_len": 256, "scheduler": "continuous", "chunk_tokens": 2048, "request_rate": 3.0}
    short, long = (analyze("llama-3.1-70b", "dgx-h100", prompt_len=p, **kw).to_dict() for p in (4075, 4100))
    assert short["ttft_s"] == pytest.approx(long["ttft_s"], rel=0.02)
    assert short["tpot_s"] == pytest.approx(long["tpot_s"], rel=0.05)
    assert short["ttft_s"] <= long["ttft_s"] * (1 + 1e-9)


def test_ttft_p50_rises_with_the_load_across_a_chunk_count_change() -> None:
    """Mixtral-8x7B on an H200, 2,000-token prompts and budget, 100-token answers: a lone prompt runs in one
    step and every slot busy in two chunks. With T_m read on the line through the knots, its TTFT p50 fell by
    4 % from a fifth of its capacity to half of it."""
    base = {"model": "mixtral-8x7b", "hardware": "h200-sxm", "quant": "bf16", "prompt_len": 2000, "gen_len": 100}
    base |= {"scheduler": "continuous", "chunk_tokens": 2048}
    capacity = _frame([base]).iloc[0]["max_request_rate"]
    p50 = _frame([base | {"request_rate": capacity * f} for f in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)])["ttft_s_p50"]
    assert np.all(np.diff(p50.to_numpy()) > 0), p50


def test_a_mixture_of_experts_decode_step_bulges_over_its_line_by_hand() -> None:
    """T_d = line + s (w(b) - t w(b_max)), w(b) = 1 - e^(-r (b - 1)), r = -ln(1 - k / E): exact at 1, b_e and
    b_max, concave in between. Mixtral's 2 of 8 experts, b_max = 101, the knot at 12 read 20 ms over a line
    from 8 to 30 ms."""
    line = continuous.StepTimes(101.0, 0.010, 0.008, 0.050, 0.030)
    steps = line.with_experts(12.0, 0.020, 8, 2, 1.0)
    r = -math.log(0.75)

    def w(b: float) -> float:
        return 1.0 - math.exp(-r * (b - 1.0))

    scale = (0.020 - (0.008 + 0.11 * 0.022)) / (w(12.0) - 0.11 * w(101.0))
    for b in (1.0, 4.0, 12.0, 50.0, 101.0):
        t = (b - 1.0) / 100.0
        assert steps.decode_at(b) == pytest.approx(0.008 + t * 0.022 + scale * (w(b) - t * w(101.0)))
    assert steps.decode_at(1.0) == pytest.approx(0.008) and steps.decode_at(12.0) == pytest.approx(0.020)
    assert steps.decode_at(101.0) == pytest.approx(0.030)
    assert steps.decode_at(4.0) > line.decode_at(4.0) + 0.005  # most experts read by four sequences
    # the knot stays inside the line's span: 3 E pp / k, at most half of b_max
    assert continuous.expert_knot(8, 2, 1.0, 1024.0) == 12.0 and continuous.expert_knot(8, 2, 1.0, 16.0) == 8.0
    assert continuous.expert_knot(256, 8, 2.0, 1024.0) == 192.0


def test_slots_beyond_the_load_leave_its_latency_alone() -> None:
    """30.6 requests/s of 1,000-token prompts and 101-token answers hold about 50 sequences on an H100: TPOT
    is the same whether the engine may hold 100 or 256. (Interpolating T_m from one sequence straight to 256,
    whose step carries 2.5 prompts, made it 2.8 times longer.)"""
    rows = [
        _row(scheduler="continuous", prompt_len=1000, gen_len=101, request_rate=30.6, max_num_seqs=n)
        for n in (100, 256)
    ]
    out = _frame(rows)
    assert out["tpot_s"].iloc[1] == pytest.approx(out["tpot_s"].iloc[0], rel=0.01)


@pytest.mark.parametrize(
    ("model", "hardware", "n"), [("mixtral-8x7b", "h200-sxm", 16), ("qwen3-30b-a3b", "h100-sxm", 8)]
)
def test_a_mixture_of_experts_decode_step_fills_its_experts_within_a_few_sequences(
    model: str, hardware: str, n: int
) -> None:
    """A MoE decode step reads the experts its sequences touch, 1 - (1 - k / E)^b of them: most within a few
    sequences. A Poisson load at the rate a closed loop of n completes runs about as many sequences, and its
    TPOT is within 10 % of the loop's, whose steps are evaluated at n itself; the line from one sequence to
    1,024 read Mixtral's at 8.6 ms for about 25 (2.9 times shorter)."""
    base = dict(model=model, hardware=hardware, quant="bf16", prompt_len=128, gen_len=128, scheduler="continuous")
    base |= dict(chunk_tokens=512, max_num_seqs=1024)
    loop = _frame([base | {"concurrency": n}]).iloc[0]
    rate = loop["throughput_tokens_per_s"] / 128
    poisson = _frame([base | {"request_rate": rate}]).iloc[0]
    assert poisson["tpot_s"] == pytest.approx(loop["tpot_s"], rel=0.10)


def test_a_mixed_step_routes_its_prompt_chunk_to_the_experts_once() -> None:
    """Attention data-parallel over four groups (Mixtral-8x7B at ep 4): one to four sequences add one decode row
    to each group, and the busiest group holds the 2,000-token chunk; the experts see every group's rows and
    the chunk once, so the mixed step grows by a few decode rows' work (it read 31, 49, 67, 86 ms when each
    group's rows were routed as the busiest's, the chunk four times)."""
    kw: dict[str, Any] = dict(quant="bf16", tp=1, ep=4, prompt_len=2000, gen_len=1000, scheduler="continuous")
    step = [
        dse_analyze("mixtral-8x7b", "dgx-h200", concurrency=n, chunk_tokens=2048, **kw)["mixed_step_s"] for n in (1, 4)
    ]
    assert step[0] < step[1] < 1.2 * step[0]


# --- limits and laws --------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["ideal", "calibrated"])
def test_one_sequence_with_the_whole_prompt_in_one_step_is_the_static_batch(profile: str) -> None:
    static, cont = _frame(
        [_row(), _row(scheduler="continuous", max_num_seqs=1, chunk_tokens=1000)], profile=profile
    ).to_dict("records")
    for metric in ("ttft_s", "tpot_s", "e2e_latency_s", "throughput_tokens_per_s", "usd_per_million_tokens"):
        assert cont[metric] == pytest.approx(static[metric], rel=1e-12), metric


def test_under_speculation_a_mixed_step_runs_the_draft_only_for_its_decoding_sequences() -> None:
    """Llama-3.1-70B FP8 at tp 4 drafting 3 tokens with Llama-3.1-8B: a lone prompt's step has no decoding
    sequence to draft for, so one sequence with the whole prompt in one step is the static batch (the draft's
    steps were added to every mixed step at b_max, 44.1 ms against 40.8 with one slot); from two sequences
    on the draft runs, and a light load's mixed step is within 1 % of a direct evaluation (it read 7 % low on
    the line from a draftless lone prompt's step)."""
    kw: dict[str, Any] = dict(quant="fp8", tp=4, prompt_len=1000, gen_len=300, spec_tokens=3, spec_acceptance=0.7)
    kw |= {"draft": "llama-3.1-8b"}
    row = {"model": "llama-3.1-70b", "hardware": "dgx-h100", **kw}
    static, one = _frame([row, row | {"scheduler": "continuous", "max_num_seqs": 1, "chunk_tokens": 2048}]).to_dict(
        "records"
    )
    for metric in ("ttft_s", "tpot_s", "e2e_latency_s", "throughput_tokens_per_s"):
        assert one[metric] == pytest.approx(static[metric], rel=1e-12), metric
    served = {"scheduler": "continuous", "chunk_tokens": 2048, **kw}
    capacity = dse_analyze("llama-3.1-70b", "dgx-h100", **served)["request_rate"]
    light = dse_analyze("llama-3.1-70b", "dgx-h100", request_rate=0.1 * capacity, **served)
    b = light["sequences_in_engine"]
    low, high = (
        dse_analyze("llama-3.1-70b", "dgx-h100", max_num_seqs=n, **served) for n in (math.floor(b), math.ceil(b))
    )
    direct = low["mixed_step_s"] + (b - math.floor(b)) * (high["mixed_step_s"] - low["mixed_step_s"])
    assert 2.0 <= b <= 4.0 and light["mixed_step_s"] == pytest.approx(direct, rel=0.01)


@pytest.mark.parametrize(("prompt", "budget"), [(128, 512), (1000, 8192), (2000, 512)])
def test_a_light_poisson_load_waits_for_no_step_in_progress(prompt: int, budget: int) -> None:
    # an idle engine has no step to finish: as the rate goes to 0 a prompt's TTFT is its own chunks', and
    # (budget >= prompt) the static batch's. With half a step always added, 128-token prompts read 10.2 ms at
    # 1e-4 of capacity for a 7.0 ms prefill (+46 %)
    cont = _row(scheduler="continuous", prompt_len=prompt, gen_len=128, chunk_tokens=budget, max_num_seqs=64)
    capacity = _frame([cont]).iloc[0]["max_request_rate"]
    static, light = _frame([_row(prompt_len=prompt, gen_len=128), cont | {"request_rate": capacity * 1e-4}]).to_dict(
        "records"
    )
    alone = _frame([cont | {"max_num_seqs": 1}]).iloc[0]  # one sequence: the lone prompt's chunks
    assert light["ttft_s"] == pytest.approx(alone["ttft_s"], rel=5e-3)  # busy a share b ~ 0.005 of the time
    for q in (50, 90, 99):
        assert light[f"ttft_s_p{q}"] == pytest.approx(alone["ttft_s"], rel=1e-9)
    if budget >= prompt:
        assert light["ttft_s"] == pytest.approx(static["ttft_s"], rel=5e-3)


def test_the_step_in_progress_by_hand() -> None:
    # one sequence, T_m = 30 ms a share φ = 1 / 201 of the steps, T_d = 10 ms the rest: an arrival falls in a
    # step in proportion to its length, T_e = E[T²] / E[T] = (900 + 200 x 100) / (30 + 200 x 10) ms, and
    # waits half of it on average. A lone request in the engine a share b = 0.2 of the time: 0.2 of that; its
    # p90 waits only where q > 1 - u, (0.9 - 0.8) / 0.2 = half of T_e; its p50 nothing; at b >= 1 q of T_e
    state = continuous.steady_state(1.0, 1000.0, 201.0, 8192.0, mixed_s=0.030, decode_s=0.010)
    length = 0.001 * 20_900.0 / 2_030.0
    assert state.prefill_share == pytest.approx(1.0 / 201.0)
    assert continuous.step_in_progress_s(None, state) == pytest.approx(length / 2.0)
    assert continuous.step_in_progress_s(0.99, state) == pytest.approx(0.99 * length)
    light = replace(state, slots=0.2)
    assert continuous.step_in_progress_s(None, light) == pytest.approx(0.2 * length / 2.0)
    assert continuous.step_in_progress_s(0.9, light) == pytest.approx(length / 2.0)
    assert continuous.step_in_progress_s(0.5, light) == 0.0


@pytest.mark.parametrize("pp", [1, 2])
def test_littles_law_in_a_closed_loop_and_under_poisson_arrivals(pp: int) -> None:
    over = {"replicas": 2, "pp": pp} | ({"hardware": "dgx-h100"} if pp > 1 else {})
    rows = [_row(scheduler="continuous", concurrency=n, **over) for n in (2, 64, 5000)]
    rows += [_row(scheduler="continuous", request_rate=r, **over) for r in (0.5, 20.0)]
    out = _frame(rows).to_dict("records")
    for row in out[:3]:  # concurrency = rate x latency (waiting beyond the slots included)
        rate = row["throughput_tokens_per_s"] / 201.0
        assert rate * row["e2e_latency_s"] == pytest.approx(row["concurrency"], rel=1e-9)
    assert out[2]["requests_in_engine"] < 5000 / 2  # the slots are full: the rest wait
    for row in out[3:]:  # the served rate is the offered one
        assert row["throughput_tokens_per_s"] == pytest.approx(row["request_rate"] * 201.0)
        assert row["feasible"]


def test_a_rate_beyond_capacity_is_overloaded_not_a_crash() -> None:
    out = _frame([_row(scheduler="continuous", request_rate=1e6)]).iloc[0]
    assert not out["feasible"] and "request rate exceeds" in out["infeasible_reason"]


def test_max_request_rate_meets_its_slos_and_no_more() -> None:
    slo = {"scheduler": "continuous", "slo_ttft_s": 0.2, "slo_tpot_s": 0.03, "slo_percentile": 90}
    best = _frame([_row(**slo)]).iloc[0]["max_request_rate"]
    assert 0 < best < _frame([_row(scheduler="continuous")]).iloc[0]["max_request_rate"]  # below capacity
    at, beyond = _frame([_row(**slo, request_rate=best * 0.999), _row(**slo, request_rate=best * 1.05)]).to_dict(
        "records"
    )
    assert at["ttft_s_p90"] <= 0.2 + 1e-9 and at["tpot_s_p90"] <= 0.03 + 1e-9
    assert beyond["ttft_s_p90"] > 0.2 or beyond["tpot_s_p90"] > 0.03
    # a lone request that misses the SLO: no rate meets it
    assert _frame([_row(**slo | {"slo_ttft_s": 1e-4})]).iloc[0]["max_request_rate"] == 0.0


def test_chunked_prefill_bounds_activations_and_fits_long_prompts() -> None:
    """A 128k-token prompt: the static batch holds every prompt token's activations at once; chunks of 8192
    hold a chunk's, so more sequences fit (issue: 12 GB of activations for Llama-3.1-8B)."""
    static, cont = _frame(
        [_row(prompt_len=128_000, gen_len=256), _row(prompt_len=128_000, gen_len=256, scheduler="continuous")]
    ).to_dict("records")
    assert static["activation_bytes"] > 10 * cont["activation_bytes"]
    assert cont["max_batch"] > static["max_batch"]


# --- properties -------------------------------------------------------------------------------------------

lengths = st.integers(16, 8000)


@settings(max_examples=25, deadline=None)
@given(lengths, st.integers(2, 2000), st.integers(1, 512), st.floats(0.05, 0.95), st.sampled_from([1, 1, 2, 4]))
@example(16, 2, 8, 0.5, 1)  # short prompts that batch more with load: the queue is the replica's, not a prompt's
@example(2000, 300, 256, 0.5, 4)  # pipeline stages: virtual engines
@example(4462, 51, 161, 0.25676, 4)  # b <= pp: longer decode cycles, a step in progress found less often
def test_more_load_never_lowers_ttft_percentiles(P: int, G: int, N: int, share: float, pp: int) -> None:
    stages = {"pp": pp, "hardware": "dgx-h100"} if pp > 1 else {}
    base = _row(prompt_len=P, gen_len=G, scheduler="continuous", max_num_seqs=N, **stages)
    capacity = _frame([base]).iloc[0]["max_request_rate"]
    low, high = _frame([base | {"request_rate": capacity * share / 2}, base | {"request_rate": capacity * share}])[
        ["ttft_s_p50", "ttft_s_p90", "ttft_s_p99", "ttft_s"]
    ].to_numpy()
    assert np.all(high >= low * (1 - 1e-9))


@settings(max_examples=25, deadline=None)
@given(lengths, st.integers(2, 2000), st.integers(1, 64), st.integers(64, 4096), st.integers(1, 8))
def test_a_larger_chunk_budget_never_lowers_tpot_interference(P: int, G: int, N: int, C: int, times: int) -> None:
    """With no fewer sequences in the engine. A larger budget also reserves a larger step's activations, which
    may leave room for fewer sequences, and TPOT then falls with them: that is not interference (the test
    below)."""
    base = _row(prompt_len=P, gen_len=G, scheduler="continuous", max_num_seqs=N)
    small, large = (_frame([base | {"chunk_tokens": c}]).iloc[0] for c in (C, C * times))
    assume(large["requests_in_engine"] >= small["requests_in_engine"] * (1 - 1e-9))  # no fewer sequences
    assert large["tpot_s"] >= small["tpot_s"] * (1 - 1e-9)


def test_a_larger_chunk_budget_may_leave_room_for_fewer_sequences() -> None:
    """7,971-token prompts, at most 52 sequences on one H100 (Llama-3.1-8B bf16, default profile): a budget of
    1,993 tokens holds 52 sequences, one of 7,972 a step's activations that leave room for 51; with one
    sequence fewer a decode step is shorter, and so is TPOT, though each prompt's chunks are larger."""
    base = _row(prompt_len=7971, gen_len=1517, scheduler="continuous", max_num_seqs=52)
    small, large = (_frame([base | {"chunk_tokens": c}]).iloc[0] for c in (1993, 7972))
    assert (small["max_batch"], large["max_batch"]) == (52, 51)
    assert large["activation_bytes"] > 3 * small["activation_bytes"]
    assert large["decode_step_flops"] < small["decode_step_flops"] and large["tpot_s"] < small["tpot_s"]


def test_the_engine_matches_the_reference_on_a_mixed_chunk() -> None:
    """Static and continuous candidates in one chunk are evaluated apart and merged back in order."""
    rows = [_row(batch=4), _row(scheduler="continuous", request_rate=3.0), _row(batch=2, scheduler="continuous")]
    both = candidates_of(rows)
    engine = evaluate(_arch(), both)
    for i in range(3):
        reference = evaluate_reference(_arch(), both.row(i))
        assert engine.metrics.ttft_s[i] == pytest.approx(reference.metrics.ttft_s, rel=1e-9)
        assert engine.metrics.throughput_tokens_per_s[i] == pytest.approx(
            reference.metrics.throughput_tokens_per_s, rel=1e-9
        )
    assert engine.serving is not None and np.isnan(engine.serving.slots[0]) and engine.serving.slots[1] > 0


def test_a_static_batch_offered_more_than_it_completes_is_overloaded() -> None:
    """A static batch of 8 completes 8 requests per end-to-end latency; offered more, it is overloaded."""
    out = _frame([_row(batch=8)]).iloc[0]
    capacity = 8 / out["e2e_latency_s"]
    assert out["max_request_rate"] == pytest.approx(capacity)
    within, beyond = _frame([_row(batch=8, request_rate=capacity * 0.99), _row(batch=8, request_rate=capacity * 1.01)])[
        "feasible"
    ]
    assert within and not beyond


def test_a_closed_loop_below_one_request_a_replica_keeps_littles_law() -> None:
    """One request in flight over four replicas: three idle, and the rate is one request per latency."""
    out = _frame([_row(scheduler="continuous", concurrency=1, replicas=4)]).iloc[0]
    assert out["throughput_tokens_per_s"] / 201 * out["e2e_latency_s"] == pytest.approx(1.0, rel=1e-9)
    apart = _frame([_row(hardware="dgx-h100", mode="disaggregated", concurrency=1, replicas=2)]).iloc[0]
    assert apart["throughput_tokens_per_s"] / 201 * apart["e2e_latency_s"] == pytest.approx(1.0, rel=1e-9)


def test_an_engine_admits_no_more_sequences_than_its_chunks_keep_fed() -> None:
    # P = 1000, G = 201, C = 512: at b sequences the room is 512 - (b - 1) (b < 201), a prompt spans
    # s = ceil(1000 / room) chunks; b' = (G - 1) k / P + 1 sequences are fed (φ = 1). With s = 3 (room 334-499,
    # k = 333.3) that is 200 x 1/3 + 1 = 67.67: 67.67 sequences are fed, more are not
    fed = continuous.fed_slots(256.0, 1000.0, 201.0, 512.0)
    assert fed == pytest.approx(200.0 / 3.0 + 1.0, rel=1e-6)
    assert continuous.fed_slots(64.0, 1000.0, 201.0, 512.0) == 64.0  # fewer slots: all fed
    # under speculation each decoding sequence brings γ + 1 tokens: less room, fewer fed
    assert continuous.fed_slots(256.0, 1000.0, 201.0, 512.0, 3.0) < fed


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([256, 512, 2048, 8192]), st.integers(100, 4000), st.integers(2, 600))
@example(256, 100, 99)  # 128 sequences fed exactly: the slot bisection stopped a hair below and admitted 127
def test_every_slot_busy_is_the_engine_s_capacity(chunk: int, P: int, G: int) -> None:
    """No closed loop, at any concurrency, completes more requests than the engine with every slot busy."""
    base = _row(scheduler="continuous", chunk_tokens=chunk, prompt_len=P, gen_len=G)
    rows = [base] + [base | {"concurrency": n} for n in (4, 16, 64, 128, 256)]
    out = _frame(rows)
    busy = out["throughput_tokens_per_s"].iloc[0]
    assert (out["throughput_tokens_per_s"].iloc[1:] <= busy * (1 + 1e-9)).all(), out["throughput_tokens_per_s"]


# --- X(b) falls where a prompt takes one more chunk: the first crossing --------------------------------------

DIP = (2000.0, 500.0, 1024.0)
"""P, G, C: one sequence leaves a 1,024-token room (2 chunks of 1,000); at b = 25 the room is 1,000 and past it a
prompt takes 3 chunks, so X falls by about 6 %."""


def _dip_steps(P: float, G: float, C: float, stages: float = 1.0) -> continuous.StepTimes:
    b_max = float(continuous.fed_slots(512.0, P, G, C, stages=stages))
    mixed, decode = 0.05 + 0.2 * b_max / 512, 0.02 + 0.1 * b_max / 512
    return continuous.StepTimes(b_max, 0.05, 0.02, mixed, decode, stages=stages)


def test_a_chunk_boundary_is_where_the_room_is_a_whole_share_of_the_prompt() -> None:
    P, G, C = DIP
    # below G the room is C - (b - 1): 1,000 tokens (2 chunks) at b = 25, 666.7 (3 chunks) at b = 358.3
    assert continuous.chunk_boundary(2.0, P, G, C) == pytest.approx(25.0)
    assert continuous.chunk_boundary(3.0, P, G, C) == pytest.approx(C - P / 3 + 1)
    # beyond G the room is C - b (1 - 1/G): P / 4 = 500 tokens at b = (1024 - 500) x 500 / 499 = 525.05
    b4 = continuous.chunk_boundary(4.0, P, G, C)
    assert b4 == pytest.approx(524.0 * 500.0 / 499.0) and b4 > G
    for n, b in ((2.0, 25.0), (4.0, b4)):
        assert continuous.room(G, b, C) == pytest.approx(P / n)
        assert continuous.chunks(P, G, b * (1 - 1e-6), C)[0] == n
        assert continuous.chunks(P, G, b * (1 + 1e-6), C)[0] == n + 1
    # a room that one sequence already lacks has no boundary; nor has a one-token output (the room stays C)
    assert np.isnan(continuous.chunk_boundary(1.0, P, G, C)) and np.isnan(continuous.chunk_boundary(3.0, P, 1.0, C))
    # speculative decoding: each decoding sequence takes t tokens of the room
    assert continuous.chunk_boundary(2.0, P, G, C, 4.0) == pytest.approx(24.0 / 4.0 + 1.0)


def _first_on_a_scan(steps: continuous.StepTimes, rate: float, P: float, G: float, C: float) -> float:
    b = np.linspace(1.0, float(steps.b_max), 400_001)
    x = steps.at(b, P, G, C).requests_per_s
    return float(b[np.argmax(x >= rate)])


def test_a_rate_reached_before_a_dip_runs_at_its_first_crossing() -> None:
    """Just under the peak before the dip the rate is crossed three times (rising, after the dip's bottom is
    passed on the way down, and again as X recovers): the engine, its load rising, stops at the first."""
    P, G, C = DIP
    steps = _dip_steps(P, G, C)
    peak = float(continuous.peak_rate(steps, 2.0, P, G, C)[0])
    assert steps.at(27.0, P, G, C).requests_per_s < 0.99 * peak < steps.at(28.0, P, G, C).requests_per_s  # a dip
    for rate in (0.999 * peak, 0.99 * peak, 0.9 * peak):
        b = float(continuous.slots_for_rate(steps, rate, P, G, C))  # one candidate (the scalar path)
        assert b == pytest.approx(_first_on_a_scan(steps, rate, P, G, C), abs=2e-3)
        assert steps.at(b, P, G, C).requests_per_s == pytest.approx(rate, rel=1e-6)
        array = continuous.slots_for_rate(replace(steps, b_max=np.array([steps.b_max])), np.array([rate]), P, G, C)
        assert array[0] == pytest.approx(b, rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(600, 9000), st.integers(50, 1500), st.sampled_from([512, 1024, 2048]), st.floats(0.3, 0.999),
    st.sampled_from([1.0, 1.0, 2.0, 4.0]),
)  # fmt: skip
@example(600, 226, 2048, 0.828125, 1.0)  # X peaks inside a segment (at b = 151, one chunk throughout): crossed at 146
@example(2000, 500, 1024, 0.99, 2.0)  # virtual engines: the dip past 2 x 25 sequences
def test_the_operating_point_is_the_first_b_that_reaches_the_rate(
    P: int, G: int, C: int, share: float, stages: float
) -> None:
    steps = _dip_steps(float(P), float(G), float(C), stages)
    b = np.linspace(1.0, float(steps.b_max), 100_001)
    x = steps.at(b, P, G, C).requests_per_s
    rate = share * float(x.max())
    found = float(continuous.slots_for_rate(steps, rate, P, G, C))
    if steps.at(steps.b_max, P, G, C).requests_per_s <= rate:
        assert found == steps.b_max  # beyond every slot busy: overloaded, whatever came before
        return
    assert not np.any(x[b < found * (1 - 1e-4) - 1e-3] >= rate * (1 + 1e-6))  # nothing earlier reaches it
    assert steps.at(found, P, G, C).requests_per_s == pytest.approx(rate, rel=1e-5)


def test_x_peaks_inside_a_segment_where_a_prompt_s_part_of_a_step_grows() -> None:
    """With T_m - T_d growing with b (0.03 s at one sequence, 0.13 s at 512), X rises to b* = sqrt(D t0 / δ)
    and falls before any chunk boundary: the scan's peak, within its grid."""
    P, G, C = 600.0, 226.0, 2048.0
    steps = _dip_steps(P, G, C)
    b = np.linspace(1.0, 225.0, 200_001)
    x = steps.at(b, P, G, C).requests_per_s
    assert float(continuous.interior_peak(steps, P, G, C)) == pytest.approx(b[np.argmax(x)], abs=2e-3)
    assert np.all(steps.at(b, P, G, C).chunks == 1.0)
    flat = continuous.StepTimes(512.0, 0.05, 0.02, 0.05 + 0.1, 0.02 + 0.1)  # Δ constant: X only grows
    assert np.isnan(continuous.interior_peak(flat, P, G, C))
    # two stages: two engines of b / 2, whose peak is sqrt(2 D t0 / δ), within the first segment up to 2 G
    steps = _dip_steps(P, G, C, stages=2.0)
    b = np.linspace(1.0, 2.0 * G - 1.0, 200_001)
    x = steps.at(b, P, G, C).requests_per_s
    assert float(continuous.interior_peak(steps, P, G, C)) == pytest.approx(b[np.argmax(x)], abs=4e-3)


def test_the_most_a_replica_sustains_counts_the_peak_before_a_dip() -> None:
    """A TPOT SLO met up to b = 26, just past the boundary at 25: X there is 3.6 % under the peak just before
    the boundary, where the SLO is met too; the peak is the rate the replica sustains."""
    P, G, C = DIP
    steps = _dip_steps(P, G, C)
    slo = float(steps.at(26.0, P, G, C).tpot_s)
    rate = continuous.max_rate(steps, P, G, C, np.inf, slo, 0.5)
    peak, state = continuous.peak_rate(steps, 2.0, P, G, C)
    assert float(steps.at(26.0, P, G, C).requests_per_s) < 0.97 * float(peak)
    assert rate == pytest.approx(float(peak), rel=1e-12) and state.tpot_s < slo


def test_the_activation_reserve_by_hand() -> None:
    """The engine reserves activations for a forward pass of its whole token budget, whatever max_num_seqs,
    and fp32 logits for max_num_seqs sequences (vLLM profiles its peak on a forward pass of
    max_num_batched_tokens tokens and a sampler run over max_num_seqs sequences): Qwen3-30B-A3B on an H100
    (500 / 500 tokens, a 4,096-token budget), from 64 to 4,096 slots, 4,032 more rows of 151,936 x 4 bytes,
    2.45 GB, which memory takes from the KV cache: as many sequences fewer as that holds."""
    row = dict(model="qwen3-30b-a3b", hardware="h100-sxm", prompt_len=500, gen_len=500, chunk_tokens=4096)
    few, many = _frame([row | {"scheduler": "continuous", "max_num_seqs": n} for n in (64, 4096)]).to_dict("records")
    logits = 4032 * 151_936 * 4
    assert many["activation_bytes"] - few["activation_bytes"] == pytest.approx(logits, rel=1e-9)
    kv_per_sequence = 48 * 2 * 4 * 128 * 2 * 750  # 48 layers x K and V x 4 KV heads x 128 x bf16, P + G / 2
    assert few["max_batch"] - many["max_batch"] == pytest.approx(logits / kv_per_sequence, abs=1.0)


def test_a_looser_slo_never_lowers_the_most_a_replica_sustains() -> None:
    """Llama-3.1-70B FP8 on an H200 (its fitted profile), 2,000-token prompts, a 2,048-token budget (X dips
    past each chunk boundary), p90 TTFT <= 2 s: the most requests/s never falls as the TPOT SLO loosens, and
    where TTFT binds it is the largest rate a scan over rates finds within both SLOs. (Read at b inside a
    dip, the SLO check flipped: 2.204, 1.986, 2.135 requests/s at 0.06, 0.10, 0.20 s.)"""
    base = _row(model="llama-3.1-70b", hardware="h200-sxm", quant="fp8", prompt_len=2000, gen_len=300)
    base |= dict(scheduler="continuous", chunk_tokens=2048, max_num_seqs=256, slo_ttft_s=2.0, slo_percentile=90)
    slos = [base | {"slo_tpot_s": t} for t in (0.03, 0.045, 0.06, 0.10, 0.20)]
    most = _frame(slos, profile="calibrated")["max_request_rate"]
    assert np.all(np.diff(most) >= 0.0), list(most)
    rates = np.linspace(2.0, 2.6, 121)
    loads = [base | {"request_rate": r, "slo_ttft_s": None, "slo_tpot_s": None} for r in rates]
    scan = _frame(loads, profile="calibrated")
    allowed = rates[(scan["ttft_s_p90"] <= 2.0).to_numpy() & (scan["tpot_s_p90"] <= 0.10).to_numpy()]
    assert most.iloc[3] == pytest.approx(allowed.max(), abs=0.006)


def test_an_unknown_prefill_has_an_unknown_ttft_percentile_not_an_endless_one() -> None:
    """A deployment that cannot run has NaN step times: its TTFT percentiles over prompts that vary are NaN, as
    over prompts of one length (they read inf, which the reference evaluator, whose row has no spread, did
    not); an endless prefill stays inf."""
    edges = (0.0, 0.5, 1.0)
    unknown = queueing.ttft_quantile_s(0.9, 0.0, 0.0, np.nan, np.array([[np.nan, np.nan, np.nan]]), edges)
    endless = queueing.ttft_quantile_s(0.9, 0.0, 0.0, np.inf, np.array([[1.0, 2.0, np.inf]]), edges)
    assert np.isnan(unknown[0]) and endless[0] == np.inf


def test_a_mixed_step_reads_the_offloaded_cache_as_a_decode_step_does() -> None:
    """Every slot busy (256 sequences, one chunk a prompt): a mixed step's 255 decoding sequences read their
    cache like the decode step's 256, so offloading 30 % of it over the host link adds to both about alike
    (255 / 256 of the decode step's extra); before, the mixed step read it free and capacity was 5x too high."""
    import dse

    steps = {}
    for offload in (0.0, 0.3):
        served = dse.analyze(model="llama-3.1-8b", hardware="dgx-h100", kv_offload=offload, scheduler="continuous")
        s = served.to_dict()["continuous"]
        assert s["sequences_every_slot_busy"] == 256.0 and s["chunks_per_prompt"] == 1.0
        steps[offload] = (s["mixed_step_s"], s["decode_step_s"], served.to_dict()["throughput_tokens_per_s"])
    mixed, decode = (steps[0.3][i] - steps[0.0][i] for i in (0, 1))
    assert decode > 0.1 and mixed == pytest.approx(decode * 255.0 / 256.0, rel=0.01)
    assert steps[0.3][0] > steps[0.3][1]  # a mixed step carries the decode tokens and a prompt
    assert steps[0.3][2] < steps[0.0][2] / 3.0


@pytest.mark.parametrize("tp", [1, 8])
def test_mla_s_replicated_latent_is_read_whole_in_mixed_and_verification_steps(tp: int) -> None:
    """MLA's decode latent is replicated on every tp rank (docs/cost-model.md §11.2): a mixed step's decoding
    sequences, and a verification step's, read all of it, not prefill's 1/tp share of explicit heads. So a
    mixed step is never shorter than the decode step beside it, and speculation that accepts nothing is never
    faster than none (it was 55 % faster at tp 8)."""
    import dse

    common = {"model": "deepseek-v2-lite", "hardware": "dgx-h100", "tp": tp}
    s = dse.analyze(**common, scheduler="continuous", prompt_len=16000, prefix_hit_rate=0.99).to_dict()["continuous"]
    assert s["mixed_step_s"] > s["decode_step_s"]
    static = {"prompt_len": 8000, "gen_len": 100, "batch": 128}
    plain = dse.analyze(**common, **static).to_dict()["tpot_s"]
    nothing = dse.analyze(**common, **static, spec_tokens=1, spec_acceptance=0.0, draft="mtp").to_dict()["tpot_s"]
    assert nothing > plain


def test_decode_throughput_counts_the_sequences_in_the_engine_not_those_queued() -> None:
    """Near capacity (22.3 of 22.58 requests/s) a request waits 1.8 s before its first chunk: the tokens/s while
    decoding are the engine's sequences over TPOT (about the delivered 5,709), not everyone in the system's
    (18 % more, above what every slot busy produces)."""
    import dse

    busy = dse.analyze(model="llama-3.1-8b", hardware="h100-sxm", scheduler="continuous").to_dict()
    near = dse.analyze(model="llama-3.1-8b", hardware="h100-sxm", scheduler="continuous", request_rate=22.3).to_dict()
    s = near["continuous"]
    assert s["wait_s"] > 1.0
    assert near["decode_throughput_tokens_per_s"] == pytest.approx(s["sequences_in_engine"] / near["tpot_s"])
    assert near["decode_throughput_tokens_per_s"] <= busy["decode_throughput_tokens_per_s"] * (1 + 1e-9)
    assert near["decode_throughput_tokens_per_s"] == pytest.approx(near["throughput_tokens_per_s"], rel=0.01)
    for prefill in (1, 3):  # disaggregated: a group's figure, whatever its split (4x the output rate, at a time)
        split = dse.analyze(
            model="llama-3.1-8b", hardware="h100-sxm", mode="disaggregated", replicas=4, prefill_replicas=prefill
        ).to_dict()
        assert split["decode_throughput_tokens_per_s"] == pytest.approx(split["throughput_tokens_per_s"], rel=0.01)


def test_tpot_percentiles_stay_ordered_where_a_mixed_step_is_the_shorter() -> None:
    """Two-token prompts beside one decode token fewer: a mixed step is shorter than a decode step, so the slow
    requests are those with fewer mixed steps; p50 <= p90 <= p99 all the same (they were reversed)."""
    import dse

    served = dse.analyze(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=2, gen_len=5000, scheduler="continuous")
    d = served.to_dict()
    assert d["continuous"]["mixed_step_s"] < d["continuous"]["decode_step_s"]
    tpot = d["percentiles"]["tpot_s"]
    assert tpot["p50"] < tpot["p90"] < tpot["p99"] <= d["continuous"]["decode_step_s"]
