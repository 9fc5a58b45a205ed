"""What a buyer asks: a model, a workload, a load, SLOs, the hardware to consider, how it is paid for, limits.

Validated once, here (``InputError`` naming the field and what was expected); every later step trusts it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from dse.catalog import CALIBRATED
from dse.costmodel import CHUNK_TOKENS, MAX_UTILIZATION, CostAssumptions
from dse.errors import InputError
from dse.scoring import Percentile, Scheduler

Scenario = Literal["rent-on-demand", "rent-reserved", "buy"]
SCENARIOS: tuple[Scenario, ...] = ("rent-on-demand", "rent-reserved", "buy")

_COSTS = CostAssumptions()
"""The defaults of every cost assumption, stated (with their sources) once, in ``CostAssumptions``."""

DEFAULT_QUANTS = ("bf16", "fp8", "int8")
"""Schemes tried by default: 16-bit and the 8-bit formats serving engines ship as near-lossless. 4-bit schemes
change a model's outputs more; a buyer who accepts them names them (``quants``)."""
DEFAULT_KV = ("default", "fp8")
"""KV-cache formats tried by default: the scheme's own, and FP8 (vLLM's and TensorRT-LLM's option)."""


class Request(BaseModel):
    """A recommendation request (``dse recommend`` flags, ``dse.recommend`` keywords). SI units: seconds,
    requests/s; money in USD."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)

    model: str = Field(min_length=1)
    prompt_tokens: PositiveInt
    output_tokens: PositiveInt
    rate: PositiveFloat = Field(description="average requests/s")
    peak_factor: float = Field(
        default=1.0, ge=1.0, description="peak load over the average; the fleet is sized for the peak"
    )
    headroom: float = Field(default=0.0, ge=0.0, lt=10.0, description="spare capacity over the peak, e.g. 0.2 = 20 %")
    ttft_s: PositiveFloat | None = None
    tpot_s: PositiveFloat | None = None
    scheduler: Scheduler = Field(
        default="continuous",
        description="static: a replica serves static batches (every prompt of a batch prefilled first); "
        "continuous: continuous batching with chunked prefill, a replica's capacity the request rate it "
        "sustains with the SLOs met at slo_percentile",
    )
    slo_percentile: Percentile = Field(
        default=90, description="continuous: the percentile of TTFT and TPOT the SLOs hold at"
    )
    chunk_tokens: PositiveInt = Field(
        default=int(CHUNK_TOKENS), description="continuous: tokens an engine step may carry (the token budget)"
    )
    max_utilization: float = Field(
        default=MAX_UTILIZATION,
        gt=0.0,
        le=1.0,
        description="continuous: the most of its every-slot-busy rate a replica is sized to carry (its queue "
        "grows as 1 / (1 - utilisation))",
    )
    hardware: tuple[str, ...] | None = Field(default=None, min_length=1)
    quants: tuple[str, ...] = Field(default=DEFAULT_QUANTS, min_length=1)
    kv: tuple[str, ...] = Field(default=DEFAULT_KV, min_length=1)
    pricing: Scenario = "rent-on-demand"
    reserved_term: Literal["reserved-1y", "reserved-3y"] = "reserved-1y"
    horizon_years: PositiveFloat = _COSTS.amortization_years
    prices: str | None = Field(default=None, description="a price sheet over the catalog's prices")
    usd_per_kwh: PositiveFloat = _COSTS.usd_per_kwh
    pue: float = Field(default=_COSTS.pue, ge=1.0)
    ops_share_per_year: float = Field(
        default=_COSTS.ops_share_per_year, ge=0.0, le=1.0, description="operations a year / purchase"
    )
    budget_usd_per_month: PositiveFloat | None = None
    max_power_kw: PositiveFloat | None = None
    max_devices: PositiveInt | None = None
    profile: str = CALIBRATED
    top: PositiveInt = 5
    seed: int = 0
    samples: int = Field(default=2000, ge=0, le=1_000_000, description="Monte-Carlo draws (0: none)")
    workload_band: float = Field(default=0.2, ge=0.0, lt=1.0, description="prompt and output lengths +- this share")
    load_band: float = Field(default=0.2, ge=0.0, lt=1.0, description="the load +- this share")
    model_error: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="predicted speed +- this share (uniform); None: each option's measured error spread, the "
        "p10-p90 of its profile's held-out throughput residuals",
    )

    @property
    def sizing_rate(self) -> float:
        """Requests/s the fleet must serve: average x peak factor x (1 + headroom)."""
        return self.rate * self.peak_factor * (1.0 + self.headroom)


def make_request(**fields: object) -> Request:
    """A validated ``Request``; a bad value raises ``InputError`` naming the field and what was expected."""
    try:
        return Request(**fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or None
        got = error.get("input")
        raise InputError(f"{error['msg']} (got {got!r})", field=field) from None
