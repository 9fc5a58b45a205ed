"""Charts over a run's trials beyond the scatter: parallel coordinates, hypervolume against evaluations, and
each hardware's best configuration. Data first (plain tables a test can check), then the figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dse.report._answer import Pick
from dse.report._labels import (
    DISPLAY,
    HARDWARE_COLOURS,
    PARAMETER_TITLES,
    best_word,
    config_labels,
    format_metric,
    metric_value,
    palette,
    parameter_text,
    shown_parameters,
)
from dse.search import Normalisation, hypervolume, objective_points
from dse.space import ObjectiveRecord

PARCOORDS_LINES = 3000
"""Most dominated trials a parallel-coordinates chart draws besides the front (evenly spaced in evaluation
order); more lines than this are a solid band that no brushing can read."""
HISTORY_SAMPLES = 200
"""Points on the hypervolume-against-evaluations curve (evenly spaced, plus every stage boundary)."""


def parallel_rows(trials: pd.DataFrame, front: pd.DataFrame, lines: int = PARCOORDS_LINES) -> pd.DataFrame:
    """The trials a parallel-coordinates chart draws: every front member, then at most ``lines`` other
    feasible trials, evenly spaced in evaluation order; column ``on_front`` tells which is which."""
    feasible = trials["feasible"].to_numpy(dtype=bool)
    on_front = np.isin(trials["candidate_id"].to_numpy(), front["candidate_id"].to_numpy())
    others = np.flatnonzero(feasible & ~on_front)
    if len(others) > lines:
        others = others[np.linspace(0, len(others) - 1, lines).round().astype(int)]
    chosen = np.concatenate([others, np.flatnonzero(on_front & feasible)])
    return trials.iloc[chosen].assign(on_front=on_front[chosen])


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Missing values first, then numbers in numeric order, then words."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return (0, 0.0, "")
    if isinstance(value, int | float | np.number):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def _category_axis(name: str, values: pd.Series, order: Sequence[str] | None) -> dict[str, Any]:
    """A parameter as a parcoords dimension: one tick per distinct value (in the space's order, else sorted)."""
    words = parameter_text(name, values.to_numpy())
    raw = pd.Series(values.to_numpy(dtype=object))
    if order is None:
        distinct = raw.drop_duplicates()
        keys = sorted(range(len(distinct)), key=lambda i: _sort_key(distinct.iloc[i]))
        order_words = [words[distinct.index[i]] for i in keys]
    else:
        order_words = [w for w in order if w in set(words)]
    codes = pd.Categorical(words, categories=order_words).codes
    return {
        "label": PARAMETER_TITLES[name],
        "values": codes,
        "tickvals": list(range(len(order_words))),
        "ticktext": order_words,
        "range": [-0.3, max(len(order_words) - 0.7, 0.3)],
    }


def _batch_axis(values: pd.Series) -> dict[str, Any]:
    """Batch on a log2 scale (parcoords has no log axis), labelled at powers of two."""
    logged = np.log2(values.to_numpy(dtype=float))
    if not len(logged):  # nothing to draw: no ticks (reductions of an empty array raise)
        return {"label": "batch", "values": logged, "tickvals": [], "ticktext": []}
    ticks = np.arange(np.floor(logged.min()), np.ceil(logged.max()) + 1)
    axis = {"label": "batch", "values": logged, "tickvals": ticks, "ticktext": [f"{2**t:g}" for t in ticks]}
    # the axis spans its ticks: a tick beyond the values' range is drawn above the axis, over its title
    return axis | ({"range": [float(ticks[0]), float(ticks[-1])]} if len(ticks) > 1 else {})


def _metric_axis(metric: str, values: np.ndarray) -> dict[str, Any]:
    """A metric as a parcoords dimension in display units; unknown values (no price, say) sit on an ``unknown``
    tick below the axis instead of dropping the line (parcoords draws no line through a missing value)."""
    label = DISPLAY[metric].column
    known = np.isfinite(values)
    if known.all() or not known.any():
        return {"label": label, "values": values}
    low, high = float(values[known].min()), float(values[known].max())
    span = high - low if high > low else abs(high) or 1.0
    ticks = [float(f"{t:.3g}") for t in np.linspace(low, high, 6)]
    floor = low - 0.12 * span
    return {
        "label": label,
        "values": np.where(known, values, floor),
        "tickvals": [floor, *ticks],
        "ticktext": ["unknown", *(f"{t:g}" for t in ticks)],
    }


def parallel_coordinates(
    trials: pd.DataFrame,
    front: pd.DataFrame,
    metrics: Sequence[str],
    *,
    hardware: Sequence[str] | None = None,
    quants: Sequence[str] | None = None,
    lines: int = PARCOORDS_LINES,
) -> Any:
    """One line per trial (``parallel_rows``): the choices that vary (hardware, quantization, KV format, tp,
    pp, ep, ..., batch), then ``metrics`` in display units, then whether it is on the front. Colour =
    hardware. Drag along an axis to filter."""
    import plotly.graph_objects as go

    rows = parallel_rows(trials, front, lines)
    hardware = list(hardware or pd.unique(trials["hardware"]))
    orders = {"hardware": hardware, "quant": list(quants) if quants else None}
    dimensions = []
    for name in shown_parameters(trials):
        if name == "batch":
            dimensions.append(_batch_axis(rows["batch"]))
        else:
            dimensions.append(_category_axis(name, rows[name], orders.get(name)))
    for metric in metrics:
        dimensions.append(_metric_axis(metric, metric_value(metric, rows[metric])))
    dimensions.append(
        {
            "label": "on the front",
            "values": rows["on_front"].astype(int).to_numpy(),
            "tickvals": [0, 1],
            "ticktext": ["no", "yes"],
            "range": [-0.3, 1.3],
        }
    )
    colours = palette(hardware, HARDWARE_COLOURS)
    n = max(len(hardware) - 1, 1)
    scale = (
        [[i / n, colours[h]] for i, h in enumerate(hardware)]
        if len(hardware) > 1
        else [[0, colours[hardware[0]]], [1, colours[hardware[0]]]]
    )
    codes = pd.Categorical(rows["hardware"], categories=hardware).codes
    fig = go.Figure(
        go.Parcoords(
            line={"color": codes, "colorscale": scale, "cmin": 0, "cmax": n},
            dimensions=dimensions,
            meta={"role": "parcoords", "rows": len(rows)},
        )
    )
    fig.update_layout(
        title={
            "text": "Choices and metrics, one line per configuration",
            "subtitle": {
                "text": (
                    f"{int(rows['on_front'].sum()):,} front members and {int((~rows['on_front']).sum()):,}"
                    f" other feasible trials (of {int(trials['feasible'].sum()):,}; evenly spaced)"
                    " · colour = hardware · drag on an axis to filter"
                )
            },
        },
        template="plotly_white",
        height=600,
        margin={"t": 150, "l": 90, "r": 90},
    )
    return fig


def hypervolume_curve(
    trials: pd.DataFrame, objectives: Sequence[ObjectiveRecord], norm: Normalisation, samples: int = HISTORY_SAMPLES
) -> pd.DataFrame:
    """Hypervolume of the feasible front of the first n evaluations (in the order evaluated), for ``samples``
    evenly spaced n and every stage boundary; ``norm`` is the run's (``summary.json``), so the last value is
    the run's hypervolume. Columns: evaluations, hypervolume, stage."""
    import moocore

    points = objective_points(trials, objectives)
    ok = trials["feasible"].to_numpy(dtype=bool) & np.all(np.isfinite(points), axis=1)
    stages = trials["stage"].astype(str).to_numpy() if "stage" in trials else np.full(len(trials), "")
    boundaries = np.flatnonzero(stages[1:] != stages[:-1]) + 1
    ends = np.unique(np.concatenate([np.linspace(0, len(trials), samples + 1).round().astype(int)[1:], boundaries]))
    front = np.zeros((0, points.shape[1]))
    out, start = [], 0
    for end in ends:
        new = points[start:end][ok[start:end]]
        if len(new):
            pool = np.concatenate([front, new])
            front = pool[moocore.is_nondominated(pool, keep_weakly=False)]
        out.append((int(end), hypervolume(front, norm), stages[end - 1]))
        start = end
    return pd.DataFrame(out, columns=["evaluations", "hypervolume", "stage"])


_STAGE_TEXT = {
    "search": "Optuna search (multivariate TPE, then NSGA-II)",
    "polish": "batch polish (front configurations at every batch)",
    "exhaustive": "exhaustive enumeration",
}


def _stage_text(stage: str, tpe_trials: int | None) -> str:
    if stage == "search" and tpe_trials is not None:
        return f"Optuna search (multivariate TPE, NSGA-II past {tpe_trials:,} trials)"
    return _STAGE_TEXT.get(stage, stage)


def hypervolume_history(curve: pd.DataFrame, final: float | None = None, tpe_trials: int | None = None) -> Any:
    """The hypervolume curve (``hypervolume_curve``), one colour per stage; ``final`` (the run's summary value)
    drawn as a dotted line; ``tpe_trials``: the trials after which the search hands over to NSGA-II (its legend
    says when, not that it did)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    stage_colours = {"search": "#1f77b4", "polish": "#ff7f0e", "exhaustive": "#2ca02c"}
    previous = None
    for stage, part in curve.groupby((curve["stage"] != curve["stage"].shift()).cumsum(), sort=False):
        name = str(part["stage"].iloc[0])
        segment = part if previous is None else pd.concat([previous.tail(1), part])
        fig.add_trace(
            go.Scatter(
                x=segment["evaluations"],
                y=segment["hypervolume"],
                mode="lines+markers",
                marker={"size": 4},
                name=_stage_text(name, tpe_trials),
                line={"color": stage_colours.get(name, "#555")},
                meta={"role": "hypervolume", "stage": name, "segment": int(stage)},
            )
        )
        previous = part
    if final is not None:
        fig.add_hline(
            y=final,
            line={"dash": "dot", "color": "#666", "width": 1},
            annotation_text=f"final {final:.4f}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        title={
            "text": "Hypervolume against evaluations",
            "subtitle": {
                "text": (
                    "feasible front of the first n evaluations; objectives normalised as in summary.json (log10, scaled"
                    " to the final front; reference 1.1)"
                )
            },
        },
        xaxis={"title": {"text": "evaluations (candidates, in the order evaluated)"}},
        yaxis={"title": {"text": "hypervolume (normalised, unitless)"}},
        template="plotly_white",
        height=480,
        margin={"t": 100},
    )
    return fig


def best_per_hardware_chart(picks: Sequence[Pick], objective: ObjectiveRecord, trials: pd.DataFrame) -> Any:
    """One bar per hardware: its best configuration under the SLOs on ``objective`` (``best_per_hardware``),
    named beside the bar; a hardware with none says why. Best at the top."""
    import plotly.graph_objects as go

    metric, parameters = objective.metric, [p for p in shown_parameters(trials) if p != "hardware"]
    colours = palette([p.role for p in picks], HARDWARE_COLOURS)
    found = [p for p in picks if p.row is not None]
    found.sort(key=lambda p: float(p.row[metric]) * (-1 if objective.maximize else 1))  # type: ignore[index]
    missing = [p for p in picks if p.row is None]
    labels, values, texts, hover = [], [], [], []
    for pick in found:
        row = pick.row
        assert row is not None
        config = config_labels(pd.DataFrame([row]), parameters).iloc[0]
        labels.append(pick.role)
        values.append(float(metric_value(metric, row[metric])))
        texts.append(f"{format_metric(metric, float(row[metric]))} · {config}")
        hover.append(f"<b>{pick.role}</b> · {config}")
    for pick in missing:
        labels.append(pick.role)
        values.append(0.0)
        texts.append(pick.note)
        hover.append(f"<b>{pick.role}</b>: {pick.note}")
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=values,
            orientation="h",
            text=texts,
            textposition="outside",
            cliponaxis=False,
            hovertext=hover,
            hoverinfo="text",
            marker={"color": [colours[p] for p in labels]},
            meta={"role": "best_per_hardware", "feasible": len(found), "missing": len(missing)},
        )
    )
    best = max(values) if values else 1.0
    fig.update_layout(
        title={
            "text": f"Best configuration per hardware, by {DISPLAY[metric].title}",
            "subtitle": {
                "text": (
                    f"{best_word(objective.maximize)} {DISPLAY[metric].title} among each"
                    " hardware's feasible configurations (every SLO and constraint met)"
                )
            },
        },
        xaxis={"title": {"text": DISPLAY[metric].axis}, "range": [0, best * 2.2]},
        yaxis={"autorange": "reversed", "title": {"text": "hardware"}},
        template="plotly_white",
        height=max(260, 70 + 48 * len(labels)),
        margin={"t": 100, "l": 140},
        showlegend=False,
    )
    return fig
