"""Serving metrics of a static batch, its cost and its energy (docs/cost-model.md §4, §8, §11.7).

A replica serves a static batch of B sequences: prefilled together (TTFT), then G - 1 decode steps at the
mean step time TPOT. ``replicas`` independent copies multiply throughput, devices, cost and power, not latency.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

from dse import units

Pricing = Literal["rent", "buy"]
PRICINGS: tuple[str, ...] = typing.get_args(Pricing)


@dataclass(frozen=True)
class CostAssumptions:
    """Assumptions behind $/hour and J/token, with their defaults and why.

    - ``amortization_years`` 3: straight-line depreciation period commonly used for accelerators in TCO analyses;
    - ``usd_per_kwh`` 0.08: U.S. industrial average retail price of electricity (EIA Electric Power Monthly,
      2024, ~8 cents/kWh);
    - ``pue`` 1.3: data-centre power usage effectiveness, between hyperscale (~1.1) and the industry average
      (~1.5, Uptime Institute 2024 survey);
    - ``power_fraction`` 1.0: average draw as a share of TDP; 1.0 is the conservative bound for a busy server.
    """

    pricing: Pricing = "rent"
    amortization_years: float = 3.0
    usd_per_kwh: float = 0.08
    pue: float = 1.3
    power_fraction: float = 1.0


def usd_per_device_hour(
    cloud_usd_per_hour: float | None, purchase_usd: float | None, tdp_w: float | None, a: CostAssumptions
) -> float:
    """$ per device-hour. Rent: the cloud price. Buy: the purchase amortised straight-line over
    ``amortization_years`` plus electricity at TDP x power fraction x PUE x $/kWh. NaN when the catalog does
    not know a figure it needs (unknown stays unknown, never a guess)."""
    if a.pricing == "rent":
        return cloud_usd_per_hour if cloud_usd_per_hour is not None else math.nan
    if purchase_usd is None or tdp_w is None:
        return math.nan
    capex = purchase_usd / (a.amortization_years * units.HOURS_PER_YEAR)
    energy_kwh = tdp_w * a.power_fraction * a.pue * units.SECONDS_PER_HOUR / units.JOULES_PER_KWH
    return capex + energy_kwh * a.usd_per_kwh


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
    tdp_w: Any,
    power_fraction: Any,
    reason: Any,
) -> ServingMetrics:
    """e2e = TTFT + (G - 1) TPOT; throughput = replicas B G / e2e; devices = replicas D pp; $/hour = devices x
    $/device-hour; $/M tokens = $/hour / (throughput x 3600) x a million; J/token = devices x TDP x power fraction
    / throughput (device level, no PUE)."""
    e2e = ttft + (G - 1.0) * tpot
    throughput = replicas * B * G / e2e
    devices = replicas * devices_per_replica
    usd_per_hour = devices * usd_per_device_hour
    return ServingMetrics(
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_latency_s=e2e,
        throughput_tokens_per_s=throughput,
        decode_throughput_tokens_per_s=replicas * B / tpot,
        throughput_tokens_per_s_per_device=throughput / devices,
        tokens_per_s_per_user=1.0 / tpot,
        memory_per_device_bytes=memory_per_device,
        devices=devices,
        usd_per_hour=usd_per_hour,
        usd_per_million_tokens=usd_per_hour / (throughput * units.SECONDS_PER_HOUR) * units.TOKENS_PER_MILLION,
        joules_per_token=devices * tdp_w * power_fraction / throughput,
        feasible=reason == 0,
        reason=reason,
    )


def metrics_for(
    c: Any, devices_per_replica: Any, ttft: Any, tpot: Any, memory_per_device: Any, reason: Any
) -> ServingMetrics:
    """``serving_metrics`` of candidates (``Candidates``)."""
    return serving_metrics(
        ttft,
        tpot,
        c.batch,
        c.gen_len,
        c.replicas,
        devices_per_replica,
        memory_per_device,
        c.usd_per_device_hour,
        c.tdp_w,
        c.power_fraction,
        reason,
    )
