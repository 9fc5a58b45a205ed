"""How robust the choice is: Monte-Carlo over prices, workload, load and the model's own error; a tornado of the
winner's cost.

Each draw moves, independently, within their ranges (docs/recommend.md):
- every price entry's figure: one of its offers, each as likely (so the draws' median is today's median
  price), or, from one figure, anywhere in its band by confidence (or the range a sheet gives), uniformly;
  options priced from the same entry move together;
- prompt and output lengths by +- ``workload_band``, and the load by +- ``load_band`` (uniformly);
- each option's predicted speed (latencies divided, capacity multiplied by the same factor), independently
  per option: the model's error is what separates hardware, not what moves all. By default the factor is
  log-normal with the spread its profile measured (``model_spread``: the p10-p90 of held-out measured /
  predicted throughput, centred on 1, so the draws move the answer without re-biasing it); with
  ``model_error`` uniform in +- that share.

Each option keeps its configuration, batch (or ``max_num_seqs``) included (the fleet re-sized to the drawn
load; under continuous batching each replica's rate under the SLOs found again); in a draw where it misses an
SLO, no longer fits in memory (a longer prompt) or its fleet breaks a limit, it cannot serve, and
is not a candidate. Win-rates are shares of the draws some option can serve (they sum to 1); ``slo_risk`` is
the share of draws an option cannot serve; expected regret is the mean, over the draws it serves, of its cost
over the cheapest's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from dse import units
from dse.catalog import GENERIC, load_target
from dse.costmodel.physics.serving import HOURS_PER_MONTH
from dse.recommend._answer import Option
from dse.recommend._fleet import Grid, replicas_for, score_configurations, serves, serving_columns
from dse.recommend._request import Request
from dse.scoring import ratio_table, target_ratios

Z90 = NormalDist().inv_cdf(0.9)
"""The standard normal's 90th percentile: a log-normal's p10-p90 spans 2 x Z90 standard deviations."""


def model_spread(request: Request, opts: Sequence[Option]) -> np.ndarray:
    """Per option, the standard deviation of log(measured / predicted) its profile's throughput interval
    implies (p10 and p90 taken as a log-normal's). A profile with no interval (``ideal``, a hand-written one)
    takes the generic profile's: its error is not known to be smaller."""
    targets = [load_target(o.target) for o in opts]
    spreads = []
    for profile in (request.profile, GENERIC):
        throughput = ratio_table(target_ratios(targets, profile))["throughput_tokens_per_s"]
        spreads.append(np.log(throughput[:, 2] / throughput[:, 0]) / (2 * Z90))
    own, generic = spreads
    return np.where(np.isfinite(own), own, generic)


def speed_draws(request: Request, opts: Sequence[Option], rng: np.random.Generator, s: int) -> np.ndarray:
    """(options x draws) factors on each option's predicted speed (``model_error`` or ``model_spread``)."""
    if request.model_error is not None:
        return rng.uniform(1 - request.model_error, 1 + request.model_error, (len(opts), s))
    return np.exp(rng.standard_normal((len(opts), s)) * model_spread(request, opts)[:, None])


@dataclass(frozen=True)
class Robustness:
    samples: int
    served_draws: int
    """Draws where at least one option could serve (the win-rates' denominator)."""
    tornado: list[dict[str, object]]
    """The winner's $/month with one input at its low and its high end, the others at their nominal values."""


def _lengths(request: Request, factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prompt and output tokens (fixed lengths) or their means (lengths that vary) times ``factor``, as whole
    tokens, at least one: (prompts, outputs)."""
    prompt = np.maximum(1, np.rint(request.mean_prompt_tokens * factor[0])).astype(np.int64)
    output = np.maximum(1, np.rint(request.mean_output_tokens * factor[1])).astype(np.int64)
    return prompt, output


def _evaluate(request: Request, opts: Sequence[Option], factor: np.ndarray, speed: np.ndarray) -> Grid:
    """Each option's configuration with its prompts and outputs times ``factor`` (2 x draws: prompts, outputs)
    and its predicted speed times ``speed`` (options x draws), scored as the fleet sizing scores (rows: option
    by option, draws within; reshape to (options, draws)): latencies divided by the speed factor, capacity
    multiplied (under continuous batching, the rate found under the SLOs times the factor,
    ``continuous_columns``). Lengths that vary are scaled as a whole (``candidate_lengths``)."""
    prompt, output = _lengths(request, factor)
    k, s = len(opts), len(prompt)

    def each(values: list[Any]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=object), s)

    columns: dict[str, Any] = {
        "model": [request.model] * (k * s),
        "hardware": list(each([o.target for o in opts])),
        "quant": list(each([o.quant for o in opts])),
        "kv": list(each([None if o.kv == "default" else o.kv for o in opts])),
        "tp": np.repeat([o.tp for o in opts], s),
        "pp": np.repeat([o.pp for o in opts], s),
        "ep": np.repeat([o.ep for o in opts], s),
        "batch": np.repeat([o.batch for o in opts], s),
        "prompt_len": np.tile(prompt, k),
        "gen_len": np.tile(output, k),
        "spec_tokens": np.repeat([o.spec_tokens for o in opts], s),
        "mode": list(each([o.mode for o in opts])),
        "replicas": np.repeat([(o.prefill_instances or 0) + (o.decode_instances or 1) for o in opts], s),
        "prefill_replicas": np.repeat([o.prefill_instances or 1 for o in opts], s),
    } | serving_columns(request, k * s)
    scale = (np.tile(factor[0], k), np.tile(factor[1], k))
    return score_configurations(columns, np.repeat(np.arange(k), s), request, speed.reshape(-1), scale)


def _hourly(option: Option, position: np.ndarray | float) -> np.ndarray | float:
    assert option.chosen is not None
    return option.chosen.costing.usd_per_device_hour_at(position)


def _within_limits(request: Request, paid: np.ndarray, power_w: float | None, usd: np.ndarray) -> np.ndarray:
    """Whether each drawn fleet keeps the request's limits (devices, power, budget)."""
    ok = np.ones(np.shape(paid), dtype=bool)
    if request.max_devices is not None:
        ok &= paid <= request.max_devices
    if request.max_power_kw is not None and power_w is not None:
        ok &= paid * power_w / units.WATTS_PER_KW <= request.max_power_kw
    if request.budget_usd_per_month is not None:
        ok &= usd <= request.budget_usd_per_month
    return ok


def _positions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draws of a price entry's position (``Price.at``): uniform, so each of its offers is as likely, or a
    single figure anywhere in its band."""
    return rng.uniform(0.0, 1.0, n)


def robustness(request: Request, ranked: list[Option]) -> Robustness | None:
    """Fill ``win_rate``, ``expected_regret_usd_per_month`` and ``slo_risk`` of every ranked option; return the
    winner's tornado. None when there is nothing to compare or no draws are asked for."""
    if not ranked or request.samples == 0:
        return None
    rng = np.random.default_rng(request.seed)
    s, k = request.samples, len(ranked)
    wb, lb = request.workload_band, request.load_band
    factor = rng.uniform(1 - wb, 1 + wb, (2, s))  # prompts, outputs
    load = request.sizing_rate * rng.uniform(1 - lb, 1 + lb, s)
    speed = speed_draws(request, ranked, rng, s)
    ids = sorted({o.chosen.costing.price_id for o in ranked if o.chosen and o.chosen.costing.price_id})
    positions = {pid: _positions(rng, s) for pid in ids}
    ev = _evaluate(request, ranked, factor, speed)
    capacity = ev.capacity_rps.reshape(k, s)
    serving = serves(ev, request).reshape(k, s)
    cost = np.empty((k, s))
    for i, o in enumerate(ranked):
        assert o.chosen is not None
        pid = o.chosen.costing.price_id
        hourly = _hourly(o, positions[pid]) if pid in positions else float(o.usd_per_device_hour or np.nan)
        paid = o.chosen.costing.paid(replicas_for(load, capacity[i]) * o.devices / o.replicas)
        cost[i] = paid * hourly * HOURS_PER_MONTH
        serving[i] &= _within_limits(request, paid, o.chosen.costing.prices.power_w, cost[i])
    cost = np.where(serving, cost, np.inf)
    best = cost.min(axis=0)
    served = np.isfinite(best)
    winner = np.argmin(cost, axis=0)[served]
    wins = np.bincount(winner, minlength=k)
    n_served = int(served.sum())
    for i, o in enumerate(ranked):
        ok = serving[i] & served
        o.win_rate = float(wins[i] / n_served) if n_served else 0.0
        o.slo_risk = float(1.0 - serving[i].mean())
        o.expected_regret_usd_per_month = float((cost[i][ok] - best[ok]).mean()) if ok.any() else None
    return Robustness(s, n_served, tornado(request, ranked[0]))


def tornado(request: Request, winner: Option) -> list[dict[str, object]]:
    """The winner's $/month as each uncertain input goes to its low and high end alone."""
    wb, lb, me = request.workload_band, request.load_band, request.model_error
    slow, fast = (
        (1 - me, 1 + me) if me is not None else np.exp(np.asarray([-Z90, Z90]) * model_spread(request, [winner])[0])
    )
    settings: dict[str, dict[str, dict[str, float]]] = {
        "price": dict(low={"position": 0.0}, high={"position": 1.0}),
        "load": dict(low={"load": 1 - lb}, high={"load": 1 + lb}),
        "prompt tokens": dict(low={"prompt": 1 - wb}, high={"prompt": 1 + wb}),
        "output tokens": dict(low={"output": 1 - wb}, high={"output": 1 + wb}),
        "model speed": dict(low={"speed": float(slow)}, high={"speed": float(fast)}),
    }
    cases = [(name, end, change) for name, ends in settings.items() for end, change in ends.items()]
    factor = np.asarray([[c.get("prompt", 1.0) for _, _, c in cases], [c.get("output", 1.0) for _, _, c in cases]])
    speeds = np.asarray([[c.get("speed", 1.0) for _, _, c in cases]], dtype=float)
    ev = _evaluate(request, [winner], factor, speeds)
    ok = serves(ev, request)
    bars: dict[str, dict[str, object]] = {}
    for j, (name, end, change) in enumerate(cases):
        capacity = ev.capacity_rps[j]
        still = bool(ok[j])
        position = change.get("position")
        hourly = float(winner.usd_per_device_hour or 0.0) if position is None else float(_hourly(winner, position))
        load = request.sizing_rate * float(change.get("load", 1.0))
        assert winner.chosen is not None
        fleet = winner.chosen.costing.paid(replicas_for(load, np.asarray(capacity)) * winner.devices / winner.replicas)
        usd = float(fleet * hourly * HOURS_PER_MONTH)
        bar = bars.setdefault(name, {"input": name})
        bar[end] = usd
        bar[f"{end}_serves"] = still
        bar[f"{end}_setting"] = _setting(name, end, change, request)
    nominal = winner.usd_per_month
    out = list(bars.values())
    for bar in out:
        bar["nominal"] = nominal
    out.sort(key=lambda b: -abs(float(b["high"]) - float(b["low"])))  # type: ignore[arg-type]
    return out


def _setting(name: str, end: str, change: dict[str, float], request: Request) -> str:
    if name == "price":
        return "low end of its offers" if end == "low" else "high end of its offers"
    if name == "load":
        return f"{request.rate * change['load']:.4g} requests/s"
    if name == "model speed":
        return f"{change['speed']:.2f} x predicted"
    prompt = "prompt" in change
    factor = np.asarray([[change.get("prompt", 1.0)], [change.get("output", 1.0)]])
    tokens = _lengths(request, factor)[0 if prompt else 1]
    return f"{'mean ' if request.traffic.varies else ''}{int(tokens[0])} tokens"
