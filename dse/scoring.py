"""Columns of candidates (ids, formats, workload) -> the cost model's arrays -> metric columns.

This is the glue between catalogs and the vectorised cost model: it resolves ids once per distinct value
and builds struct-of-arrays by indexing, so N candidates cost a handful of numpy operations, not N lookups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from dse._allocator import reuse_large_buffers
from dse.catalog import (
    HardwareSpec,
    ModelSpec,
    Numerics,
    SystemSpec,
    load_model,
    load_profile,
    load_target,
    resolve_numerics,
)
from dse.catalog._profile import EfficiencyProfile
from dse.costmodel import (
    REASON_TEXT,
    Candidates,
    CostAssumptions,
    Evaluation,
    MemoryBreakdown,
    PhaseCost,
    Reason,
    ServingMetrics,
    compile_model,
    evaluate_candidates,
    resolve_precision,
    serving_metrics,
    usd_per_device_hour,
)
from dse.errors import InputError

INPUT_DEFAULTS: dict[str, Any] = {
    "quant": None,
    "weight_bits": None,
    "act_bits": None,
    "kv_bits": None,
    "kv": None,
    "batch": 1,
    "prompt_len": 1024,
    "gen_len": 256,
    "flash_attention": True,
    "tp": 1,
    "pp": 1,
    "ep": 1,
    "replicas": 1,
    "kv_block_size": None,
    "prefix_hit_rate": 0.0,
    "kv_offload": 0.0,
    "kv_budget": None,
    "expert_imbalance": 1.0,
}
"""Optional input columns and their defaults; ``model`` and ``hardware`` (an accelerator or a system) are
required. ``kv_block_size`` None = KV allocated token by token; ``kv_budget`` None = no eviction."""

DEPLOYMENT_INTS = ("tp", "pp", "ep", "replicas")
"""Whole numbers >= 1 among the inputs, besides the workload's."""


CHUNK_SIZE = 8192
"""Candidates per cost-model call: arrays this size stay in cache (measured ~3x faster than one big call)."""


@dataclass(frozen=True)
class Scored:
    """One model group's results: serving metrics, memory, phase totals, the format each ran in.

    ``evaluation`` (with per-operator tables) is kept only when the group fits in one chunk.
    """

    model: ModelSpec
    metrics: ServingMetrics
    memory: MemoryBreakdown
    prefill: PhaseCost
    decode_step: PhaseCost
    compute_format: np.ndarray
    """Format the linear layers ran in, per candidate (after any fallback)."""
    evaluation: Evaluation | None


def _allocate(like: Any, size: int) -> Any:
    """An uninitialised dataclass of ``size``-long arrays with the fields and dtypes of ``like``'s."""
    return type(like)(**{f.name: np.empty(size, dtype=getattr(like, f.name).dtype) for f in fields(like)})


def _write(into: Any, part: Any, rows: slice) -> None:
    """Copy the arrays of dataclass ``part`` into ``rows`` of ``into``'s, field by field."""
    for f in fields(part):
        getattr(into, f.name)[rows] = getattr(part, f.name)


def _factorize(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Integer codes and the distinct values (None allowed); code i names ``distinct[i]``.

    Small inputs use a dict; large ones pandas' hash table (pandas is imported only then, so a single
    ``dse analyze`` stays light).
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        distinct_values, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64).ravel(), distinct_values.tolist()
    if len(values) < _HASH_THRESHOLD:
        seen: dict[Any, int] = {}
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.int64, count=len(values))
        return codes, list(seen)
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return codes.astype(np.int64), [None if _is_missing(u) else u for u in uniques]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _factorize_rows(*columns: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Codes of distinct rows across several columns (each factorized once, then combined as integers)."""
    parts = [_factorize(column) for column in columns]
    combined = np.zeros(len(parts[0][0]), dtype=np.int64)
    for codes, distinct in parts:
        combined = combined * len(distinct) + codes
    _, first, codes = np.unique(combined, return_index=True, return_inverse=True)
    rows = [tuple(distinct[c[i]] for c, distinct in parts) for i in first]
    return codes.astype(np.int64).ravel(), rows


_HASH_THRESHOLD = 4096


def _check_positive_ints(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` unchanged, or an InputError naming the first row that is not a whole number >= 1."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~np.isfinite(values) | (values < 1) | (values != np.round(values)))
    if len(bad):
        raise InputError(f"expected a whole number >= 1, got {float(values[bad[0]]):g} (row {bad[0]})", field=name)
    return values


def _optional(values: Sequence[Any] | np.ndarray, absent: float) -> np.ndarray:
    """Floats with None/NaN read as ``absent``."""
    return np.asarray([absent if _is_missing(v) else v for v in values], dtype=np.float64)


def _check_range(name: str, values: np.ndarray, low: float, high: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~((values >= low) & (values <= high)))
    if len(bad):
        raise InputError(
            f"expected a number from {low:g} to {high:g}, got {float(values[bad[0]]):g} (row {bad[0]})", field=name
        )
    return values


def kv_policy_columns(cols: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, np.ndarray]:
    """Candidate fields of the KV-cache policy and routing inputs, checked (InputError naming the column)."""
    block = _check_positive_ints("kv_block_size", _optional(cols["kv_block_size"], 1.0))
    budget = _optional(cols["kv_budget"], np.inf)
    finite = np.isfinite(budget)
    _check_positive_ints("kv_budget", budget[finite])
    imbalance = np.asarray(cols["expert_imbalance"], dtype=np.float64)
    _check_range("expert_imbalance", imbalance, 1.0, np.inf)
    return {
        "kv_block_tokens": block,
        "prefix_hit_rate": _check_range(
            "prefix_hit_rate", np.asarray(cols["prefix_hit_rate"], dtype=np.float64), 0.0, 1.0
        ),
        "kv_offload_fraction": _check_range("kv_offload", np.asarray(cols["kv_offload"], dtype=np.float64), 0.0, 1.0),
        "kv_budget_tokens": budget,
        "expert_imbalance": imbalance,
    }


def _numerics_table(columns: Mapping[str, Sequence[Any] | np.ndarray]) -> tuple[np.ndarray, list[Numerics]]:
    """Codes of the distinct (quant, raw bits, KV format) rows, and their resolved numerics."""
    codes, distinct = _factorize_rows(*(columns[k] for k in ("quant", "weight_bits", "act_bits", "kv_bits", "kv")))
    table = []
    for quant, w, a, kv_bits, kv in distinct:
        table.append(resolve_numerics(quant, weight_bits=w, act_bits=a, kv_bits=kv_bits, kv_format=kv))
    return codes, table


_PAIR_FIELDS = (
    "weight_bits",
    "embedding_bits",
    "act_bits",
    "kv_bits",
    "matmul_flops_per_s",
    "matmul16_flops_per_s",
    "vector_flops_per_s",
    "bandwidth_bytes_per_s",
    "memory_bytes",
    "format_supported",
    "tdp_w",
    "usd_per_device_hour",
)
"""Candidate fields that depend only on the (device, numerics) pair."""


Target = tuple[HardwareSpec, SystemSpec | None]
"""What a candidate runs on: an accelerator, and the system (node, links) it sits in, if any."""


def _pair_table(
    hardware: Sequence[Target],
    numerics: Sequence[Numerics],
    pairs: Sequence[tuple[Any, ...]],
    costs: CostAssumptions,
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs x fields) values of ``_PAIR_FIELDS``, and the format each pair computes in."""
    rows, formats = [], []
    for h_code, q_code in pairs:
        hw, num = hardware[h_code][0], numerics[q_code]
        p = resolve_precision(hw, num)
        formats.append(p.compute)
        tdp = hw.tdp_w if hw.tdp_w is not None else np.nan
        rows.append(
            (
                num.weight_bits,
                num.embedding_bits,
                p.act_bits,
                num.kv_bits,
                p.matmul_flops_per_s,
                p.matmul16_flops_per_s,
                p.vector_flops_per_s,
                hw.memory_bandwidth_bytes_per_s,
                hw.memory_bytes,
                float(p.supported),
                tdp,
                usd_per_device_hour(hw, costs),
            )
        )
    table = np.asarray(rows, dtype=np.float64).reshape(-1, len(_PAIR_FIELDS))
    return table, np.asarray(formats, dtype=object)


_SYSTEM_FIELDS = (
    "devices_per_node",
    "max_nodes",
    "intra_link_bytes_per_s",
    "intra_link_latency_s",
    "inter_link_bytes_per_s",
    "inter_link_latency_s",
    "host_link_bytes_per_s",
    "host_memory_bytes",
)
"""Candidate fields that depend only on the hardware target (and the profile's default latencies)."""


def _system_row(target: Target, prof: EfficiencyProfile) -> tuple[float, ...]:
    """``_SYSTEM_FIELDS`` of one target. A bare accelerator is one device: its own link figures fill the
    link fields (so metrics stay finite) but a split over several devices is infeasible (``_parallel``)."""
    hw, system = target
    host_link = hw.host_link.bandwidth_bytes_per_s if hw.host_link else 0.0
    if system is None:
        host_memory = hw.host_memory_bytes if hw.host_memory_bytes is not None else np.nan
        intra, inter = hw.interconnect, hw.scale_out
        devices_per_node, max_nodes = 1.0, 1.0
    else:
        node_memory = system.host_memory_bytes
        host_memory = node_memory / system.devices_per_node if node_memory is not None else np.nan
        intra, inter = system.intra_node_link, system.inter_node_link
        devices_per_node = float(system.devices_per_node)
        max_nodes = float(system.max_nodes) if system.max_nodes is not None else np.inf
        if inter is None:
            max_nodes = 1.0
    intra_bw = intra.bandwidth_bytes_per_s if intra else np.inf
    inter_bw = inter.bandwidth_bytes_per_s if inter else 0.0
    intra_lat = intra.latency_s if intra and intra.latency_s is not None else prof.collective_latency_s
    inter_lat = inter.latency_s if inter and inter.latency_s is not None else prof.inter_node_latency_s
    return (devices_per_node, max_nodes, intra_bw, intra_lat, inter_bw, inter_lat, host_link, host_memory)


def build_candidates(
    hardware: Sequence[Target],
    hardware_codes: np.ndarray,
    numerics: Sequence[Numerics],
    numerics_codes: np.ndarray,
    workload: Mapping[str, np.ndarray],
    *,
    profile: str,
    costs: CostAssumptions,
) -> tuple[Candidates, np.ndarray]:
    """Struct-of-arrays: per-(device, numerics) lookups, then fancy indexing (no per-candidate loop)."""
    prof = load_profile(profile)
    pair_codes, pairs = _factorize_rows(hardware_codes, numerics_codes)
    table, formats = _pair_table(hardware, numerics, pairs, costs)
    table = table[pair_codes]
    columns: dict[str, object] = {name: table[:, i] for i, name in enumerate(_PAIR_FIELDS)}
    columns["format_supported"] = table[:, _PAIR_FIELDS.index("format_supported")] > 0.5
    systems = np.asarray([_system_row(t, prof) for t in hardware], dtype=np.float64).reshape(-1, len(_SYSTEM_FIELDS))
    columns.update({name: systems[hardware_codes, i] for i, name in enumerate(_SYSTEM_FIELDS)})
    columns.update(
        comm_overlap=prof.comm_overlap,
        bandwidth_efficiency=prof.bandwidth_efficiency,
        compute_efficiency=prof.compute_efficiency,
        kernel_overhead_s=prof.kernel_overhead_s,
        memory_utilization=prof.memory_utilization,
        runtime_reserve_bytes=prof.runtime_reserve_bytes,
        flash_block_rows=prof.flash_block_rows,
        **workload,
    )
    return Candidates.from_columns(columns, len(hardware_codes)), formats[pair_codes]


def score_columns(
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    profile: str = "default",
    costs: CostAssumptions = CostAssumptions(),
    detail: bool = False,
) -> list[tuple[np.ndarray, Scored]]:
    """Score candidates given as columns; returns (row indices, result) per model group."""
    if "model" not in columns or "hardware" not in columns:
        raise InputError(
            "candidates need 'model' and 'hardware' columns", field="model" if "model" not in columns else "hardware"
        )
    n = len(columns["model"])
    cols = {k: columns.get(k, [v] * n) for k, v in INPUT_DEFAULTS.items()} | {
        "model": columns["model"],
        "hardware": columns["hardware"],
    }
    workload = {
        k: _check_positive_ints(k, np.asarray(cols[k], dtype=np.float64))
        for k in ("batch", "prompt_len", "gen_len", *DEPLOYMENT_INTS)
    }
    workload["flash"] = np.asarray(cols["flash_attention"], dtype=bool)
    workload |= kv_policy_columns(cols)
    hw_codes, hw_refs = _factorize(cols["hardware"])
    hardware = [load_target(str(ref)) for ref in hw_refs]
    q_codes, numerics = _numerics_table(cols)
    m_codes, model_refs = _factorize(cols["model"])
    results = []
    for code, ref in enumerate(model_refs):
        rows = np.flatnonzero(m_codes == code)
        model = load_model(str(ref))
        part = {k: v[rows] for k, v in workload.items()}
        cand, formats = build_candidates(
            hardware, hw_codes[rows], numerics, q_codes[rows], part, profile=profile, costs=costs
        )
        results.append((rows, score_model(model, cand, formats, costs, detail=detail)))
    return results


def score_model(
    model: ModelSpec,
    cand: Candidates,
    formats: np.ndarray,
    costs: CostAssumptions,
    *,
    detail: bool = False,
    totals: bool = True,
) -> Scored:
    """Evaluate one model's candidates chunk by chunk and join the results (``detail``: per-operator decode;
    ``totals`` False: phase FLOPs and bytes left NaN, as a search does not use them).

    Each chunk's results are copied into arrays for all candidates and its evaluation dropped before the next
    chunk, so the next one reuses its buffers (instead of faulting in fresh memory for every chunk)."""
    tables = compile_model(model)
    if len(cand) <= CHUNK_SIZE:  # one chunk (an empty set too): keep its evaluation, with per-operator tables
        ev = evaluate_candidates(model, cand, tables, detail=detail, totals=totals)
        metrics = serving_metrics(model, cand, ev, costs.power_fraction)
        return Scored(model, metrics, ev.memory, ev.prefill, ev.decode_step, formats, ev)
    reuse_large_buffers()
    joined: list[Any] = []
    for start in range(0, len(cand), CHUNK_SIZE):
        rows = slice(start, start + CHUNK_SIZE)
        part = cand.take(rows)
        ev = evaluate_candidates(model, part, tables, detail=detail, totals=totals)
        results = (serving_metrics(model, part, ev, costs.power_fraction), ev.memory, ev.prefill, ev.decode_step)
        joined = joined or [_allocate(result, len(cand)) for result in results]
        for into, result in zip(joined, results, strict=True):
            _write(into, result, rows)
        del ev, results
    metrics, memory, prefill, decode_step = joined
    return Scored(model, metrics, memory, prefill, decode_step, formats, None)


def reason_text(codes: np.ndarray) -> np.ndarray:
    """Reason messages (None where feasible) for an array of reason codes."""
    lookup = np.asarray([REASON_TEXT[Reason(i)] for i in range(len(Reason))], dtype=object)
    return lookup[codes.astype(np.int64)]  # type: ignore[no-any-return]
