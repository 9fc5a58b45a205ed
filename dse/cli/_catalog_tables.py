"""Catalog listings as plain rows (display units), for ``dse catalog`` tables, CSV and JSON."""

from __future__ import annotations

from typing import Any

from dse import units
from dse.catalog import (
    hardware_catalog,
    model_catalog,
    price_catalog,
    profile_catalog,
    quant_catalog,
    system_catalog,
)
from dse.costmodel import CostAssumptions
from dse.scoring import target_prices

_PEAKS = ("fp32", "bf16", "fp16", "fp8", "int8", "fp4")


def hardware_rows() -> list[dict[str, Any]]:
    """One row per accelerator; memory in decimal GB, bandwidth in GB/s, peaks in dense TFLOP/s."""
    rows = []
    a = CostAssumptions()
    for hw in hardware_catalog().values():
        rec = hw.record
        prices = target_prices((hw, None), a)
        rent = prices.rent.get("on-demand")
        row: dict[str, Any] = {
            "id": hw.id,
            "name": hw.name,
            "memory_gib": round(hw.memory_bytes / units.GiB, 2),
            "bandwidth_gb_s": rec.memory_bandwidth_gb_s,
        }
        peaks = {str(k): v for k, v in rec.peak_tflops.items()}
        row |= {f"{d}_tflops": peaks.get(d) for d in _PEAKS}
        row |= {
            "tdp_w": rec.tdp_w,
            "usd_per_hour": round(rent.value, 3) if rent else None,
            "capex_usd": round(prices.capex.value) if prices.capex else None,
            "confidence": rec.provenance.confidence if rec.provenance else None,
            "source": rec.provenance.source if rec.provenance else None,
        }
        rows.append(row)
    return rows


def price_rows() -> list[dict[str, Any]]:
    """One row per price figure of ``hardware/prices``: rent offers ($ per device-hour), purchase quotes ($),
    system power (kW), each with its source, date and confidence."""
    rows = []
    for entry in price_catalog().values():
        figures: list[tuple[str, str, float, str, str | None, Any]] = [
            (
                "rent",
                o.term,
                o.usd_per_device_hour,
                "USD/device-hour",
                f"{o.provider} ({o.provider_kind})",
                o.provenance,
            )
            for o in entry.rent
        ]
        figures += [("buy", q.item, q.usd, "USD", None, q.provenance) for q in entry.buy]
        if entry.power is not None:
            figures.append(("power", "system", entry.power.system_kw, "kW", None, entry.power.provenance))
        for kind, what, value, unit, provider, prov in figures:
            rows.append(
                {
                    "id": entry.id,
                    "segment": entry.segment,
                    "kind": kind,
                    "term_or_item": what,
                    "value": value,
                    "unit": unit,
                    "provider": provider,
                    "as_of": prov.as_of if prov else None,
                    "confidence": prov.confidence if prov else None,
                    "source": prov.source if prov else None,
                }
            )
    return rows


def _link(link: Any) -> str | None:
    return f"{link.kind} {link.bandwidth_gb_s_per_direction:g} GB/s" if link is not None else None


def system_rows() -> list[dict[str, Any]]:
    """One row per system; link bandwidths in GB/s per direction per device."""
    return [
        {
            "id": s.id,
            "name": s.name,
            "accelerator": s.accelerator.id,
            "devices_per_node": s.devices_per_node,
            "intra_node": _link(s.record.intra_node_link),
            "inter_node": _link(s.record.inter_node_link),
            "max_nodes": s.max_nodes,
        }
        for s in system_catalog().values()
    ]


def _attention_kind(model: Any) -> str:
    rec = model.record
    if rec.mla:
        kind = "mla"
    elif rec.num_key_value_heads == 1:
        kind = "mqa"
    elif rec.num_key_value_heads < rec.num_attention_heads:
        kind = f"gqa {rec.num_attention_heads}/{rec.num_key_value_heads}"
    else:
        kind = "mha"
    if model.num_window_layers:
        kind += f" + window {rec.sliding_window} on {model.num_window_layers} layers"
    return kind


def model_rows() -> list[dict[str, Any]]:
    """One row per model; parameters in billions, computed by the cost model's operator table."""
    from dse.costmodel import parameter_counts
    from dse.scoring import architecture

    rows = []
    for m in model_catalog().values():
        rec = m.record
        total, active = parameter_counts(architecture(m))
        moe = rec.moe
        rows.append(
            {
                "id": m.id,
                "params_b": round(total / units.GB, 2),
                "active_b": round(active / units.GB, 2),
                "card_total_b": rec.params.total_b if rec.params else None,
                "layers": rec.num_layers,
                "hidden": rec.hidden_size,
                "attention": _attention_kind(m),
                "moe": (
                    f"{moe.num_experts}e top-{moe.experts_per_token}"
                    + (f" +{moe.num_shared_experts} shared" if moe.num_shared_experts else "")
                    + f" on {m.num_moe_layers} layers"
                )
                if moe
                else None,
                "max_context": rec.max_position_embeddings,
            }
        )
    return rows


def quant_rows() -> list[dict[str, Any]]:
    """Schemes then KV formats, with bits per element including scale overhead."""
    catalog = quant_catalog()
    rows: list[dict[str, Any]] = [
        {
            "kind": "scheme",
            "id": s.id,
            "weight_bits": round(s.weights.bits_per_element, 4),
            "activations": s.activations,
            "compute": s.compute,
            "fallback": s.fallback,
            "default_kv": s.kv,
            "name": s.name,
        }
        for s in catalog.schemes
    ]
    rows += [
        {
            "kind": "kv",
            "id": k.id,
            "weight_bits": round(k.bits_per_element, 4),
            "activations": None,
            "compute": None,
            "fallback": None,
            "default_kv": None,
            "name": k.note or k.dtype,
        }
        for k in catalog.kv_formats
    ]
    return rows


def profile_rows() -> list[dict[str, Any]]:
    """One row per efficiency profile, as written."""
    return [p.record.model_dump(exclude={"provenance"}) for p in profile_catalog().values()]
