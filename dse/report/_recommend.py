"""Charts of ``dse recommend --report``, from its ``recommendation.json`` document (``Recommendation.to_dict()``,
non-finite numbers null): cost against load, renting against buying over the horizon, the winner's tornado,
and how often each option wins when prices, workload, load and the model's speed vary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dse.report._labels import HARDWARE_COLOURS, format_usd, palette

OTHERS_COLOUR = "#9aa5b1"
"""The bar of every ranked option beyond the shortlist."""
MISSES_SLO = "misses SLO"


def hardware_colours(doc: dict[str, Any]) -> dict[str, str]:
    """One colour per hardware in the shortlist's order, the same in every chart of the report."""
    names = [o["hardware"] for o in doc["options"]]
    names += [c["hardware"] for c in (*doc["cost_vs_load"]["options"], *doc["rent_vs_buy"])]
    return palette(list(dict.fromkeys(names)), HARDWARE_COLOURS)


def _tint(colour: str, share: float) -> str:
    """``colour`` mixed with ``share`` of white (a lighter shade of the same hardware)."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in rgb)


def _empty(fig: Any, text: str, title: str) -> Any:
    """A chart with nothing to draw says why instead of showing empty axes."""
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14})
    fig.update_layout(title={"text": title}, template="plotly_white", height=260)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _index(values: Sequence[float], x: float) -> int:
    return int(np.argmin(np.abs(np.asarray(values, dtype=float) - x)))


def cost_vs_load_chart(doc: dict[str, Any]) -> Any:
    """$/month of each shortlisted option against the average load, its configuration fixed and its replicas
    re-sized to the load (a step per replica added); the request's load as a vertical line and the loads where
    the cheapest option changes as markers."""
    import plotly.graph_objects as go

    curves, load = doc["cost_vs_load"], doc["load"]
    rates = curves["rate_rps"]
    fig = go.Figure()
    if not curves["options"]:
        return _empty(fig, "No priced option serves this load", "Cost as the load changes")
    colours = hardware_colours(doc)
    for curve in curves["options"]:
        name = curve["hardware"]
        fig.add_trace(
            go.Scatter(
                x=rates,
                y=curve["usd_per_month"],
                mode="lines",
                line={"shape": "hv", "color": colours[name], "width": 2},
                name=name,
                hovertemplate=f"{name}: $%{{y:,.0f}}/month<extra></extra>",
                meta={"role": "cost", "hardware": name},
            )
        )
    crossovers = curves["crossovers"]
    if crossovers:
        by_name = {c["hardware"]: c["usd_per_month"] for c in curves["options"]}
        fig.add_trace(
            go.Scatter(
                x=[c["rate_rps"] for c in crossovers],
                y=[by_name[c["to"]][_index(rates, c["rate_rps"])] for c in crossovers],
                mode="markers",
                name="the cheapest changes",
                marker={"symbol": "diamond", "size": 10, "color": "white", "line": {"width": 2, "color": "#222"}},
                hovertext=[f"{c['from']} -> {c['to']} at {c['rate_rps']:.3g} req/s" for c in crossovers],
                hovertemplate="%{hovertext}<extra></extra>",
                meta={"role": "crossover"},
            )
        )
    rate, sizing = load["rate_rps"], load["sizing_rate_rps"]
    fig.add_vline(
        x=rate,
        line={"color": "#444", "dash": "dash", "width": 1.5},
        annotation={"text": f"your load: {rate:.4g} req/s", "yanchor": "bottom"},
        annotation_position="top left",
    )
    sized = "" if sizing == rate else f" (sized for {sizing / rate:.3g} × the average: peak and headroom)"
    fig.update_layout(
        title={
            "text": "Cost as the load changes",
            "subtitle": {
                "text": "Each option keeps its configuration; its replicas follow the load"
                + sized
                + " · a step = one more replica"
            },
        },
        xaxis={"title": {"text": "average load (requests/s)"}, "rangemode": "tozero", "hoverformat": ".4g"},
        yaxis={"title": {"text": "fleet cost ($/month)"}, "rangemode": "tozero", "tickprefix": "$"},
        hovermode="x unified",
        template="plotly_white",
        height=480,
        margin={"t": 90},
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def rent_vs_buy_chart(doc: dict[str, Any]) -> Any:
    """Cumulative cost month by month of each option with both prices: rented (solid) and bought (dashed: the
    purchase on day one, then electricity and operations), with the month buying starts to pay off."""
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Rent or buy"
    entries = doc["rent_vs_buy"]
    if not entries:
        return _empty(fig, "No option of the shortlist has both a rent and a purchase price", title)
    colours = hardware_colours(doc)
    marks: list[tuple[str, float, float]] = []
    for entry in entries:
        name, months = entry["hardware"], entry["months"]
        months_even = entry["break_even_months"]
        pays = "never pays off" if months_even is None else f"pays off after {months_even:.1f} months"
        for role, key, dash in (("rent", "rent_usd", "solid"), ("buy", "buy_usd", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=months,
                    y=entry[key],
                    mode="lines",
                    name=f"{name}: {role}" + (f" ({pays})" if role == "buy" else ""),
                    legendgroup=name,
                    line={"color": colours[name], "dash": dash, "width": 2},
                    hovertemplate=f"{name}, {role}: $%{{y:,.0f}} after %{{x}} months<extra></extra>",
                    meta={"role": role, "hardware": name},
                )
            )
        if months_even is not None and months_even <= months[-1]:
            marks.append((name, months_even, float(np.interp(months_even, months, entry["rent_usd"]))))
    if marks:
        fig.add_trace(
            go.Scatter(
                x=[m for _, m, _ in marks],
                y=[usd for _, _, usd in marks],
                mode="markers",
                name="break-even",
                marker={
                    "size": 11,
                    "color": [colours[n] for n, _, _ in marks],
                    "line": {"width": 1.5, "color": "#222"},
                },
                hovertext=[f"{n}: buying beats renting after {m:.1f} months" for n, m, _ in marks],
                hovertemplate="%{hovertext}<extra></extra>",
                meta={"role": "break_even", "hardware": [n for n, _, _ in marks]},
            )
        )
    subtitle = "solid: rented · dashed: bought (the purchase on day one, then power and operations) · a dot: the"
    subtitle += " month buying starts to pay off"
    fig.update_layout(
        title={"text": title, "subtitle": {"text": subtitle}},
        xaxis={"title": {"text": "months from now"}, "range": [0, entries[0]["months"][-1]], "dtick": 6},
        yaxis={"title": {"text": "cumulative cost ($)"}, "rangemode": "tozero", "tickprefix": "$"},
        template="plotly_white",
        height=480,
        margin={"t": 90},
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def _extent(bar: dict[str, Any]) -> float:
    """How far a tornado bar reaches, end to end (the nominal included: both ends may lie on one side)."""
    values = [v for v in (bar["low"], bar["high"], bar["nominal"]) if v is not None]
    return max(values) - min(values)


def tornado_chart(doc: dict[str, Any]) -> Any:
    """The winner's $/month with each uncertain input alone at its low and its high end (the others nominal):
    one bar from the nominal cost to each end, widest on top; an end where the winner's configuration misses
    an SLO is hatched and says so."""
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "What moves the winner's cost"
    robust = doc.get("robustness")
    if not robust or not robust["tornado"] or not doc["options"]:
        return _empty(fig, "No robustness analysis (no draws were asked for, or nothing serves)", title)
    winner = doc["options"][0]
    colour = hardware_colours(doc)[winner["hardware"]]
    bars = sorted(robust["tornado"], key=_extent, reverse=True)
    nominal = bars[0]["nominal"]
    inputs = [b["input"] for b in bars]
    for end in ("low", "high"):
        fig.add_trace(_tornado_bars(bars, end, colour, nominal))
    values = [v for b in bars for v in (b["low"], b["high"]) if v is not None] + [nominal]
    pad = 0.3 * (max(values) - min(values) or nominal)
    fig.add_vline(
        x=nominal,
        line={"color": "#222", "width": 1.5},
        annotation={"text": f"nominal {format_usd(nominal)}/month", "yanchor": "bottom"},
        annotation_position="top",
    )
    fig.update_layout(
        barmode="overlay",
        title={
            "text": title,
            "subtitle": {
                "text": f"{winner['hardware']} ({winner['devices']} devices): each input alone at the low and the"
                " high end of its range, the others nominal · hatched: its configuration then misses an SLO"
            },
        },
        xaxis={
            "title": {"text": f"{winner['hardware']} fleet cost ($/month)"},
            "range": [max(0.0, min(values) - pad), max(values) + pad],
            "tickprefix": "$",
        },
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": inputs},
        template="plotly_white",
        height=120 + 62 * len(bars),
        margin={"t": 100, "l": 120},
        legend={"orientation": "h", "y": -0.12 - 0.6 / len(bars)},
    )
    return fig


def _one_side(bar: dict[str, Any]) -> bool:
    """Both ends of a tornado bar on the same side of the nominal (the bars from the nominal overlap)."""
    low, high, nominal = bar["low"], bar["high"], bar["nominal"]
    return low is not None and high is not None and (low - nominal) * (high - nominal) > 0


def _tornado_bars(bars: Sequence[dict[str, Any]], end: str, colour: str, nominal: float) -> Any:
    """One end's bars, from the nominal: the low ends in a light shade of the winner's colour, the high ends
    in its colour; an end where its configuration misses an SLO hatched."""
    import plotly.graph_objects as go

    serves = [b[f"{end}_serves"] for b in bars]
    return go.Bar(
        y=[b["input"] for b in bars],
        x=[None if b[end] is None else b[end] - nominal for b in bars],
        base=nominal,
        orientation="h",
        name=f"{end} end of the input",
        # where both ends lie on one side, the high end is drawn narrower on top of the low end
        width=[0.4 if end == "high" and _one_side(b) else 0.7 for b in bars],
        marker={
            "color": _tint(colour, 0.55 if end == "low" else 0.0),
            "line": {"color": colour, "width": 1},
            "pattern": {"shape": ["" if ok else "/" for ok in serves], "fgcolor": "#a00", "solidity": 0.3},
        },
        text=[_tornado_text(b, end) for b in bars],
        textposition="outside",
        textfont={"size": 11},
        cliponaxis=False,
        hovertext=[_tornado_hover(b, end, nominal) for b in bars],
        hovertemplate="%{hovertext}<extra></extra>",
        meta={"role": "tornado", "end": end, "serves": serves},
    )


def _label(bar: dict[str, Any], end: str) -> str:
    return bar[f"{end}_setting"] + ("" if bar[f"{end}_serves"] else f" · {MISSES_SLO}")


def _tornado_text(bar: dict[str, Any], end: str) -> str:
    """A bar's label: the input's setting, and whether the winner then misses an SLO. A bar of no length has
    none; when both ends lie on one side of the nominal, the longer bar names both (the shorter one's label
    would sit on top of it)."""
    other = "high" if end == "low" else "low"
    value, nominal, second = bar[end], bar["nominal"], bar[other]
    if value is None or value == nominal:
        return ""
    if not _one_side(bar):
        return _label(bar, end)
    if abs(value - nominal) < abs(second - nominal):
        return ""
    return f"{_label(bar, end)}; {_label(bar, other)}: {format_usd(second)}"


def _tornado_hover(bar: dict[str, Any], end: str, nominal: float) -> str:
    value = bar[end]
    change = "" if value is None or not nominal else f" ({value / nominal - 1:+.0%} vs nominal)"
    verdict = "serves the SLOs" if bar[f"{end}_serves"] else "its configuration misses an SLO"
    setting, other = bar[f"{end}_setting"], "high" if end == "low" else "low"
    still = (
        f"<br>at its {other} end ({bar[f'{other}_setting']}) the cost does not move" if bar[other] == nominal else ""
    )
    return f"<b>{bar['input']}</b> at its {end} end: {setting}<br>{format_usd(value)}/month{change}<br>{verdict}{still}"


WIN_SHOWN = 0.05
"""An option beyond the shortlist that wins at least this share of the draws gets a bar of its own (``win_rate_chart``):
"others" should not hide a frequent winner."""


def win_rate_chart(doc: dict[str, Any]) -> Any:
    """How often each option is the cheapest that serves, over the robustness draws (bars, with the rest of
    the ranked options as ``others``: they sum to 1), and beside each how often it misses an SLO (hatched)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    title = "Who wins when the inputs vary"
    robust, options = doc.get("robustness"), doc["options"]
    if not robust or not options or all(o["win_rate"] is None for o in options):
        return _empty(fig, "No robustness draws (samples = 0), or no priced option", title)
    colours = hardware_colours(doc)
    names = [o["hardware"] for o in options]
    rates = [o["win_rate"] or 0.0 for o in options]
    hover = [
        f"<b>{o['hardware']}</b>: the cheapest in {o['win_rate'] or 0:.1%} of the draws<br>"
        f"expected regret {format_usd(o['expected_regret_usd_per_month'])}/month<br>"
        f"misses an SLO in {_share(o['slo_risk'])} of the draws<br>nominal {format_usd(o['usd_per_month'])}/month"
        for o in options
    ]
    bar_colours = [colours[n] for n in names]
    others = doc.get("win_rate_others") or 0.0
    beyond = doc.get("win_rates_beyond_shortlist") or []
    for o in (o for o in beyond if o["win_rate"] >= WIN_SHOWN):  # a frequent winner beyond the shortlist: named
        names, rates = [*names, f"{o['hardware']} (#{o['rank']})"], [*rates, o["win_rate"]]
        hover.append(
            f"<b>{o['hardware']}</b>, ranked {o['rank']} at the nominal inputs (beyond the shortlist): the cheapest"
            f" in {o['win_rate']:.1%} of the draws"
        )
        bar_colours.append(OTHERS_COLOUR)
        others -= o["win_rate"]
    rest = [o for o in beyond if o["win_rate"] < WIN_SHOWN]
    if others > 1e-12:
        names, rates = [*names, "others"], [*rates, others]
        listed = ", ".join(f"{o['hardware']} {o['win_rate']:.1%}" for o in rest[:8]) + (" ..." if len(rest) > 8 else "")
        hover.append(
            f"<b>every other ranked option</b>: the cheapest in {others:.1%} of the draws"
            + (f"<br>{listed}" if listed else "")
        )
        bar_colours.append(OTHERS_COLOUR)
    fig.add_trace(
        go.Bar(
            x=names,
            y=rates,
            name="the cheapest that serves",
            marker={"color": bar_colours},
            text=[f"{r:.0%}" for r in rates],
            textposition="outside",
            cliponaxis=False,
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            meta={"role": "win_rate"},
        )
    )
    fig.add_trace(_slo_risk_bars(options))
    risks = [o["slo_risk"] for o in options]
    bands = robust["bands"]
    top = max([*rates, *(r for r in risks if r is not None)])
    fig.update_layout(
        title={
            "text": title,
            "subtitle": {
                "text": f"{robust['samples']:,} draws ({robust['served_draws']:,} that some option serves): prices"
                f" within their offers, prompt and output ±{bands['workload']:.0%}, load ±{bands['load']:.0%},"
                + (
                    f" model speed ±{bands['model_error']:.0%}"
                    if bands["model_error"] is not None
                    else " model speed within each option's measured p10-p90"
                )
                + f" · seed {robust['seed']}"
            },
        },
        xaxis={
            "title": {
                "text": "hardware (shortlist, cheapest first"
                + ("; grey: beyond it, with its rank)" if len(names) > len(options) else ")")
            }
        },
        yaxis={"title": {"text": "share of draws (%)"}, "tickformat": ".0%", "range": [0, min(1.0, top * 1.18) or 1]},
        template="plotly_white",
        height=420,
        margin={"t": 90},
        legend={"orientation": "h", "y": -0.25},
        barmode="group",
        bargap=0.3,
        bargroupgap=0.08,
    )
    return fig


def _slo_risk_bars(options: Sequence[dict[str, Any]]) -> Any:
    """Beside each option's win rate, the share of draws where it misses an SLO (hatched, in red)."""
    import plotly.graph_objects as go

    return go.Bar(
        x=[o["hardware"] for o in options],
        y=[o["slo_risk"] for o in options],
        name="misses an SLO",
        marker={
            "color": "white",
            "line": {"color": "#a00", "width": 1.5},
            "pattern": {"shape": "/", "fgcolor": "#a00", "solidity": 0.25},
        },
        text=[_share(o["slo_risk"], ".0%") for o in options],
        textposition="outside",
        textfont={"color": "#a00"},
        cliponaxis=False,
        hovertext=[f"{o['hardware']} misses an SLO in {_share(o['slo_risk'])} of the draws" for o in options],
        hovertemplate="%{hovertext}<extra></extra>",
        meta={"role": "slo_risk"},
    )


def _share(value: float | None, spec: str = ".1%") -> str:
    return "—" if value is None else format(value, spec)
