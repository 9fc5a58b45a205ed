"""The search-space YAML: what a user asks (model, workload, SLOs, choices, objectives) and how to search it."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveFloat,
    Tag,
    field_validator,
    model_validator,
)

from dse.catalog import CALIBRATED
from dse.costmodel import (
    CHUNK_TOKENS,
    MAX_NUM_SEQS,
    MAX_TOKENS,
    MAX_WHOLE,
    SPEC_ACCEPTANCE,
    CostAssumptions,
    Pricing,
)
from dse.errors import InputError

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
Whole = Annotated[int, Field(gt=0, le=MAX_WHOLE)]
"""A whole number a space may give (``MAX_WHOLE`` at most: exact in float64)."""
Tokens = Annotated[int, Field(gt=0, le=MAX_TOKENS)]
"""A prompt's or an output's tokens (``MAX_TOKENS`` at most)."""

EngineKind = Literal["auto", "exhaustive", "optuna"]
"""The search engines a space (or ``dse run --engine``) may ask for (``dse.search.ENGINES``)."""
ExecutorKind = Literal["local", "ray"]
"""Where candidates are evaluated (``dse.execute.EXECUTORS``)."""
KeepKind = Literal["all", "feasible", "front"]
"""Which evaluated candidates trials.parquet keeps (``all``: every one; ``front``: bounded memory at any size)."""

MetricName = Literal[
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
]
"""Canonical metric names (DESIGN.md §4)."""

MAXIMIZED: frozenset[str] = frozenset(
    {"throughput_tokens_per_s", "throughput_tokens_per_s_per_device", "tokens_per_s_per_user", "max_request_rate"}
)
"""Metrics where more is better; every other canonical metric is minimised by default."""


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
"""A number from 0 to 1."""

MAX_SEED = 2**32 - 1
"""The largest seed the samplers take (numpy's and Optuna's random generators: 0 to 2**32 - 1)."""
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description=f"a whole number from 0 to {MAX_SEED}")]
"""A random generator's seed."""


def check_seed(seed: int, field: str = "seed") -> int:
    """``seed``, when the random generators take it; else an ``InputError`` naming ``field``."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"expected a whole number from 0 to {MAX_SEED} (2**32 - 1), got {seed!r}", field=field)
    return int(seed)


class UniformLengthsRecord(BaseModel):
    """Lengths spread evenly from ``min`` to ``max`` tokens."""

    model_config = _STRICT

    distribution: Literal["uniform"]
    min: Tokens
    max: Tokens

    @model_validator(mode="after")
    def _ordered(self) -> UniformLengthsRecord:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        return self

    def label(self) -> str:
        return f"uniform {self.min}-{self.max}"


class LognormalLengthsRecord(BaseModel):
    """Lognormal lengths: ``mean`` tokens, ``sigma`` the standard deviation of ln(length); lengths above
    ``max`` are cut to it."""

    model_config = _STRICT

    distribution: Literal["lognormal"]
    mean: float = Field(gt=0.0, le=MAX_TOKENS)
    sigma: float = Field(ge=0.0, le=3.0, description="standard deviation of ln(length)")
    max: Tokens | None = Field(default=None, description="longest length: longer ones are cut to it")

    @model_validator(mode="after")
    def _max_above_median(self) -> LognormalLengthsRecord:
        median = self.mean * math.exp(-(self.sigma**2) / 2.0)  # a lognormal's, given its mean and σ
        if self.max is not None and self.max < median:
            raise ValueError(
                f"max ({self.max}) is below the median ({median:,.0f} tokens for mean {self.mean:g} and sigma"
                f" {self.sigma:g}): most lengths would be cut to it"
            )
        return self

    def label(self) -> str:
        return f"lognormal (mean {self.mean:g}, σ {self.sigma:g}" + (f", max {self.max}" if self.max else "") + ")"


class HistogramLengthsRecord(BaseModel):
    """Lengths observed in traffic: a CSV file with a header, one request per row (or a ``count`` column),
    the lengths in ``column`` (default: the workload key, ``prompt_tokens`` or ``output_tokens``). When both
    keys name the same file, its rows pair each prompt with its output."""

    model_config = _STRICT

    distribution: Literal["histogram"]
    path: str = Field(description="CSV file, relative to the space file")
    column: str | None = None

    def label(self) -> str:
        return f"histogram of {self.path}"


def _lengths_kind(value: Any, kinds: tuple[str, ...] = ("uniform", "lognormal", "histogram")) -> str | None:
    """``Lengths``' tag of a value: a number's, a distribution's among ``kinds`` (None: neither)."""
    if isinstance(value, dict | BaseModel):
        kind = value.get("distribution") if isinstance(value, dict) else getattr(value, "distribution", None)
        return f"tag:{kind}" if kind in kinds else None
    return "tag:number"


Lengths = Annotated[
    Annotated[Tokens, Tag("tag:number")]
    | Annotated[UniformLengthsRecord, Tag("tag:uniform")]
    | Annotated[LognormalLengthsRecord, Tag("tag:lognormal")]
    | Annotated[HistogramLengthsRecord, Tag("tag:histogram")],
    Discriminator(
        _lengths_kind,
        custom_error_type="lengths",
        custom_error_message="expected a number of tokens, or a distribution: uniform, lognormal or histogram",
    ),
]
"""Tokens per request: a number, or lengths that vary (docs/cost-model.md §19)."""


def _law_kind(value: Any) -> str | None:
    """``LengthLawField``'s tag of a value: a number's, a law's (None: neither, a histogram included)."""
    return _lengths_kind(value, ("uniform", "lognormal"))


LengthLawField = Annotated[
    Annotated[Tokens, Tag("tag:number")]
    | Annotated[UniformLengthsRecord, Tag("tag:uniform")]
    | Annotated[LognormalLengthsRecord, Tag("tag:lognormal")],
    Discriminator(
        _law_kind,
        custom_error_type="lengths",
        custom_error_message="expected a number of tokens, or a law: {distribution: uniform, min, max} or "
        "{distribution: lognormal, mean, sigma, max (optional)}",
    ),
]
"""Tokens per request as a number or a law, without a file (``dse recommend``'s lengths)."""


def lengths_label(value: int | BaseModel) -> str:
    """A workload length as text: the number, or the distribution."""
    return str(value) if isinstance(value, int) else value.label()  # type: ignore[attr-defined]


class WorkloadRecord(BaseModel):
    """The traffic: tokens per request, how much of each prompt a prefix cache holds, and how evenly a
    mixture-of-experts router spreads tokens. One workload per space; ``dse sweep`` compares several."""

    model_config = _STRICT

    prompt_tokens: Lengths = Field(description="tokens per prompt: a number or a distribution")
    output_tokens: Lengths = Field(description="tokens per output: a number or a distribution")
    prefix_hit_rate: Fraction = Field(
        default=0.0, description="share of each prompt already in the prefix cache (those tokens skip prefill)"
    )
    expert_imbalance: float = Field(
        default=1.0,
        ge=1.0,
        description="the router's skew beyond chance, multiplying uniform routing's imbalance (1: as even as chance)",
    )
    spec_acceptance: Fraction = Field(
        default=SPEC_ACCEPTANCE,
        description="speculative decoding: probability each draft token is accepted (depends on the draft and data)",
    )
    request_rate: PositiveFloat | None = Field(
        default=None, description="continuous batching: Poisson arrivals, requests/s to the deployment"
    )
    concurrency: Whole | None = Field(
        default=None, description="continuous batching: a closed loop of this many requests in flight"
    )

    @model_validator(mode="after")
    def _one_load(self) -> WorkloadRecord:
        if self.request_rate is not None and self.concurrency is not None:
            raise ValueError("give request_rate or concurrency, not both")
        return self


class SLORecord(BaseModel):
    """Upper bounds a candidate must meet to be feasible (seconds)."""

    model_config = _STRICT

    ttft_s: PositiveFloat | None = None
    tpot_s: PositiveFloat | None = None
    e2e_latency_s: PositiveFloat | None = None
    percentile: Literal[50, 90, 99] | None = Field(
        default=None,
        description="continuous batching: the percentile of the load's TTFT and TPOT the SLOs bound (p50, p90, "
        "p99; default: the mean), and at which max_request_rate is found (default p90)",
    )
    confidence: float | None = Field(
        default=None,
        ge=0.5,
        le=0.9,
        description="share of real deployments that must meet the latency SLOs: the bounds apply to the "
        "prediction scaled by the profile's measured / predicted at that quantile (0.9: the p90), not to the "
        "point estimate",
    )


NAME_LENGTH = 200
"""Longest name a space or sweep may have: it names the run directory, with a timestamp (file systems take 255
bytes a name)."""

MAX_BATCH = 1_048_576
"""Largest batch a space may ask for (2**20 sequences at once: beyond any deployment, and a range up to it is
still a small array)."""
Batch = Annotated[int, Field(gt=0, le=MAX_BATCH)]


class IntRangeRecord(BaseModel):
    """Every integer from ``min`` to ``max`` (step ``step``); ``log`` asks samplers to search log-uniformly."""

    model_config = _STRICT

    min: Batch
    max: Batch
    step: Whole = 1
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRangeRecord:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        if self.log and self.step != 1:
            raise ValueError("log ranges take step 1")
        return self


class ChoicesRecord(BaseModel):
    """The dimensions of the space: every combination is a candidate."""

    model_config = _STRICT
    moved: ClassVar[dict[str, str]] = {
        "prefix_hit_rate": "the hit rate describes the traffic, not a deployment choice: write one number as"
        " workload.prefix_hit_rate, and compare several with a sweep over workload.prefix_hit_rate",
    }
    """Keys that used to be choices -> where they went (``dse.catalog._files.validate`` says so)."""

    hardware: list[str] = Field(min_length=1, description="accelerator or system ids, or hardware YAML paths")
    quant: list[str] = Field(default=["bf16"], min_length=1)
    kv: list[str | None] = Field(default=[None], min_length=1, description="KV formats; null = the scheme's own")
    flash_attention: list[bool] = Field(default=[True], min_length=1)
    tp: list[Whole] = Field(default=[1], min_length=1, description="tensor-parallel degrees")
    pp: list[Whole] = Field(default=[1], min_length=1, description="pipeline stages")
    ep: list[Whole] = Field(default=[1], min_length=1, description="expert-parallel degrees (MoE)")
    replicas: list[Whole] = Field(default=[1], min_length=1, description="independent copies")
    kv_block_size: list[Whole | None] = Field(
        default=[None], min_length=1, description="paged KV block (tokens); null = allocated token by token"
    )
    kv_offload: list[Fraction] = Field(default=[0.0], min_length=1, description="KV share in host memory")
    kv_budget: list[Whole | None] = Field(
        default=[None], min_length=1, description="KV tokens kept per sequence and layer; null = no eviction"
    )
    scheduler: list[Literal["static", "continuous"]] = Field(
        default=["static"],
        min_length=1,
        description="static: a batch prefilled together; continuous: continuous batching with chunked prefill",
    )
    max_num_seqs: list[Whole] = Field(
        default=[int(MAX_NUM_SEQS)], min_length=1, description="continuous: the most sequences an engine holds"
    )
    chunk_tokens: list[Whole] = Field(
        default=[int(CHUNK_TOKENS)], min_length=1, description="continuous: tokens one engine step may carry"
    )
    mode: list[Literal["aggregated", "disaggregated"]] = Field(
        default=["aggregated"],
        min_length=1,
        description="disaggregated: prefill_replicas of the replicas prefill, the others decode",
    )
    prefill_replicas: list[Whole] = Field(
        default=[1], min_length=1, description="disaggregated: the replicas that prefill"
    )
    prefill_hardware: list[str | None] = Field(
        default=[None],
        min_length=1,
        description="disaggregated: the prefill replicas' accelerator or system; null = the decode replicas'",
    )
    prefill_tp: list[Whole | None] = Field(
        default=[None], min_length=1, description="disaggregated: the prefill replicas' tp; null = tp"
    )
    prefill_pp: list[Whole | None] = Field(
        default=[None], min_length=1, description="disaggregated: the prefill replicas' pp; null = pp"
    )
    spec_tokens: list[NonNegativeInt] = Field(
        default=[0], min_length=1, description="speculative decoding: draft tokens per verification step"
    )
    draft: list[str | None] = Field(
        default=[None], min_length=1, description="speculative decoding's draft: mtp, or a draft model id or path"
    )
    batch: Annotated[
        Annotated[list[Batch], Tag("tag:list")] | Annotated[IntRangeRecord, Tag("tag:range")],
        Discriminator(lambda value: "tag:range" if isinstance(value, dict | IntRangeRecord) else "tag:list"),
    ] = Field(default=[1], description="a list of batch sizes, or {min, max, step, log}")

    @field_validator(
        "hardware",
        "quant",
        "kv",
        "flash_attention",
        "tp",
        "pp",
        "ep",
        "replicas",
        "kv_block_size",
        "kv_offload",
        "kv_budget",
        "scheduler",
        "max_num_seqs",
        "chunk_tokens",
        "mode",
        "prefill_replicas",
        "prefill_hardware",
        "prefill_tp",
        "prefill_pp",
        "spec_tokens",
        "draft",
    )
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"each value at most once; repeated: {', '.join(repeated)}")
        return values

    @model_validator(mode="after")
    def _drafts_for_speculation(self) -> ChoicesRecord:
        if any(g > 0 for g in self.spec_tokens) and None in self.draft:
            raise ValueError("spec_tokens above 0 need a draft: choices.draft without null (mtp or a model id)")
        return self

    @field_validator("batch")
    @classmethod
    def _non_empty_batch(cls, value: list[int] | IntRangeRecord) -> list[int] | IntRangeRecord:
        if isinstance(value, list) and not value:
            raise ValueError("expected at least one batch size")
        return value


class ObjectiveRecord(BaseModel):
    """One objective; the direction defaults to the metric's natural one."""

    model_config = _STRICT

    metric: MetricName
    direction: Literal["minimize", "maximize"] | None = None

    @property
    def maximize(self) -> bool:
        return (self.direction or ("maximize" if self.metric in MAXIMIZED else "minimize")) == "maximize"


class ConstraintRecord(BaseModel):
    """A bound on any canonical metric, beyond the SLOs."""

    model_config = _STRICT

    metric: MetricName
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> ConstraintRecord:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must be <= max ({self.max:g})")
        return self


class EngineRecord(BaseModel):
    """How to search: ``auto`` enumerates when the pruned space is at most ``exhaustive_limit`` candidates."""

    model_config = _STRICT

    kind: EngineKind = "auto"
    trials: Whole = 2000
    batch_size: Whole = Field(default=64, description="optuna trials asked and evaluated together")
    tpe_trials: Whole = Field(default=300, description="multivariate TPE for these trials, then NSGA-II")
    seed: Seed = 0
    exhaustive_limit: Whole = 5_000_000


class ExecutionRecord(BaseModel):
    """Where candidates are evaluated."""

    model_config = _STRICT

    executor: ExecutorKind = "local"
    chunk_size: Whole = 65536
    keep: KeepKind = Field(
        default="all", description="rows trials.parquet keeps: all, feasible, or front (bounded memory at any size)"
    )
    checkpoint_s: PositiveFloat = Field(
        default=10.0, description="seconds between saves of trials.parquet (an interruption loses at most this)"
    )
    ray_address: str | None = None


_COSTS = CostAssumptions()
"""The defaults of every cost assumption, stated (with their sources) once, in ``CostAssumptions``."""


class PricingRecord(BaseModel):
    """How devices are paid for, when more than the scenario is said (docs/recommend.md lists every
    assumption). ``sheet``: a price sheet over the catalog's prices, relative to the space file."""

    model_config = _STRICT

    scenario: Pricing = "rent-on-demand"
    sheet: str | None = Field(default=None, min_length=1)
    reserved_term: Literal["reserved-1y", "reserved-3y"] = "reserved-1y"
    horizon_years: PositiveFloat = _COSTS.amortization_years
    usd_per_kwh: PositiveFloat = _COSTS.usd_per_kwh
    pue: float = Field(default=_COSTS.pue, ge=1.0)
    ops_share_per_year: float = Field(default=_COSTS.ops_share_per_year, ge=0.0, le=1.0)


class SpaceRecord(BaseModel):
    """A whole search space as written in ``spaces/*.yaml``."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=NAME_LENGTH)
    description: str | None = None
    model: str
    workload: WorkloadRecord
    slo: SLORecord = SLORecord()
    choices: ChoicesRecord
    objectives: list[ObjectiveRecord] = Field(min_length=1)
    constraints: list[ConstraintRecord] = []
    profile: str = Field(
        default=CALIBRATED, description="a profile id or YAML path; calibrated: each target's fitted family profile"
    )
    pricing: Annotated[
        Annotated[Pricing, Tag("tag:scenario")] | Annotated[PricingRecord, Tag("tag:record")],
        Discriminator(lambda value: "tag:record" if isinstance(value, dict | PricingRecord) else "tag:scenario"),
    ] = Field(default="rent", description="a scenario, or {scenario, sheet, reserved_term, horizon_years, ...}")
    engine: EngineRecord = EngineRecord()
    execution: ExecutionRecord = ExecutionRecord()

    @model_validator(mode="after")
    def _distinct_objectives(self) -> SpaceRecord:
        metrics = [o.metric for o in self.objectives]
        repeated = sorted({m for m in metrics if metrics.count(m) > 1})
        if repeated:
            raise ValueError(f"objectives: each metric at most once; repeated: {', '.join(repeated)}")
        return self
