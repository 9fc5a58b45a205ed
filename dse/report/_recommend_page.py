"""The text of ``dse recommend``'s report, from its ``recommendation.json`` document: the question as facts,
the threshold sentences, the shortlist, where its prices come from, and the hardware left out (and why)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dse import units
from dse.report._html import sentences_html, table_html
from dse.report._labels import format_usd

BINDING_TEXT = {
    "ttft": "TTFT SLO",
    "tpot": "TPOT SLO",
    "memory": "memory",
    "load": "one replica serves all",
    "max_num_seqs": "max_num_seqs",
    "chunk_tokens": "token budget",
    "utilization": "utilisation cap",
    "prefill": "prefill instances",
}
"""What caps an option's batch, or under continuous batching its capacity (``binding``), as words; ``compute``
and ``bandwidth`` read as themselves."""
SHORTLIST_HEADER = (
    "#", "hardware", "system", "configuration", "devices (replicas × each)", "$/month", "$/M output tokens",
    "$/device-hour", "power (kW)", "capacity capped by", "win rate", "expected regret ($/month)", "SLO risk",
    "buying pays off after",
)  # fmt: skip


def _slos(request: dict[str, Any]) -> str:
    at = f" at p{request['slo_percentile']}" if request.get("scheduler") == "continuous" else ""
    slos = [f"TTFT ≤ {request['ttft_s'] / units.MS:.4g} ms" if request["ttft_s"] else ""]
    slos.append(f"TPOT ≤ {request['tpot_s'] / units.MS:.4g} ms" if request["tpot_s"] else "")
    return ", ".join(s for s in slos if s) + at if any(slos) else "none"


def serving_text(request: dict[str, Any]) -> str:
    """How a replica serves: static batches, or continuous batching with its token budget; a prefix cache and
    speculative decoding where the request has them."""
    if request.get("scheduler") == "continuous":
        text = f"continuous batching with chunked prefill ({request['chunk_tokens']}-token steps)"
    else:
        text = "static batches (every prompt of a batch prefilled before its first token)"
    if request.get("disaggregate"):
        splits = ", ".join(f"{x}:{y}" for x, y in request["pool_splits"])
        text += f" · also disaggregated prefill and decode (xPyD: x prefill and y decode instances, {splits} tried)"
    if request.get("prefix_hit_rate"):
        text += f" · {request['prefix_hit_rate']:.0%} of each prompt from a prefix cache"
    if request.get("draft") and any(request.get("spec_tokens") or ()):
        tried = ", ".join(str(k) for k in request["spec_tokens"])
        text += (
            f" · speculative decoding with {request['draft']} ({tried} draft tokens tried, each accepted with "
            f"probability {request['spec_acceptance']:g})"
        )
    return text


def workload_text(doc: dict[str, Any]) -> str:
    """``1000 prompt + 300 output tokens``, or for lengths that vary their means and p90s, and the file they
    were observed in or the laws they follow."""
    w = doc.get("workload")
    if w is None:  # a document written before observed lengths
        return f"{doc['request']['prompt_tokens']} prompt + {doc['request']['output_tokens']} output tokens"
    if not w["varies"]:
        return f"{w['prompt_tokens_mean']:.0f} prompt + {w['output_tokens_mean']:.0f} output tokens"
    p, g = w["prompt_tokens"], w["output_tokens"]
    means = (
        f"{w['prompt_tokens_mean']:.0f} prompt (p90 {p['p90']:.0f}) + {w['output_tokens_mean']:.0f} output tokens "
        f"(p90 {g['p90']:.0f}) on average"
    )
    if w.get("lengths") is not None:
        return f"{means}, {w['requests']:,.0f} requests of {Path(w['lengths']).name}"
    laws = w.get("laws") or {}
    return f"{means}: prompts {laws.get('prompt_tokens')}, outputs {laws.get('output_tokens')}"


def _pricing(doc: dict[str, Any]) -> str:
    r = doc["request"]
    if doc["pricing"] == "rent-reserved":
        return f"rent-reserved ({r['reserved_term']})"
    if doc["pricing"] == "buy":
        return f"buy (electricity ${r['usd_per_kwh']:g}/kWh, PUE {r['pue']:g})"
    return str(doc["pricing"])


def _system(option: dict[str, Any]) -> str:
    """The system an option runs on, when it is not the bare device: ``dgx-h100, ``."""
    return "" if option["target"] == option["hardware"] else f"{option['target']}, "


def config_text(option: dict[str, Any]) -> str:
    """``fp8, KV fp8, tp 4, batch 25`` (``max 256 seqs`` under continuous batching): pipeline and expert
    parallelism, draft tokens (``spec 3``) and a disaggregated group (``2P1D``: 2 prefill and 1 decode
    instances) only when used."""
    parts = [option["quant"], f"KV {option['kv']}", f"tp {option['tp']}"]
    parts += [f"{name} {option[name]}" for name in ("pp", "ep") if option[name] > 1]
    sequences = option.get("max_num_seqs")
    parts.append(f"max {sequences} seqs" if sequences is not None else f"batch {option['batch']}")
    if option.get("spec_tokens"):
        parts.append(f"spec {option['spec_tokens']}")  # draft tokens a verification step
    if option.get("mode") == "disaggregated":  # x prefill and y decode instances, as SGLang and Dynamo write it
        parts.append(f"{option['prefill_instances']}P{option['decode_instances']}D")
    return ", ".join(parts)


def recommendation_facts(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The question and the headline answer as ``label: value`` pairs."""
    r, load = doc["request"], doc["load"]
    peak = load["sizing_rate_rps"] != load["rate_rps"]
    facts = [
        ("model", str(r["model"])),
        ("workload", workload_text(doc)),
        (
            "load",
            f"{load['rate_rps']:.4g} requests/s on average"
            + (
                f", sized for {load['sizing_rate_rps']:.4g} (peak × {r['peak_factor']:g}, headroom {r['headroom']:.0%})"
                if peak
                else ""
            )
            + f" · {load['output_tokens_per_month'] / units.GB:.4g} billion output tokens a month",
        ),
        ("SLOs", _slos(r)),
        ("serving", serving_text(r)),
        ("pricing", _pricing(doc)),
        ("horizon", f"{r['horizon_years']:g} years"),
    ]
    limits = [
        f"budget {format_usd(r['budget_usd_per_month'])}/month" if r["budget_usd_per_month"] else "",
        f"power ≤ {r['max_power_kw']:g} kW" if r["max_power_kw"] else "",
        f"≤ {r['max_devices']} devices" if r["max_devices"] else "",
    ]
    if any(limits):
        facts.append(("limits", ", ".join(x for x in limits if x)))
    if doc["options"]:
        best = doc["options"][0]
        devices = f"{best['devices']} devices: {format_usd(best['usd_per_month'])}/month"
        facts.append(("winner", f"{best['hardware']} ({_system(best)}{config_text(best)}) × {devices}"))
    facts.append(("configurations scored", f"{doc['candidates']:,}"))
    return facts


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _number(value: float | None, digits: str = ".4g") -> str:
    return "—" if value is None else format(value, digits)


def _months(option: dict[str, Any]) -> str:
    months = option["break_even_months"]
    if months is not None:
        return f"{months:.1f} months"
    has_both = option["per_device"]["capex_usd"] is not None and option["per_device"]["rent_usd_per_hour"] is not None
    return "never" if has_both else "—"


def shortlist_rows(options: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One row per option of the shortlist, cheapest first, as text."""
    return [
        [
            str(rank),
            o["hardware"],
            o["target"],
            config_text(o),
            f"{o['devices']} ({o['replicas']} × {o['devices'] // max(o['replicas'], 1)})"
            + (f", {o['devices_paid']} bought" if o.get("devices_paid", o["devices"]) != o["devices"] else ""),
            format_usd(o["usd_per_month"]),
            _number(o["usd_per_million_tokens"], ".3g"),
            _number(o["usd_per_device_hour"], ".4g"),
            _number(o["power_kw"], ".3g"),
            BINDING_TEXT.get(o["binding"], o["binding"]),
            _percent(o["win_rate"]),
            format_usd(o["expected_regret_usd_per_month"]),
            _percent(o["slo_risk"]),
            _months(o),
        ]
        for rank, o in enumerate(options, 1)
    ]


def _sources(options: Sequence[dict[str, Any]]) -> str:
    """Each option's price basis, and under it the sources it was transcribed from (as text: a click would
    leave the machine)."""
    items = []
    for o in options:
        basis = f"{o['hardware']}: {o['price_basis'] or 'no price'}"
        items.append(f"<li>{html.escape(basis)}{sentences_html(o['price_sources'])}</li>")
    return f"<details><summary>Where the prices come from</summary><ul>{''.join(items)}</ul></details>"


def _left_out(doc: dict[str, Any]) -> str:
    """The hardware that serves the load but has no price in this pricing, and the hardware that cannot serve
    it, grouped by reason."""
    parts = []
    unpriced = doc["unpriced"]
    if unpriced:
        rows = [[o["hardware"], o["target"], config_text(o), str(o["devices"])] for o in unpriced]
        parts.append(
            f"<h3>Serves the load, but has no price for {html.escape(doc['pricing'])} ({len(unpriced)})</h3>"
            + table_html(["hardware", "system", "configuration", "devices"], rows, left=3)
        )
    infeasible = doc["infeasible"]
    if infeasible:
        reasons: dict[str, list[str]] = {}
        for item in infeasible:
            reasons.setdefault(item["reason"], []).append(item["hardware"])
        rows = [[reason, ", ".join(names)] for reason, names in sorted(reasons.items(), key=lambda kv: -len(kv[1]))]
        parts.append(
            f"<h3>Cannot serve this load ({len(infeasible)})</h3>"
            + table_html(["why", "hardware"], rows, left=1, wrap=(0, 1))
        )
    return "".join(parts)


def recommendation_summary(doc: dict[str, Any]) -> str:
    """The answer as HTML: thresholds, the shortlist table, where prices come from, what was left out."""
    options = doc["options"]
    if options:
        answer = (
            sentences_html([t["sentence"] for t in doc["thresholds"]])
            + table_html(SHORTLIST_HEADER, shortlist_rows(options), left=4, wrap=(3,), wide=True)
            + "<p class='note'>Win rate, expected regret and SLO risk: over the robustness draws (the chart below);"
            " regret = the mean, over the draws an option serves, of its cost over the cheapest's. Buying pays off:"
            " known when the hardware has both a rent and a purchase price.</p>" + _sources(options)
        )
    else:
        answer = "<p class='warn'>No priced hardware serves this load under the SLOs and limits.</p>"
    return "<h2>The answer</h2>" + answer + _left_out(doc)
