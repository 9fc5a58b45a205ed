"""The queue before a request's first chunk, and TTFT's percentiles (docs/cost-model.md §16, §19): the
Pollaczek-Khinchine mean wait of an M/G/1 queue (M/D/1 when every request brings the same work), the wait's
distribution (an atom at zero and an exponential tail), and its sum with a request's own prefill when prompts
vary."""

from __future__ import annotations

from typing import Any

import numpy as np


def pk_wait_s(rho: Any, service_s: Any, cv2: Any = 0.0) -> Any:
    """The Pollaczek-Khinchine mean wait of an M/G/1 queue at utilisation ρ with mean service S whose squared
    coefficient of variation is c² (0: an M/D/1 queue, every request the same work):
    ρ S (1 + c²) / (2 (1 - ρ)) (infinite at ρ >= 1). Kleinrock, Queueing Systems vol. 1 (1975), §5.6."""
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho < 1.0, rho * service_s * (1.0 + cv2) / (2.0 * (1.0 - rho)), np.inf)


def wait_quantile_s(q: Any, rho: Any, mean_wait: Any) -> Any:
    """The q-quantile of the wait: 0 with probability 1 - ρ, else exponential with mean W / ρ (so the mean is
    W): ``(W / ρ) ln(ρ / (1 - q))`` where ρ > 1 - q, else 0."""
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = mean_wait / rho * np.log(rho / (1.0 - q))
    return np.where(rho > 1.0 - q, tail, 0.0)


MIXTURE_STEPS = 40
"""Halvings of the interval a quantile over varying prompts is solved in (``ttft_quantile_s``): 2^-40 of it."""


def _spread_cdf(t: Any, a: Any, b: Any, rho: Any, tail: Any) -> Any:
    """P(W + S <= t) for S uniform on [a, b] and the wait W of ``wait_quantile_s`` (0 with probability 1 - ρ,
    else exponential with mean θ): (1 / (b - a)) ∫_a^min(b, t) (1 - ρ e^(-(t - s) / θ)) ds =
    ((m - a) - ρ θ (e^(-(t - m) / θ) - e^(-(t - a) / θ))) / (b - a), m = min(b, t); the point formula where
    a = b."""
    x = np.maximum(t - a, 0.0)
    point = np.where(t >= a, 1.0 - rho * np.exp(-x / tail), 0.0)
    m = np.clip(t, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = ((m - a) - rho * tail * (np.exp(-(t - m) / tail) - np.exp(-x / tail))) / (b - a)
    return np.where(b - a > 1e-12 * np.maximum(np.abs(b), 1e-300), np.where(t >= a, spread, 0.0), point)


def ttft_quantile_s(q: Any, rho: Any, queue: Any, service: Any, prefill: Any, edges: tuple[float, ...]) -> Any:
    """The q-quantile of the wait in the queue (``wait_quantile_s``: 0 with probability 1 - ρ, else
    exponential with mean W / ρ) plus a request's own prefill, ``service`` (s). With prompts that vary,
    ``prefill`` (``lengths.Spread.service_s``) gives a request's prefill at the prompt's quantiles at
    probabilities ``edges``, spread evenly in between, and the quantile of the sum solves
    Σ_j w_j P(W + S_j <= t) = q (``_spread_cdf``) by bisection (``MIXTURE_STEPS``)."""
    base = wait_quantile_s(q, rho, queue)
    if prefill is None:
        return base + service
    weights = np.diff(edges)
    S = np.asarray(prefill)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_ = np.asarray(rho, dtype=np.float64)[..., None]
        tail = np.where(rho_ > 0.0, np.asarray(queue)[..., None] / rho_, 1.0)  # the exponential's mean
    a, b = S[..., :-1], S[..., 1:]
    lo, hi = S[..., 0], S[..., -1] + base
    finite = np.isfinite(hi)
    hi = np.where(finite, hi, lo)
    for _ in range(MIXTURE_STEPS):
        mid = (lo + hi) / 2.0
        with np.errstate(over="ignore", invalid="ignore"):
            ok = np.sum(weights * _spread_cdf(mid[..., None], a, b, rho_, tail), axis=-1) >= q
        lo, hi = np.where(ok, lo, mid), np.where(ok, mid, hi)
    return np.where(finite, hi, np.inf)
