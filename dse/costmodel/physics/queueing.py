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


def closed_wait_s(n: Any, service_s: Any, other_s: Any, cv2: Any = 0.0) -> Any:
    """The mean wait at a server in a closed loop of n requests, each needing a mean service S from it (with
    squared coefficient of variation c²) and spending Z elsewhere between its visits (the rest of its
    cycle): mean value analysis with the Schweitzer-Bard approximation (Schweitzer 1979; Bard 1979; Lazowska
    et al., Quantitative System Performance (1984), §6.4.2: a request arriving finds a = (n - 1) / n of the
    mean queue Q and of the utilisation U) and the residual-service correction for service that is not
    exponential (the request in service has E[S²] / (2 E[S]) = S (1 + c²) / 2 left; each one queued, S):
    R = S + S (a Q - a U) + a U S (1 + c²) / 2, with Q = X R, U = X S, X = n / (R + Z). With h = S (c² - 1) / 2
    this is R² + (Z - nS) R - (S Z + (n - 1) S h) = 0, whose positive root is taken: R = S alone, about
    nS - Z as n grows; c² = 1 is exponential service's exact-MVA approximation. The wait R - S never falls
    below what the server's rate imposes, n S - (S + Z) (no more than 1 / S requests a second: Little's law).
    n <= 1: no wait."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    S, Z = np.asarray(service_s, dtype=np.float64), np.maximum(np.asarray(other_s, dtype=np.float64), 0.0)
    b = Z - n * S
    c = -(S * Z + (n - 1.0) * S * S * (np.asarray(cv2, dtype=np.float64) - 1.0) / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.maximum(b * b - 4.0 * c, 0.0))
        response = np.where(b > 0.0, -2.0 * c / (b + root), (root - b) / 2.0)  # no cancellation either way
    wait = np.maximum(np.maximum(response - S, 0.0), n * S - (S + Z))
    return np.where(n > 1.0, wait, 0.0)  # exactly: the root is S there, to rounding


def wait_quantile_s(q: Any, rho: Any, mean_wait: Any) -> Any:
    """The q-quantile of the wait: 0 with probability 1 - ρ, else exponential with mean W / ρ (so the mean is
    W): ``(W / ρ) ln(ρ / (1 - q))`` where ρ > 1 - q, else 0."""
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = mean_wait / rho * np.log(rho / (1.0 - q))
    return np.where(rho > 1.0 - q, tail, 0.0)


def _wait_mean_s(rho: Any, queue: Any) -> Any:
    """θ, the mean of the wait's exponential part: W / ρ (``wait_quantile_s``); 1 where nothing waits (ρ = 0,
    a placeholder the ρ factor cancels)."""
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho > 0.0, np.asarray(queue, dtype=np.float64) / rho, 1.0)


MIXTURE_STEPS = 60
"""At most this many steps solve a quantile over varying prompts (``ttft_quantile_s``): safeguarded Newton,
which converges in a handful where the distribution is smooth, halving its bracket where a step would leave
it or would not converge (where prompts of one length put an atom in the distribution: 2^-60 of the
bracket)."""
MIXTURE_TOLERANCE = 1e-13
"""A quantile is solved when its step or its bracket is within this share of it."""


def _mixture_cdf(t: Any, S: Any, weights: Any, rho: Any, tail: Any, density: bool = True) -> tuple[Any, Any]:
    """F(t) = P(W + S <= t) and its density f (from the right; None unless ``density``) for the wait W of
    ``wait_quantile_s`` (0 with probability 1 - ρ, else exponential with mean θ) and a prefill S spread
    evenly between neighbouring points S_j, S_{j+1} (the last axis of ``S``) with probability ``weights``_j.

    With u_i = max(t - S_i, 0) and E_i = e^(-u_i / θ) at each point, one interval [a, b] = [S_j, S_{j+1}]
    contributes (1 / (b - a)) ∫_a^min(b, t) (1 - ρ e^(-(t - s) / θ)) ds = ((u_j - u_{j+1}) - ρ θ (E_{j+1} -
    E_j)) / (b - a) from t = a on, whose derivative is (1 - ρ E_j) / (b - a) on [a, b) and ρ (E_{j+1} - E_j) /
    (b - a) from b; an interval of one point (a = b) contributes 1 - ρ E_j, density ρ / θ E_j. One exponential
    per point serves both its intervals. u_j - u_{j+1} is taken as min(u_j, b - a) and the difference of
    exponentials as -E_{j+1} expm1(-(u_j - u_{j+1}) / θ), which keep their digits where t is far beyond the
    interval or θ far longer than it. Shapes: t, ρ, θ (..., 1), S (..., points); F and f (...)."""
    u = np.maximum(t - S, 0.0)
    E = np.exp(-u / tail)
    width = S[..., 1:] - S[..., :-1]
    covered = np.minimum(u[..., :-1], width)  # u_j - u_{j+1}: how much of [a, b] lies below t
    gap = -E[..., 1:] * np.expm1(-covered / tail)  # E_{j+1} - E_j, without cancellation
    wide = width > 1e-12 * np.maximum(np.abs(S[..., 1:]), 1e-300)
    if not density and np.all(wide):  # no interval of one point (prompts of one length): the integral alone
        return ((covered - rho * tail * gap) / width) @ weights, None
    below = t >= S  # H_i
    point = np.where(below[..., :-1], 1.0 - rho * E[..., :-1], 0.0)
    per = np.where(wide, (covered - rho * tail * gap) / np.where(wide, width, 1.0), point)
    cdf = per @ weights
    if not density:
        return cdf, None
    after = below[..., :-1]
    inside = np.where(below[..., 1:], rho * gap, 1.0 - rho * E[..., :-1])  # beyond b: ρ (E_{j+1} - E_j)
    slope = np.where(wide, inside / np.where(wide, width, 1.0), rho / tail * E[..., :-1])
    return cdf, np.where(after, slope, 0.0) @ weights


def ttft_quantile_s(q: Any, rho: Any, queue: Any, service: Any, prefill: Any, edges: tuple[float, ...]) -> Any:
    """The q-quantile of the wait in the queue (``wait_quantile_s``: 0 with probability 1 - ρ, else
    exponential with mean W / ρ) plus a request's own prefill, ``service`` (s). With prompts that vary,
    ``prefill`` (``lengths.Spread.service_s``) gives a request's prefill at the prompt's quantiles at
    probabilities ``edges``, spread evenly in between, and the quantile of the sum solves
    F(t) = Σ_j w_j P(W + S_j <= t) = q (``_mixture_cdf``) by Newton's method kept inside a bracket
    [lo, hi] with F(lo) < q <= F(hi), halving it where a step would leave it (``MIXTURE_STEPS``). The
    answer is on the bracket's upper side, F(t) >= q, to ``MIXTURE_TOLERANCE`` (as a bisection's was)."""
    base = wait_quantile_s(q, rho, queue)
    if prefill is None:
        return base + service
    weights = np.diff(edges)
    S = np.asarray(prefill, dtype=np.float64)
    rho_, tail = np.asarray(rho, dtype=np.float64), _wait_mean_s(rho, queue)
    shape = np.broadcast_shapes(S.shape[:-1], np.shape(rho_), np.shape(tail), np.shape(base), np.shape(q))
    points = S.shape[-1]
    S = np.broadcast_to(S, (*shape, points)).reshape(-1, points)
    n = len(S)
    if n == 0:
        return np.empty(shape)
    rho_, tail, base_, q_ = (np.broadcast_to(x, shape).reshape(-1) for x in (rho_, tail, base, q))
    lo, hi = S[:, 0].copy(), S[:, -1] + base_
    finite, top = np.isfinite(hi), hi  # an unknown prefill (NaN) stays unknown, an endless one inf
    hi = np.where(finite, hi, lo)
    # start from the prefill's own q-quantile plus the wait's (above the sum's, mostly: within the bracket)
    e, rows = np.asarray(edges), np.arange(n)
    j = np.clip(np.searchsorted(e, q_), 1, len(e) - 1)
    share = (q_ - e[j - 1]) / (e[j] - e[j - 1])
    with np.errstate(invalid="ignore"):  # a prefill that never ends (inf) is not solved: its TTFT is inf
        own = S[rows, j - 1] + share * (S[rows, j] - S[rows, j - 1])
        t = np.clip(own + base_, lo, hi)
        step, last = hi - lo, hi - lo  # this step's and the one before's size (Numerical Recipes' rtsafe, §9.4)
    answer = hi.copy()
    active = np.flatnonzero(hi > lo)
    rho_, tail = rho_[:, None], tail[:, None]
    for _ in range(MIXTURE_STEPS):
        if len(active) == 0:
            break
        x, left, right, qa = t[active], lo[active], hi[active], q_[active]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            cdf, f = _mixture_cdf(x[:, None], S[active], weights, rho_[active], tail[active])
            g = cdf - qa
            ok = g >= 0.0
            left, right = np.where(ok, left, x), np.where(ok, x, right)
            newton = x - g / f
            # Newton where it lands inside the bracket and at least halves the step before last (no cycle)
            take = (newton > left) & (newton < right) & (np.abs(2.0 * g) <= np.abs(last[active] * f))
        size = MIXTURE_TOLERANCE * np.maximum(np.abs(x), 1e-300)
        solved = ok & (np.abs(newton - x) <= size)  # x reaches q and is within the tolerance of the root
        nxt = np.where(solved, x, np.where(take, newton, (left + right) / 2.0))
        last[active], step[active] = step[active], np.abs(nxt - x)
        lo[active], hi[active], t[active] = left, right, nxt
        converged = step[active] <= size  # a Newton step this small: its landing point plus the tolerance
        answer[active] = np.where(solved, x, np.where(converged, np.minimum(nxt + size, right), right))
        done = solved | converged | (right - left <= size)
        active = active[~done]
    answer[active] = hi[active]  # steps exhausted: the bracket's upper end
    return np.where(finite, answer, top).reshape(shape)


def ttft_quantile_within(
    q: Any, rho: Any, queue: Any, service: Any, prefill: Any, edges: tuple[float, ...], limit: Any, offset: Any = 0.0
) -> Any:
    """Whether ``ttft_quantile_s`` (same arguments) plus ``offset`` is at most ``limit`` (s), without solving
    for the quantile: the q-quantile of a distribution is at most t exactly where its CDF at t reaches q, so
    with prompts that vary this is one evaluation of F(limit - offset) >= q (``_mixture_cdf``) where the
    quantile takes several. An infinite limit always holds (as inf <= inf)."""
    base = wait_quantile_s(q, rho, queue)
    if prefill is None:
        return base + service + offset <= limit
    weights = np.diff(edges)
    S = np.asarray(prefill)
    limit = np.asarray(limit, dtype=np.float64)
    unbounded = np.isposinf(limit)
    rho_, tail = np.asarray(rho, dtype=np.float64)[..., None], _wait_mean_s(rho, queue)[..., None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = np.where(unbounded, 0.0, limit - offset)[..., None]
        cdf, _ = _mixture_cdf(t, S, weights, rho_, tail, density=False)
        reaches = cdf >= q
    finite = np.isfinite(base) & np.all(np.isfinite(S), axis=-1)  # else the quantile is inf
    return unbounded | (reaches & finite)
