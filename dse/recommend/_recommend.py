"""``dse.recommend``: which hardware to buy or rent for a model, a workload, a load and SLOs.

request -> targets -> every configuration scored once -> per target the cheapest fleet -> one option per
accelerator, ranked by cost -> thresholds and break-even -> Monte-Carlo robustness -> ``Recommendation``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import system_catalog
from dse.costmodel.physics.serving import HOURS_PER_MONTH
from dse.recommend._answer import Infeasible, Option, Threshold, options, thresholds
from dse.recommend._fleet import (
    Say,
    assumptions,
    quiet,
    replicas_for,
    score_grid,
    size_fleets,
    targets,
    tokens_per_month,
)
from dse.recommend._request import Request, make_request
from dse.recommend._robust import Robustness, robustness
from dse.scoring import finite_json
from dse.space import lengths_label

SCHEMA_VERSION = 1
"""Version of ``recommendation.json`` (docs/recommend.md): additive changes keep it, others raise it."""

OPTION_KEYS = (
    "hardware",
    "target",
    "quant",
    "kv",
    "tp",
    "pp",
    "ep",
    "batch",
    "replicas",
    "devices",
    "devices_paid",
    "usd_per_month",
    "tco_usd",
    "usd_per_million_tokens",
    "power_kw",
    "binding",
    "win_rate",
    "expected_regret_usd_per_month",
    "slo_risk",
    "break_even_months",
    "ttft_s",
    "tpot_s",
    "capacity_rps",
    "usd_per_device_hour",
    "price_basis",
    "price_sources",
    "by_pricing",
    "scheduler",
    "max_num_seqs",
    "requests_in_engine",
    "spec_tokens",
    "mode",
    "prefill_instances",
    "decode_instances",
)
"""Keys of each option in ``recommendation.json``, in order (the first fifteen are the contract's). ``batch`` is
the configuration's batch size: the static batch, or under continuous batching the engine's cap, which
``max_num_seqs`` repeats (null under static batches); ``requests_in_engine`` is the running batch there."""


@dataclass(frozen=True)
class Recommendation:
    request: Request
    options: list[Option]
    """Priced options, cheapest first (all of them; ``top`` options are shown)."""
    unpriced: list[Option]
    infeasible: list[Infeasible]
    thresholds: list[Threshold]
    robustness: Robustness | None
    candidates: int
    """Configurations scored."""

    @property
    def shortlist(self) -> list[Option]:
        return self.options[: self.request.top]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema ``SCHEMA_VERSION``; non-finite numbers become null)."""
        r = self.request
        a = assumptions(r)
        shown = self.shortlist
        others = sum(o.win_rate or 0.0 for o in self.options[r.top :]) if self.robustness else None
        doc = {
            "schema_version": SCHEMA_VERSION,
            "request": r.model_dump(mode="json") | {"spec_tokens": list(r.tried_spec_tokens)},  # defaults filled
            "pricing": r.pricing,
            "workload": workload(r),
            "load": {
                "rate_rps": r.rate,
                "sizing_rate_rps": r.sizing_rate,
                "output_tokens_per_month": tokens_per_month(r),
            },
            "assumptions": {
                "horizon_years": a.amortization_years,
                "usd_per_kwh": a.usd_per_kwh,
                "pue": a.pue,
                "power_fraction": a.power_fraction,
                "ops_share_per_year": a.ops_share_per_year,
                "server_share": a.server_share,
                "host_power_share": a.host_power_share,
                "reserved_term": a.reserved_term,
                "hours_per_month": HOURS_PER_MONTH,
            },
            "options": [_option_dict(o) for o in shown],
            "win_rate_others": others,
            "win_rates_beyond_shortlist": None
            if others is None
            else [
                {"rank": rank, "hardware": o.hardware, "win_rate": o.win_rate}
                for rank, o in sorted(
                    enumerate(self.options[r.top :], start=r.top + 1), key=lambda x: -(x[1].win_rate or 0.0)
                )
                if o.win_rate
            ],
            "unpriced": [_option_dict(o) for o in self.unpriced],
            "infeasible": [asdict(i) for i in self.infeasible],
            "thresholds": [asdict(t) for t in self.thresholds],
            "robustness": None
            if self.robustness is None
            else {
                "samples": self.robustness.samples,
                "served_draws": self.robustness.served_draws,
                "seed": r.seed,
                "bands": {"workload": r.workload_band, "load": r.load_band, "model_error": r.model_error},
                "model_error_basis": "band" if r.model_error is not None else "measured",
                "tornado": self.robustness.tornado,
            },
            "cost_vs_load": cost_curves(shown, r),
            "rent_vs_buy": rent_vs_buy(shown, r),
            "candidates": self.candidates,
        }
        return finite_json(doc)  # type: ignore[no-any-return]

    def write(self, path: str | Path) -> Path:
        """Write ``recommendation.json`` (atomically)."""
        from dse.results import write_text_durably

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_text_durably(target, json.dumps(self.to_dict(), indent=2) + "\n")


WORKLOAD_PERCENTILES = (50, 90, 99)


def workload(r: Request) -> dict[str, Any]:
    """The request's lengths: fixed, drawn from laws, or the observed ones of ``Request.lengths`` (means,
    percentiles, requests read, the laws as text)."""
    t = r.traffic
    laws = None
    if r.lengths is None:
        assert r.prompt_tokens is not None and r.output_tokens is not None
        laws = {"prompt_tokens": lengths_label(r.prompt_tokens), "output_tokens": lengths_label(r.output_tokens)}
    doc: dict[str, Any] = {
        "lengths": r.lengths,
        "laws": laws,
        "varies": t.varies,
        "requests": t.requests if r.lengths is not None else None,
        "prompt_tokens_mean": t.prompts.mean,
        "output_tokens_mean": t.outputs.mean,
    }
    for name, law in (("prompt_tokens", t.prompts), ("output_tokens", t.outputs)):
        doc[name] = {f"p{p}": law.percentile(p / 100) for p in WORKLOAD_PERCENTILES} | {"max": law.largest}
    return doc


def _option_dict(o: Option) -> dict[str, Any]:
    sequences = o.batch if o.scheduler == "continuous" else None  # continuous: the engine's cap
    d = {key: getattr(o, key, None) for key in OPTION_KEYS} | {"max_num_seqs": sequences}  # in OPTION_KEYS' order
    d["price_sources"] = list(o.price_sources)
    c = o.chosen.costing if o.chosen else None
    d["per_device"] = {
        "rent_usd_per_hour": c.rent_usd_per_device_hour if c else None,
        "capex_usd": c.prices.capex.value if c and c.prices.capex else None,
        "capex_basis": c.prices.capex.basis if c and c.prices.capex else None,
        "opex_usd_per_hour": c.opex_usd_per_device_hour if c else None,
        "power_w": c.prices.power_w if c else None,
        "power_basis": c.prices.power_basis if c else None,
    }
    return d


LOAD_RANGE = (0.1, 3.0)
"""Cost-vs-load curves span these multiples of the request's load."""
CURVE_POINTS = 400


def cost_curves(shown: list[Option], r: Request) -> dict[str, Any]:
    """Each option's fleet cost as the average load varies, its configuration fixed (a step at each replica
    added), and the loads where the cheapest option changes."""
    rates = np.linspace(LOAD_RANGE[0] * r.rate, LOAD_RANGE[1] * r.rate, CURVE_POINTS)
    sizing = rates * r.peak_factor * (1.0 + r.headroom)
    curves, costs = [], []
    for o in shown:
        assert o.chosen is not None
        per_replica = o.devices // max(o.replicas, 1)
        fleet = o.chosen.costing.paid(replicas_for(sizing, np.full_like(sizing, o.capacity_rps)) * per_replica)
        usd = fleet * o.usd_per_device_hour
        usd = usd * HOURS_PER_MONTH
        costs.append(usd)
        curves.append({"hardware": o.hardware, "usd_per_month": usd.tolist()})
    crossovers = []
    if costs:
        cheapest = np.argmin(np.asarray(costs), axis=0)
        for i in np.flatnonzero(np.diff(cheapest)):
            crossovers.append(
                {
                    "rate_rps": float(rates[i + 1]),
                    "from": shown[cheapest[i]].hardware,
                    "to": shown[cheapest[i + 1]].hardware,
                }
            )
    return {"rate_rps": rates.tolist(), "options": curves, "crossovers": crossovers}


def rent_vs_buy(shown: list[Option], r: Request) -> list[dict[str, Any]]:
    """Cumulative cost of each option's fleet over the horizon, rented and bought (a purchase paid on day one,
    then electricity and operations), month by month; only options with both prices."""
    months = np.arange(0, math.ceil(r.horizon_years * 12) + 1, dtype=float)
    out = []
    for o in shown:
        c = o.chosen.costing if o.chosen else None
        if (
            c is None
            or c.prices.capex is None
            or c.rent_usd_per_device_hour is None
            or c.opex_usd_per_device_hour is None
        ):
            continue
        bought = c.prices.bought(o.devices)
        rent = o.devices * c.rent_usd_per_device_hour * HOURS_PER_MONTH * months
        buy = bought * (c.prices.capex.value + c.opex_usd_per_device_hour * HOURS_PER_MONTH * months)
        out.append(
            {
                "hardware": o.hardware,
                "months": months.tolist(),
                "rent_usd": rent.tolist(),
                "buy_usd": buy.tolist(),
                "break_even_months": o.break_even_months,
            }
        )
    return out


def _expand(request: Request) -> Request:
    """An accelerator named in ``hardware`` brings the catalog's systems built on it (a buyer naming H100s
    means H100s in whatever server serves the load)."""
    if request.hardware is None:
        return request
    wanted = list(dict.fromkeys(request.hardware))
    for system in system_catalog().values():
        if system.accelerator.id in wanted and system.id not in wanted:
            wanted.append(system.id)
    return request.model_copy(update={"hardware": tuple(wanted)})


def recommend(request: Request | None = None, *, say: Say = quiet, **fields: Any) -> Recommendation:
    """Rank hardware for a load: ``recommend(model=..., prompt_tokens=..., output_tokens=..., rate=...)``
    (keywords of ``dse.recommend.Request``), or ``recommend(request)``. ``say``: told what each long step is
    doing (a progress line)."""
    if request is None:
        request = make_request(**fields)
    elif fields:
        request = make_request(**(request.model_dump() | fields))
    request = _expand(request)
    found = targets(request)
    grid = score_grid(request, found, say)
    say("sizing fleets")
    choices = size_fleets(request, found, grid)
    ranked, unpriced, infeasible = options(choices, grid, request)
    say(f"{request.samples:,} robustness draw{'' if request.samples == 1 else 's'}")
    robust = robustness(request, ranked)
    return Recommendation(
        request, ranked, unpriced, infeasible, thresholds(ranked, request, request.top), robust, len(grid.target)
    )
