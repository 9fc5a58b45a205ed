"""Dollars per device-hour: rent (cloud price) or buy (amortised purchase + electricity)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from dse import units
from dse.catalog import HardwareSpec

Pricing = Literal["rent", "buy"]


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


def usd_per_device_hour(hw: HardwareSpec, a: CostAssumptions) -> float:
    """$ per device-hour; NaN when the catalog does not know the price (or TDP, for ``buy``)."""
    if a.pricing == "rent":
        return hw.cloud_usd_per_hour if hw.cloud_usd_per_hour is not None else math.nan
    if hw.purchase_usd is None or hw.tdp_w is None:
        return math.nan
    capex = hw.purchase_usd / (a.amortization_years * units.HOURS_PER_YEAR)
    energy_kwh = hw.tdp_w * a.power_fraction * a.pue * units.SECONDS_PER_HOUR / units.JOULES_PER_KWH
    return capex + energy_kwh * a.usd_per_kwh
