"""Pareto scatter charts (2-D and 3-D): every feasible trial, the front on top, infeasible trials faint, SLO
bounds shaded. Builders only: DataFrames in, a plotly Figure out, no I/O."""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dse import units
from dse.report._data import Bound
from dse.report._labels import (
    DISPLAY,
    HARDWARE_COLOURS,
    QUANT_SYMBOLS,
    QUANT_SYMBOLS_3D,
    RECIPROCALS,
    SYMBOL_CODES,
    config_labels,
    metric_value,
    palette,
    shown_parameters,
)
from dse.report._thin import CELLS_3D, Axis, drawable, spans_decades, thin
from dse.space import MAXIMIZED

GL_POINTS = 2000
"""Above this many drawn points a chart uses WebGL (``Scattergl``) for all its traces; below, SVG (crisper,
and a PNG of it is vector-exact). All traces of a chart use one kind so that the front stays on top."""
INFEASIBLE_COLOUR = "#b0b0b0"
SLO_FILL = "rgba(200, 30, 30, 0.07)"
"""The region a bound excludes: a faint red."""


@dataclass(frozen=True)
class Limit:
    """Where a bound cuts one chart axis, in display units: values above ``high`` or below ``low`` fail it."""

    low: float | None
    high: float | None
    text: str


def axis_limits(metric: str, bounds: Sequence[Bound]) -> list[Limit]:
    """The bounds that cut ``metric``'s axis: its own, and those on its reciprocal (a TPOT bound on a tokens/s
    per user axis)."""
    out = []
    scale = DISPLAY[metric].scale
    for b in bounds:
        name = f"{DISPLAY[b.metric].title} {b.kind}"
        if b.metric == metric:
            low = None if b.low is None else b.low * scale
            high = None if b.high is None else b.high * scale
        elif RECIPROCALS.get(metric) == b.metric:
            low = None if not b.high else scale / b.high
            high = None if not b.low else scale / b.low
        else:
            continue
        parts = ([] if low is None else [f"≥ {low:.4g}"]) + ([] if high is None else [f"≤ {high:.4g}"])
        out.append(Limit(low, high, f"{name}: {' and '.join(parts)} {DISPLAY[metric].unit}"))
    return out


def bounds_text(bounds: Sequence[Bound]) -> str:
    """The feasibility condition in words: ``TTFT ≤ 2000 ms, TPOT ≤ 50 ms``."""
    parts = []
    for b in bounds:
        d = DISPLAY[b.metric]
        if b.low is not None:
            parts.append(f"{d.title} ≥ {b.low * d.scale:.4g} {d.unit}")
        if b.high is not None:
            parts.append(f"{d.title} ≤ {b.high * d.scale:.4g} {d.unit}")
    return ", ".join(parts)


def _range(values: np.ndarray, log: bool) -> list[float]:
    """An axis range with 4 % padding (log10 units on a log axis); plotly's default when nothing is drawn."""
    values = values[np.isfinite(values) & ((values > 0) if log else True)]
    if not len(values):
        return [0.0, 1.0]
    low, high = (np.log10(values.min()), np.log10(values.max())) if log else (values.min(), values.max())
    pad = 0.04 * (high - low) if high > low else (0.3 if log else max(abs(low) * 0.1, 1.0))
    return [float(low - pad), float(high + pad)]


TICK_SLACK = 2.0**-30
"""Decades by which a 1-2-5 tick may fall outside a log axis's extent and still be labelled (rounding)."""


def _hardware_key(fig: Any, kind: Any, names: Sequence[str], colours: dict[str, str], size: float) -> None:
    """The hardware key: a round swatch of each hardware's colour (its traces' own entries would take their
    first point's quantization symbol), in the legend only, toggling the hardware's traces (its group)."""
    for name in names:
        fig.add_trace(
            kind(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                legendgroup=name,
                marker={"color": colours[name], "symbol": "circle", "size": size},
                meta={"role": "hardware_key"},
            )
        )


def _symbol_key(fig: Any, kind: Any, quants: Sequence[str], symbols: dict[str, Any], size: float) -> None:
    """The quantization key: one grey marker of each scheme's symbol, in the legend only (``kind``: the scatter
    type, its other coordinates empty)."""
    for quant in quants:
        fig.add_trace(
            kind(
                x=[None],
                y=[None],
                mode="markers",
                name=quant,
                legendgroup="quant",
                legendgrouptitle={"text": "quantization"} if quant == quants[0] else None,
                marker={"color": "#555", "symbol": symbols[quant], "size": size},
                meta={"role": "legend"},
            )
        )


def front_marker(points: int) -> float:
    """A front marker's size (px): 10 for a front of up to 40 points, smaller as it grows (6.5 from about 95,
    still above the dominated trials' 6), so a front that runs along a batch line (a point per batch) stays a
    row of shapes, not a dark smear."""
    return float(np.clip(10.0 * np.sqrt(40.0 / max(points, 1)), 6.5, 10.0))


def axis_type(log: bool, drawn: Sequence[float] | None = None, values: Any = None) -> dict[str, Any]:
    """A plotly axis type. A log axis (``drawn``: its range in decades, or the ``values`` it shows) is labelled
    in full, never with plotly's minor labels, which are the digit alone (0.5 and 50 both read "5"): at 1, 2
    and 5 of each decade over at most three decades (0.2, 0.5, 1, 2, 5, 10), at each decade beyond
    (``tick_text``: 100, 1k, 10k). An axis under a factor of two or so keeps plotly's labels, which say more."""
    if not log:
        return {"type": "linear"}
    if drawn is None and values is not None:
        shown = np.asarray(values, dtype=np.float64)
        shown = shown[np.isfinite(shown) & (shown > 0)]
        drawn = (float(np.log10(shown.min())), float(np.log10(shown.max()))) if len(shown) else None
    if drawn is None:
        return {"type": "log"}
    steps = (1, 2, 5) if drawn[1] - drawn[0] <= 3 else (1,)
    ticks = [
        m * 10.0**d
        for d in range(int(np.floor(drawn[0])), int(np.ceil(drawn[1])) + 1)
        for m in steps
        if drawn[0] - TICK_SLACK <= np.log10(m) + d <= drawn[1] + TICK_SLACK
    ]
    if len(ticks) < 2:
        return {"type": "log"}
    return {"type": "log", "tickvals": ticks, "ticktext": [tick_text(t) for t in ticks]}


def tick_text(value: float) -> str:
    """A log axis's tick in full: 0.002, 0.5, 20, 5,000 up to 10,000; 20k, 5M, 1G beyond; 1e-05 below 0.001."""
    if value < 1e-3:
        return f"{value:.0e}"
    if value <= 1e4:
        return f"{value:,.6g}"
    for scale, suffix in units.SI_PREFIXES:
        if value >= scale:
            return f"{value / scale:.6g}{suffix}"
    return f"{value:.6g}"  # unreachable: above 10,000 a scale applies


def _compact(values: np.ndarray) -> np.ndarray:
    """Coordinates as float32 in the page (7 significant digits; hover shows 4): half the bytes of float64."""
    return np.asarray(values, dtype=np.float32)


def _in_front(trials: pd.DataFrame, front: pd.DataFrame) -> np.ndarray:
    return np.isin(trials["candidate_id"].to_numpy(), front["candidate_id"].to_numpy())


def point_hover(x: str, y: str, z: str | None = None, extra: str = "") -> str:
    """A point's hover template: its configuration (``text``), then each metric named with its unit and its
    value in full (12,930, not 1.293e+4); ``extra``: the side box's text (plotly's ``<extra>``)."""
    lines = [f"{DISPLAY[x].axis}: %{{x:,.4~r}}", f"{DISPLAY[y].axis}: %{{y:,.4~r}}"]
    if z:
        lines.append(f"{DISPLAY[z].axis}: %{{z:,.4~r}}")
    return "<b>%{text}</b><br>" + "<br>".join(lines) + f"<extra>{extra}</extra>"


def tradeoff(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Positions of the rows of ``points`` (n x 2) that no other row beats on both columns (directions as
    given), sorted by the first column: the best trade-off between the two plotted metrics."""
    if not len(points):
        return np.zeros(0, dtype=np.intp)
    import moocore

    signed = points * np.where(np.asarray(maximize), -1.0, 1.0)
    keep = np.flatnonzero(moocore.is_nondominated(signed, keep_weakly=False))
    return keep[np.argsort(points[keep, 0], kind="stable")]


def pareto_scatter(
    trials: pd.DataFrame,
    front: pd.DataFrame,
    x: str,
    y: str,
    *,
    hardware: Sequence[str] | None = None,
    quants: Sequence[str] | None = None,
    bounds: Sequence[Bound] = (),
    log_x: bool | None = None,
    log_y: bool | None = None,
    title: str | None = None,
) -> Any:
    """Metric ``x`` against metric ``y``: every trial (thinned, ``dse.report._thin``), colour = hardware, symbol
    = quantization; the front (exactly ``front``'s rows) drawn on top with outlined markers; the best trade-off
    between the two plotted metrics as a dashed line; infeasible trials faint; each bound on an axis shaded.
    Every trace carries ``meta={"role": ...}`` (infeasible, feasible, front, tradeoff, legend)."""
    import plotly.graph_objects as go

    hardware = list(hardware or pd.unique(trials["hardware"]))
    quants = list(quants or pd.unique(trials["quant"]))
    colours, symbols = palette(hardware, HARDWARE_COLOURS), palette(quants, QUANT_SYMBOLS)
    parameters = shown_parameters(trials)
    xs, ys = metric_value(x, trials[x]), metric_value(y, trials[y])
    feasible = trials["feasible"].to_numpy(dtype=bool)
    drawn_values = np.concatenate([xs[feasible], metric_value(x, front[x])]) if len(front) or feasible.any() else xs
    log_x = spans_decades(drawn_values) if log_x is None else log_x
    drawn_values_y = np.concatenate([ys[feasible], metric_value(y, front[y])]) if len(front) or feasible.any() else ys
    log_y = spans_decades(drawn_values_y) if log_y is None else log_y
    axes = [Axis(xs, log_x), Axis(ys, log_y)]
    on_front = _in_front(trials, front)
    hw_codes = pd.Categorical(trials["hardware"], categories=hardware).codes
    cloud = feasible & ~on_front
    kept_cloud = np.flatnonzero(cloud)[thin([Axis(a.values[cloud], a.log) for a in axes], hw_codes[cloud])]
    infeasible = ~feasible
    kept_bad = np.flatnonzero(infeasible)[
        thin([Axis(a.values[infeasible], a.log) for a in axes], np.zeros(infeasible.sum()))
    ]
    front_ok = drawable([Axis(metric_value(x, front[x]), log_x), Axis(metric_value(y, front[y]), log_y)])
    kind = go.Scattergl if len(kept_cloud) + len(kept_bad) + len(front) > GL_POINTS else go.Scatter
    hover = point_hover(x, y)
    fig = go.Figure()
    if len(kept_bad):
        rows = trials.iloc[kept_bad]
        text = config_labels(rows, parameters) + "<br>infeasible: " + rows["infeasible_reason"].fillna("").astype(str)
        fig.add_trace(
            kind(
                x=_compact(xs[kept_bad]),
                y=_compact(ys[kept_bad]),
                mode="markers",
                name="infeasible",
                text=text.to_numpy(),
                hovertemplate=hover,
                marker={"color": INFEASIBLE_COLOUR, "size": 4, "opacity": 0.35},
                meta={"role": "infeasible", "count": int(infeasible.sum())},
            )
        )
    layers = (("feasible", trials.iloc[kept_cloud], 6, 0.45), ("front", front[front_ok], front_marker(len(front)), 1.0))
    own = [p for p in parameters if p != "hardware"]  # a hardware's trace names it once, in its hover template
    for role, frame, size, opacity in layers:
        for name in hardware:
            rows = frame[(frame["hardware"] == name).to_numpy()]
            vx, vy = metric_value(x, rows[x]), metric_value(y, rows[y])
            if not len(rows):
                continue
            fig.add_trace(
                kind(
                    x=_compact(vx),
                    y=_compact(vy),
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=False,  # the hardware's key below: a trace's own entry takes its first symbol
                    text=config_labels(rows, own).to_numpy(),
                    hovertemplate=f"<b>{html.escape(name)}</b> · " + hover,
                    marker={
                        "color": colours[name],
                        "size": size,
                        "opacity": opacity,
                        "symbol": rows["quant"].map(symbols).map(SYMBOL_CODES).fillna(0).to_numpy(dtype=np.uint8),
                        "line": {"width": 1.2 * size / 10 if role == "front" else 0, "color": "#222"},
                    },
                    meta={"role": role},
                )
            )
    _add_tradeoff(fig, kind, trials, feasible, xs, ys, (x, y), axes, parameters)
    drawn = {t.legendgroup for t in fig.data if t.meta["role"] in ("feasible", "front")}
    _hardware_key(fig, kind, [h for h in hardware if h in drawn], colours, 9)
    _symbol_key(fig, kind, quants, symbols, 9)
    x_range = _range(np.concatenate([xs[kept_cloud], xs[kept_bad], metric_value(x, front[x])]), log_x)
    y_range = _range(np.concatenate([ys[kept_cloud], ys[kept_bad], metric_value(y, front[y])]), log_y)
    _shade(fig, axis_limits(x, bounds), "x", x_range, log_x)
    _shade(fig, axis_limits(y, bounds), "y", y_range, log_y)
    counts = (  # the figure's own key to its markers: a PNG or SVG of it travels without the page's notes
        f"outlined: the front ({len(front):,}) · feasible: {int(feasible.sum()):,} of {len(trials):,} evaluated"
        f" · drawn: {len(kept_cloud):,} of {int(cloud.sum()):,} dominated, {len(kept_bad):,} of"
        f" {int(infeasible.sum()):,} infeasible (thinned, docs/report.md)"
    )
    condition = bounds_text(bounds)
    subtitle = counts + (f"<br>feasible means {condition}" if condition else "")
    fig.update_layout(
        title={"text": title or f"{DISPLAY[y].title} vs {DISPLAY[x].title}", "subtitle": {"text": subtitle}},
        xaxis={"title": {"text": DISPLAY[x].axis}, "range": x_range, **axis_type(log_x, x_range)},
        yaxis={"title": {"text": DISPLAY[y].axis}, "range": y_range, **axis_type(log_y, y_range)},
        template="plotly_white",
        height=600,
        margin={"t": 110},
        legend={"title": {"text": "hardware"}},
        hoverlabel={"align": "left"},
    )
    return fig


def _add_tradeoff(
    fig: Any,
    kind: Any,
    trials: pd.DataFrame,
    feasible: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    metrics: tuple[str, str],
    axes: Sequence[Axis],
    parameters: Sequence[str],
) -> None:
    """The dashed line through the best trade-off between the two plotted metrics (over every feasible trial,
    not only the run's front, whose objectives may be others)."""
    usable = np.flatnonzero(feasible & drawable(axes))
    if not len(usable):
        return
    maximize = [m in MAXIMIZED for m in metrics]
    best = usable[tradeoff(np.stack([xs[usable], ys[usable]], axis=1), maximize)]
    fig.add_trace(
        kind(
            x=xs[best],
            y=ys[best],
            mode="lines",
            name="best trade-off of these two",
            text=config_labels(trials.iloc[best], parameters).to_numpy(),
            hovertemplate=point_hover(*metrics),
            line={"color": "#333", "width": 1.2, "dash": "dash"},
            meta={"role": "tradeoff"},
        )
    )


def _shade(fig: Any, limits: Sequence[Limit], axis: str, drawn: list[float], log: bool) -> None:
    """Shade what each limit excludes, within the drawn range, and mark and label its boundary."""
    low_edge, high_edge = (10 ** drawn[0], 10 ** drawn[1]) if log else drawn
    line = {"color": "rgba(200, 30, 30, 0.6)", "width": 1, "dash": "dot"}
    for limit in limits:
        excluded = [(limit.high, high_edge, limit.high), (low_edge, limit.low, limit.low)]
        for start, end, edge in excluded:
            if edge is None or not low_edge < edge < high_edge:
                continue  # a bound outside the drawn range: every drawn point is on one side of it
            text = {"annotation_text": limit.text, "annotation_font_size": 10, "annotation_font_color": "#a00"}
            if axis == "x":
                fig.add_vrect(x0=start, x1=end, fillcolor=SLO_FILL, line_width=0, layer="below")
                fig.add_vline(
                    x=edge, line=line, annotation_position="top left" if start == edge else "top right", **text
                )
            else:
                fig.add_hrect(y0=start, y1=end, fillcolor=SLO_FILL, line_width=0, layer="below")
                fig.add_hline(y=edge, line=line, annotation_position="right", **text)


def pareto_scatter_3d(
    trials: pd.DataFrame,
    front: pd.DataFrame,
    metrics: Sequence[str],
    *,
    hardware: Sequence[str] | None = None,
    quants: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """Three metrics at once: the front (exactly ``front``'s rows) per hardware, and the feasible dominated
    trials thinned on a ``CELLS_3D``-per-axis grid, faint. Axes span decades -> log."""
    import plotly.graph_objects as go

    x, y, z = metrics
    hardware = list(hardware or pd.unique(trials["hardware"]))
    quants = list(quants or pd.unique(trials["quant"]))
    colours, symbols = palette(hardware, HARDWARE_COLOURS), palette(quants, QUANT_SYMBOLS_3D)
    parameters = shown_parameters(trials)
    feasible = trials["feasible"].to_numpy(dtype=bool)
    values = {m: metric_value(m, trials[m]) for m in metrics}
    logs = {m: spans_decades(np.concatenate([values[m][feasible], metric_value(m, front[m])])) for m in metrics}
    cloud = feasible & ~_in_front(trials, front)
    hw_codes = pd.Categorical(trials["hardware"], categories=hardware).codes
    axes = [Axis(values[m][cloud], logs[m]) for m in metrics]
    kept = np.flatnonzero(cloud)[thin(axes, hw_codes[cloud], CELLS_3D)]
    fig = go.Figure()
    hover = point_hover(x, y, z)
    shown: set[str] = set()
    for role, frame, size, opacity in (("feasible", trials.iloc[kept], 3, 0.3), ("front", front, 5, 1.0)):
        for name in hardware:
            rows = frame[(frame["hardware"] == name).to_numpy()]
            if not len(rows):
                continue
            fig.add_trace(
                go.Scatter3d(
                    x=metric_value(x, rows[x]),
                    y=metric_value(y, rows[y]),
                    z=metric_value(z, rows[z]),
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=False,  # the hardware's round key below: a trace's entry takes its first symbol
                    text=config_labels(rows, parameters).to_numpy(),
                    hovertemplate=hover,
                    marker={
                        "color": colours[name],
                        "size": size,
                        "opacity": opacity,
                        "symbol": rows["quant"].map(symbols).fillna("circle").to_numpy(),
                    },
                    meta={"role": role},
                )
            )
            shown.add(name)
    _hardware_key(fig, functools.partial(go.Scatter3d, z=[None]), [h for h in hardware if h in shown], colours, 5)
    _symbol_key(fig, functools.partial(go.Scatter3d, z=[None]), quants, symbols, 5)
    drawn = {m: np.concatenate([values[m][kept], metric_value(m, front[m])]) for m in metrics}
    scene: dict[str, Any] = {  # short titles: the three long ones overlap where the axes meet
        f"{axis}axis": {"title": {"text": DISPLAY[m].column}, **axis_type(logs[m], values=drawn[m])}
        for axis, m in zip("xyz", metrics, strict=True)
    }
    fig.update_layout(
        title={
            "text": title or "The front in three objectives",
            "subtitle": {
                "text": (
                    f"front: {len(front):,} (solid) · {len(kept):,} of {int(cloud.sum()):,} dominated feasible"
                    " trials (faint, thinned)"
                )
            },
        },
        scene=scene
        | {
            "aspectmode": "cube",
            "camera": {"eye": {"x": 1.6, "y": 1.45, "z": 0.75}, "center": {"x": 0, "y": 0, "z": -0.12}},
        },
        template="plotly_white",
        height=650,
        margin={"t": 90, "l": 10, "r": 10, "b": 10},
        legend={"title": {"text": "hardware"}, "itemsizing": "constant"},
    )
    return fig
