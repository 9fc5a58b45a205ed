"""Prompt and output lengths as distributions, and what the cost model takes from them (docs/cost-model.md
§19).

A distribution is held as a discrete one: token counts ``values`` with probabilities ``weights``. A fixed
length is one value; a histogram (a CSV of lengths) is its own values; a uniform or lognormal law is cut
into ``GRID`` bins of probability, each at the law's mean within it (so the mean is exact), finer in the
upper tail, where a batch's longest request lies.

What the evaluators take from a pair (prompts P, outputs G):

- continuous batching: the means P̄ and Ḡ (the linear layers' prefill work and the decode steps are linear in
  them, so the steady state's throughput and Little's law hold at the means; prefill attention, quadratic in
  P, at E[P²] = P̄² + Var(P) where it attends without a window, ``attention.prompt_spread_work``), the
  variances (a request's work in the queue, TPOT over the outputs), the token-weighted mean context of a decoding
  sequence (``context_spread``: a decode token sees E[G (P + G / 2)] / E[G] keys, more than P̄ + Ḡ / 2 when
  outputs vary, because long outputs hold more of the steps), and the prompts' spread for TTFT
  (``quantiles``: a request's chunks scale with its prompt);
- a static batch (padded, as static engines batch: every prompt padded to the batch's longest, every
  sequence running until the batch's longest output is done): the expected longest of b draws
  (``expected_max``) for the batch's cost, and the mean output for the tokens it delivers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from dse.costmodel.candidates import TTFT_EDGES

GRID = np.concatenate([np.linspace(0.0, 0.99, 100), 1.0 - np.logspace(-2.0, -7.0, 26)[1:], [1.0]])
"""Probability edges of the bins a continuous law is cut into: every 1 % up to p99, then 5 a decade to
1 - 1e-7 (so the longest of a million draws is resolved), then the last bin to 1."""


@dataclass(frozen=True)
class Lengths:
    """A distribution of token counts: ``values`` (ascending, each >= 1) with probabilities ``weights``
    (summing to 1)."""

    values: np.ndarray
    weights: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.values @ self.weights)

    @property
    def variance(self) -> float:
        """Var = E[(v - mean)²] over the values (tokens²; a binned distribution's within-bin spread is left
        out, which its fine grid keeps small)."""
        return float(self.weights @ (self.values - self.mean) ** 2)

    @property
    def inverse_decode_mean(self) -> float:
        """E[1 / (v - 1)] over the values above 1: the mean inverse of a request's decode tokens, over the
        requests that have a TPOT (a one-token answer has none); 1 when none has."""
        return float(self.inverse_decode_mean_scaled(1.0))

    def inverse_decode_mean_scaled(self, scale: Any) -> np.ndarray:
        """``inverse_decode_mean`` of the lengths times ``scale`` (each > 0; an array gives one per scale):
        E[1 / (s v - 1)] over the values with s v > 1, 1 where none has."""
        s = np.asarray(scale, dtype=np.float64)
        unique, inverse = np.unique(s.reshape(-1), return_inverse=True)
        scaled = unique[:, None] * self.values[None, :]
        has = scaled > 1.0
        w = np.where(has, self.weights[None, :], 0.0)
        with np.errstate(divide="ignore"):
            total = (w / np.where(has, scaled - 1.0, 1.0)).sum(axis=1)
        mass = w.sum(axis=1)
        out = np.where(mass > 0.0, total / np.where(mass > 0.0, mass, 1.0), 1.0)
        return out[inverse].reshape(s.shape)

    def percentile(self, p: float) -> float:
        """The smallest value v with F(v) >= p (0 < p <= 1)."""
        return float(self._smallest_at(np.asarray([p]))[0])

    def _smallest_at(self, p: np.ndarray) -> np.ndarray:
        """At each probability p, the smallest value v with F(v) >= p (the smallest value at 0)."""
        cdf = np.cumsum(self.weights)
        cdf /= cdf[-1]
        return self.values[np.minimum(np.searchsorted(cdf, p - 1e-12), len(cdf) - 1)]

    @property
    def largest(self) -> float:
        return float(self.values[-1])

    @property
    def fixed(self) -> bool:
        return len(self.values) == 1

    def expected_max(self, b: Any) -> np.ndarray:
        """E[max of b independent draws] for each b (>= 1): Σ_j v_j (F_j^b - F_{j-1}^b), F the CDF at the
        ascending values v_j (in blocks of b, to bound the b x values table)."""
        b = np.asarray(b, dtype=np.float64)
        flat = b.reshape(-1, 1)
        cdf = np.minimum(np.cumsum(self.weights), 1.0)
        below = np.concatenate([[0.0], cdf[:-1]])
        out = np.empty(len(flat))
        block = max(1, 4_000_000 // len(cdf))
        for start in range(0, len(flat), block):
            n = flat[start : start + block]
            out[start : start + block] = (cdf[None, :] ** n - below[None, :] ** n) @ self.values
        return out.reshape(b.shape)

    def quantiles(self, edges: tuple[float, ...] = TTFT_EDGES) -> np.ndarray:
        """The lengths at probabilities ``edges`` over the mean (all 1 for a fixed length): at each, the
        smallest value v with F(v) >= p (the smallest at 0); at 1, the end that gives the last interval, read
        as uniform from its start, the distribution's mean beyond ``edges[-2]`` (at most the largest
        value)."""
        if self.fixed:
            return np.ones(len(edges))
        cdf = np.cumsum(self.weights)
        cdf /= cdf[-1]
        p = np.asarray(edges, dtype=np.float64)
        q = self._smallest_at(p)
        start = p[-2]
        above = np.clip(cdf - np.maximum(np.concatenate([[0.0], cdf[:-1]]), start), 0.0, None)  # mass beyond it
        beyond = above @ self.values / max(1.0 - start, 1e-300)
        q[-1] = np.clip(2.0 * beyond - q[-2], q[-2], self.largest)
        return q / self.mean


_STANDARD = NormalDist()
"""Φ and Φ⁻¹."""


def fixed(n: float) -> Lengths:
    return Lengths(np.asarray([float(n)]), np.asarray([1.0]))


def _binned(values: np.ndarray) -> Lengths:
    """The bins of ``GRID`` at the given values (one per bin), capped to at least one token."""
    return Lengths(np.maximum(values, 1.0), np.diff(GRID))


def uniform(low: float, high: float) -> Lengths:
    """Uniform between ``low`` and ``high`` tokens: each bin of probability at its midpoint; one length where
    they are equal."""
    if low == high:
        return fixed(low)
    mid = (GRID[:-1] + GRID[1:]) / 2.0
    return _binned(low + (high - low) * mid)


def lognormal(mean: float, sigma: float, cap: float | None = None) -> Lengths:
    """Lognormal with mean ``mean`` tokens and ``sigma`` the standard deviation of ln(length) (μ = ln(mean) -
    σ² / 2), each bin at its conditional mean: E[X; x_a < X < x_b] = e^(μ + σ² / 2) (Φ(z_b - σ) - Φ(z_a -
    σ)) with z = Φ⁻¹(p) at the bin's edges; with ``cap``, lengths above it are cut to it (a request cannot
    exceed the context it is served with), which lowers the mean below ``mean``: a bin across the cap holds
    its mass below the cap at its own mean and the rest at the cap."""
    if sigma == 0.0:
        return fixed(min(mean, cap) if cap is not None else mean)
    z = np.asarray([_STANDARD.inv_cdf(p) if 0.0 < p < 1.0 else math.copysign(math.inf, p - 0.5) for p in GRID])
    if cap is not None:  # the cap's z: z_c = (ln c - μ) / σ, μ = ln(mean) - σ² / 2
        z_cap = (math.log(cap / mean) + sigma**2 / 2.0) / sigma
        z = np.minimum(z, z_cap)
    mass = np.diff([_STANDARD.cdf(x) if math.isfinite(x) else float(x > 0) for x in z - sigma])
    values = mean * mass  # E[X; bin, X < cap]
    if cap is not None:
        below = np.diff([_STANDARD.cdf(x) if math.isfinite(x) else float(x > 0) for x in z])  # P(bin, X < cap)
        values = values + cap * (np.diff(GRID) - below)
    return _binned(values / np.diff(GRID))


def histogram(values: Any, counts: Any = None) -> Lengths:
    """The empirical distribution of observed lengths (with ``counts`` per value, else one each)."""
    v = np.asarray(values, dtype=np.float64)
    n = np.ones_like(v) if counts is None else np.asarray(counts, dtype=np.float64)
    unique, inverse = np.unique(v, return_inverse=True)
    weight = np.bincount(inverse, weights=n)
    return Lengths(unique, weight / weight.sum())


def paired(prompts: Any, outputs: Any, counts: Any = None) -> tuple[Lengths, Lengths, float]:
    """Observed requests, each a (prompt, output) pair (``counts`` of each): the two histograms and their
    covariance, Cov(P, G) = E[(P - P̄) (G - Ḡ)] (tokens²)."""
    p, g = np.asarray(prompts, dtype=np.float64), np.asarray(outputs, dtype=np.float64)
    n = np.ones_like(p) if counts is None else np.asarray(counts, dtype=np.float64)
    w = n / n.sum()
    return histogram(p, n), histogram(g, n), float(w @ ((p - w @ p) * (g - w @ g)))


def context_spread(
    prompts: Lengths, outputs: Lengths, covariance: float = 0.0, prompt_scale: Any = 1.0, output_scale: Any = 1.0
) -> Any:
    """Δ: the keys a decoding token attends beyond P̄ + Ḡ / 2 on average, token-weighted:
    E[G (P + G / 2)] / E[G] - (P̄ + Ḡ / 2) = (Cov(P, G) + Var(G) / 2) / Ḡ (0 for fixed outputs and
    independent prompts). The same shift holds for the KV cache a slot holds at mean occupancy. Of the lengths
    times ``prompt_scale`` (s_p) and ``output_scale`` (s_g): (s_p s_g Cov + s_g² Var(G) / 2) / (s_g Ḡ)."""
    return (prompt_scale * covariance + output_scale * outputs.variance / 2.0) / outputs.mean


def candidate_lengths(
    prompts: Lengths,
    outputs: Lengths,
    batch: Any,
    served: Any,
    covariance: float = 0.0,
    prompt_scale: Any = 1.0,
    output_scale: Any = 1.0,
) -> dict[str, np.ndarray]:
    """The ``Candidates`` fields of the lengths, per candidate (``batch``; ``served``: continuous batching or
    disaggregated pools): served, the means with their ``context_spread``, the prompts' ``quantiles``, the
    lengths' variances and covariance (the spread of a request's work, for the queue) and the outputs' mean
    inverse (TPOT's percentiles); a
    static batch of b, padded to its longest prompt and output (``expected_max``), delivering the mean output
    (``gen_padding``: the difference). Every length is rounded to whole tokens, as the evaluators take them
    (their sums over a sequence's positions run over whole tokens). Fixed lengths give them as they are, with
    nothing added.

    ``prompt_scale`` and ``output_scale`` (per candidate): every prompt, or every output, times this factor
    (a heavier or lighter mix of the same shape). Exact, not resampled: means, the longest of b draws and
    standard deviations scale with the factor, variances with its square, the covariance with both
    factors, the prompt quantiles over their mean not at all (``context_spread`` follows from them)."""
    b = np.asarray(batch, dtype=np.float64)
    served = np.asarray(served, dtype=bool)
    sp = np.broadcast_to(np.asarray(prompt_scale, dtype=np.float64), b.shape)
    so = np.broadcast_to(np.asarray(output_scale, dtype=np.float64), b.shape)
    unique, inverse = np.unique(b, return_inverse=True)
    longest_prompt = sp * prompts.expected_max(unique)[inverse].reshape(b.shape)
    longest_output = so * outputs.expected_max(unique)[inverse].reshape(b.shape)
    quantiles = np.ones(1) if prompts.fixed else prompts.quantiles()  # one column: nothing to spread
    spread = context_spread(prompts, outputs, covariance, sp, so)
    mean_output = np.rint(so * outputs.mean)
    inverse_output = np.nan if outputs.fixed else outputs.inverse_decode_mean_scaled(so)
    return {
        "prompt_len": np.rint(np.where(served, sp * prompts.mean, longest_prompt)),
        "gen_len": np.rint(np.where(served, mean_output, longest_output)),
        "gen_padding": np.where(served, 0.0, np.maximum(np.rint(longest_output) - mean_output, 0.0)),
        "context_spread": np.rint(np.where(served, spread, 0.0)),
        "prompt_quantiles": np.where(served[..., None], quantiles, 1.0),
        "prompt_variance": np.where(served, sp**2 * prompts.variance, 0.0),
        "output_variance": np.where(served, so**2 * outputs.variance, 0.0),
        "length_covariance": np.where(served, sp * so * covariance, 0.0),
        "inverse_output_tokens": np.where(served & (not outputs.fixed), inverse_output, np.nan),
    }


@dataclass(frozen=True)
class Spread:
    """Prompts of varying length: ``quantiles`` of the prompt over its mean P at the probabilities
    ``edges`` (``lengths.Lengths.quantiles``; floats or arrays, the points on the last axis)."""

    prompt_tokens: Any
    quantiles: Any
    edges: tuple[float, ...]

    def take(self, rows: Any) -> Spread:
        """The spread of the candidates at ``rows`` (one candidate's: itself)."""
        if not np.ndim(self.prompt_tokens):
            return self
        return Spread(self.prompt_tokens[rows], self.quantiles[rows], self.edges)

    @property
    def varies(self) -> bool:
        return bool(np.any(np.asarray(self.quantiles) != 1.0))

    def service_s(self, decode_s: Any, mixed_s: Any, k: Any, room: Any, full_s: Any = None) -> Any:
        """A request's prefill at each of the quantiles (None: prompts do not vary), for an engine whose
        mixed steps carry k prompt tokens beside the decode tokens (T_m; T_d without them; T_f with the
        ``room`` full of prompt tokens, None: extrapolated from T_d and T_m). A step carrying x prompt tokens
        takes T(x): linear from T_d at 0 to T_m at k, then to T_f at the room (the roofline: weight-bound
        steps cost little per token, compute-bound ones more).

        Shorter prompts share steps (k >= P): a prompt of L tokens rides with the others' k - P, in one step
        T(L + k - P), or, beyond the room, in (L + k - P) / room full steps. Chunked prompts (k < P) run in
        chunks of k: L / k steps of T_m, or one step T(L) when shorter. At L = P both give s T_m."""
        if not self.varies:
            return None
        P, k_, room_ = (np.asarray(x, dtype=np.float64)[..., None] for x in (self.prompt_tokens, k, room))
        t_d, t_m = np.asarray(decode_s)[..., None], np.asarray(mixed_s)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            # the tokens x a request's step carries: its own L, beside the others' k - P where prompts share
            # steps; one step of T(x) up to ``cap`` (k for a chunked prompt, the room for shared steps), beyond
            # it x / cap steps of T(cap)
            x = P * np.asarray(self.quantiles) + np.maximum(k_ - P, 0.0)
            cap = np.where(k_ < P * (1.0 - 1e-12), k_, room_)
            slope = (t_m - t_d) / k_
            if full_s is None:
                return np.where(x <= cap, t_d + slope * x, x * (t_d / cap + slope))
            t_f = np.asarray(full_s)[..., None]
            beyond = (t_f - t_m) / np.maximum(room_ - k_, 1e-300)  # T from k to the room: t_m to t_f

            def step(y: Any) -> Any:
                return np.where(y <= k_, t_d + slope * y, t_m + beyond * (y - k_))

            return np.where(x <= cap, step(x), x * (step(cap) / cap))
