"""Sweep charts: each point's front overlaid on one chart, and one small chart per point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dse.report._data import RunResults
from dse.report._labels import (
    DISPLAY,
    HARDWARE_COLOURS,
    QUANT_SYMBOLS,
    config_labels,
    metric_value,
    palette,
    shown_parameters,
)
from dse.report._scatter import axis_type, point_hover, tradeoff
from dse.report._thin import Axis, drawable, spans_decades
from dse.space import MAXIMIZED


def _fronts(runs: Sequence[tuple[str, RunResults]]) -> pd.DataFrame:
    return pd.concat([run.front.assign(sweep_point=label) for label, run in runs], ignore_index=True)


def _logs(runs: Sequence[tuple[str, RunResults]], x: str, y: str) -> tuple[bool, bool]:
    fronts = _fronts(runs)
    return spans_decades(metric_value(x, fronts[x])), spans_decades(metric_value(y, fronts[y]))


def _values(runs: Sequence[tuple[str, RunResults]], metric: str) -> np.ndarray:
    """Every point's front values of ``metric`` in display units (an axis's extent)."""
    return np.concatenate([np.asarray(metric_value(metric, run.front[metric]), dtype=np.float64) for _, run in runs])


def sweep_overlay(runs: Sequence[tuple[str, RunResults]], x: str, y: str) -> Any:
    """Every sweep point's front in the plane of ``x`` and ``y``: colour = sweep point, symbol = quantization,
    a line through each point's best trade-off between the two metrics."""
    import plotly.graph_objects as go

    colours = palette([label for label, _ in runs], HARDWARE_COLOURS)
    quants = list(dict.fromkeys(q for _, run in runs for q in run.quants))
    symbols = palette(quants, QUANT_SYMBOLS)
    log_x, log_y = _logs(runs, x, y)
    fig = go.Figure()
    hover = point_hover(x, y, extra="%{fullData.name}")
    for label, run in runs:
        front = run.front
        vx, vy = metric_value(x, front[x]), metric_value(y, front[y])
        ok = drawable([Axis(vx, log_x), Axis(vy, log_y)])
        best = np.flatnonzero(ok)[tradeoff(np.stack([vx[ok], vy[ok]], axis=1), [x in MAXIMIZED, y in MAXIMIZED])]
        fig.add_trace(
            go.Scatter(
                x=vx[ok],
                y=vy[ok],
                mode="markers",
                name=label,
                legendgroup=label,
                text=config_labels(front[ok], shown_parameters(run.trials)).to_numpy(),
                hovertemplate=hover,
                marker={
                    "color": colours[label],
                    "size": 8,
                    "symbol": front["quant"][ok].map(symbols).fillna("circle"),
                    "line": {"width": 1, "color": "#222"},
                },
                meta={"role": "front", "point": label},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=vx[best],
                y=vy[best],
                mode="lines",
                name=f"{label}: best trade-off",
                legendgroup=label,
                showlegend=False,
                line={"color": colours[label], "width": 1.5},
                hoverinfo="skip",
                meta={"role": "tradeoff", "point": label},
            )
        )
    fig.update_layout(
        title={
            "text": f"Fronts across the sweep: {DISPLAY[y].title} vs {DISPLAY[x].title}",
            "subtitle": {
                "text": (
                    "each sweep point's Pareto front (its own objectives), projected on these two metrics; lines: each"
                    " point's best trade-off between them"
                )
            },
        },
        xaxis={"title": {"text": DISPLAY[x].axis}, **axis_type(log_x, values=_values(runs, x))},
        yaxis={"title": {"text": DISPLAY[y].axis}, **axis_type(log_y, values=_values(runs, y))},
        template="plotly_white",
        height=600,
        margin={"t": 100},
        legend={"title": {"text": "sweep point"}},
    )
    return fig


def sweep_panels(runs: Sequence[tuple[str, RunResults]], x: str, y: str, columns: int = 3) -> Any:
    """One small chart per sweep point (shared axes): its front, colour = hardware."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = -(-len(runs) // columns)
    cols = min(columns, len(runs))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        shared_xaxes="all",
        shared_yaxes="all",
        subplot_titles=[label for label, _ in runs],
        horizontal_spacing=0.04,
        vertical_spacing=0.12 / max(rows - 1, 1) if rows > 1 else 0.1,
    )
    hardware = list(dict.fromkeys(h for _, run in runs for h in run.hardware))
    colours = palette(hardware, HARDWARE_COLOURS)
    log_x, log_y = _logs(runs, x, y)
    shown: set[str] = set()
    for index, (label, run) in enumerate(runs):
        row, col = index // cols + 1, index % cols + 1
        parameters = shown_parameters(run.trials)
        for name in hardware:
            front = run.front[(run.front["hardware"] == name).to_numpy()]
            if not len(front):
                continue
            fig.add_trace(
                go.Scatter(
                    x=metric_value(x, front[x]),
                    y=metric_value(y, front[y]),
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=name not in shown,
                    marker={"color": colours[name], "size": 6},
                    text=config_labels(front, parameters).to_numpy(),
                    hovertemplate=point_hover(x, y, extra=label),
                    meta={"role": "front", "point": label},
                ),
                row=row,
                col=col,
            )
            shown.add(name)
    fig.update_xaxes(**axis_type(log_x, values=_values(runs, x)))
    fig.update_yaxes(**axis_type(log_y, values=_values(runs, y)))
    for col in range(1, cols + 1):
        fig.update_xaxes(title_text=DISPLAY[x].axis, row=rows, col=col)
    for row in range(1, rows + 1):
        fig.update_yaxes(title_text=DISPLAY[y].axis, row=row, col=1)
    fig.update_layout(
        title={
            "text": "One chart per sweep point",
            "subtitle": {"text": "each point's Pareto front; colour = hardware"},
        },
        template="plotly_white",
        height=120 + 300 * rows,
        margin={"t": 110},
        legend={"title": {"text": "hardware"}},
    )
    return fig
