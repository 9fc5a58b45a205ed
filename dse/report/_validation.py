"""Charts of ``dse validate --report``, from ``Validation.rows`` (one row per measurement: measured, predicted,
error = predicted / measured - 1, feasible): predicted against measured on log-log axes with the y = x line and
a ±20 % band, and each hardware's errors sorted by their median, so a reader sees which devices the cost model
over- or under-predicts."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.report._labels import DISPLAY, HARDWARE_COLOURS, Display, full_number
from dse.report._recommend import _empty
from dse.report._scatter import axis_type

if TYPE_CHECKING:
    import pandas as pd

BAND = 0.2
"""The shaded band around y = x: predictions within ±20 % of the measurement."""
QUANTITIES: dict[str, Display] = {
    "tpot_s": DISPLAY["tpot_s"],
    "ttft_s": DISPLAY["ttft_s"],
    "prefill_tokens_per_s": Display("prefill speed", "tokens/s", "prefill"),
    "throughput_tokens_per_s_per_device": DISPLAY["throughput_tokens_per_s_per_device"],
}
"""The measured quantities (``dse.calibrate.METRICS``, in its order) in display units."""
ERROR_TICKS = (-0.75, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0, 4.0, 9.0)
"""Where the error axis (predicted / measured on a log scale) is labelled: -50 % and +100 % lie equally far
from 0 (±20 % only when the axis spans less than a decade)."""
LATENCIES = ("tpot_s", "ttft_s")
"""Quantities where a lower prediction is the optimistic one."""
MARKER = {"size": 9, "opacity": 0.8, "line": {"width": 0.5, "color": "white"}}


MARKERS = tuple(
    (colour, symbol) for symbol in ("circle", "diamond", "square", "triangle-up") for colour in HARDWARE_COLOURS[:10]
)
"""(colour, symbol) pairs in the order hardware take them: the ten most distinct colours as circles, then as
diamonds, squares and triangles (the darker tones beyond ten read as the first ones in a crowded chart)."""


def validation_markers(rows: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """One (colour, symbol) per hardware, the same in every chart of the report, and distinct within each
    quantity's charts: each quantity's new hardware take the first pairs its other hardware do not use."""
    markers: dict[str, tuple[str, str]] = {}
    metrics = [*QUANTITIES, *(m for m in dict.fromkeys(rows["metric"]) if m not in QUANTITIES)]
    for metric in metrics:
        names = list(dict.fromkeys(rows.loc[rows["metric"] == metric, "hardware"]))
        taken = {markers[n] for n in names if n in markers}
        free = [m for m in MARKERS if m not in taken] or list(MARKERS)
        new = [n for n in names if n not in markers]
        markers |= {name: free[i % len(free)] for i, name in enumerate(new)}
    return markers


def scored_rows(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of ``metric`` with a prediction to compare: feasible, both values finite and positive."""
    part = rows[rows["metric"] == metric]
    measured, predicted = part["measured"].to_numpy(float), part["predicted"].to_numpy(float)
    ok = part["feasible"].to_numpy(bool) & np.isfinite(measured) & np.isfinite(predicted)
    return part[ok & (measured > 0) & (predicted > 0)]


def _hover(part: pd.DataFrame, display: Display) -> list[str]:
    """Each point's row: id, model, quantization, batch, lengths, both values and the error (names escaped:
    plotly reads hover text as HTML)."""
    scale, unit = display.scale, display.unit
    measured, predicted = part["measured"].to_numpy(float) * scale, part["predicted"].to_numpy(float) * scale
    texts = []
    engines = part["engine"].to_numpy() if "engine" in part else [None] * len(part)
    columns = part[["id", "model", "hardware", "quant", "batch", "prompt_len", "gen_len"]].to_numpy()
    for i, (r, engine) in enumerate(zip(columns, engines, strict=True)):
        row_id, model, hardware, quant, batch, prompt, gen = (str(v) for v in r)
        under = f" · {engine}" if isinstance(engine, str) and engine else ""
        texts.append(
            f"<b>{escape(f'{model} on {hardware}, {quant}{under}')}</b><br>batch {float(batch):g},"
            f" {prompt} prompt + {gen} output tokens<br>measured {full_number(measured[i])} {unit},"
            f" predicted {full_number(predicted[i])} {unit}<br>error {predicted[i] / measured[i] - 1:+.0%}"
            f"<br><span style='font-size:10px'>row {escape(row_id)}</span>"
        )
    return texts


def _log_range(values: np.ndarray) -> list[float]:
    """A log axis's range around ``values`` (log10), padded by a fifth of a decade."""
    low, high = np.log10(values.min()), np.log10(values.max())
    return [float(low - 0.2), float(high + 0.2)]


def predicted_vs_measured_chart(rows: pd.DataFrame, metric: str) -> Any:
    """Predicted against measured ``metric`` on log-log axes, one marker per hardware: the y = x line and the
    ±20 % band around it; points above the line are over-predicted."""
    import plotly.graph_objects as go

    display = QUANTITIES[metric]
    title = f"{display.title.capitalize()}: predicted vs measured"
    fig = go.Figure()
    part = scored_rows(rows, metric)
    if part.empty:
        return _empty(fig, f"No scored row of {metric}", title)
    values = np.concatenate([part["measured"], part["predicted"]]) * display.scale
    axis = _log_range(values)
    ends = 10.0 ** np.asarray(axis)
    lo, hi = float(ends[0]), float(ends[1])
    fig.add_trace(
        go.Scatter(
            x=[lo, hi, hi, lo, lo],
            y=[lo * (1 - BAND), hi * (1 - BAND), hi * (1 + BAND), lo * (1 + BAND), lo * (1 - BAND)],
            mode="lines",
            fill="toself",
            fillcolor="rgba(120, 130, 140, 0.15)",
            line={"width": 0},
            name=f"within ±{BAND:.0%}",
            hoverinfo="skip",
            meta={"role": "band"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            line={"color": "#444", "dash": "dash", "width": 1.2},
            name="predicted = measured",
            hoverinfo="skip",
            meta={"role": "identity"},
        )
    )
    markers = validation_markers(rows)
    for name, points in part.groupby("hardware", sort=False):
        colour, symbol = markers[str(name)]
        fig.add_trace(
            go.Scatter(
                x=points["measured"].to_numpy(float) * display.scale,
                y=points["predicted"].to_numpy(float) * display.scale,
                mode="markers",
                name=str(name),
                marker=MARKER | {"color": colour, "symbol": symbol},
                hovertext=_hover(points, display),
                hovertemplate="%{hovertext}<extra></extra>",
                meta={"role": "points", "hardware": str(name), "id": list(points["id"])},
            )
        )
    left_out = int((rows["metric"] == metric).sum()) - len(part)
    subtitle = f"{len(part)} rows · log-log, both axes over the same range · above the line: predicted higher than"
    subtitle += " measured · shaded: within ±20%"
    subtitle += f" · {left_out} rows not drawn (no prediction: the deployment does not fit)" if left_out else ""
    fig.update_layout(
        title={"text": title, "subtitle": {"text": subtitle}},
        xaxis={"title": {"text": f"measured {display.axis}"}, "range": axis} | axis_type(True, axis),
        yaxis={"title": {"text": f"predicted {display.axis}"}, "range": axis} | axis_type(True, axis),
        template="plotly_white",
        height=560,
        margin={"t": 90},
        legend={"title": {"text": "hardware"}},
    )
    return fig


def _ratio_range(ratios: np.ndarray) -> list[float]:
    """The error axis's range (log10 of predicted / measured): every point and the ±20 % band, padded."""
    return [float(np.log10(min(ratios.min(), 1 - BAND) / 1.15)), float(np.log10(max(ratios.max(), 1 + BAND) * 1.15))]


def _error_ticks(axis: list[float]) -> tuple[list[float], list[str]]:
    """The error ticks inside the axis's range, as predicted / measured values labelled ``-50 %``, ``0``…"""
    low, high = 10.0 ** np.asarray(axis)
    wide = high / low > 10  # over a decade, ±20 % would crowd the 0
    ticks = [1.0 + e for e in ERROR_TICKS if low <= 1.0 + e <= high and not (wide and abs(e) == BAND)]
    return ticks, ["0" if t == 1.0 else f"{t - 1:+.0%}" for t in ticks]


def error_by_hardware_chart(rows: pd.DataFrame, metric: str) -> Any:
    """Each hardware's signed errors on ``metric`` as points over a box, hardware sorted by their median error
    (most under-predicted first); the error axis is predicted / measured on a log scale (labelled as the
    error), so halving and doubling lie equally far from 0."""
    import plotly.graph_objects as go

    display = QUANTITIES[metric]
    title = f"{display.title.capitalize()}: error per hardware"
    fig = go.Figure()
    part = scored_rows(rows, metric)
    if part.empty:
        return _empty(fig, f"No scored row of {metric}", title)
    markers = validation_markers(rows)
    medians = part.groupby("hardware", sort=False)["error"].median().sort_values(kind="stable")
    for name, median in medians.items():
        points = part[part["hardware"] == name]
        colour, symbol = markers[str(name)]
        fig.add_trace(
            go.Box(
                x=[str(name)] * len(points),
                y=points["predicted"].to_numpy(float) / points["measured"].to_numpy(float),
                name=str(name),
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": colour, "symbol": symbol, "size": 7, "opacity": 0.8},
                line={"color": colour, "width": 1.2},
                fillcolor="rgba(0, 0, 0, 0)",
                hovertext=_hover(points, display),
                hoverinfo="text",
                meta={"role": "errors", "hardware": str(name), "median": float(median)},
            )
        )
    ratios = part["predicted"].to_numpy(float) / part["measured"].to_numpy(float)
    fig.add_hrect(y0=1 - BAND, y1=1 + BAND, fillcolor="rgba(120, 130, 140, 0.15)", line_width=0, layer="below")
    fig.add_hline(y=1.0, line={"color": "#444", "width": 1.2})
    axis = _ratio_range(ratios)
    ticks, text = _error_ticks(axis)
    optimistic = "under" if metric in LATENCIES else "over"
    fig.update_layout(
        title={
            "text": title,
            "subtitle": {
                "text": "error = predicted / measured − 1, on a log scale (−50 % as far from 0 as +100 %) · sorted by"
                f" median error · {optimistic}-predicting {display.title} is optimistic · shaded: within ±20%"
            },
        },
        xaxis={"title": {"text": "hardware"}, "categoryorder": "array", "categoryarray": list(medians.index)},
        yaxis={
            "title": {"text": "error (predicted / measured − 1)"},
            "type": "log",
            "tickvals": ticks,
            "ticktext": text,
            "range": axis,
        },
        template="plotly_white",
        height=460,
        margin={"t": 90},
        showlegend=False,
    )
    return fig
