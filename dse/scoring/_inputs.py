"""The inputs of a candidate, declared once: name, default, what values are allowed, and the cost model's
field each becomes. ``dse.evaluate`` columns, ``dse.analyze`` keywords, ``dse analyze`` flags and a space's
choices and workload are all these names; a new knob is added here (tests check the API and the CLI list it).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dse.costmodel import CHUNK_TOKENS, MAX_NUM_SEQS, MAX_TOKENS, MAX_WHOLE, SPEC_ACCEPTANCE
from dse.errors import InputError

Kind = Literal[
    "id",
    "format",
    "bits",
    "whole",
    "optional_whole",
    "fraction",
    "at_least_one",
    "tokens",
    "flag",
    "choice",
    "optional_positive",
    "percentile",
    "count",
    "draft",
    "pool_id",
]
"""How an input's values are read and checked:

- ``id``: a catalog id or a path (resolved through the catalogs); ``format``: a scheme or KV-format id, or
  None; ``bits``: raw bits or None (both resolved with the quantization catalog into the formats' bits);
- ``whole``: a whole number from 1 to ``MAX_WHOLE``; ``optional_whole``: one, or None (``absent`` then);
  ``tokens``: a whole number from 1 to ``MAX_TOKENS`` (a prompt or an output);
- ``fraction``: a number from 0 to 1; ``at_least_one``: a finite number >= 1; ``flag``: True or False;
- ``choice``: one of the input's two ``options`` (the field: whether it is the second);
- ``optional_positive``: a finite number > 0, or None (``absent`` then);
- ``percentile``: 50, 90 or 99 (the field holds it as a quantile, 0.5..0.99);
- ``count``: a whole number >= 0; ``draft``: ``mtp``, a model id or path, or None (resolved per model);
- ``pool_id``: like ``id``, or None (the candidate's own ``hardware``)."""

Scheduler = Literal["static", "continuous"]
SCHEDULERS: tuple[Scheduler, ...] = typing.get_args(Scheduler)
"""How an engine batches: a static batch (the paper's and LLM-Viewer's view), or continuous batching with
chunked prefill (docs/cost-model.md §16)."""
MODES = ("aggregated", "disaggregated")
"""Prefill and decode on the same instances, or on separate pools (docs/cost-model.md §18)."""
Percentile = Literal[50, 90, 99]
PERCENTILES: tuple[Percentile, ...] = typing.get_args(Percentile)


@dataclass(frozen=True)
class Input:
    """One input of a candidate."""

    name: str
    kind: Kind
    default: Any
    help: str
    field: str | None = None
    """The ``Candidates`` field it becomes (None: resolved through the catalogs)."""
    absent: float | None = None
    """The field's value when an ``optional_whole`` input is None."""
    options: tuple[str, ...] = ()
    """A ``choice`` input's values."""


REQUIRED = ("model", "hardware")

INPUTS = (
    Input("model", "id", None, "Model catalog id, or a path to a model YAML or a Hugging Face config.json."),
    Input(
        "hardware",
        "id",
        None,
        "Accelerator id (h100-sxm: one device), system id (dgx-h100: a node type with its links, needed for "
        "--tp/--pp/--ep > 1; see `dse catalog systems`), or a path to a hardware or system YAML.",
    ),
    Input("quant", "format", None, "Quantization scheme id (see `dse catalog quant`). Default bf16."),
    Input("weight_bits", "bits", None, "Raw weight bits (exact, no scale overhead)."),
    Input("act_bits", "bits", None, "Raw activation bits."),
    Input("kv_bits", "bits", None, "Raw KV-cache bits."),
    Input("kv", "format", None, "KV-cache format id (fp16, bf16, fp8, int8, int4)."),
    Input("batch", "whole", 1, "Sequences decoded together.", "batch"),
    Input("prompt_len", "tokens", 1024, "Prompt tokens per sequence.", "prompt_len"),
    Input("gen_len", "tokens", 256, "Generated tokens per sequence.", "gen_len"),
    Input("flash_attention", "flag", True, "Fused attention kernels.", "flash"),
    Input("tp", "whole", 1, "Tensor-parallel degree: heads, FFN and vocabulary split over N devices.", "tp"),
    Input("pp", "whole", 1, "Pipeline-parallel degree: layers split into N stages.", "pp"),
    Input(
        "ep",
        "whole",
        1,
        "Expert-parallel degree (MoE): routed experts spread over N devices; N = k x tp makes attention "
        "data-parallel over k groups.",
        "ep",
    ),
    Input("replicas", "whole", 1, "Independent copies of the deployment (throughput and cost x N).", "replicas"),
    Input(
        "kv_block_size",
        "optional_whole",
        None,
        "Paged KV-cache block size in tokens (default: allocated token by token).",
        "kv_block_tokens",
        absent=1.0,
    ),
    Input(
        "prefix_hit_rate",
        "fraction",
        0.0,
        "Share of each prompt served from a prefix cache, 0..1 (skips that prefill work).",
        "prefix_hit_rate",
    ),
    Input(
        "kv_offload",
        "fraction",
        0.0,
        "Share of the KV cache kept in host memory, 0..1 (read over the host link).",
        "kv_offload_fraction",
    ),
    Input(
        "kv_budget",
        "optional_whole",
        None,
        "KV tokens kept per sequence and layer by an eviction policy (default: no eviction). Changes the "
        "model's outputs.",
        "kv_budget_tokens",
        absent=np.inf,
    ),
    Input(
        "expert_imbalance",
        "at_least_one",
        1.0,
        "The router's skew beyond chance, >= 1: it multiplies the imbalance uniform routing already has "
        "(the busiest expert-parallel device's routed tokens over the mean; 1 = a router as even as chance).",
        "expert_imbalance",
    ),
    Input(
        "scheduler",
        "choice",
        "static",
        "static: one batch of --batch sequences, prefilled together; continuous: continuous batching with "
        "chunked prefill (vLLM, SGLang, TensorRT-LLM), at the load below.",
        "continuous",
        options=SCHEDULERS,
    ),
    Input(
        "mode",
        "choice",
        "aggregated",
        "aggregated: every replica prefills and decodes; disaggregated: --prefill-replicas of the replicas "
        "prefill, the others decode, the KV cache crossing the system's link (continuous batching in each).",
        "disaggregated",
        options=MODES,
    ),
    Input(
        "prefill_replicas",
        "whole",
        1,
        "Disaggregated: how many of the replicas prefill (the rest decode).",
        "prefill_replicas",
    ),
    Input(
        "prefill_hardware",
        "pool_id",
        None,
        "Disaggregated: the prefill replicas' accelerator or system id (default: --hardware's); the decode "
        "replicas run --hardware.",
    ),
    Input(
        "prefill_tp",
        "optional_whole",
        None,
        "Disaggregated: the prefill replicas' tensor-parallel degree (default: --tp).",
        "prefill_tp",
        absent=np.nan,
    ),
    Input(
        "prefill_pp",
        "optional_whole",
        None,
        "Disaggregated: the prefill replicas' pipeline-parallel degree (default: --pp).",
        "prefill_pp",
        absent=np.nan,
    ),
    Input(
        "max_num_seqs",
        "whole",
        int(MAX_NUM_SEQS),
        "Continuous: the most sequences the engine holds at once (vLLM's max_num_seqs).",
        "max_num_seqs",
    ),
    Input(
        "chunk_tokens",
        "whole",
        int(CHUNK_TOKENS),
        "Continuous: tokens one engine step may carry, decode tokens and prompt chunks together "
        "(vLLM's max_num_batched_tokens, TensorRT-LLM's max_num_tokens).",
        "chunk_tokens",
    ),
    Input(
        "request_rate",
        "optional_positive",
        None,
        "Continuous: Poisson arrivals, requests/s to the whole deployment (default: every slot busy).",
        "request_rate",
        absent=np.nan,
    ),
    Input(
        "concurrency",
        "optional_whole",
        None,
        "Continuous: a closed loop of N requests in flight over the deployment, as benchmark tools drive an "
        "engine (instead of a request rate).",
        "concurrency",
        absent=np.nan,
    ),
    Input(
        "slo_ttft_s",
        "optional_positive",
        None,
        "Continuous: the TTFT SLO max_request_rate is found under (seconds).",
        "slo_ttft_s",
        absent=np.inf,
    ),
    Input(
        "slo_tpot_s",
        "optional_positive",
        None,
        "Continuous: the TPOT SLO max_request_rate is found under (seconds).",
        "slo_tpot_s",
        absent=np.inf,
    ),
    Input(
        "spec_tokens",
        "count",
        0,
        "Speculative decoding: draft tokens proposed per verification step (0: none). Needs --draft.",
        "spec_tokens",
    ),
    Input(
        "spec_acceptance",
        "fraction",
        SPEC_ACCEPTANCE,
        "Speculative decoding: probability each draft token is accepted, 0..1 (depends on the draft and the "
        "data: set your own).",
        "spec_acceptance",
    ),
    Input(
        "draft",
        "draft",
        None,
        "Speculative decoding's draft: mtp (the model's own multi-token-prediction head, DeepSeek-V3 style, or "
        "an EAGLE head), or a draft model id or path sharing the tokenizer.",
    ),
    Input(
        "slo_percentile",
        "percentile",
        90,
        "Continuous: the percentile the SLOs hold at: 50, 90 or 99.",
        "slo_quantile",
    ),
)

BY_NAME = {i.name: i for i in INPUTS}
INPUT_DEFAULTS = {i.name: i.default for i in INPUTS if i.name not in REQUIRED}
"""Optional inputs and their defaults."""
NUMERICS = ("quant", "weight_bits", "act_bits", "kv_bits", "kv")
"""Inputs resolved together into number formats (``dse.catalog.resolve_numerics``)."""
DIRECT = tuple(i for i in INPUTS if i.field is not None)
"""Inputs that become a ``Candidates`` field by ``convert``."""


def is_missing(value: Any) -> bool:
    """Whether one value is missing: None or NaN (any float's, as ``missing`` reads them)."""
    return value is None or (isinstance(value, float | np.floating) and bool(np.isnan(value)))


def missing(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Whether each value is missing: None, NaN or pandas' NA (read as an array, not value by value)."""
    array = np.asarray(values)
    if array.dtype == object:  # NaN alone differs from itself
        try:
            return np.asarray(np.equal(array, np.asarray(None, dtype=object)) | np.not_equal(array, array), dtype=bool)
        except TypeError:  # a value that refuses to compare: pandas' NA, which pandas reads as missing
            import pandas as pd

            return np.asarray(pd.isna(array), dtype=bool)
    return np.isnan(array) if array.dtype.kind == "f" else np.zeros(array.shape, dtype=bool)


def _given(values: Sequence[Any] | np.ndarray, absent: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(whether each value is given, the values as floats with ``absent`` for the missing: None or NaN; NaN
    where ``absent`` is None)."""
    given, array = ~missing(values), np.asarray(values)
    if array.dtype.kind not in "fiub":  # None, or numbers written as text: each converted as float() would
        array = array.astype(object)
    return given, np.where(given, array, np.nan if absent is None else absent).astype(np.float64)


def convert(name: str, values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The ``Candidates`` field of input ``name`` for ``values``, checked: an ``InputError`` names the input
    and the first row whose value is not allowed."""
    try:
        return _convert(name, values)
    except InputError:
        raise
    except (TypeError, ValueError):  # a value that is not a number: name it
        for row, value in enumerate(values):
            if not is_missing(value):
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise InputError(f"expected a number, got {value!r} (row {row})", field=name) from None
        raise


def _convert(name: str, values: Sequence[Any] | np.ndarray) -> np.ndarray:
    spec = BY_NAME[name]
    if spec.kind == "flag":
        array = np.asarray(values)
        if array.dtype != bool:
            raise InputError("expected booleans (True/False)", field=name)
        return array
    if spec.kind == "choice":
        bad = [v for v in values if v not in spec.options]
        if bad:
            raise InputError(f"expected one of {', '.join(spec.options)}, got {bad[0]!r}", field=name)
        return np.asarray([v == spec.options[1] for v in values], dtype=bool)
    if spec.kind in ("optional_whole", "optional_positive"):
        given, array = _given(values, spec.absent)
        _check(name, np.where(given, array, 1.0), "whole" if spec.kind == "optional_whole" else "positive")
        return array
    if spec.kind == "percentile":
        array = np.asarray(values, dtype=np.float64)
        rows = np.flatnonzero(~np.isin(array, PERCENTILES))
        if len(rows):
            raise InputError(f"expected 50, 90 or 99, got {float(array[rows[0]]):g} (row {rows[0]})", field=name)
        return array / 100.0
    array = np.asarray(values, dtype=np.float64)
    _check(name, array, spec.kind)
    return array


def check_speculation(spec_tokens: np.ndarray, drafts: Sequence[Any] | None) -> None:
    """Draft tokens need a draft: an ``InputError`` names the first row that proposes tokens without one."""
    rows = np.flatnonzero(np.asarray(spec_tokens) > 0)
    if drafts is not None and len(rows):
        rows = rows[missing(np.asarray(drafts, dtype=object)[rows])]
    if len(rows):
        raise InputError(f"spec_tokens > 0 needs a draft (mtp, or a draft model id) (row {rows[0]})", field="draft")


def _check(name: str, values: np.ndarray, kind: str) -> None:
    with np.errstate(invalid="ignore"):
        if kind == "count":
            bad, expected = ~np.isfinite(values) | (values < 0) | (values != np.round(values)), "a whole number >= 0"
        elif kind in ("whole", "tokens"):
            top = MAX_TOKENS if kind == "tokens" else MAX_WHOLE
            bad = ~np.isfinite(values) | (values < 1) | (values > top) | (values != np.round(values))
            expected = f"a whole number from 1 to {top:,}"
        elif kind == "positive":
            bad, expected = ~(np.isfinite(values) & (values > 0.0)), "a finite number > 0"
        elif kind == "fraction":
            bad, expected = ~((values >= 0.0) & (values <= 1.0)), "a number from 0 to 1"
        else:
            bad, expected = ~(np.isfinite(values) & (values >= 1.0)), "a finite number >= 1"
    rows = np.flatnonzero(bad)
    if len(rows):
        row = f" (row {rows[0]})" if len(values) > 1 else ""  # one value (a keyword, a flag): no row to name
        raise InputError(f"expected {expected}, got {float(values[rows[0]]):g}{row}", field=name)


def check_keywords(values: Mapping[str, Any]) -> None:
    """Inputs given one value each (``dse.analyze`` keywords, ``dse analyze`` flags): NaN is refused. In a column
    NaN means "not given", as pandas writes a missing number; a single value left out is None."""
    for name, value in values.items():
        if isinstance(value, float | np.floating) and np.isnan(value):
            spec = BY_NAME[name]
            default = "none" if spec.default is None else f"{spec.default!r}"
            raise InputError(f"expected a number, got nan (leave it out for the default: {default})", field=name)


def candidate_fields(columns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, np.ndarray]:
    """Every ``Candidates`` field the direct inputs of ``columns`` give (absent inputs: not in the result)."""
    fields = {i.field: convert(i.name, columns[i.name]) for i in DIRECT if i.name in columns}
    both = np.isfinite(fields.get("request_rate", np.nan)) & np.isfinite(fields.get("concurrency", np.nan))
    if np.any(both):
        raise InputError(
            f"give a request rate or a concurrency, not both (row {np.flatnonzero(both)[0]})", field="concurrency"
        )
    return fields  # type: ignore[return-value]
