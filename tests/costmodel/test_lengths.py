"""Prompt and output lengths that vary (docs/cost-model.md §19): the distributions by hand, and what they do to
a static batch (padded to its longest) and to continuous batching (means, the context's spread, TTFT
percentiles over the prompts)."""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from candidate_rows import candidates
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import brentq

from dse.catalog import load_model
from dse.costmodel import evaluate, evaluate_reference
from dse.costmodel.physics import lengths, queueing
from dse.costmodel.physics.attention import prefill_work, prompt_spread_work
from dse.costmodel.physics.lengths import Spread
from dse.scoring import architecture

MODEL, HARDWARE = "llama-3.1-8b", "h100-sxm"


# --- the distributions, by hand -----------------------------------------------------------------------------


def test_a_lognormal_keeps_its_mean_and_its_longest_of_b_matches_sampling() -> None:
    d = lengths.lognormal(1000.0, 0.8)
    assert d.mean == pytest.approx(1000.0, rel=1e-9)
    assert d.weights.sum() == pytest.approx(1.0, rel=1e-12)
    assert d.expected_max(1.0) == pytest.approx(1000.0, rel=1e-9)
    rng = np.random.default_rng(7)
    draws = rng.lognormal(np.log(1000.0) - 0.32, 0.8, size=(400_000, 8)).max(axis=1).mean()
    assert d.expected_max(8.0) == pytest.approx(draws, rel=0.01)
    capped = lengths.lognormal(1000.0, 1.5, cap=8000.0)
    assert capped.largest == 8000.0
    # E[min(X, c)] = mean Φ(z_c - σ) + c (1 - Φ(z_c)), z_c = (ln(c / mean) + σ² / 2) / σ
    z = (np.log(8.0) + 1.5**2 / 2.0) / 1.5
    exact = 1000.0 * NormalDist().cdf(z - 1.5) + 8000.0 * (1.0 - NormalDist().cdf(z))
    assert capped.mean == pytest.approx(exact, rel=1e-9)


def test_a_uniform_longest_of_b_is_the_order_statistic() -> None:
    # E[max of b uniforms on [lo, hi]] = lo + (hi - lo) b / (b + 1)
    d = lengths.uniform(100.0, 300.0)
    assert d.mean == pytest.approx(200.0)
    for b in (1, 2, 7):
        assert d.expected_max(float(b)) == pytest.approx(100.0 + 200.0 * b / (b + 1), rel=1e-3)


def test_a_histogram_is_its_own_values_and_its_quantiles_interpolate_them() -> None:
    d = lengths.histogram([1, 2, 2, 3])
    assert list(d.values) == [1.0, 2.0, 3.0] and list(d.weights) == [0.25, 0.5, 0.25]
    # the longest of two: 3 unless both are below 3 (9/16), then 2 unless both are 1 (1/16)
    assert d.expected_max(2.0) == pytest.approx(3 * 7 / 16 + 2 * 8 / 16 + 1 * 1 / 16)
    # the smallest value with F >= p, over the mean 2; the last interval's end gives it the mean beyond 0.8
    # (3): uniform from 3 to 3
    assert list(d.quantiles((0.0, 0.2, 0.25, 0.5, 0.8, 1.0))) == pytest.approx([0.5, 0.5, 0.5, 1.0, 1.5, 1.5])
    assert (lengths.fixed(300).quantiles() == 1.0).all()
    # a sparse histogram keeps its steps: 99 requests of 100 tokens, one of 10,000 (mean 199)
    sparse = lengths.histogram([100, 10_000], [99, 1]).quantiles((0.0, 0.9, 0.99, 0.995, 1.0)) * 199.0
    assert list(sparse[:3]) == pytest.approx([100.0, 100.0, 100.0])
    # beyond 0.995 the mean is 10,000 x 0.005 / 0.005: the last interval runs from 10,000 to 10,000
    assert list(sparse[3:]) == pytest.approx([10_000.0, 10_000.0])


def test_the_context_spread_is_the_output_variance_over_twice_its_mean() -> None:
    assert lengths.context_spread(lengths.fixed(100.0), lengths.fixed(300.0)) == 0.0
    # uniform on [0, 200]: Var = 200² / 12, Δ = Var / (2 x 100)
    spread = lengths.context_spread(lengths.fixed(100.0), lengths.uniform(0.0, 200.0))
    assert spread == pytest.approx(200.0**2 / 12.0 / 200.0, rel=1e-3)
    # paired: prompts that grow with outputs add Cov(P, G) / G
    assert lengths.context_spread(lengths.fixed(1.0), lengths.fixed(50.0), covariance=500.0) == 10.0


def test_fixed_lengths_give_the_fields_as_they_are() -> None:
    f = lengths.candidate_lengths(lengths.fixed(700), lengths.fixed(90), [1.0, 64.0], [False, True])
    assert list(f["prompt_len"]) == [700.0, 700.0] and list(f["gen_len"]) == [90.0, 90.0]
    assert not f["gen_padding"].any() and not f["context_spread"].any()
    assert (f["prompt_quantiles"] == 1.0).all()


def test_a_prompt_s_prefill_by_hand() -> None:
    # T_d 10 ms, T_m 50 ms, mean prompt 1000; prompts of 500, 1000 and 3000 tokens
    spread = Spread(1000.0, np.asarray([0.5, 1.0, 3.0]), (0.0, 0.5, 1.0))
    # short prompts sharing steps (k = 2000 tokens from two prompts a step, room 4000): one step each, plus
    # their tokens' and the other prompt's share of the step's prompt work: 10 + 40 x (L + 1000) / 2000 ms
    shared = spread.service_s(0.01, 0.05, 2000.0, 4000.0)
    assert shared == pytest.approx([0.01 + 0.04 * 0.75, 0.05, 0.01 + 0.04 * 2.0])
    # chunked (k = 250, room 250): L / 250 steps of T_m: 0.1, 0.2 and 0.6 s
    assert spread.service_s(0.01, 0.05, 250.0, 250.0) == pytest.approx([0.1, 0.2, 0.6])
    # one prompt a step (k = P = 1000): linear in its length, T_d + 40 ms x L / 1000
    assert spread.service_s(0.01, 0.05, 1000.0, 4000.0) == pytest.approx([0.03, 0.05, 0.13])
    assert Spread(1000.0, np.ones(3), (0.0, 0.5, 1.0)).service_s(0.01, 0.05, 1000.0, 1000.0) is None


def test_the_ttft_quantile_over_prompts_spread_evenly_by_hand() -> None:
    # prefill spread evenly from 0.5 s to 1.5 s (two intervals of probability 0.5)
    edges, prefill = (0.0, 0.5, 1.0), np.asarray([0.5, 1.0, 1.5])
    for q in (0.5, 0.9, 0.99):
        assert queueing.ttft_quantile_s(q, 0.0, 0.0, 1.0, prefill, edges) == pytest.approx(0.5 + q, rel=1e-12)
    # with a queue at ρ = 0.6 and mean wait 0.3 s: P(W + S <= t) integrated numerically over S
    rho, wait = 0.6, 0.3

    def cdf(t: float) -> float:
        def wait_cdf(s: float) -> float:
            return 1 - rho * np.exp(-(t - s) * rho / wait) if t >= s else 0.0

        return quad(wait_cdf, 0.5, 1.5, points=[min(max(t, 0.5), 1.5)], epsabs=1e-13)[0] - 0.9

    expected = brentq(cdf, 0.5, 10.0, xtol=1e-13)
    assert queueing.ttft_quantile_s(0.9, rho, wait, 1.0, prefill, edges) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("served", [True, False])
def test_scaled_lengths_are_the_lengths_of_scaled_requests(served: bool) -> None:
    """``candidate_lengths`` with a prompt and an output factor gives what the requests' lengths times those
    factors give (means, longest of b, variances, covariance, spread, the outputs' mean inverse)."""
    p, g, n = [300.0, 900.0, 2400.0, 5000.0], [40.0, 400.0, 150.0, 900.0], [3.0, 2.0, 1.0, 1.0]
    batch, factors = [1.0, 8.0, 64.0], (0.8, 1.25)
    prompts, outputs, cov = lengths.paired(p, g, n)
    scaled = lengths.candidate_lengths(prompts, outputs, batch, [served] * 3, cov, *factors)
    prompts, outputs, cov = lengths.paired(np.multiply(p, factors[0]), np.multiply(g, factors[1]), n)
    direct = lengths.candidate_lengths(prompts, outputs, batch, [served] * 3, cov)
    assert scaled.keys() == direct.keys()
    for key, value in direct.items():
        assert scaled[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key


def _mixture_cdf(t: float, rho: float, wait: float, prefill: np.ndarray, edges: tuple[float, ...]) -> float:
    """P(W + S <= t) summed by hand over the intervals: S uniform on each (a point where it has no width), W 0
    with probability 1 - ρ, else exponential with mean wait / ρ; the integral of the exponential's CDF over
    an interval in closed form."""
    total = 0.0
    mean = wait / rho if rho > 0 else 1.0
    for w, a, b in zip(np.diff(edges), prefill[:-1], prefill[1:], strict=True):
        if b - a <= 1e-12 * max(b, 1e-300):
            total += w * ((1.0 - rho * math.exp(-(t - a) / mean)) if t >= a else 0.0)
            continue
        if t < a:
            continue
        m = min(t, b)  # ∫_a^m (1 - ρ e^(-(t - s) / θ)) ds, e^(-(t-m)/θ) - e^(-(t-a)/θ) without cancellation
        gap = -math.exp(-(t - m) / mean) * math.expm1(-(m - a) / mean)
        part = (m - a) - rho * mean * gap
        total += w * part / (b - a)
    return total


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.0, 1e-3, 0.05, 0.3, 2.0]), min_size=3, max_size=6),
    start=st.floats(0.0, 2.0),
    rho=st.sampled_from([0.0, 0.05, 0.5, 0.95, 0.999]),
    wait=st.floats(1e-4, 5.0),
    q=st.sampled_from([0.5, 0.9, 0.99]),
)
def test_the_ttft_quantile_solves_its_mixture_where_it_is_smooth_and_at_its_atoms(
    gaps: list[float], start: float, rho: float, wait: float, q: float
) -> None:
    # intervals of no width put atoms in the distribution; the quantile at a bin's edge lands on a kink
    prefill = start + np.concatenate([[0.0], np.cumsum(gaps)])
    edges = tuple(sorted({*np.linspace(0.0, 1.0, len(prefill)).tolist()[:-2], 0.9, 1.0}))
    prefill = prefill[: len(edges)]
    wait = wait if rho > 0 else 0.0
    t = float(queueing.ttft_quantile_s(q, rho, wait, 1.0, prefill, edges))
    tolerance = 1e-9 * max(t, 1.0)
    assert _mixture_cdf(t + tolerance, rho, wait, prefill, edges) >= q - 1e-12  # reaches q ...
    assert _mixture_cdf(t - tolerance, rho, wait, prefill, edges) <= q + 1e-12  # ... no earlier


def test_whether_a_ttft_quantile_is_within_a_limit_without_solving_for_it() -> None:
    """``ttft_quantile_within`` agrees with the solved quantile against every limit not within its
    tolerance of it, fixed prompts and spread ones, and an unbounded limit always holds."""
    rng = np.random.default_rng(5)
    edges = (0.0, 0.25, 0.5, 0.9, 0.99, 1.0)
    prefill = np.sort(rng.uniform(0.1, 3.0, (400, len(edges))), axis=1)
    prefill[:40, 1:3] = prefill[:40, 1:2]  # atoms
    rho = rng.uniform(0.0, 0.99, 400)
    rho[:80] = 0.0
    wait = queueing.pk_wait_s(rho, 0.2)
    offset = rng.uniform(0.0, 0.05, 400)
    for q in (0.5, 0.9, 0.99):
        ttft = queueing.ttft_quantile_s(q, rho, wait, 1.0, prefill, edges) + offset
        fixed = queueing.ttft_quantile_s(q, rho, wait, prefill[:, 0], None, edges) + offset
        for value, spread in ((ttft, prefill), (fixed, None)):
            limit = value * rng.choice([0.9, 0.999, 1.001, 1.1], 400)
            within = queueing.ttft_quantile_within(q, rho, wait, prefill[:, 0], spread, edges, limit, offset)
            assert np.array_equal(within, value <= limit)
            unbounded = queueing.ttft_quantile_within(q, rho, wait, prefill[:, 0], spread, edges, np.inf, offset)
            assert np.all(unbounded)


def test_the_ttft_quantile_at_a_narrow_interval_s_edge_and_under_a_long_wait() -> None:
    """Regressions: a start at the right end of a narrow interval (its inner density is huge, the one beyond
    it small) must not stop there below q; a wait far longer than an interval must not lose F's digits."""
    edges = (0.0, 0.25, 0.5, 0.9, 0.99, 1.0)
    prefill = np.asarray([0.2, 0.4, 0.6, 1.0 - 2e-12, 1.0, 3.0])
    t = float(queueing.ttft_quantile_s(0.99, 0.004, 0.02, 1.0, prefill, edges))
    assert t > 1.0  # beyond the narrow interval's right end (1.0), where F is still below 0.99
    assert _mixture_cdf(t, 0.004, 0.02, prefill, edges) >= 0.99 - 1e-12
    assert _mixture_cdf(t * (1 - 1e-9), 0.004, 0.02, prefill, edges) < 0.99
    prefill = 1.0 + np.arange(6) * 1e-7
    for rho in (1e-9, 1e-4):
        wait = rho * 50.0  # the wait's mean, once waiting, 50 s: 1e8 times an interval
        for q in (0.3, 0.5, 0.95):
            t = float(queueing.ttft_quantile_s(q, rho, wait, 1.0, prefill, edges))
            tolerance = 1e-12 * t
            assert _mixture_cdf(t + tolerance, rho, wait, prefill, edges) >= q
            assert _mixture_cdf(t - tolerance, rho, wait, prefill, edges) <= q


def test_the_ttft_quantile_broadcasts_its_arguments() -> None:
    edges = (0.0, 0.25, 0.5, 0.9, 0.99, 1.0)
    prefill = np.asarray([0.1, 0.2, 0.4, 0.8, 1.0, 2.0])
    rho = np.asarray([0.0, 0.5, 0.9])
    wait = queueing.pk_wait_s(rho, 0.2)
    alone = [float(queueing.ttft_quantile_s(0.9, r, w, 1.0, prefill, edges)) for r, w in zip(rho, wait, strict=True)]
    assert queueing.ttft_quantile_s(0.9, rho, wait, 1.0, prefill, edges) == pytest.approx(alone, rel=1e-12)
    each_q = [float(queueing.ttft_quantile_s(q, 0.5, 0.1, 1.0, prefill, edges)) for q in (0.5, 0.9, 0.99)]
    together = queueing.ttft_quantile_s(np.asarray([0.5, 0.9, 0.99]), 0.5, 0.1, 1.0, prefill, edges)
    assert together == pytest.approx(each_q, rel=1e-12)
    empty = queueing.ttft_quantile_s(0.9, np.zeros(0), np.zeros(0), 1.0, np.zeros((0, 6)), edges)
    assert empty.shape == (0,)


def test_the_ttft_quantile_solves_many_rows_at_once_as_one_by_one() -> None:
    rng = np.random.default_rng(3)
    edges = (0.0, 0.25, 0.5, 0.9, 1.0)
    prefill = np.sort(rng.uniform(0.1, 3.0, (200, len(edges))), axis=1)
    prefill[:20, 1:3] = prefill[:20, 1:2]  # atoms
    rho = rng.uniform(0.0, 0.99, 200)
    rho[:50] = 0.0
    wait = queueing.pk_wait_s(rho, 0.2)
    together = queueing.ttft_quantile_s(0.9, rho, wait, 1.0, prefill, edges)
    alone = [queueing.ttft_quantile_s(0.9, r, w, 1.0, p, edges) for r, w, p in zip(rho, wait, prefill, strict=True)]
    assert together == pytest.approx(np.asarray(alone, dtype=float), rel=1e-12)


# --- what lengths that vary do to a deployment ----------------------------------------------------------


def _candidates(prompts: lengths.Lengths, outputs: lengths.Lengths, **row: Any) -> Any:
    base = {"model": MODEL, "hardware": HARDWARE, "quant": "bf16", "prompt_len": 1000, "gen_len": 200} | row
    cand = candidates(base)
    served = row.get("scheduler") == "continuous"
    fields = lengths.candidate_lengths(prompts, outputs, cand.batch, np.asarray([served]))
    return dataclasses.replace(cand, **fields)


def _arch() -> Any:
    return architecture(load_model(MODEL))


def test_a_static_batch_runs_to_its_longest_and_delivers_the_mean() -> None:
    prompts, outputs = lengths.uniform(500.0, 1500.0), lengths.uniform(100.0, 300.0)
    varied = evaluate(_arch(), _candidates(prompts, outputs, batch=16))
    padded_p, padded_g = np.rint(prompts.expected_max(16.0)), np.rint(outputs.expected_max(16.0))
    same = evaluate(_arch(), _candidates(lengths.fixed(padded_p), lengths.fixed(padded_g), batch=16))
    m, f = varied.metrics, same.metrics
    assert m.ttft_s[0] == pytest.approx(f.ttft_s[0], rel=1e-12)  # every prompt padded to the longest
    assert m.tpot_s[0] == pytest.approx(f.tpot_s[0], rel=1e-12)
    # the batch takes as long, and delivers 200 of every ~288 tokens a slot generates
    assert m.throughput_tokens_per_s[0] == pytest.approx(f.throughput_tokens_per_s[0] * 200.0 / padded_g, rel=1e-9)
    assert m.e2e_latency_s[0] == pytest.approx(m.ttft_s[0] + 199.0 * m.tpot_s[0], rel=1e-12)  # a request's own end
    assert m.memory_per_device_bytes[0] == f.memory_per_device_bytes[0]


def test_continuous_batching_keeps_the_means_and_spreads_ttft_over_the_prompts() -> None:
    varied_prompts = lengths.lognormal(1000.0, 1.0, cap=20_000.0)
    row = {"scheduler": "continuous", "request_rate": 0.5, "chunk_tokens": 512, "slo_ttft_s": 0.2}
    spread = evaluate(_arch(), _candidates(varied_prompts, lengths.fixed(200.0), **row))
    mean = evaluate(_arch(), _candidates(lengths.fixed(np.rint(varied_prompts.mean)), lengths.fixed(200.0), **row))
    s, f = spread.serving, mean.serving
    # the mean prompt's steps, but for attention's E[P²] (a few % at 1,000 tokens: prefill is mostly linear)
    assert s.prefill_share[0] == f.prefill_share[0]
    assert s.mixed_step_s[0] == pytest.approx(f.mixed_step_s[0], rel=0.05) and s.mixed_step_s[0] > f.mixed_step_s[0]
    assert spread.metrics.tpot_s[0] == pytest.approx(mean.metrics.tpot_s[0], rel=0.05)

    # mean TTFT: requests of unequal work queue longer (M/G/1: the queue's wait x (1 + c²), the queue being
    # what the wait holds beyond the step in progress: u E[T²] / (2 E[T]), u = min(b, 1) the share of the
    # time a step runs); with outputs fixed a request's work varies less than its prompt,
    # 0 < c² < Var(P) / P̄² (the step's own few % aside)
    def in_progress(x: Any) -> float:
        phi, mixed, decode = x.prefill_share[0], x.mixed_step_s[0], x.decode_step_s[0]
        second, first = phi * mixed**2 + (1 - phi) * decode**2, phi * mixed + (1 - phi) * decode
        return float(min(x.slots[0], 1.0) * second / first / 2)

    queues = [x.wait_s[0] - in_progress(x) for x in (f, s)]
    cv2 = queues[1] / queues[0] - 1.0
    assert 0.1 < cv2 < varied_prompts.variance / varied_prompts.mean**2
    assert spread.metrics.throughput_tokens_per_s[0] == pytest.approx(200.0 * 0.5, rel=1e-9)
    # p90 and p99: the long prompts (the p90 prompt is 2.2x the mean, the p99 6.4x; p99 of the fixed length
    # is mostly the queue's tail)
    assert s.ttft_quantiles_s[1][0] > 1.8 * f.ttft_quantiles_s[1][0]
    assert s.ttft_quantiles_s[2][0] > 1.3 * f.ttft_quantiles_s[2][0]
    assert s.ttft_quantiles_s[0][0] < f.ttft_quantiles_s[0][0]  # p50: most prompts are shorter than the mean
    assert 0.0 < s.max_request_rate[0] < f.max_request_rate[0]  # p90 TTFT within 1 s: the long prompts bind


@pytest.mark.parametrize("hit", [0.0, 0.5])
def test_prefill_attention_over_prompts_that_vary_is_its_mean_by_hand(hit: float) -> None:
    """Prompts of 512 and 1,536 tokens, half each (P̄ = 1,024, Var(P) = 512²), a share ``hit`` of each from
    the prefix cache: the mean of each prompt's keys x new queries, causal pairs and tile reads (Br = 128,
    whole tiles) equals the figure at P̄ plus ``prompt_spread_work``. At hit 0: pairs (131,328 + 1,180,416) / 2
    = 655,872 = 524,800 + 512² / 2."""
    Br, variance = 128.0, 512.0**2
    each = [prefill_work(P, hit * P, math.inf, Br) for P in (512.0, 1536.0)]
    at_mean = prefill_work(1024.0, hit * 1024.0, math.inf, Br)
    more = prompt_spread_work(1024.0, hit * 1024.0, variance, Br)
    new = 1.0 - hit
    assert np.mean([new * P * w[0] for P, w in zip((512.0, 1536.0), each, strict=True)]) == pytest.approx(
        new * 1024.0 * (at_mean[0] + more[0]), rel=1e-12
    )
    assert np.mean([w[1] for w in each]) == pytest.approx(at_mean[1] + more[1], rel=1e-12)
    assert np.mean([w[2] for w in each]) == pytest.approx(at_mean[2] + more[2], rel=1e-12)
    if hit == 0.0:
        assert at_mean[1] + more[1] == 655_872.0
    # re-reads served on chip are linear in P: nothing to add
    assert prompt_spread_work(1024.0, hit * 1024.0, variance, Br, reused=True)[2] == 0.0


def test_long_prompts_that_vary_lengthen_the_mixed_step_by_their_attention() -> None:
    """Llama-3.1-8B, lognormal prompts of mean 8,000 (CV 1.09) against a fixed 8,000: the mixed step, and so the
    mean TTFT's service, grows by what attention's second moment adds (docs/cost-model.md §19: 14 %)."""
    prompts = lengths.lognormal(8000.0, 0.9, cap=100_000.0)
    row = {"scheduler": "continuous", "request_rate": 0.3, "chunk_tokens": 2048}
    spread = evaluate(_arch(), _candidates(prompts, lengths.fixed(300.0), **row)).serving
    mean = evaluate(_arch(), _candidates(lengths.fixed(np.rint(prompts.mean)), lengths.fixed(300.0), **row)).serving
    assert spread.mixed_step_s[0] / mean.mixed_step_s[0] == pytest.approx(1.14, abs=0.02)
    assert spread.decode_step_s[0] == mean.decode_step_s[0]  # decode reads the cache: linear in P


def test_varying_outputs_spread_tpot_over_the_requests() -> None:
    """Lognormal outputs (mean 400, σ 1): short answers see few steps, so their share of mixed steps, and their
    TPOT, vary more than a 400-token answer's: the p90 and p99 TPOT move away from the p50 by sqrt(E[1 / n] n̄),
    1.65x here (the step times differ a little: the varying outputs widen the context a step reads)."""
    outputs = lengths.lognormal(400.0, 1.0, cap=30_000.0)
    row = {"scheduler": "continuous", "max_num_seqs": 64, "chunk_tokens": 512}  # every slot busy: 64 sequences
    spread = evaluate(_arch(), _candidates(lengths.fixed(2000.0), outputs, **row)).serving
    mean = evaluate(_arch(), _candidates(lengths.fixed(2000.0), lengths.fixed(np.rint(outputs.mean)), **row)).serving
    p50, p90, p99 = (q[0] for q in spread.tpot_quantiles_s)
    f50, f90, f99 = (q[0] for q in mean.tpot_quantiles_s)
    widening = math.sqrt(outputs.inverse_decode_mean * (np.rint(outputs.mean) - 1.0))
    assert widening > 1.6
    assert (p90 - p50) / (f90 - f50) == pytest.approx(widening, rel=0.05)
    assert (p99 - p50) / (f99 - f50) == pytest.approx(widening, rel=0.05)


def test_varying_outputs_widen_the_context_a_decode_step_reads_and_the_kv_a_slot_holds() -> None:
    outputs = lengths.lognormal(400.0, 1.0, cap=30_000.0)
    row = {"scheduler": "continuous", "max_num_seqs": 16}  # the same sequences in the engine: every slot busy
    spread = evaluate(_arch(), _candidates(lengths.fixed(2000.0), outputs, **row))
    mean = evaluate(_arch(), _candidates(lengths.fixed(2000.0), lengths.fixed(np.rint(outputs.mean)), **row))
    assert spread.serving.slots[0] == pytest.approx(mean.serving.slots[0]) == 16.0
    assert spread.serving.decode_step_s[0] > mean.serving.decode_step_s[0]
    assert spread.serving.max_slots[0] < mean.serving.max_slots[0]
    # Little's law holds at the means
    m = spread.metrics
    in_engine = spread.serving.request_rate[0] * (m.ttft_s[0] + (np.rint(outputs.mean) - 1.0) * m.tpot_s[0])
    assert in_engine == pytest.approx(spread.serving.slots[0], rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    sigma=st.floats(0.1, 1.5),
    rate=st.sampled_from([0.5, 5.0, 30.0]),
    chunk=st.sampled_from([256, 2048, 8192]),
)
def test_ttft_percentiles_are_ordered_and_the_reference_agrees(sigma: float, rate: float, chunk: int) -> None:
    prompts, outputs = lengths.lognormal(1500.0, sigma, cap=60_000.0), lengths.lognormal(200.0, sigma / 2, 20_000)
    row = {"scheduler": "continuous", "request_rate": rate, "chunk_tokens": chunk, "slo_ttft_s": 2.0}
    cand = _candidates(prompts, outputs, **row)
    ev = evaluate(_arch(), cand)
    p50, p90, p99 = (q[0] for q in ev.serving.ttft_quantiles_s)
    assert p50 <= p90 <= p99
    ref = evaluate_reference(_arch(), cand.row(0))
    for mine, theirs in zip(ev.serving.ttft_quantiles_s, ref.serving.ttft_quantiles_s, strict=True):
        assert mine[0] == pytest.approx(float(theirs), rel=1e-9) or (np.isinf(mine[0]) and np.isinf(theirs))
    assert ev.serving.max_request_rate[0] == pytest.approx(float(ref.serving.max_request_rate), rel=1e-9)


def test_a_request_alone_takes_about_its_own_prompt_s_ttft(tmp_path: Any) -> None:
    """One request at a time (a closed loop of one), nine in ten with 500-token prompts, one with 4,000: the p99
    is the long prompt's TTFT as a fixed 4,000-token workload gives it (its step read between the mixed step
    and the step with a full room, both evaluated), the p50 the short one's, conservatively (the chord from
    the decode step to the mean prompt's step lies above the convex roofline)."""
    from dse.scoring import analyze

    traffic = tmp_path / "traffic.csv"
    traffic.write_text("prompt_tokens,output_tokens,count\n500,300,9\n4000,300,1\n")
    row = {"model": MODEL, "hardware": HARDWARE, "scheduler": "continuous", "concurrency": 1}
    mixed = analyze(**row, lengths=str(traffic)).to_dict()["percentiles"]["ttft_s"]
    short, long = (analyze(**row, prompt_len=p, gen_len=300).to_dict()["ttft_s"] for p in (500, 4000))
    assert mixed["p99"] == pytest.approx(long, rel=0.1)
    assert short <= mixed["p50"] <= 1.3 * short
