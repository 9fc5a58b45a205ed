"""Serving metrics of a static batch, its cost and its energy (docs/cost-model.md §4, §8, §11.7).

A replica serves a static batch of B sequences: prefilled together (TTFT), then G - 1 decode steps at the
mean step time TPOT. ``replicas`` independent copies multiply throughput, devices, cost and power, not latency.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dse import units
from dse.costmodel.physics.feasibility import Reason

Pricing = Literal["rent-on-demand", "rent-reserved", "buy", "rent"]
"""How devices are paid for. ``rent`` is ``rent-on-demand`` (the name spaces used first)."""
PRICINGS: tuple[str, ...] = typing.get_args(Pricing)
HOURS_PER_MONTH = units.HOURS_PER_MONTH
"""730 hours: an average month (``units``)."""


@dataclass(frozen=True)
class CostAssumptions:
    """Assumptions behind $ and J, with their defaults and why (docs/recommend.md lists them with sources).

    - ``pricing``: ``rent-on-demand`` (the median on-demand offer), ``rent-reserved`` (the median offer of
      ``reserved_term``), or ``buy``;
    - ``amortization_years`` 3: the horizon a purchase is written off over (straight line), and the horizon of
      total cost; 3 years is the depreciation period commonly used for accelerators in TCO analyses;
    - ``usd_per_kwh`` 0.08: U.S. industrial average retail price of electricity (EIA Electric Power Monthly,
      2024, ~8 cents/kWh);
    - ``pue`` 1.3: data-centre power usage effectiveness, between hyperscale (~1.1) and the industry average
      (~1.5, Uptime Institute 2024 survey);
    - ``power_fraction`` 1.0: average draw as a share of the system's maximum power; 1.0 is the conservative
      bound for a busy server;
    - ``ops_share_per_year`` 0.10: operations (support contracts, spares, staff, rack space) per year as a
      share of the purchase; an assumption, not a measurement: set your own;
    - ``server_share`` 0.23 and ``host_power_share`` 0.82: what the server around an accelerator adds to its
      price and to its power, when the catalog has no system with a quote or a power figure for it. Both are
      derived from the catalog's DGX H100 (docs/recommend.md shows the arithmetic);
    - ``reserved_term``: the term ``rent-reserved`` uses;
    - ``sheet``: a user's price sheet (a path) over the catalog's prices.
    """

    pricing: Pricing = "rent-on-demand"
    amortization_years: float = 3.0
    usd_per_kwh: float = 0.08
    pue: float = 1.3
    power_fraction: float = 1.0
    ops_share_per_year: float = 0.10
    server_share: float = 0.23
    host_power_share: float = 0.82
    reserved_term: Literal["reserved-1y", "reserved-3y"] = "reserved-1y"
    sheet: str | None = None

    @property
    def scenario(self) -> str:
        """``pricing`` with ``rent`` read as ``rent-on-demand``."""
        return "rent-on-demand" if self.pricing == "rent" else self.pricing


def energy_usd_per_device_hour(power_w: float, a: CostAssumptions) -> float:
    """Electricity of one device with its host share: power x power fraction x PUE x $/kWh."""
    return power_w * a.power_fraction * a.pue * units.SECONDS_PER_HOUR / units.JOULES_PER_KWH * a.usd_per_kwh


def opex_usd_per_device_hour(capex_usd: float, power_w: float, a: CostAssumptions) -> float:
    """Running an owned device: electricity plus operations (``ops_share_per_year`` of the purchase a year)."""
    return energy_usd_per_device_hour(power_w, a) + capex_usd * a.ops_share_per_year / units.HOURS_PER_YEAR


def buy_usd_per_device_hour(capex_usd: float, power_w: float, a: CostAssumptions) -> float:
    """An owned device per hour: the purchase written off straight-line over ``amortization_years``, plus
    ``opex_usd_per_device_hour``. Linear in the purchase price: ``capex x (1 / horizon hours + ops share /
    8760 h) + energy``."""
    return capex_usd / (a.amortization_years * units.HOURS_PER_YEAR) + opex_usd_per_device_hour(capex_usd, power_w, a)


def break_even_months(capex_usd: float, rent_usd_per_hour: float, opex_usd_per_hour: float) -> float:
    """Months after which owning a device costs less than renting it: the purchase is paid back by what renting
    would cost over running it, ``capex / ((rent - opex) x 730 h)``; infinite when renting costs no more than
    running."""
    saving = (rent_usd_per_hour - opex_usd_per_hour) * HOURS_PER_MONTH
    return capex_usd / saving if saving > 0 else math.inf


def usd_per_device_hour(
    rent: float | None, capex_usd: float | None, power_w: float | None, a: CostAssumptions
) -> float:
    """$ per device-hour in ``a``'s pricing: the rent (of the scenario's term), or an owned device per hour
    (``buy_usd_per_device_hour``). NaN when a figure it needs is unknown (unknown stays unknown, never a
    guess)."""
    if a.scenario != "buy":
        return rent if rent is not None else math.nan
    if capex_usd is None or power_w is None:
        return math.nan
    return buy_usd_per_device_hour(capex_usd, power_w, a)


OVERLOADED = int(Reason.OVERLOADED)

METRIC_NAMES = (
    "ttft_s",
    "tpot_s",
    "e2e_latency_s",
    "throughput_tokens_per_s",
    "throughput_tokens_per_s_per_device",
    "tokens_per_s_per_user",
    "memory_per_device_bytes",
    "devices",
    "usd_per_hour",
    "usd_per_million_tokens",
    "joules_per_token",
    "max_request_rate",
)
"""The canonical metric names (DESIGN.md §4 contract), in display order: fields of ``ServingMetrics``."""


@dataclass(frozen=True)
class ServingMetrics:
    """The canonical metrics (DESIGN.md §4), SI units, floats or arrays."""

    ttft_s: Any
    tpot_s: Any
    e2e_latency_s: Any
    throughput_tokens_per_s: Any
    """Output tokens/s of the deployment: replicas x B x G over the batch's whole latency (prefill included)."""
    decode_throughput_tokens_per_s: Any
    """Output tokens/s while decoding: replicas x B / TPOT."""
    throughput_tokens_per_s_per_device: Any
    tokens_per_s_per_user: Any
    memory_per_device_bytes: Any
    devices: Any
    usd_per_hour: Any
    usd_per_million_tokens: Any
    joules_per_token: Any
    max_request_rate: Any
    """Requests/s the deployment sustains with TTFT and TPOT within the SLOs (``Candidates.slo_*``): a static
    batch completes replicas B requests per end-to-end latency when its TTFT and TPOT meet them, else none;
    continuous batching: ``continuous.max_rate``."""
    feasible: Any
    reason: Any


def serving_metrics(
    ttft: Any,
    tpot: Any,
    B: Any,
    G: Any,
    replicas: Any,
    devices_per_replica: Any,
    memory_per_device: Any,
    usd_per_device_hour: Any,
    power_w: Any,
    power_fraction: Any,
    reason: Any,
    slo_ttft_s: Any = np.inf,
    slo_tpot_s: Any = np.inf,
    padding: Any = 0.0,
) -> ServingMetrics:
    """e2e = TTFT + (G - 1) TPOT; throughput = replicas B G / (e2e + padding TPOT), a batch holding its slots
    for ``padding`` steps past a request's G tokens (a static batch of varying outputs runs to its longest;
    decode throughput counts the tokens delivered, a share (G - 1) / (G - 1 + padding) of the slots' steps);
    devices = replicas D pp; $/hour = devices x $/device-hour; $/M tokens = $/hour / (throughput x 3600) x a
    million; J/token = devices x power x power fraction / throughput, with each device's power including its
    share of the host (no PUE); max request rate = replicas B / (e2e + padding TPOT) within the SLOs, else
    0."""
    e2e = ttft + (G - 1.0) * tpot
    batch_s = e2e + padding * tpot
    with np.errstate(divide="ignore", invalid="ignore"):  # a candidate that cannot run: unknown stays unknown
        useful = np.where(padding > 0, (G - 1.0) / (G - 1.0 + padding), 1.0)  # decode steps delivering a token
        throughput = replicas * B * G / batch_s
        devices = replicas * devices_per_replica
        usd_per_hour = devices * usd_per_device_hour
        return ServingMetrics(
            ttft_s=ttft,
            tpot_s=tpot,
            e2e_latency_s=e2e,
            throughput_tokens_per_s=throughput,
            decode_throughput_tokens_per_s=replicas * B / tpot * useful,
            throughput_tokens_per_s_per_device=throughput / devices,
            tokens_per_s_per_user=1.0 / tpot,
            memory_per_device_bytes=memory_per_device,
            devices=devices,
            usd_per_hour=usd_per_hour,
            usd_per_million_tokens=usd_per_hour / (throughput * units.SECONDS_PER_HOUR) * units.TOKENS_PER_MILLION,
            joules_per_token=devices * power_w * power_fraction / throughput,
            max_request_rate=np.where((ttft <= slo_ttft_s) & (tpot <= slo_tpot_s), replicas * B / batch_s, 0.0),
            feasible=reason == 0,
            reason=reason,
        )


def metrics_for(
    c: Any, devices_per_replica: Any, ttft: Any, tpot: Any, memory_per_device: Any, reason: Any
) -> ServingMetrics:
    """``serving_metrics`` of candidates (``Candidates``): a request's own G is ``gen_len - gen_padding``
    (the mean output; a static batch runs ``gen_len`` steps). A static batch offered a request rate above the
    replicas x B requests it completes per batch is overloaded (continuous batching checks its own
    capacity)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        capacity = c.replicas * c.batch / (ttft + (c.gen_len - 1.0) * tpot)
    static = ~(np.asarray(c.continuous) | np.asarray(c.disaggregated))
    overloaded = (reason == 0) & static & (c.request_rate > capacity)
    reason = np.where(overloaded, OVERLOADED, reason).astype(np.int8)
    return serving_metrics(
        ttft,
        tpot,
        c.batch,
        c.gen_len - c.gen_padding,
        c.replicas,
        devices_per_replica,
        memory_per_device,
        c.usd_per_device_hour,
        c.power_w,
        c.power_fraction,
        reason,
        c.slo_ttft_s,
        c.slo_tpot_s,
        c.gen_padding,
    )
