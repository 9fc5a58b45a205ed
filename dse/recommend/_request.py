"""What a buyer asks: a model, a workload, a load, SLOs, the hardware to consider, how it is paid for, limits.

Validated once, here (``InputError`` naming the field and what was expected); every later step trusts it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from dse import units
from dse.catalog import CALIBRATED, load_model, suggestion
from dse.costmodel import CHUNK_TOKENS, MAX_UTILIZATION, SPEC_ACCEPTANCE, CostAssumptions
from dse.costmodel.physics import lengths as length_laws
from dse.errors import InputError
from dse.scoring import Percentile, Scheduler, architecture, draft_figures, read_histogram
from dse.space import LengthLaw, LengthLawField, Seed, Whole, beyond_context, law_lengths

Scenario = Literal["rent-on-demand", "rent-reserved", "buy"]
SCENARIOS: tuple[Scenario, ...] = ("rent-on-demand", "rent-reserved", "buy")

_COSTS = CostAssumptions()
"""The defaults of every cost assumption, stated (with their sources) once, in ``CostAssumptions``."""

DEFAULT_QUANTS = ("bf16", "fp8", "int8")
"""Schemes tried by default: 16-bit and the 8-bit formats serving engines ship as near-lossless. 4-bit schemes
change a model's outputs more; a buyer who accepts them names them (``quants``)."""
DEFAULT_KV = ("default", "fp8")
"""KV-cache formats tried by default: the scheme's own, and FP8 (vLLM's and TensorRT-LLM's option)."""
DEFAULT_SPLITS = ((1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (2, 3), (3, 2))
"""(prefill, decode) instances of a disaggregated group tried with ``disaggregate``: from three decode instances a
prefill one (short prompts, long answers) to three prefill instances a decode one (long prompts)."""
DEFAULT_SPEC_TOKENS = (0, 1, 3)
"""Draft tokens per verification step tried where a draft is named and ``spec_tokens`` is not: none, one
(DeepSeek-V3's multi-token prediction proposes one) and three (EAGLE-style heads propose a few)."""
MAX_SPEC_TOKENS = 16
"""The most draft tokens per verification step accepted (engines propose a handful: EAGLE up to ~8)."""
MAX_SIZING_RATE = 2**53 / (units.HOURS_PER_MONTH * units.SECONDS_PER_HOUR)
"""The largest load a fleet is sized for, requests/s (about 3.4e9): 2**53 requests a month, the largest count a
float holds to the unit. Past it the answer's whole numbers (requests and tokens a month, replicas, devices) lose
units and then overflow: a fleet of 1e300 requests/s read as $0 per million tokens."""


class Request(BaseModel):
    """A recommendation request (``dse recommend`` flags, ``dse.recommend`` keywords). SI units: seconds,
    requests/s; money in USD."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)

    model: str = Field(min_length=1)
    prompt_tokens: LengthLawField | None = Field(
        default=None,
        description="prompt tokens per request: a number, or a law (uniform: min, max; lognormal: mean, sigma, "
        "max), as a space's workload takes them",
    )
    output_tokens: LengthLawField | None = Field(
        default=None, description="generated tokens per request: a number, or a law (as prompt_tokens)"
    )
    lengths: str | None = Field(
        default=None,
        min_length=1,
        description="instead of prompt_tokens and output_tokens: a CSV of observed requests (prompt_tokens, "
        "output_tokens and an optional count column), the traffic's lengths as they vary",
    )
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
    chunk_tokens: Whole = Field(
        default=int(CHUNK_TOKENS), description="continuous: tokens an engine step may carry (the token budget)"
    )
    max_utilization: float = Field(
        default=MAX_UTILIZATION,
        gt=0.0,
        le=1.0,
        description="continuous: the most of its every-slot-busy rate a replica is sized to carry (its queue "
        "grows as 1 / (1 - utilisation))",
    )
    prefix_hit_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="share of each prompt served from a prefix cache (a shared system prompt, earlier turns)",
    )
    draft: str | None = Field(
        default=None,
        min_length=1,
        description="speculative decoding's draft: mtp (the model's own multi-token-prediction head) or a draft "
        "model id or path; None: no speculation",
    )
    spec_tokens: tuple[int, ...] | None = Field(
        default=None,
        min_length=1,
        description="draft tokens per verification step to try (0: no speculation); default with a draft: "
        "DEFAULT_SPEC_TOKENS",
    )
    spec_acceptance: float = Field(
        default=SPEC_ACCEPTANCE,
        ge=0.0,
        le=1.0,
        description="speculative decoding: probability each draft token is accepted",
    )
    disaggregate: bool = Field(
        default=False,
        description="continuous: also try disaggregated prefill and decode, each configuration as groups of "
        "prefill and decode instances at the ratios of pool_splits (DistServe, Splitwise)",
    )
    pool_splits: tuple[tuple[Whole, Whole], ...] = Field(
        default=DEFAULT_SPLITS, min_length=1, description="(prefill, decode) instances of a group, to try"
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
    max_devices: Whole | None = None
    profile: str = CALIBRATED
    top: Whole = 5
    seed: Seed = Field(default=0, description="seed of the robustness draws")
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

    @field_validator("prompt_tokens", "output_tokens", mode="before")
    @classmethod
    def _plain_numbers(cls, value: object) -> object:
        """A law's numpy numbers (a notebook's) as Python's, which the law's strict fields take."""
        if isinstance(value, dict):
            return {k: v.item() if isinstance(v, np.generic) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_workload(self) -> Self:
        fixed = (self.prompt_tokens, self.output_tokens)
        if self.lengths is None and None in fixed:
            raise ValueError("give prompt_tokens and output_tokens, or lengths (a CSV of observed requests)")
        if self.lengths is not None and fixed != (None, None):
            raise ValueError("give lengths (a CSV of observed requests) or prompt_tokens and output_tokens, not both")
        return self

    @model_validator(mode="after")
    def _representable_load(self) -> Self:
        if self.sizing_rate <= MAX_SIZING_RATE:
            return self
        most = f"expected at most {MAX_SIZING_RATE:.3g} requests/s, the largest load the answer can represent"
        if self.rate > MAX_SIZING_RATE:
            raise ValueError(f"rate: {most} (got {self.rate:g})")
        raise ValueError(
            f"peak_factor: the fleet is sized for rate x peak_factor x (1 + headroom) = {self.sizing_rate:.3g} "
            f"requests/s; {most}"
        )

    @model_validator(mode="after")
    def _speculation(self) -> Self:
        if self.spec_tokens is not None and any(not 0 <= k <= MAX_SPEC_TOKENS for k in self.spec_tokens):
            raise ValueError(f"spec_tokens: expected whole numbers from 0 to {MAX_SPEC_TOKENS}")
        if self.draft is None and any(self.tried_spec_tokens):
            raise ValueError("spec_tokens: draft tokens need a draft (draft: mtp, or a draft model id)")
        return self

    @model_validator(mode="after")
    def _pools(self) -> Self:
        if self.disaggregate and self.scheduler != "continuous":
            raise ValueError("disaggregate: disaggregated pools serve by continuous batching (scheduler: continuous)")
        if not self.disaggregate and self.pool_splits != DEFAULT_SPLITS:
            raise ValueError("pool_splits: splits are tried with disaggregate=True (they were given without it)")
        return self

    @property
    def serving_modes(self) -> tuple[tuple[str, int, int], ...]:
        """(mode, instances, prefill instances) of a unit the fleet is counted in: one aggregated replica, and
        with ``disaggregate`` a group per ``pool_splits`` ratio."""
        aggregated = (("aggregated", 1, 1),)
        if not self.disaggregate:
            return aggregated
        return aggregated + tuple(("disaggregated", x + y, x) for x, y in dict.fromkeys(self.pool_splits))

    @property
    def tried_spec_tokens(self) -> tuple[int, ...]:
        """Draft tokens per verification step tried: none, and ``spec_tokens`` (with a draft, by default
        ``DEFAULT_SPEC_TOKENS``): speculation is chosen only where it pays."""
        if self.spec_tokens is not None:
            return tuple(sorted({0, *self.spec_tokens}))
        return DEFAULT_SPEC_TOKENS if self.draft is not None else (0,)

    @property
    def mean_prompt_tokens(self) -> float:
        """Prompt tokens a request brings on average (the fixed length, the law's mean or the observed one)."""
        return self.traffic.prompts.mean

    @property
    def mean_output_tokens(self) -> float:
        """Tokens a request generates on average (the fixed length, the law's mean or the observed one)."""
        return self.traffic.outputs.mean

    @property
    def sizing_rate(self) -> float:
        """Requests/s the fleet must serve: average x peak factor x (1 + headroom)."""
        return self.rate * self.peak_factor * (1.0 + self.headroom)

    @property
    def traffic(self) -> Traffic:
        """The request's prompt and output lengths: fixed, drawn from laws, or the observed ones of ``lengths``."""
        if self.lengths is None:
            assert self.prompt_tokens is not None and self.output_tokens is not None
            return law_traffic(self.prompt_tokens, self.output_tokens, self.model)
        return read_traffic(self.lengths, self.model)


@dataclass(frozen=True)
class Traffic:
    """Prompt and output lengths (``physics.lengths``), their covariance (tokens²) and the requests observed."""

    prompts: length_laws.Lengths
    outputs: length_laws.Lengths
    covariance: float
    requests: float

    @property
    def varies(self) -> bool:
        return not (self.prompts.fixed and self.outputs.fixed)


def read_traffic(path: str, model: str) -> Traffic:
    """The lengths of the requests in the CSV at ``path`` (errors name the file, line and column); the longest
    request must fit in ``model``'s context. Read once per version of the file (its modification time)."""
    try:
        version = Path(path).stat().st_mtime_ns
    except OSError:
        version = None  # read_histogram says what is wrong
    return _read_traffic(path, model, version)


@functools.lru_cache(maxsize=32)
def law_traffic(prompts: LengthLaw, outputs: LengthLaw, model: str) -> Traffic:
    """The lengths of numbers of tokens or laws (``dse.space.law_lengths``); the longest request must fit in
    ``model``'s context (``dse.space.beyond_context`` where they vary; the error names the longer law): one
    request's lengths, which no hardware serves beyond it, are an input error here, not a reason per
    hardware."""
    traffic = Traffic(law_lengths(prompts), law_lengths(outputs), 0.0, 1.0)
    context = architecture(load_model(model)).max_position_embeddings
    if not traffic.varies:
        longest = traffic.prompts.largest + traffic.outputs.largest
        if longest > context:
            message = (
                f"a request of {longest:,.0f} tokens (prompt {traffic.prompts.largest:,.0f} + output "
                f"{traffic.outputs.largest:,.0f}) exceeds {model}'s context of {context:,} tokens"
            )
            field = "prompt_tokens" if traffic.prompts.largest >= traffic.outputs.largest else "output_tokens"
            raise InputError(message, field=field)
        return traffic
    why = beyond_context(traffic.prompts, traffic.outputs, context, model)
    if why is not None:
        laws = {"prompt_tokens": traffic.prompts, "output_tokens": traffic.outputs}
        field = max((name for name, law in laws.items() if not law.fixed), key=lambda name: laws[name].largest)
        raise InputError(why, field=field)
    return traffic


@functools.lru_cache(maxsize=8)
def _read_traffic(path: str, model: str, version: int | None) -> Traffic:
    (prompts, outputs), counts = read_histogram(Path(path), ["prompt_tokens", "output_tokens"], "lengths")
    context = architecture(load_model(model)).max_position_embeddings
    longest = float(np.max(prompts + outputs))
    if longest > context:
        message = f"a request of {longest:,.0f} tokens exceeds the model's context of {context:,}"
        raise InputError(message, source=path, field="lengths")
    prompt_lengths, output_lengths, covariance = length_laws.paired(prompts, outputs, counts)
    return Traffic(prompt_lengths, output_lengths, covariance, float(np.sum(counts)))


def make_request(**fields: object) -> Request:
    """A validated ``Request``; a bad value raises ``InputError`` naming the field and what was expected."""
    for name in fields:  # a keyword misspelt, or singular for a plural (quant: quants)
        if name not in Request.model_fields:
            hint = suggestion(name, Request.model_fields) or f" (expected one of {', '.join(Request.model_fields)})"
            raise InputError(f"unknown keyword{hint}", field=name)
    given = {name for name in ("prompt_tokens", "output_tokens", "lengths") if fields.get(name) is not None}
    if "lengths" not in given and len(given) < 2:
        missing = "output_tokens" if "prompt_tokens" in given else "prompt_tokens"
        raise InputError("give prompt_tokens and output_tokens, or lengths (a CSV of observed requests)", field=missing)
    try:
        request = Request(**fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p).removeprefix("tag:") for p in error["loc"])  # a law's kind: tag:uniform
        if not field:  # the model's checks: the workload (lengths), speculation (spec_tokens: ...)
            message = error["msg"].removeprefix("Value error, ")
            named, _, rest = message.partition(": ")
            if named in ("spec_tokens", "disaggregate", "pool_splits", "rate", "peak_factor"):
                raise InputError(rest, field=named) from None
            raise InputError(message, field="lengths") from None
        got = error.get("input")
        raise InputError(f"{error['msg']} (got {got!r})", field=field) from None
    request.traffic  # reads and checks the lengths (a file, or laws) now, not midway through the search  # noqa: B018
    if request.draft is not None:  # the draft is known and shares the model's tokenizer
        draft_figures(load_model(request.model), request.draft)
    return request
