"""Columns of candidates (ids, formats, workload) -> the cost model's struct of arrays.

Ids are resolved once per distinct value and the arrays built by indexing, so N candidates cost a handful of
numpy operations, not N catalog lookups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from dse.catalog import (
    CALIBRATED,
    DevicePrices,
    EfficiencyProfile,
    HardwareSpec,
    ModelSpec,
    Numerics,
    Price,
    SystemSpec,
    device_prices,
    load_profile,
    load_target,
    price_book,
    profile_for,
    resolve_numerics,
    sheet_ids,
    system_catalog,
)
from dse.costmodel import (
    POOL_FIELDS,
    Architecture,
    Candidates,
    CostAssumptions,
    MLAShape,
    MoEShape,
    Precision,
    resolve_precision,
    usd_per_device_hour,
)
from dse.costmodel.physics.precision import SAME_WIDTH
from dse.errors import InputError
from dse.scoring._inputs import NUMERICS, is_missing, missing

Target = tuple[HardwareSpec, SystemSpec | None]
"""What a candidate runs on: an accelerator, and the system (node, links) it sits in, if any."""

_HASH_THRESHOLD = 4096


_ARCHITECTURES: dict[int, tuple[ModelSpec, Architecture]] = {}
"""By model object (its id, checked against the object itself): specs hold lists, so they are not hashable."""


def architecture(model: ModelSpec) -> Architecture:
    """The cost model's plain view of a catalog model, built once per model object."""
    cached = _ARCHITECTURES.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]
    if len(_ARCHITECTURES) >= 128:
        _ARCHITECTURES.clear()
    arch = _architecture(model)
    _ARCHITECTURES[id(model)] = (model, arch)
    return arch


def _architecture(model: ModelSpec) -> Architecture:
    r = model.record
    moe = mla = None
    if r.moe is not None:
        m = r.moe
        moe = MoEShape(
            m.num_experts,
            m.experts_per_token,
            m.expert_intermediate_size,
            m.shared_expert_intermediate_size,
            m.expert_bias,
            m.router_bias,
        )
    if r.mla is not None:
        a = r.mla
        mla = MLAShape(a.q_lora_rank or 0, a.kv_lora_rank, a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim)
    return Architecture(
        hidden_size=r.hidden_size,
        num_layers=model.num_layers,
        num_attention_heads=r.num_attention_heads,
        num_key_value_heads=r.num_key_value_heads,
        head_dim=r.head_dim,
        intermediate_size=r.intermediate_size or 0,
        vocab_size=r.vocab_size,
        max_position_embeddings=r.max_position_embeddings,
        num_moe_layers=model.num_moe_layers,
        num_window_layers=model.num_window_layers,
        sliding_window=float(r.sliding_window) if r.sliding_window else math.inf,
        kv_elements_per_token_per_layer=model.kv_elements_per_token_per_layer,
        tie_word_embeddings=r.tie_word_embeddings,
        ffn_gated=r.ffn_gated,
        norm=r.norm,
        norms_per_layer=r.norms_per_layer,
        parallel_attention=r.parallel_attention,
        attention_bias=r.attention_bias,
        mlp_bias=r.mlp_bias,
        lm_head_bias=r.lm_head_bias,
        qk_norm=r.qk_norm,
        attention_sinks=r.attention_sinks,
        learned_position_embeddings=r.learned_position_embeddings,
        moe=moe,
        mla=mla,
    )


def factorize(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[Any]]:
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
    return codes.astype(np.int64), [None if is_missing(u) else u for u in uniques]


def factorize_rows(*columns: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Codes of distinct rows across several columns (each factorized once, then combined as integers)."""
    parts = [factorize(column) for column in columns]
    combined = np.zeros(len(parts[0][0]), dtype=np.int64)
    for codes, distinct in parts:
        combined = combined * len(distinct) + codes
    _, first, codes = np.unique(combined, return_index=True, return_inverse=True)
    rows = [tuple(distinct[c[i]] for c, distinct in parts) for i in first]
    return codes.astype(np.int64).ravel(), rows


def numerics_table(columns: Mapping[str, Sequence[Any] | np.ndarray]) -> tuple[np.ndarray, list[Numerics]]:
    """Codes of the distinct (quant, raw bits, KV format) rows, and their resolved number formats."""
    codes, distinct = factorize_rows(*(columns[k] for k in NUMERICS))
    return codes, [
        resolve_numerics(q, weight_bits=w, act_bits=a, kv_bits=b, kv_format=kv) for q, w, a, b, kv in distinct
    ]


def precision(hw: HardwareSpec, numerics: Numerics, accumulate: str = "fp32") -> Precision:
    """The peaks and formats ``numerics`` run at on ``hw`` (``dse.costmodel.resolve_precision``), for an engine
    whose 16-bit GEMMs accumulate in ``accumulate`` (its profile's ``gemm_accumulate``)."""
    return resolve_precision(
        hw.peaks_for(accumulate), numerics.compute, numerics.activation_bits, numerics.fallback, raw=numerics.raw
    )


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
    "onchip_memory_bytes",
    "format_supported",
    "power_w",
    "usd_per_device_hour",
)
"""Candidate fields that depend only on the (device, numerics) pair."""


def _pair_table(
    hardware: Sequence[Target],
    numerics: Sequence[Numerics],
    pairs: Sequence[tuple[Any, ...]],
    costs: CostAssumptions,
    profiles: Sequence[EfficiencyProfile],
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs x fields) values of ``_PAIR_FIELDS``, and the format each pair computes in, under each target's
    profile (``profiles``, one per target)."""
    rows, formats = [], []
    costing = {h_code: target_costs(hardware[h_code], costs) for h_code in {h for h, _ in pairs}}
    for h_code, q_code in pairs:
        hw, num = hardware[h_code][0], numerics[q_code]
        p = precision(hw, num, profiles[h_code].record.gemm_accumulate)
        formats.append(p.compute)
        power_w, price = costing[h_code]
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
                hw.onchip_memory_bytes if hw.onchip_memory_bytes is not None else 0.0,
                float(p.supported),
                power_w,
                price,
            )
        )
    table = np.asarray(rows, dtype=np.float64).reshape(-1, len(_PAIR_FIELDS))
    return table, np.asarray(formats, dtype=object)


def target_prices(target: Target, costs: CostAssumptions) -> DevicePrices:
    """The per-device prices of a target from the price catalog, with ``costs.sheet`` over it (its figures
    first) and ``costs``' server and host shares (``dse.catalog.device_prices``)."""
    return device_prices(
        target,
        price_book(costs.sheet),
        system_catalog(),
        server_share=costs.server_share,
        host_power_share=costs.host_power_share,
        prefer=sheet_ids(costs.sheet),
    )


def scenario_rent(prices: DevicePrices, costs: CostAssumptions) -> Price | None:
    """The rent ``costs``' pricing pays per device-hour: the on-demand median, or for ``rent-reserved`` the
    median of the reserved term's offers, unless on-demand is cheaper (nobody reserves dearer; the reserved
    offers known are mostly hyperscalers')."""
    term = costs.reserved_term if costs.scenario == "rent-reserved" else "on-demand"
    rent, on_demand = prices.rent.get(term), prices.rent.get("on-demand")
    if rent is not None and on_demand is not None and on_demand.value < rent.value:
        return replace(on_demand, basis=f"{on_demand.basis}: cheaper than the {term} offers known")
    return rent


def unpriced_reason(prices: DevicePrices, costs: CostAssumptions) -> str | None:
    """What ``costs``' pricing lacks to price a device of this target, in words (its $ per device-hour is then
    NaN, and every cost metric with it); None when it has a price. Buy pricing needs a purchase price and a
    power figure, for the electricity (``usd_per_device_hour``)."""
    if costs.scenario != "buy":
        term = costs.reserved_term if costs.scenario == "rent-reserved" else "on-demand"
        return None if scenario_rent(prices, costs) is not None else f"no {term} rent price in the price catalog"
    missing = ["no purchase price"] if prices.capex is None else []
    missing += ["no power figure (TDP or system power) for its electricity"] if prices.power_w is None else []
    return f"{' and '.join(missing)} under buy pricing" if missing else None


def target_costs(target: Target, costs: CostAssumptions) -> tuple[float, float]:
    """(power of one device with its host share in W, $ per device-hour in ``costs``' pricing) of a target;
    NaN where unknown."""
    prices = target_prices(target, costs)
    rent = scenario_rent(prices, costs)
    price = usd_per_device_hour(
        rent.value if rent is not None else None,
        prices.capex.value if prices.capex is not None else None,
        prices.power_w,
        costs,
    )
    return (prices.power_w if prices.power_w is not None else math.nan), price


_SYSTEM_FIELDS = (
    "devices_per_node",
    "max_nodes",
    "intra_link_bytes_per_s",
    "intra_link_latency_s",
    "inter_link_bytes_per_s",
    "inter_link_latency_s",
    "intra_transfer_share",
    "inter_transfer_share",
    "host_link_bytes_per_s",
    "host_memory_bytes",
)
"""Candidate fields that depend only on the hardware target (and the profile's default latencies)."""


def _system_row(target: Target, prof: EfficiencyProfile) -> tuple[float, ...]:
    """``_SYSTEM_FIELDS`` of one target. A bare accelerator is one device: its own link figures fill the
    link fields (so metrics stay finite), but a split over several devices is infeasible."""
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
    intra_bw = prof.link_bandwidth(intra) if intra else np.inf  # what a collective gets of it
    inter_bw = prof.link_bandwidth(inter) if inter else 0.0
    intra_lat = prof.link_latency(intra, prof.collective_latency_s)
    inter_lat = prof.link_latency(inter, prof.inter_node_latency_s)
    intra_share = prof.transfer_share(intra) if intra else 1.0  # all-to-alls and sends get less than all-reduces
    inter_share = prof.transfer_share(inter) if inter else 1.0
    return (
        devices_per_node,
        max_nodes,
        intra_bw,
        intra_lat,
        inter_bw,
        inter_lat,
        intra_share,
        inter_share,
        host_link,
        host_memory,
    )


ProfileChoice = str | EfficiencyProfile
"""A profile id or YAML path, ``calibrated`` (each target's fitted family profile), or a profile itself."""


def target_profiles(
    hardware: Sequence[Target], profile: ProfileChoice, engine: str | None = None
) -> list[EfficiencyProfile]:
    """The profile each target is scored with: ``profile`` itself, or with ``calibrated`` its family's fitted
    profile (for ``engine`` when given; ``dse.catalog.profile_for``)."""
    if isinstance(profile, EfficiencyProfile):
        return [profile] * len(hardware)
    if profile == CALIBRATED:
        return [profile_for(hw.id, engine)[0] for hw, _ in hardware]
    return [load_profile(profile)] * len(hardware)


def matmul_efficiency(profile: EfficiencyProfile, compute: str) -> float:
    """Achieved / peak of linear layers computing in format ``compute``: the profile's figure for it, else for
    the other format of its width (int8 and fp8, int4 and fp4 share a tensor-core datapath and its peak on the
    devices that have both: ``SAME_WIDTH``), else its ``compute_efficiency``."""
    own = profile.record.compute_efficiency_by_format
    for name in (compute, SAME_WIDTH.get(compute)):
        if name in own:
            return float(own[name])  # type: ignore[index]
    return profile.compute_efficiency


_PROFILE_FIELDS = (
    "bandwidth_efficiency",
    "compute_efficiency",
    "kernel_overhead_s",
    "memory_utilization",
    "runtime_reserve_bytes",
    "flash_block_rows",
    "comm_overlap",
)
"""Candidate fields a target's efficiency profile gives."""


def pool_targets(
    hardware: Sequence[Any], prefill: Sequence[Any] | None = None
) -> tuple[list[Target], np.ndarray, np.ndarray]:
    """The targets of a ``hardware`` column and of a ``prefill_hardware`` one (None in a row: its own
    hardware), loaded once each, and each row's code for both (an unknown id names the column it is in)."""
    n = len(hardware)
    if prefill is None or np.all(missing(prefill)):  # the usual case: one pool's hardware
        codes, refs = factorize(hardware)
        return [load_target(str(ref)) for ref in refs], codes, codes
    pool = [h if is_missing(prefill[i]) else prefill[i] for i, h in enumerate(hardware)]
    codes, refs = factorize([*hardware, *pool])
    named = set(hardware)
    targets = []
    for ref in refs:
        try:
            targets.append(load_target(str(ref)))
        except InputError as error:
            if ref in named:
                raise
            raise InputError(str(error).removeprefix("hardware: "), field="prefill_hardware") from None
    return targets, codes[:n], codes[n:]


def prefilling(hardware_codes: np.ndarray, prefill_codes: np.ndarray, disaggregated: Any) -> np.ndarray:
    """Per row, the target that prefills it (whose residuals its TTFT takes): a disaggregated row's prefill
    pool's, else its own."""
    return np.where(disaggregated, prefill_codes, hardware_codes)


def build_candidates(
    model: ModelSpec,
    hardware: Sequence[Target],
    hardware_codes: np.ndarray,
    numerics: Sequence[Numerics],
    numerics_codes: np.ndarray,
    fields: Mapping[str, np.ndarray],
    *,
    profile: ProfileChoice,
    costs: CostAssumptions,
    engine: str | None = None,
    prefill_codes: np.ndarray | None = None,
) -> tuple[Candidates, np.ndarray]:
    """``model``'s candidates for the cost model: per-(device, numerics) lookups, then fancy indexing (no
    per-candidate loop). ``fields``: the ``Candidates`` fields of the direct inputs (``candidate_fields``);
    ``profile`` as ``target_profiles`` takes it. Disaggregated rows whose prefill replicas run other hardware
    (``prefill_codes``, into ``hardware``) or another tp or pp (the ``prefill_tp`` and ``prefill_pp`` fields,
    NaN: the same) get their ``prefill_pool``: the same candidates built on that hardware at those degrees."""
    fields = dict(fields)
    pool_degrees = {name: fields.pop(f"prefill_{name}", None) for name in ("tp", "pp")}
    cand, formats = _build(model, hardware, hardware_codes, numerics, numerics_codes, fields, profile, costs, engine)
    split = cand.disaggregated  # only disaggregated rows have a prefill pool; the others ignore one
    degrees = {}  # each degree the pool runs: its own where given (finite), else the candidate's
    for name, own in pool_degrees.items():
        if own is not None and bool(np.any(split & np.isfinite(own) & (own != getattr(cand, name)))):
            degrees[name] = np.where(np.isfinite(own), own, getattr(cand, name))
    own_hardware = prefill_codes is not None and bool(np.any(split & (prefill_codes != hardware_codes)))
    if not (degrees or own_hardware):
        return cand, formats
    codes = hardware_codes if prefill_codes is None else prefill_codes
    pool, _ = _build(model, hardware, codes, numerics, numerics_codes, fields | degrees, profile, costs, engine)
    values = np.stack([np.asarray(getattr(pool, name), dtype=np.float64) for name in POOL_FIELDS], axis=-1)
    return replace(cand, prefill_pool=values), formats


def _build(
    model: ModelSpec,
    hardware: Sequence[Target],
    hardware_codes: np.ndarray,
    numerics: Sequence[Numerics],
    numerics_codes: np.ndarray,
    fields: Mapping[str, np.ndarray],
    profile: ProfileChoice,
    costs: CostAssumptions,
    engine: str | None,
) -> tuple[Candidates, np.ndarray]:
    profiles = target_profiles(hardware, profile, engine)
    pair_codes, pairs = factorize_rows(hardware_codes, numerics_codes)
    table, formats = _pair_table(hardware, numerics, pairs, costs, profiles)
    matmul = np.asarray([matmul_efficiency(profiles[h], f) for (h, _), f in zip(pairs, formats, strict=True)])
    table = table[pair_codes]
    columns: dict[str, object] = {name: table[:, i] for i, name in enumerate(_PAIR_FIELDS)}
    columns["format_supported"] = table[:, _PAIR_FIELDS.index("format_supported")] > 0.5
    columns["matmul_efficiency"] = matmul.reshape(-1)[pair_codes] if len(pairs) else np.empty(0)
    systems = np.asarray([_system_row(t, p) for t, p in zip(hardware, profiles, strict=True)], dtype=np.float64)
    systems = systems.reshape(-1, len(_SYSTEM_FIELDS))
    columns.update({name: systems[hardware_codes, i] for i, name in enumerate(_SYSTEM_FIELDS)})
    own = np.asarray([[float(getattr(p, name)) for name in _PROFILE_FIELDS] for p in profiles]).reshape(
        -1, len(_PROFILE_FIELDS)
    )
    columns.update({name: own[hardware_codes, i] for i, name in enumerate(_PROFILE_FIELDS)})
    keeps = np.asarray([model.record.keeps_16bit(num.label, "attention") for num in numerics], dtype=bool)
    columns["attention_16bit"] = keeps[numerics_codes]
    columns.update(power_fraction=costs.power_fraction, **fields)
    return Candidates.from_columns(columns, len(hardware_codes)), formats[pair_codes]
