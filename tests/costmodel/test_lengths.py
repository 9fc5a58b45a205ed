"""Prompt and output lengths that vary (docs/cost-model.md §19): the distributions by hand, and what they do to
a static batch (padded to its longest) and to continuous batching (means, the context's spread, TTFT
percentiles over the prompts)."""

from __future__ import annotations

import dataclasses
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
    capped = lengths.lognormal(1000.0, 0.8, cap=2000.0)
    assert capped.largest == 2000.0 and capped.mean < 1000.0


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
    # each value at the middle of its probability (0.125, 0.5, 0.875), over the mean 2
    assert list(d.quantiles((0.0, 0.125, 0.5, 0.6875, 1.0))) == pytest.approx([0.5, 0.5, 1.0, 1.25, 1.5])
    assert (lengths.fixed(300).quantiles() == 1.0).all()


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
    # T_d 10 ms, T_m 50 ms, k = room = 1000 tokens, mean prompt 1000: prompts of 500, 1000 and 3000 tokens take
    # 1, 1 and 3 steps; the 500-token one waits for its whole step: 50 ms, 50 ms, 3 x 10 + 40 x 3 = 150 ms
    spread = Spread(1000.0, np.asarray([0.5, 1.0, 3.0]), (0.0, 0.5, 1.0))
    shape = spread.shape(0.01, 0.05, 1000.0, 1000.0)
    mean = 0.5 * (0.05 + 0.05) / 2 + 0.5 * (0.05 + 0.15) / 2
    assert shape == pytest.approx(np.asarray([0.05, 0.05, 0.15]) / mean)
    assert Spread(1000.0, np.ones(3), (0.0, 0.5, 1.0)).shape(0.01, 0.05, 1000.0, 1000.0) is None


def test_the_ttft_quantile_over_prompts_spread_evenly_by_hand() -> None:
    # prompts at 0.5, 1 and 1.5 of the mean at probabilities 0, 0.5, 1 (uniform from 0.5 P to 1.5 P), prefill in
    # proportion to the prompt: uniform from 0.5 s to 1.5 s about the mean service 1 s
    edges = (0.0, 0.5, 1.0)
    shape = Spread(4.0, np.asarray([0.5, 1.0, 1.5]), edges).shape(0.0, 1.0, 1.0, np.inf)
    for q in (0.5, 0.9, 0.99):
        assert queueing.ttft_quantile_s(q, 0.0, 0.0, 1.0, shape, edges) == pytest.approx(0.5 + q, rel=1e-12)
    # with a queue at ρ = 0.6 and mean wait 0.3 s: P(W + S <= t) integrated numerically over S
    rho, wait = 0.6, 0.3

    def cdf(t: float) -> float:
        def wait_cdf(s: float) -> float:
            return 1 - rho * np.exp(-(t - s) * rho / wait) if t >= s else 0.0

        return quad(wait_cdf, 0.5, 1.5, points=[min(max(t, 0.5), 1.5)], epsabs=1e-13)[0] - 0.9

    expected = brentq(cdf, 0.5, 10.0, xtol=1e-13)
    assert queueing.ttft_quantile_s(0.9, rho, wait, 1.0, shape, edges) == pytest.approx(expected, rel=1e-9)


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
    assert spread.metrics.ttft_s[0] == pytest.approx(mean.metrics.ttft_s[0], rel=1e-12)  # the mean prompt's
    assert spread.metrics.tpot_s[0] == pytest.approx(mean.metrics.tpot_s[0], rel=1e-12)
    assert spread.metrics.throughput_tokens_per_s[0] == pytest.approx(200.0 * 0.5, rel=1e-9)
    # p90 and p99: the long prompts (the p90 prompt is 2.2x the mean, the p99 6.4x; p99 of the fixed length
    # is mostly the queue's tail)
    assert s.ttft_quantiles_s[1][0] > 1.8 * f.ttft_quantiles_s[1][0]
    assert s.ttft_quantiles_s[2][0] > 1.3 * f.ttft_quantiles_s[2][0]
    assert s.ttft_quantiles_s[0][0] < f.ttft_quantiles_s[0][0]  # p50: most prompts are shorter than the mean
    assert 0.0 < s.max_request_rate[0] < f.max_request_rate[0]  # p90 TTFT within 1 s: the long prompts bind


def test_varying_outputs_widen_the_context_a_decode_step_reads_and_the_kv_a_slot_holds() -> None:
    outputs = lengths.lognormal(400.0, 1.0, cap=30_000.0)
    row = {"scheduler": "continuous", "concurrency": 16}  # the same sequences in the engine
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
