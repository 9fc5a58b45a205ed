"""Scoring candidates given as columns: group by model, build the cost model's arrays, evaluate in chunks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from dse.catalog import CALIBRATED, EfficiencyProfile, ModelSpec, load_model
from dse.costmodel import (
    REASON_TEXT,
    SERVING_QUANTILES,
    Candidates,
    ContinuousServing,
    CostAssumptions,
    Evaluation,
    MemoryBreakdown,
    PhaseCost,
    Reason,
    ServingMetrics,
    compile_model,
    evaluate,
)
from dse.errors import InputError
from dse.scoring._build import architecture, build_candidates, factorize, numerics_table, pool_targets
from dse.scoring._draft import with_draft
from dse.scoring._inputs import INPUT_DEFAULTS, REQUIRED, candidate_fields, check_speculation

CHUNK_SIZE = 8192
"""Candidates per cost-model call: arrays this size stay in cache (measured ~3x faster than one big call)."""


@dataclass(frozen=True)
class Scored:
    """One model group's results: serving metrics, memory, phase totals, the format each ran in.

    ``evaluation`` (with the layout and collectives) is kept only when the group fits in one chunk."""

    model: ModelSpec
    metrics: ServingMetrics
    memory: MemoryBreakdown
    prefill: PhaseCost
    decode_step: PhaseCost
    compute_format: np.ndarray
    """Format the linear layers ran in, per candidate (after any fallback)."""
    evaluation: Evaluation | None
    serving: ContinuousServing
    """Continuous batching's figures (NaN for static candidates)."""


def _allocate(like: Any, size: int) -> Any:
    """An uninitialised dataclass of ``size``-long arrays with the fields and dtypes of ``like``'s (tuples of
    arrays alike)."""

    def empty(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(empty(v) for v in value)
        return np.empty(size, dtype=np.asarray(value).dtype)

    return type(like)(**{f.name: empty(getattr(like, f.name)) for f in fields(like)})


def _write(into: Any, part: Any, rows: slice) -> None:
    """Copy the arrays of dataclass ``part`` (and tuples of them) into ``rows`` of ``into``'s, field by field."""
    for f in fields(part):
        target, value = getattr(into, f.name), getattr(part, f.name)
        for t, v in zip(target, value, strict=True) if isinstance(value, tuple) else ((target, value),):
            t[rows] = v


def with_defaults(columns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, Any]:
    """Every input column, absent optional ones at their defaults (``InputError`` without model or hardware)."""
    for name in REQUIRED:
        if name not in columns:
            raise InputError("candidates need 'model' and 'hardware' columns", field=name)
    n = len(columns["model"])
    return {k: columns.get(k, [v] * n) for k, v in INPUT_DEFAULTS.items()} | {k: columns[k] for k in REQUIRED}


def score_columns(
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    profile: str | EfficiencyProfile = CALIBRATED,
    costs: CostAssumptions = CostAssumptions(),
    engine: str | None = None,
    lengths: Mapping[str, np.ndarray] | None = None,
) -> list[tuple[np.ndarray, Scored]]:
    """Score candidates given as input columns (``dse.scoring.INPUTS``); returns (row indices, result) per
    model group. ``profile`` as ``target_profiles`` takes it (``engine``: whose fitted profiles).
    ``lengths``: per-row ``Candidates`` fields of lengths that vary (``physics.lengths.candidate_lengths``),
    replacing those the ``prompt_len`` and ``gen_len`` columns give."""
    cols = with_defaults(columns)
    direct = candidate_fields(cols)
    check_speculation(direct["spec_tokens"], cols["draft"])
    hardware, hw_codes, pool_codes = pool_targets(cols["hardware"], cols["prefill_hardware"])
    q_codes, numerics = numerics_table(cols)
    m_codes, model_refs = factorize(cols["model"])
    results = []
    for code, ref in enumerate(model_refs):
        rows = np.flatnonzero(m_codes == code)
        model = load_model(str(ref))
        part = {k: v[rows] for k, v in direct.items()}
        cand, formats = build_candidates(
            model,
            hardware,
            hw_codes[rows],
            numerics,
            q_codes[rows],
            part,
            profile=profile,
            costs=costs,
            engine=engine,
            prefill_codes=pool_codes[rows],
        )
        drafts = cols["draft"]
        cand = with_draft(model, cand, [drafts[i] for i in rows])
        if lengths is not None:
            cand = replace(cand, **{k: np.asarray(v)[rows] for k, v in lengths.items()})
        results.append((rows, score_model(model, cand, formats)))
    return results


def score_model(model: ModelSpec, cand: Candidates, formats: np.ndarray, *, totals: bool = True) -> Scored:
    """Evaluate one model's candidates chunk by chunk and join the results (``totals`` False: phase FLOPs and
    bytes left NaN, as a search does not use them).

    Each chunk's results are copied into arrays for all candidates and its evaluation dropped before the next
    chunk, so the next one reuses its buffers (instead of faulting in fresh memory for every chunk)."""
    arch = architecture(model)
    tables = compile_model(arch)
    if len(cand) <= CHUNK_SIZE:  # one chunk (an empty set too): keep its evaluation
        ev = evaluate(arch, cand, tables, totals=totals)
        serving = ev.serving or ContinuousServing.unknown(len(cand))
        return Scored(model, ev.metrics, ev.memory, ev.prefill, ev.decode_step, formats, ev, serving)
    joined: list[Any] = []
    for start in range(0, len(cand), CHUNK_SIZE):
        rows = slice(start, start + CHUNK_SIZE)
        ev = evaluate(arch, cand.take(rows), tables, totals=totals)
        serving = ev.serving or ContinuousServing.unknown(len(ev.tpot_s))
        results = (ev.metrics, ev.memory, ev.prefill, ev.decode_step, serving)
        joined = joined or [_allocate(result, len(cand)) for result in results]
        for into, result in zip(joined, results, strict=True):
            _write(into, result, rows)
        del ev, results
    metrics, memory, prefill, decode_step, serving = joined
    return Scored(model, metrics, memory, prefill, decode_step, formats, None, serving)


SERVING_COLUMNS = ("requests_in_engine", *(f"{q}_p{p}" for q in ("ttft_s", "tpot_s") for p in (50, 90, 99)))
"""Continuous batching's figures in result rows (NaN for static candidates): requests in a replica's engine,
and TTFT and TPOT at p50, p90, p99 of the load."""


def serving_columns(scored: Scored) -> dict[str, np.ndarray]:
    """The ``SERVING_COLUMNS`` of scored candidates."""
    serving = scored.serving
    columns = {"requests_in_engine": serving.slots}
    for name, values in (("ttft_s", serving.ttft_quantiles_s), ("tpot_s", serving.tpot_quantiles_s)):
        columns |= {f"{name}_p{round(q * 100)}": v for q, v in zip(SERVING_QUANTILES, values, strict=True)}
    return columns


def reason_text(codes: np.ndarray) -> np.ndarray:
    """Reason messages (None where feasible) for an array of reason codes."""
    lookup = np.asarray([REASON_TEXT[Reason(i)] for i in range(len(Reason))], dtype=object)
    return lookup[codes.astype(np.int64)]  # type: ignore[no-any-return]
