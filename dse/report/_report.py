"""Reports: which charts a run, a sweep or one configuration gets, and the files they are written to."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.errors import InputError
from dse.report._answer import PRICED, best_per_hardware, best_per_objective, empty_front, knee
from dse.report._data import RunResults, SweepResults, load_results
from dse.report._html import Chart, answer_table, facts_html, write_html
from dse.report._labels import DISPLAY, metric_value, shown_parameters
from dse.report._scatter import bounds_text
from dse.report._static import FORMATS, write_images
from dse.results import writable_directory
from dse.space import METRICS, lengths_label

if TYPE_CHECKING:
    from dse.calibrate import Validation

REPORT = "report.html"
FIGURES = "figures"
"""A report's files: ``report.html`` and ``figures/<chart>.png|svg`` (``dse report --out``, default the run's)."""

DEFAULT_PAIRS = (
    ("tokens_per_s_per_user", "throughput_tokens_per_s_per_device"),
    ("tokens_per_s_per_user", "usd_per_million_tokens"),
)
"""The 2-D charts every run gets (x, y): the trade-off the field reads (InferenceX, AIConfigurator: speed per
user against throughput per device), and cost against speed per user."""
SUMMARY_METRICS = ("ttft_s", "tpot_s", "throughput_tokens_per_s_per_device", "usd_per_million_tokens")
"""Metrics every summary row shows besides the run's objectives."""


@dataclass(frozen=True)
class ReportFiles:
    """What a report wrote, and why any image is missing."""

    html: Path
    images: list[Path] = field(default_factory=list)


def _pairs(run: RunResults, x: str | None, y: str | None) -> list[tuple[str, str]]:
    """The 2-D charts: ``x`` against ``y`` when asked; else the defaults, and a run's two objectives (three or
    more get the 3-D chart instead)."""
    if x or y:
        objectives = [o.metric for o in run.objectives]
        x = x or next(m for m in (*objectives, "tokens_per_s_per_user") if m != y)
        y = y or next(m for m in (*objectives, "throughput_tokens_per_s_per_device") if m != x)
        return [(x, y)]
    pairs = list(DEFAULT_PAIRS)
    metrics = [o.metric for o in run.objectives]
    if len(metrics) == 2 and {tuple(metrics), tuple(metrics[::-1])}.isdisjoint(pairs):
        pairs.append((metrics[0], metrics[1]))  # with three objectives, the 3-D chart shows them
    return pairs


def _known(run: RunResults, metric: str) -> bool:
    return bool(np.isfinite(metric_value(metric, run.trials[metric])).any())


def run_charts(run: RunResults, x: str | None = None, y: str | None = None) -> tuple[list[Chart], list[str]]:
    """The charts of a run, and notes on charts left out (and why)."""
    from dse.report._scatter import pareto_scatter, pareto_scatter_3d
    from dse.report._trials import (
        best_per_hardware_chart,
        hypervolume_curve,
        hypervolume_history,
        parallel_coordinates,
    )

    charts, notes = [], []
    for px, py in _pairs(run, x, y):
        if not len(run.trials):
            notes.append(f"{DISPLAY[py].title} vs {DISPLAY[px].title}: left out, no candidate was evaluated")
            continue
        if not (_known(run, px) and _known(run, py)):
            unknown = px if not _known(run, px) else py
            unpriced = run.summary.get("unpriced") if unknown in PRICED else None
            why = "; ".join(f"{h}: {r}" for h, r in unpriced.items()) if unpriced else "no price in the catalog?"
            notes.append(
                f"{DISPLAY[py].title} vs {DISPLAY[px].title}: left out, {DISPLAY[unknown].title} is unknown"
                f" for every candidate ({why})"
            )
            continue
        figure = pareto_scatter(
            run.trials, run.front, px, py, bounds=run.bounds, hardware=run.hardware, quants=run.quants
        )
        name = f"pareto-{_short(py)}-vs-{_short(px)}"
        charts.append(Chart(name, f"{DISPLAY[py].title} vs {DISPLAY[px].title}", figure, SCATTER_NOTE))
    metrics = [o.metric for o in run.objectives]
    if len(metrics) >= 3 and len(run.front):  # it draws the front and the feasible candidates, nothing else
        figure = pareto_scatter_3d(run.trials, run.front, metrics[:3], hardware=run.hardware, quants=run.quants)
        charts.append(Chart("pareto-3d", "The front in three objectives", figure, "Drag to rotate, scroll to zoom."))
    elif len(metrics) >= 3:
        notes.append("The front in three objectives: left out, the run has no front")
    first = run.objectives[0]
    picks = best_per_hardware(run.trials, run.objectives, run.hardware, run.summary)
    figure = best_per_hardware_chart(picks, first, run.trials)
    charts.append(Chart("best-per-hardware", f"Best per hardware, by {DISPLAY[first.metric].title}", figure))
    shown = list(dict.fromkeys([*metrics, "ttft_s", "tpot_s"]))
    if run.trials["feasible"].any():
        figure = parallel_coordinates(run.trials, run.front, shown, hardware=run.hardware, quants=run.quants)
        charts.append(Chart("parallel-coordinates", "Choices and metrics", figure))
    else:
        notes.append("Choices and metrics: left out, no feasible configuration to draw")
    if "search" in set(run.trials.get("stage", [])):
        from dse.search import Normalisation

        norm = run.summary.get("hypervolume", {})
        if norm.get("ideal") is not None:
            normalisation = Normalisation(tuple(norm["ideal"]), tuple(norm["nadir"]))
            curve = hypervolume_curve(run.trials, run.objectives, normalisation)
            charts.append(
                Chart(
                    "hypervolume",
                    "Hypervolume against evaluations",
                    hypervolume_history(curve, norm.get("value"), run.record.engine.tpe_trials),
                )
            )
    else:
        notes.append(
            "Hypervolume against evaluations: for Optuna runs only (an exhaustive run's order is enumeration order)"
        )
    return charts, notes


def _short(metric: str) -> str:
    return {
        "tokens_per_s_per_user": "user",
        "throughput_tokens_per_s_per_device": "device",
        "usd_per_million_tokens": "cost",
    }.get(metric, metric.replace("_", "-"))


SCATTER_NOTE = (
    "Colour = hardware, symbol = quantization; outlined markers = the Pareto front (pareto.csv); faint grey ="
    " infeasible; shaded = outside a bound. Hover for the configuration, click a legend entry to hide it."
)


def _feasible_means(run: RunResults) -> str:
    """The bounds in words, and where the latency SLOs are read: at a percentile of the load
    (``slo.percentile``) and at a quantile of the model's measured error (``slo.confidence``)."""
    text = bounds_text(run.bounds)
    if not text:
        return "fits in memory (no SLO)"
    slo, at = run.record.slo, []
    if slo.percentile is not None:
        at.append(f"TTFT and TPOT at p{slo.percentile} of the load under continuous batching")
    if slo.confidence is not None:
        at.append(f"latencies at p{round(100 * slo.confidence)} of the profile's measured error")
    return text + (f" ({'; '.join(at)})" if at else "")


def _question(run: RunResults) -> list[tuple[str, str]]:
    rec = run.record
    work = rec.workload
    facts = [
        ("model", rec.model),
        (
            "workload",
            f"{lengths_label(work.prompt_tokens)} prompt + {lengths_label(work.output_tokens)} output tokens"
            + (f", {work.prefix_hit_rate:.0%} prefix-cache hits" if work.prefix_hit_rate else ""),
        ),
        ("feasible means", _feasible_means(run)),
        (
            "objectives",
            ", ".join(f"{'max' if o.maximize else 'min'} {DISPLAY[o.metric].title}" for o in run.objectives),
        ),
        ("pricing", rec.pricing if isinstance(rec.pricing, str) else rec.pricing.scenario),
        ("profile", rec.profile),
    ]
    counts = run.summary.get("counts", {})
    if counts:
        facts += [
            (
                "evaluated",
                f"{counts['evaluated']:,} of {counts['after_pruning']:,} ({counts['full_space']:,} before pruning)",
            ),
            ("feasible", f"{counts['feasible']:,}"),
            ("on the front", f"{counts['pareto']:,}"),
            ("engine", f"{run.engine} on {run.summary.get('executor', '?')}"),
            ("wall time", f"{run.summary.get('wall_time_s', float('nan')):.2f} s"),
        ]
    return facts


def run_summary(run: RunResults) -> str:
    """The answer as an HTML table: best per objective, the knee, best per hardware."""
    metrics = list(dict.fromkeys([*(o.metric for o in run.objectives), *SUMMARY_METRICS]))
    parameters = shown_parameters(run.trials)
    point = knee(run.front, run.objectives)
    sections = [
        ("best per objective (on the front)", best_per_objective(run.front, run.objectives)),
        ("knee of the front (closest to the ideal point, docs/report.md)", [point] if point else []),
        (
            f"best per hardware by {DISPLAY[run.objectives[0].metric].title} (every SLO met)",
            best_per_hardware(run.trials, run.objectives, run.hardware, run.summary),
        ),
    ]
    if not len(run.front):
        return _empty_front_html(run) + answer_table(sections[2:], metrics, parameters)
    return answer_table(sections, metrics, parameters)


def _empty_front_html(run: RunResults) -> str:
    why = empty_front(_counts(run))
    return f"<p class='warn'>{html.escape(why[0].upper() + why[1:])}.</p>"


def _counts(run: RunResults) -> dict[str, Any]:
    """``summary.json``'s counts, or what the trials tell of them (an interrupted run may have no summary)."""
    trials = run.trials
    return run.summary.get("counts") or {"evaluated": len(trials), "feasible": int(trials["feasible"].sum())}


def _run_page(run: RunResults, charts: Sequence[Chart], notes: Sequence[str], path: Path) -> Path:
    rec = run.record
    intro = f"<p class='question'>{html.escape(rec.description or '')}</p>" + facts_html(_question(run))
    if run.summary.get("complete") is False or not run.summary:
        intro += "<p class='warn'>This run was interrupted: the tables hold what was evaluated before it stopped.</p>"
    summary = "<h2>The answer</h2>" + run_summary(run) + "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    return write_html(path, f"dse report: {rec.name}", intro, summary, charts)


def sweep_charts(sweep: SweepResults, x: str | None, y: str | None) -> list[Chart]:
    from dse.report._sweeps import sweep_overlay, sweep_panels

    x = x or DEFAULT_PAIRS[0][0]
    y = y or DEFAULT_PAIRS[0][1]
    runs = sweep.runs
    return [
        Chart("sweep-fronts", "Fronts across the sweep", sweep_overlay(runs, x, y)),
        Chart("sweep-points", "One chart per sweep point", sweep_panels(runs, x, y)),
    ]


def _sweep_page(sweep: SweepResults, charts: Sequence[Chart], path: Path) -> Path:
    facts = [
        ("points", f"{len(sweep.runs)} of {len(sweep.points)} finished"),
        ("complete", "yes" if sweep.complete else "no: resume it with dse sweep --resume"),
    ]
    summary = []
    for label, run in sweep.runs:
        metrics = list(dict.fromkeys([*(o.metric for o in run.objectives), *SUMMARY_METRICS]))
        point = knee(run.front, run.objectives)
        sections = [
            ("best per objective", best_per_objective(run.front, run.objectives)),
            ("knee", [point] if point else []),
        ]
        table = answer_table(sections, metrics, shown_parameters(run.trials))
        summary.append(f"<h3>{html.escape(label)}</h3>" + (table if len(run.front) else _empty_front_html(run)))
    return write_html(
        path,
        f"dse sweep report: {sweep.name}",
        facts_html(facts),
        "<h2>Each point's answer</h2>" + "".join(summary),
        charts,
    )


def _check(formats: Sequence[str], x: str | None, y: str | None) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown format {', '.join(unknown)}; expected some of {', '.join(FORMATS)}", field="format")
    for name, metric in (("x", x), ("y", y)):
        if metric is not None and metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}", field=name)
    if x is not None and x == y:
        raise InputError("--x and --y name the same metric", field="y")


def report(
    directory: str | Path,
    *,
    out: str | Path | None = None,
    formats: Sequence[str] = ("html",),
    x: str | None = None,
    y: str | None = None,
) -> ReportFiles:
    """Write the report of a run or sweep directory: ``report.html`` into ``out`` (default: the directory),
    and ``figures/<chart>.png|svg`` when ``formats`` asks. The HTML is written before any image, so a failed
    export (``ExportError``) still leaves it."""
    _check(formats, x, y)
    results = load_results(directory)
    target = Path(out) if out is not None else Path(directory)
    writable_directory(target, "out")
    if (target / REPORT).is_dir():  # before the work: the page could not replace it
        raise InputError(f"{REPORT} there is a directory; expected a file path", source=str(target), field="--out")
    if isinstance(results, SweepResults):
        charts = sweep_charts(results, x, y)
        page = _sweep_page(results, charts, target / REPORT)
    else:
        charts, notes = run_charts(results, x, y)
        page = _run_page(results, charts, notes, target / REPORT)
    return ReportFiles(page, write_images(charts, target / FIGURES, formats))


def analysis_report(analysis: dict[str, Any], path: str | Path, formats: Sequence[str] = ("html",)) -> ReportFiles:
    """The report of one configuration (``dse analyze --report``): roofline, time per operator group, memory."""
    from dse.report._config import batch_text, memory_chart, roofline_chart, time_breakdown

    _check(formats, None, None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    charts = [
        Chart("roofline", "Roofline", roofline_chart(analysis)),
        Chart("time", "Where the time goes", time_breakdown(analysis)),
        Chart("memory", "Memory per device", memory_chart(analysis)),
    ]
    i, d = analysis["inputs"], analysis["deployment"]
    facts = [
        ("model", str(i["model"])),
        ("hardware", str(i["hardware"])),
        ("deployment", _deployment_text(d)),
        ("linear layers", analysis["compute_format"]),
        ("batch", batch_text(analysis)),
        ("prompt + output", f"{i['prompt_len']} + {i['gen_len']} tokens"),
        ("TTFT", _fmt("ttft_s", analysis)),
        ("TPOT", _fmt("tpot_s", analysis)),
        ("throughput (deployment)", _fmt("throughput_tokens_per_s", analysis)),
        ("throughput per device", _fmt("throughput_tokens_per_s_per_device", analysis)),
        ("$/M tokens", _fmt("usd_per_million_tokens", analysis)),
        ("feasible", "yes" if analysis["feasible"] else f"no: {analysis['infeasible_reason']}"),
    ]
    page = write_html(path, f"dse analysis: {i['model']} on {i['hardware']}", facts_html(facts), "", charts)
    return ReportFiles(page, write_images(charts, path.parent / FIGURES, formats))


def recommendation_charts(doc: dict[str, Any]) -> list[Chart]:
    """The charts of a recommendation: cost against load, rent or buy, the winner's tornado, win rates."""
    from dse.report._recommend import cost_vs_load_chart, rent_vs_buy_chart, tornado_chart, win_rate_chart

    return [
        Chart("cost-vs-load", "Cost as the load changes", cost_vs_load_chart(doc), COST_NOTE),
        Chart("win-rate", "Who wins when the inputs vary", win_rate_chart(doc), WIN_NOTE),
        Chart("tornado", "What moves the winner's cost", tornado_chart(doc), TORNADO_NOTE),
        Chart("rent-vs-buy", "Rent or buy", rent_vs_buy_chart(doc), RENT_NOTE),
    ]


COST_NOTE = (
    "Hover to compare the options at one load; a diamond marks a load where the cheapest option changes. Click a"
    " legend entry to hide an option."
)
WIN_NOTE = (
    "Each draw moves every price within its offers, the prompt and output lengths, the load and each option's"
    " predicted speed; an option wins a draw when it is the cheapest that still meets the SLOs there."
)
TORNADO_NOTE = "Widest first: the inputs whose range moves the winner's monthly cost the most."
RENT_NOTE = "Only the options of the shortlist with both a rent and a purchase price."


def recommendation_report(doc: dict[str, Any], path: str | Path, formats: Sequence[str] = ("html",)) -> ReportFiles:
    """The report of ``dse recommend`` (``--report``) from its ``recommendation.json`` document: the question,
    the answer (thresholds, the shortlist, what was left out), then the charts; ``figures/<chart>.png|svg``
    beside it when ``formats`` asks."""
    from dse.report._recommend_page import recommendation_facts, recommendation_summary

    _check(formats, None, None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    charts = recommendation_charts(doc)
    r = doc["request"]
    question = (
        f"Which hardware serves {r['model']} at {doc['load']['rate_rps']:.4g} requests/s for the least money"
        f" ({doc['pricing']}), under the SLOs?"
    )
    intro = f"<p class='question'>{html.escape(question)}</p>" + facts_html(recommendation_facts(doc))
    page = write_html(path, f"dse recommend: {r['model']}", intro, recommendation_summary(doc), charts)
    return ReportFiles(page, write_images(charts, path.parent / FIGURES, formats))


def validation_charts(rows: Any) -> list[Chart]:
    """The charts of a validation, per quantity measured: predicted against measured, the error per hardware."""
    from dse.report._validation import QUANTITIES, error_by_hardware_chart, predicted_vs_measured_chart

    charts = []
    for metric in (m for m in QUANTITIES if (rows["metric"] == m).any()):
        stem, title = metric.replace("_", "-"), QUANTITIES[metric].title
        charts.append(
            Chart(f"{stem}-vs-measured", f"Predicted vs measured: {title}", predicted_vs_measured_chart(rows, metric))
        )
        charts.append(Chart(f"{stem}-error", f"Error per hardware: {title}", error_by_hardware_chart(rows, metric)))
    return charts


def validation_report(
    validation: Validation,
    path: str | Path,
    formats: Sequence[str] = ("html",),
    *,
    measurements: str | Path | None = None,
) -> ReportFiles:
    """The report of ``dse validate`` (``--report``): the facts (``measurements`` names the file the rows came
    from), the error summary, the rank correlations, the rows that do not fit, then per quantity the predicted
    against the measured values and the error per hardware; ``figures/<chart>.png|svg`` when ``formats`` asks."""
    from dse.report._validation_page import validation_facts, validation_summary

    _check(formats, None, None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    charts = validation_charts(validation.rows)
    question = "How close are the cost model's predictions to published measurements?"
    intro = f"<p class='question'>{html.escape(question)}</p>" + facts_html(validation_facts(validation, measurements))
    page = write_html(path, "dse validate", intro, validation_summary(validation), charts)
    return ReportFiles(page, write_images(charts, path.parent / FIGURES, formats))


def _deployment_text(d: dict[str, Any]) -> str:
    """ "4 devices: tp 4 x pp 1 x ep 1, 1 replica", or a disaggregated deployment's pools ("16 devices,
    disaggregated: 1 prefill x dgx-h200 tp 4 pp 1, 3 decode x ...") (``dse analyze --json``'s ``deployment``)."""
    replicas, devices, pools = d["replicas"], d["devices"], d.get("pools")
    if pools:
        p, q = pools["prefill"], pools["decode"]
        return (
            f"{devices:g} devices, disaggregated: {p['replicas']:g} prefill x {p['hardware']} tp {p['tp']} pp"
            f" {p['pp']}, {q['replicas']:g} decode x {q['hardware']} tp {q['tp']} pp {q['pp']}"
        )
    split = f"tp {d['tp']} x pp {d['pp']} x ep {d['ep']}"
    plural = ("s" if devices != 1 else "", "s" if replicas != 1 else "")
    return f"{devices:g} device{plural[0]}: {split}, {replicas:g} replica{plural[1]}"


def _fmt(metric: str, analysis: dict[str, Any]) -> str:
    from dse.report._labels import format_metric

    value = analysis.get(metric)
    return format_metric(metric, None if value is None else float(value))
