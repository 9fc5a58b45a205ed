"""Charts of one configuration (``dse analyze --report``), from the ``dse analyze --json`` object: the roofline
chart of arXiv 2402.16363 (Fig. 2 and 4), time per operator group, and memory against capacity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dse import units

ROOF_TEXT = {"matmul": "linear layers", "matmul16": "16-bit (attention, router, LM head)", "vector": "vector units"}
ROOF_COLOURS = {"matmul": "#1f77b4", "matmul16": "#9467bd", "vector": "#2ca02c"}
GROUP_COLOURS = {
    "attention": "#1f77b4",
    "MLP": "#ff7f0e",
    "experts (MoE)": "#d62728",
    "norms and residuals": "#2ca02c",
    "embedding and LM head": "#8c564b",
    "communication": "#9467bd",
    "pipeline bubble": "#7f7f7f",
    "host link (KV offload)": "#e377c2",
    "other": "#bcbd22",
}
"""Operator groups of the time chart, in stacking order."""


def operator_group(name: str, bound: str) -> str:
    """The group of a ``layers`` row of ``dse analyze``, by the operator names of ``dse.costmodel.physics``."""
    if bound == "network":
        return "communication"
    if bound == "pipeline":
        return "pipeline bubble"
    if bound == "host_link":
        return "host link (KV offload)"
    if name in ("embedding", "position", "lm_head"):
        return "embedding and LM head"
    if "norm" in name or name == "residual_add":
        return "norms and residuals"
    if name.startswith(("expert_", "shared_", "router")):
        return "experts (MoE)"
    if name in ("gate_proj", "up_proj", "down_proj", "mlp_act", "fc1", "fc2"):
        return "MLP"
    if name.startswith(("attention", "q_", "k_", "v_", "o_", "kv_", "qk_", "sv_", "softmax")):
        return "attention"
    return "other"


def _operators(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows a roofline chart can place: operators with FLOPs, bytes and time (log axes need all three > 0)."""
    return [
        r
        for r in analysis["layers"]
        if r["bound"] in ("compute", "memory") and r["flops"] > 0 and r["memory_bytes"] > 0 and r["time_s"] > 0
    ]


LABEL_DISTANCE = 0.08
"""Decades (on both log axes) within which operators share one label on the roofline (their own would
overlap: q_proj and o_proj, or gate, up and down, sit on one point)."""


LABEL_HEIGHT = 0.15
"""Decades of the roofline's y axis a label's line of text takes (9-point text on a 620-pixel chart of about
five decades), above its marker or below it."""
LABEL_WIDTH = 0.5
"""Decades of the x axis within which two labels may collide (about a dozen characters)."""


def _cluster_labels(x: Sequence[float], y: Sequence[float], names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(label, text position) per operator: one label per group of operators within ``LABEL_DISTANCE`` of
    the group's first, on its first marker ("q_proj, o_proj"; "gate_proj, up_proj +1 more" beyond two names),
    the others' empty (their hover names them). A label goes above its marker, or below where that would
    overlap a label already placed (``LABEL_WIDTH`` across, ``LABEL_HEIGHT`` up or down), and where both would,
    its names join the nearest label's."""
    points = np.log10(np.maximum(np.column_stack([x, y]).astype(np.float64), 1e-300))
    labels, positions = [""] * len(names), ["top center"] * len(names)
    taken = np.zeros(len(names), dtype=bool)
    placed: list[tuple[float, float, float, int, list[str]]] = []  # (x, text bottom, text top, index, names)

    def text(members: list[str]) -> str:
        return ", ".join(members[:2]) + (f" +{len(members) - 2} more" if len(members) > 2 else "")

    def free(px: float, low: float, high: float) -> bool:
        return not any(abs(px - ex) < LABEL_WIDTH and low < top and bottom < high for ex, bottom, top, _, _ in placed)

    for i in np.argsort(points[:, 0], kind="stable"):
        if taken[i]:
            continue
        near = ~taken & (np.abs(points - points[i]).max(axis=1) <= LABEL_DISTANCE)
        members = [names[int(j)] for j in np.flatnonzero(near)]
        taken |= near
        px, py = float(points[i][0]), float(points[i][1])
        for where, low, high in (("top center", py, py + LABEL_HEIGHT), ("bottom center", py - LABEL_HEIGHT, py)):
            if free(px, low, high):
                positions[i], labels[i] = where, text(members)
                placed.append((px, low, high, int(i), members))
                break
        else:  # no room above or below: the nearest label names these too
            nearest = min(placed, key=lambda p: abs(p[0] - px) + abs((p[1] + p[2]) / 2 - py))
            nearest[4].extend(members)
            labels[nearest[3]] = text(nearest[4])
    return labels, positions


def batch_text(analysis: dict[str, Any]) -> str:
    """The batch an analysis ran: a static batch, or under continuous batching the sequences in the engine at
    the operating point (its decode step is read at every slot busy: ``sequences_every_slot_busy``)."""
    i, served = analysis["inputs"], analysis.get("continuous")
    if not served:  # a static batch (disaggregated serving is served too, whatever the scheduler)
        return f"batch {i['batch']}"
    return (
        f"continuous batching: {served['sequences_in_engine']:.4g} sequences in the engine"
        f" (decode step at {served['sequences_every_slot_busy']:.4g})"
    )


def roofline_chart(analysis: dict[str, Any]) -> Any:
    """Arithmetic intensity (FLOP/byte) against attained FLOP/s, log-log: the device's roofs for each peak its
    operators use (solid: attainable with the profile's efficiencies; dotted: datasheet) and one marker per
    operator (circle = prefill, diamond = one decode step), coloured by the roof that applies to it.

    Attained FLOP/s = the operator's FLOPs / its time, kernel overheads included, so a marker sits on its roof
    only when the roofline alone sets its time (arXiv 2402.16363 §2)."""
    import plotly.graph_objects as go

    roofs = analysis["roofline"]
    ops = _operators(analysis)
    intensities = np.array([r["arithmetic_intensity"] for r in ops] or [1.0])
    low, high = 10 ** np.floor(np.log10(intensities.min() / 3)), 10 ** np.ceil(np.log10(intensities.max() * 3))
    grid = np.logspace(np.log10(low), np.log10(high), 200)
    bandwidth = roofs["memory_bandwidth_bytes_per_s"]
    fig = go.Figure()
    used = sorted({r["peak"] for r in ops}, key=list(ROOF_TEXT).index) or ["matmul"]
    for kind in used:
        peak = roofs["peak_flops_per_s"][kind]
        for attainable, dash, label in ((True, "solid", "attainable"), (False, "dot", "datasheet")):
            efficiency = roofs.get("matmul_efficiency", roofs["compute_efficiency"]) if kind == "matmul" else None
            scale_c = (efficiency or roofs["compute_efficiency"]) if attainable else 1.0
            scale_b = roofs["bandwidth_efficiency"] if attainable else 1.0
            ceiling = np.minimum(peak * scale_c, grid * bandwidth * scale_b) / units.TFLOPS
            fig.add_trace(
                go.Scatter(
                    x=grid,
                    y=ceiling,
                    mode="lines",
                    name=f"{ROOF_TEXT[kind]}: {peak * scale_c / units.TFLOPS:.4g} TFLOP/s ({label})",
                    line={"color": ROOF_COLOURS[kind], "dash": dash, "width": 2 if attainable else 1},
                    legendgroup=kind,
                    hoverinfo="skip",
                    meta={"role": "roof", "peak": kind, "attainable": attainable},
                )
            )
    # labels placed over both phases at once: a prefill label and a decode one may meet
    every, places = _cluster_labels(
        [r["arithmetic_intensity"] for r in ops], [r["flops"] / r["time_s"] for r in ops], [r["name"] for r in ops]
    )
    for stage, symbol in (("prefill", "circle"), ("decode", "diamond")):
        mine = [i for i, r in enumerate(ops) if r["stage"] == stage]
        if not mine:
            continue
        rows = [ops[i] for i in mine]
        labels, positions = [every[i] for i in mine], [places[i] for i in mine]
        fig.add_trace(
            go.Scatter(
                x=[r["arithmetic_intensity"] for r in rows],
                y=[r["flops"] / r["time_s"] / units.TFLOPS for r in rows],
                mode="markers+text",
                name=stage if stage == "prefill" else "decode (one step)",
                text=labels,
                textposition=positions,
                textfont={"size": 9},
                customdata=[
                    [
                        r["count"],
                        r["flops"] / units.GB,
                        r["memory_bytes"] / units.GB,
                        r["time_s"] / units.MS,
                        r["bound"],
                        r["name"],
                    ]
                    for r in rows
                ],
                hovertemplate="<b>%{customdata[5]}</b> (" + stage + ")<br>× %{customdata[0]:,.4~r}<br>"
                "%{customdata[1]:,.4~r} GFLOP"
                " · %{customdata[2]:,.4~r} GB<br>%{customdata[3]:,.4~r} ms · %{customdata[4]}-bound<br>"
                "%{x:,.4~r} FLOP/byte · %{y:,.4~r} TFLOP/s<extra></extra>",
                marker={
                    "symbol": symbol,
                    "size": 11,
                    "color": [ROOF_COLOURS[r["peak"]] for r in rows],
                    "line": {"width": 1, "color": "#222"},
                },
                meta={"role": "operators", "stage": stage},
            )
        )
    i = analysis["inputs"]
    skipped = sum(1 for r in analysis["layers"] if r["bound"] in ("compute", "memory")) - len(ops)
    fig.update_layout(
        title={
            "text": f"Roofline: {i['model']} on {i['hardware']}",
            "subtitle": {
                "text": (
                    f"{analysis['compute_format']} linear layers · {batch_text(analysis)} · prompt {i['prompt_len']}"
                    f" · decode step at context {i['prompt_len']} · memory {bandwidth / units.GB:.4g} GB/s ×"
                    f" {roofs['bandwidth_efficiency']:.2g}, compute × {roofs['compute_efficiency']:.2g}"
                    + (f" · {skipped} operators without FLOPs not drawn" if skipped else "")
                )
            },
        },
        xaxis={
            "title": {"text": "arithmetic intensity (FLOP/byte)"},
            "type": "log",
            "dtick": 1,
            "range": [np.log10(low), np.log10(high)],
        },
        yaxis={"title": {"text": "attained performance (TFLOP/s)"}, "type": "log", "dtick": 1},
        template="plotly_white",
        height=620,
        margin={"t": 100},
    )
    return fig


def time_breakdown(analysis: dict[str, Any]) -> Any:
    """Stacked bars: the time of the prefill (TTFT) and of one decode step, by operator group, each as shares
    of its phase (a decode step is milliseconds beside a prefill of hundreds: on one time axis it would be a
    sliver), the milliseconds in the bar's label and hover. The ``layers`` rows add up to each phase; hidden
    communication is a negative part and is drawn as such."""
    import plotly.graph_objects as go

    fig = go.Figure()
    phases = [("prefill", "prefill (whole prompt)"), ("decode", "decode (one step)")]
    totals = [analysis[s]["time_s"] / units.MS for s, _ in phases]
    names = [f"{label}<br>{total:.4g} ms" for (_, label), total in zip(phases, totals, strict=True)]
    for group, colour in GROUP_COLOURS.items():
        values = [
            sum(
                r["time_s"]
                for r in analysis["layers"]
                if r["stage"] == s and operator_group(r["name"], r["bound"]) == group
            )
            / units.MS
            for s, _ in phases
        ]
        if not any(values):
            continue
        shares = [100.0 * v / t if t > 0 else 0.0 for v, t in zip(values, totals, strict=True)]
        fig.add_trace(
            go.Bar(
                y=names,
                x=shares,
                customdata=values,
                name=group,
                orientation="h",
                marker={"color": colour},
                hovertemplate=group + ": %{customdata:,.4~r} ms, %{x:,.3~r} % of the phase<extra></extra>",
                meta={"role": "time", "group": group},
            )
        )
    fig.update_layout(
        barmode="relative",
        title={
            "text": "Where the time goes",
            "subtitle": {
                "text": "share of each phase's time, by operator group · per device of the busiest pipeline stage"
            },
        },
        xaxis={"title": {"text": "share of the phase's time (%)"}, "ticksuffix": " %"},
        yaxis={"autorange": "reversed"},  # prefill on top, as the phases run
        template="plotly_white",
        height=340,
        margin={"t": 90, "l": 170},
        legend={"orientation": "h", "y": -0.3, "traceorder": "normal"},
    )
    return fig


MEMORY_PARTS = {
    "weights": "weights_bytes",
    "KV cache": "kv_cache_bytes",
    "activations": "activation_bytes",
    "runtime reserve": "reserve_bytes",
}
"""The parts of device memory, in stacking order (``dse analyze --json``'s ``memory``)."""


def memory_chart(analysis: dict[str, Any]) -> Any:
    """One stacked bar of device memory (weights, KV cache, activations, reserve) against usable capacity."""
    import plotly.graph_objects as go

    mem = analysis["memory"]
    fig = go.Figure()
    for (part, key), colour in zip(MEMORY_PARTS.items(), ("#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"), strict=True):
        fig.add_trace(
            go.Bar(
                y=["per device"],
                x=[mem[key] / units.GB],
                name=part,
                orientation="h",
                marker={"color": colour},
                hovertemplate=part + " %{x:,.4~r} GB<extra></extra>",
                meta={"role": "memory", "part": part},
            )
        )
    capacity = mem["capacity_bytes"] / units.GB
    fig.add_vline(x=capacity, line={"color": "#c00", "width": 2}, annotation_text=f"usable capacity {capacity:.4g} GB")
    fig.update_layout(
        barmode="stack",
        title={
            "text": "Memory per device",
            "subtitle": {
                "text": (
                    f"total {mem['total_bytes'] / units.GB:.4g} GB of {capacity:.4g} GB usable"
                    f" · the largest batch that fits: {mem['max_batch']}"
                )
            },
        },
        xaxis={"title": {"text": "memory (GB)"}, "range": [0, max(capacity, mem["total_bytes"] / units.GB) * 1.12]},
        template="plotly_white",
        height=300,
        margin={"t": 90},
        legend={"orientation": "h", "y": -0.4, "traceorder": "normal"},  # in the stack's order
    )
    return fig
