"""The ``dse`` command line: parse, call the Python API, print. Bad input -> message and exit code 2."""

from __future__ import annotations

import inspect
import json
import math
import sys
import typing
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dse import units
from dse.cli import INTERRUPTED
from dse.costmodel import CHUNK_TOKENS, MAX_UTILIZATION, METRIC_NAMES, PRICINGS, SPEC_ACCEPTANCE, CostAssumptions
from dse.errors import InputError
from dse.execute import EXECUTORS
from dse.scoring import INPUTS, SCHEDULERS, Input
from dse.search import ENGINES
from dse.space import KeepKind


class Interrupted(Exception):
    """Ctrl-C in a command (outside a run, which stops itself cleanly and says how to resume): typer would
    turn the KeyboardInterrupt into a silent exit code 130, so it leaves the command as this, and ``main``
    says so."""


class _Commands(TyperGroup):
    """The ``dse`` group: a KeyboardInterrupt in any of its commands leaves it as ``Interrupted``."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted from None


app = typer.Typer(
    cls=_Commands,
    help="Design-space exploration for LLM inference: hardware, quantization, batch, parallelism, and their costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="List the catalogs (hardware, systems, prices, models, quantization, profiles).", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")


def _version(value: bool) -> None:
    if value:
        from dse.version import __version__

        typer.echo(f"dse {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Design-space exploration for LLM inference: hardware, quantization, batch, parallelism, and their costs."""


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _choice(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A closed choice as the Enum typer lists in --help (the values are defined where they are used)."""
    return Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


Pricing: Any = _choice("Pricing", PRICINGS)
EngineChoice: Any = _choice("EngineChoice", ENGINES)
ExecutorChoice: Any = _choice("ExecutorChoice", EXECUTORS)
KeepChoice: Any = _choice("KeepChoice", typing.get_args(KeepKind))

_TYPES: dict[str, Any] = {
    "id": str,
    "format": str | None,
    "bits": float | None,
    "whole": int,
    "tokens": int,
    "optional_whole": int | None,
    "fraction": float,
    "at_least_one": float,
    "flag": bool,
    "optional_positive": float | None,
    "percentile": int,
    "count": int,
    "draft": str | None,
    "pool_id": str | None,
}
"""The command-line type of each kind of input (``dse.scoring.Input.kind``)."""


def _scenarios(given: list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """``--scenario`` values, each one a measurements file may hold (``dse.calibrate.SCENARIOS``)."""
    from dse.calibrate import SCENARIOS

    chosen = tuple(given) if given else default
    for i, name in enumerate(chosen):
        if name not in SCENARIOS:
            known = f"{', '.join(SCENARIOS[:-1])} or {SCENARIOS[-1]}"
            raise InputError(f"expected {known}, got {name!r}", field=f"scenario[{i}]")
    return chosen


def _input_option(spec: Input) -> inspect.Parameter:
    """``--name`` for one input of ``dse.scoring.INPUTS`` (a flag pair for booleans; required for ids)."""
    names = (f"--{spec.name.replace('_', '-')}/--no-{spec.name.replace('_', '-')}",) if spec.kind == "flag" else ()
    option = typer.Option(*names, help=spec.help)
    kind = _choice(spec.name.title().replace("_", ""), spec.options) if spec.kind == "choice" else _TYPES[spec.kind]
    annotation = Annotated.__class_getitem__((kind, option))  # type: ignore[attr-defined]
    default = inspect.Parameter.empty if spec.kind == "id" else spec.default
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def analyze(
    *,
    ideal: Annotated[bool, typer.Option("--ideal", help="Pure roofline: efficiency 1, no overheads, no reserve.")],
    profile: Annotated[
        str | None,
        typer.Option(
            help="Efficiency profile id or YAML path (default: calibrated, the hardware family's fitted profile)."
        ),
    ],
    pricing: Annotated[
        Pricing,  # type: ignore[valid-type]
        typer.Option(help="rent-on-demand, rent-reserved: cloud $/device-hour; buy: amortised purchase + power + ops."),
    ],
    prices: Annotated[str | None, typer.Option(help="A price sheet over the catalog's prices (docs/recommend.md).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (keys: docs/cost-model.md).")],
    report: Annotated[
        str | None, typer.Option(help="Also write an HTML report: roofline, time per operator group, memory.")
    ],
    engine: Annotated[
        str | None,
        typer.Option(
            help="The inference engine you run (tensorrt-llm, vllm, sglang, llama.cpp): its fitted profile for the "
            "hardware, or the generic one where none is fitted (default: the preferred fitted profile)."
        ),
    ],
    lengths: Annotated[
        str | None,
        typer.Option(
            help="Lengths of your traffic: a CSV with prompt_tokens and output_tokens columns (and an optional "
            "count), one request per row; replaces --prompt-len and --gen-len."
        ),
    ],
    **inputs: Any,
) -> None:
    """Analyse one deployment: latency, throughput, memory against capacity, cost, and every operator."""
    from dse.costmodel import CostAssumptions
    from dse.scoring import analyze as run_analysis

    if report is not None:
        from dse.results import check_output_file

        check_output_file(Path(report), "report")
    costs = CostAssumptions(pricing=pricing.value, sheet=prices)
    inputs = {name: value.value if isinstance(value, Enum) else value for name, value in inputs.items()}
    try:
        result = run_analysis(**inputs, lengths=lengths, ideal=ideal, profile=profile, engine=engine, costs=costs)
    except InputError as exc:  # an input named as its flag: --gen-len, not gen_len
        if exc.source is None and exc.field in inputs:
            raise InputError(exc.message, field=f"--{exc.field.replace('_', '-')}") from None
        raise
    data = result.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        from dse.cli._render import render_analysis

        render_analysis(data)
    if report is not None:
        from dse.report import analysis_report

        written = analysis_report(data, report)
        typer.echo(f"report: {written.html}", err=as_json)


_OWN = inspect.signature(analyze, eval_str=True).parameters
analyze.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_input_option(spec) for spec in INPUTS]
    + [
        _OWN["ideal"].replace(default=False),
        _OWN["profile"].replace(default=None),
        _OWN["engine"].replace(default=None),
        _OWN["pricing"].replace(default=Pricing("rent-on-demand")),
        _OWN["prices"].replace(default=None),
        _OWN["as_json"].replace(default=False),
        _OWN["report"].replace(default=None),
        _OWN["lengths"].replace(default=None),
    ]
)
app.command()(analyze)


@app.command("run")
def run_command(
    space: Annotated[str | None, typer.Argument(help="Search-space YAML (see docs/spaces.md).")] = None,
    out: Annotated[str | None, typer.Option(help="Run directory (default experiments/runs/<name>-<time>).")] = None,
    engine: Annotated[EngineChoice | None, typer.Option(help="Search engine (default: the space's).")] = None,  # type: ignore[valid-type]
    trials: Annotated[int | None, typer.Option(help="Optuna trial budget.")] = None,
    executor: Annotated[ExecutorChoice | None, typer.Option(help="Where candidates are evaluated.")] = None,  # type: ignore[valid-type]
    seed: Annotated[int | None, typer.Option(help="Sampler seed.")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Connect to an existing Ray cluster.")] = None,
    keep: Annotated[
        KeepChoice | None,  # type: ignore[valid-type]
        typer.Option(help="Rows trials.parquet keeps: all, feasible, or front (bounded memory at any size)."),
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the interrupted run in this directory.")] = None,
    top: Annotated[
        int, typer.Option(min=0, help="Also print this many rows of the front (all are in pareto.csv).")
    ] = 0,
    report: Annotated[bool, typer.Option("--report", help="Write report.html into the run directory.")] = False,
) -> None:
    """Search a space: the Pareto front of its objectives, written to a run directory."""
    from dse.cli._allocator import reuse_large_buffers
    from dse.cli._render import progress_bar, render_run
    from dse.results import resume as resume_run
    from dse.results import run as start_run

    reuse_large_buffers()
    if (space is None) == (resume is None):
        raise InputError("give a space file, or --resume DIR (not both)", field="space")
    if resume is not None and any(v is not None for v in (out, engine, trials, seed, ray_address, keep)):
        raise InputError("--resume continues with the run's own settings; only --executor may change", field="resume")
    with progress_bar() as update:
        if resume is not None:
            result = resume_run(resume, progress=update, executor=executor.value if executor else None)
        else:
            assert space is not None
            result = start_run(
                space,
                out=out,
                engine=engine.value if engine else None,
                trials=trials,
                executor=executor.value if executor else None,
                seed=seed,
                ray_address=ray_address,
                keep=keep.value if keep else None,
                progress=update,
            )
    for repair in result.summary.get("resume_repairs", []):
        typer.echo(f"repaired: {repair}", err=True)
    render_run(result, top)
    if report:
        _write_report(result.directory)
    if not result.summary["complete"]:
        typer.echo(f"interrupted: resume with `dse run --resume {result.directory}`", err=True)
        raise typer.Exit(130)


@app.command("sweep")
def sweep_command(
    experiment: Annotated[str | None, typer.Argument(help="Sweep YAML: a base space and a grid of overrides.")] = None,
    out: Annotated[str | None, typer.Option(help="Sweep directory (default experiments/runs/<name>-<time>).")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the interrupted sweep in this directory.")] = None,
    report: Annotated[bool, typer.Option("--report", help="Write report.html into the sweep directory.")] = False,
) -> None:
    """Run one study per point of a grid (in parallel on Ray if the sweep asks) and join their fronts."""
    from dse.cli._allocator import reuse_large_buffers
    from dse.results import SWEEP_INDEX, SWEEP_TABLE, sweep

    reuse_large_buffers()
    if (experiment is None) == (resume is None) or (resume is not None and out is not None):
        raise InputError("give a sweep file (and optionally --out), or --resume DIR", field="experiment")
    result = sweep(experiment, out=out, resume=resume)
    typer.echo(f"{len(result.table)} Pareto rows over the sweep -> {result.directory / SWEEP_TABLE}")
    if report and len(result.table):
        _write_report(result.directory)
    if not result.complete:
        typer.echo(
            f"interrupted: see {result.directory / SWEEP_INDEX}; continue with dse sweep --resume {result.directory}",
            err=True,
        )
        raise typer.Exit(130)


def _write_report(
    directory: str | Path, out: str | None = None, formats: tuple[str, ...] = ("html",), x: Any = None, y: Any = None
) -> None:
    """Write a run's or sweep's report; a failed PNG/SVG export still leaves the HTML, and exits 1."""
    from dse.report import ExportError
    from dse.report import report as write_report

    try:
        written = write_report(directory, out=out, formats=formats, x=x, y=y)
    except ExportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"report: {written.html}" + (f" and {len(written.images)} images" if written.images else ""))


Metric: Any = _choice("Metric", METRIC_NAMES)


@app.command("report")
def report_command(
    directory: Annotated[str, typer.Argument(help="A run directory (dse run) or sweep directory (dse sweep).")],
    out: Annotated[str | None, typer.Option(help="Where to write (default: the directory itself).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Comma-separated: html, png, svg (images go to figures/).")
    ] = "html",
    x: Annotated[Metric | None, typer.Option("--x", help="Metric on the x axis of the 2-D chart.")] = None,  # type: ignore[valid-type]
    y: Annotated[Metric | None, typer.Option("--y", help="Metric on the y axis of the 2-D chart.")] = None,  # type: ignore[valid-type]
) -> None:
    """Charts of a run or sweep: Pareto fronts, best per hardware, parallel coordinates, in one HTML file."""
    formats = tuple(part.strip() for part in fmt.split(",") if part.strip())
    _write_report(directory, out, formats, x.value if x else None, y.value if y else None)


Scenario: Any = _choice("Scenario", ("rent-on-demand", "rent-reserved", "buy"))
Term: Any = _choice("Term", ("reserved-1y", "reserved-3y"))
_ON_DEMAND, _ONE_YEAR = Scenario("rent-on-demand"), Term("reserved-1y")
RecommendScheduler: Any = _choice("RecommendScheduler", SCHEDULERS)
_CONTINUOUS = RecommendScheduler("continuous")
_COSTS = CostAssumptions()
"""Cost assumptions' defaults, stated once (``dse.costmodel.CostAssumptions``)."""


def _split(text: str) -> tuple[int, int]:
    """``2:3`` -> (2, 3): prefill and decode instances of a disaggregated group."""
    prefill, _, decode = text.partition(":")
    try:
        pair = (int(prefill), int(decode))
    except ValueError:
        raise InputError(f"expected PREFILL:DECODE instances such as 1:2, got {text!r}", field="pool_split") from None
    if min(pair) < 1:
        raise InputError(f"expected at least one instance on each side, got {text!r}", field="pool_split")
    return pair


LAWS = ("uniform", "lognormal")
"""Length laws a tokens flag may name (``_tokens``)."""


def _tokens(text: str | None, field: str) -> int | dict[str, object] | None:
    """``1000`` -> 1000 tokens; ``lognormal:mean=1500,sigma=0.9,max=16000`` or ``uniform:min=50,max=600`` ->
    the law as a space's workload writes it (``dse.recommend.Request`` checks the figures)."""
    if text is None:
        return None
    kind, colon, rest = text.partition(":")
    kind = kind.strip().lower()
    expected = "a number of tokens, or uniform:min=N,max=N or lognormal:mean=N,sigma=S[,max=N]"
    if not colon:
        try:
            return int(kind)
        except ValueError:
            raise InputError(f"expected {expected}, got {text!r}", field=field) from None
    if kind not in LAWS:
        raise InputError(f"expected {expected}, got {text!r} (laws: {', '.join(LAWS)})", field=field)
    law: dict[str, object] = {"distribution": kind}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, _, value = (part.strip() for part in item.partition("="))
        if key in law:
            raise InputError(f"expected {expected}, got {text!r} ({key!r} given twice)", field=field)
        whole = key not in ("mean", "sigma")
        try:
            law[key] = int(value) if whole else float(value)
        except ValueError:
            what = "a whole number" if whole else "a number"
            raise InputError(
                f"expected {expected}, got {text!r} ({key} = {value!r}: expected {what})", field=field
            ) from None
    return law


@app.command("recommend")
def recommend_command(
    model: Annotated[str, typer.Option(help="Model catalog id, or a path to a model YAML or config.json.")],
    prompt_tokens: Annotated[
        str | None,
        typer.Option(
            help="Prompt tokens per request: a number, or a law: uniform:min=N,max=N or "
            "lognormal:mean=N,sigma=S[,max=N] (sigma: of ln(length); longer prompts cut to max)."
        ),
    ] = None,
    output_tokens: Annotated[
        str | None, typer.Option(help="Generated tokens per request: a number, or a law (as --prompt-tokens).")
    ] = None,
    lengths: Annotated[
        str | None,
        typer.Option(
            help="Lengths of your traffic: a CSV with prompt_tokens and output_tokens columns (and an optional "
            "count), one request per row; replaces --prompt-tokens and --output-tokens."
        ),
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Average load in requests/s.")] = None,
    tokens_per_day: Annotated[
        float | None, typer.Option(help="Average load as generated tokens a day (instead of --rate).")
    ] = None,
    peak_factor: Annotated[float, typer.Option(help="Peak load over the average; the fleet serves the peak.")] = 1.0,
    headroom: Annotated[float, typer.Option(help="Spare capacity over the peak (0.2 = 20 %).")] = 0.0,
    ttft_s: Annotated[float | None, typer.Option(help="SLO: time to first token, seconds.")] = None,
    tpot_s: Annotated[float | None, typer.Option(help="SLO: time per output token, seconds.")] = None,
    scheduler: Annotated[
        RecommendScheduler,  # type: ignore[valid-type]
        typer.Option(
            help="How a replica serves: static batches, or continuous batching with chunked prefill (its capacity "
            "the request rate it sustains with the SLOs met at --slo-percentile)."
        ),
    ] = _CONTINUOUS,
    slo_percentile: Annotated[
        int, typer.Option(help="Continuous: the percentile of TTFT and TPOT the SLOs hold at (50, 90 or 99).")
    ] = 90,
    chunk_tokens: Annotated[
        int, typer.Option(help="Continuous: tokens an engine step may carry (vLLM's max_num_batched_tokens).")
    ] = int(CHUNK_TOKENS),
    max_utilization: Annotated[
        float,
        typer.Option(help="Continuous: the most of its every-slot-busy rate a replica carries (its queue grows)."),
    ] = MAX_UTILIZATION,
    disaggregate: Annotated[
        bool,
        typer.Option(
            "--disaggregate",
            help="Continuous: also try disaggregated prefill and decode, each configuration as groups of prefill "
            "and decode instances (--pool-split).",
        ),
    ] = False,
    pool_split: Annotated[
        list[str] | None,
        typer.Option(
            help="PREFILL:DECODE instances of a disaggregated group to try (repeat). Default: 1:1, 1:2, "
            "1:3, 2:1, 3:1, 2:3, 3:2."
        ),
    ] = None,
    prefix_hit_rate: Annotated[
        float,
        typer.Option(help="Share of each prompt served from a prefix cache (a shared system prompt, earlier turns)."),
    ] = 0.0,
    draft: Annotated[
        str | None,
        typer.Option(
            help="Speculative decoding's draft: mtp (the model's own multi-token-prediction head) or a draft "
            "model id; each configuration is tried with and without it."
        ),
    ] = None,
    spec_tokens: Annotated[
        list[int] | None,
        typer.Option(help="Draft tokens a verification step to try (repeat; 0: none). Default with --draft: 0, 1, 3."),
    ] = None,
    spec_acceptance: Annotated[
        float, typer.Option(help="Probability each draft token is accepted (depends on the draft and the data).")
    ] = SPEC_ACCEPTANCE,
    hardware: Annotated[
        list[str] | None,
        typer.Option(help="Accelerator or system id (repeat); an accelerator brings its systems. Default: all."),
    ] = None,
    quant: Annotated[list[str] | None, typer.Option(help="Schemes to try (repeat). Default: bf16, fp8, int8.")] = None,
    kv: Annotated[
        list[str] | None,
        typer.Option(help="KV formats to try (repeat; 'default' = the scheme's). Default: default, fp8."),
    ] = None,
    pricing: Annotated[Scenario, typer.Option(help="How the devices are paid for.")] = _ON_DEMAND,  # type: ignore[valid-type]
    reserved_term: Annotated[Term, typer.Option(help="The term rent-reserved uses.")] = _ONE_YEAR,  # type: ignore[valid-type]
    horizon_years: Annotated[
        float, typer.Option(help="TCO horizon and write-off period of a purchase.")
    ] = _COSTS.amortization_years,
    prices: Annotated[str | None, typer.Option(help="A price sheet over the catalog's prices.")] = None,
    usd_per_kwh: Annotated[float, typer.Option(help="Electricity price (buy).")] = _COSTS.usd_per_kwh,
    pue: Annotated[float, typer.Option(help="Data-centre power usage effectiveness (buy).")] = _COSTS.pue,
    ops_share_per_year: Annotated[
        float, typer.Option(help="Operations a year as a share of the purchase (buy).")
    ] = _COSTS.ops_share_per_year,
    budget_usd_per_month: Annotated[float | None, typer.Option(help="Limit: $ a month for the fleet.")] = None,
    max_power_kw: Annotated[float | None, typer.Option(help="Limit: the fleet's power, kW.")] = None,
    max_devices: Annotated[int | None, typer.Option(help="Limit: devices in the fleet.")] = None,
    profile: Annotated[
        str, typer.Option(help="Efficiency profile id or YAML path; calibrated: each target's fitted family profile.")
    ] = "calibrated",
    top: Annotated[int, typer.Option(help="Options shown (all are ranked).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the robustness draws.")] = 0,
    samples: Annotated[int, typer.Option(help="Robustness draws (0: none).")] = 2000,
    workload_band: Annotated[float, typer.Option(help="Prompt and output lengths vary by +- this share.")] = 0.2,
    load_band: Annotated[float, typer.Option(help="The load varies by +- this share.")] = 0.2,
    model_error: Annotated[
        float | None,
        typer.Option(
            help="Predicted speed is off by +- this share (uniform). Default: each option's measured spread "
            "(its profile's p10-p90)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print recommendation.json's document.")] = False,
    out: Annotated[str | None, typer.Option(help="Write recommendation.json here (a file or a directory).")] = None,
    report: Annotated[str | None, typer.Option(help="Also write an HTML report of the recommendation.")] = None,
) -> None:
    """Which hardware to buy or rent for a load: the cheapest fleet per accelerator under the SLOs, ranked."""
    from dse.recommend import MAX_SIZING_RATE, make_request, read_traffic, recommend

    if (rate is None) == (tokens_per_day is None):
        raise InputError("give the load as --rate (requests/s) or --tokens-per-day, one of them", field="rate")
    if lengths is None and (prompt_tokens is None or output_tokens is None):
        missing = "--prompt-tokens" if prompt_tokens is None else "--output-tokens"
        field = missing[2:].replace("-", "_")
        raise InputError(f"give {missing} (or --lengths, a CSV of observed requests)", field=field)
    if lengths is not None and (prompt_tokens is not None or output_tokens is not None):
        raise InputError("give --lengths or --prompt-tokens and --output-tokens, not both", field="lengths")
    prompts, outputs = _tokens(prompt_tokens, "prompt_tokens"), _tokens(output_tokens, "output_tokens")
    if tokens_per_day is not None:
        if not 0 < tokens_per_day < math.inf:
            raise InputError(f"expected a positive, finite number, got {tokens_per_day:g}", field="tokens_per_day")
        if lengths is not None:
            mean_output = read_traffic(lengths, model).outputs.mean
        else:  # the request checks the figures; the rate is only needed to build it
            mean_output = make_request(
                model=model, prompt_tokens=prompts, output_tokens=outputs, rate=1.0
            ).mean_output_tokens
        seconds_per_day = 24 * units.SECONDS_PER_HOUR
        rate = tokens_per_day / seconds_per_day / mean_output
        if rate > MAX_SIZING_RATE:  # said here: the request would name --rate, which was not given
            most = MAX_SIZING_RATE * seconds_per_day * mean_output
            raise InputError(
                f"expected at most {most:.3g} tokens a day ({MAX_SIZING_RATE:.3g} requests/s of {mean_output:g} "
                f"output tokens, the largest load the answer can represent), got {tokens_per_day:g}",
                field="tokens_per_day",
            )
    choices = {
        "quants": tuple(quant) if quant else None,
        "kv": tuple(kv) if kv else None,
        "pool_splits": tuple(_split(s) for s in pool_split) if pool_split else None,
    }
    request = make_request(
        **{k: v for k, v in choices.items() if v is not None},
        model=model,
        prompt_tokens=prompts,
        output_tokens=outputs,
        lengths=lengths,
        rate=rate,
        peak_factor=peak_factor,
        headroom=headroom,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        scheduler=scheduler.value,
        slo_percentile=slo_percentile,
        chunk_tokens=chunk_tokens,
        max_utilization=max_utilization,
        disaggregate=disaggregate or pool_split is not None,
        prefix_hit_rate=prefix_hit_rate,
        draft=draft,
        spec_tokens=tuple(spec_tokens) if spec_tokens else None,
        spec_acceptance=spec_acceptance,
        hardware=tuple(hardware) if hardware else None,
        pricing=pricing.value,
        reserved_term=reserved_term.value,
        horizon_years=horizon_years,
        prices=prices,
        usd_per_kwh=usd_per_kwh,
        pue=pue,
        ops_share_per_year=ops_share_per_year,
        budget_usd_per_month=budget_usd_per_month,
        max_power_kw=max_power_kw,
        max_devices=max_devices,
        profile=profile,
        top=top,
        seed=seed,
        samples=samples,
        workload_band=workload_band,
        load_band=load_band,
        model_error=model_error,
    )
    from dse.cli._render import stage_line
    from dse.results import check_output_file

    written_to = _recommendation_file(out) if out is not None else None
    if report is not None:
        check_output_file(Path(report), "report")
    with stage_line() as say:
        result = recommend(request, say=say)
    doc = result.to_dict()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        from dse.cli._render import render_recommendation

        render_recommendation(doc)
    if written_to is not None:
        typer.echo(f"recommendation: {result.write(written_to)}", err=as_json)
    if report is not None:
        from dse.report import recommendation_report

        typer.echo(f"report: {recommendation_report(doc, report).html}", err=as_json)


def _recommendation_file(out: str) -> Path:
    """Where ``--out`` puts recommendation.json: in a directory (one that exists, or is named with a trailing
    slash or without a suffix), else the file named; checked before the recommendation is worked out."""
    from dse.results import check_output_directory, check_output_file

    target = Path(out)
    if target.is_dir() or out.endswith(("/", "\\")) or not target.suffix:
        if target.exists() and not target.is_dir():
            raise InputError(
                "is a file; expected a directory (a name without a suffix is one) or a file name such as x.json",
                source=out,
                field="--out",
            )
        check_output_directory(target, "out")
        return target / "recommendation.json"
    check_output_file(target, "out")
    return target


@app.command("validate")
def validate_command(
    measurements: Annotated[
        str | None, typer.Option(help="Measurements CSV (docs/validation.md). Default: the shipped published ones.")
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Efficiency profile id or YAML path; calibrated: each row's fitted family profile.")
    ] = "calibrated",
    scenario: Annotated[
        list[str] | None, typer.Option(help="Scenarios to score (repeat): batch, max-throughput, server.")
    ] = None,
    cross_validate: Annotated[
        bool,
        typer.Option(
            "--cross-validate", help="Predict each row with its accelerator left out of the fit (slower: refits)."
        ),
    ] = False,
    by: Annotated[
        list[str] | None,
        typer.Option(
            help="Break the summary down by a column (repeat): engine, hardware, accelerator, model, quant, "
            "profile, batch."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    out: Annotated[str | None, typer.Option(help="Write validation.csv (every row) and validation.json here.")] = None,
    report: Annotated[
        str | None, typer.Option(help="Also write an HTML report: predicted vs measured, error per hardware.")
    ] = None,
) -> None:
    """The cost model against published measurements: error per quantity, bias, hardware rank correlation."""
    from dse.calibrate import SCORED_SCENARIOS, read_measurements, validate
    from dse.catalog import catalog_root

    path = measurements or str(catalog_root() / "calibration" / "measurements.csv")
    shown = measurements or "calibration/measurements.csv (shipped)"
    chosen = _scenarios(scenario, SCORED_SCENARIOS)
    rows = read_measurements(path)
    from dse.results import check_output_directory, check_output_file, write_text_durably

    if out is not None:
        check_output_directory(Path(out), "out")
    if report is not None:
        check_output_file(Path(report), "report")
    groups = tuple(by or ())
    result = validate(rows, profile=profile, scenarios=chosen, cross_validate=cross_validate, by=groups)
    from dse.scoring import finite_json

    doc = finite_json(result.to_dict() | {"measurements": shown, "by": list(groups)})
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        from dse.cli._render import render_validation

        render_validation(doc)
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("validation.csv", result.rows.to_csv(index=False)),
            ("validation.json", json.dumps(doc, indent=2) + "\n"),
        ):  # a stopped write leaves the old file, not half of a new one
            write_text_durably(folder / name, text)
        typer.echo(f"validation: {folder / 'validation.csv'}, {folder / 'validation.json'}", err=as_json)
    if report is not None:
        from dse.report import validation_report

        typer.echo(f"report: {validation_report(result, report, measurements=shown).html}", err=as_json)


@app.command("calibrate")
def calibrate_command(
    measurements: Annotated[str, typer.Argument(help="Measurements CSV (docs/validation.md).")],
    out: Annotated[str, typer.Option(help="Where to write the fitted profile (YAML).")],
    base: Annotated[str, typer.Option(help="Profile the fit starts from; its other fields are kept.")] = "default",
    profile_id: Annotated[str, typer.Option("--id", help="Id of the fitted profile.")] = "fitted",
    scenario: Annotated[
        list[str] | None, typer.Option(help="Scenarios fitted (repeat): batch, max-throughput, server.")
    ] = None,
    hardware: Annotated[
        list[str] | None,
        typer.Option(help="Fit only rows on these accelerators (repeat; default: the base profile's hardware list)."),
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help="Fit only rows of this engine (default: the base profile's engine, or any).")
    ] = None,
    cross_validate: Annotated[
        bool, typer.Option(help="Leave each accelerator out in turn for the held-out error and the intervals.")
    ] = True,
    fit_parameters: Annotated[
        list[str] | None,
        typer.Option(
            "--fit",
            help="A parameter to fit (repeat; default: those the rows identify): bandwidth_efficiency, "
            "compute_efficiency, kernel_overhead_us, compute_efficiency_by_format.<fp8|int8|fp6|fp4|int4>.",
        ),
    ] = None,
) -> None:
    """Fit an efficiency profile (bandwidth, compute efficiency per format, kernel overhead) to measurements,
    with error bars from leave-one-accelerator-out residuals."""

    from dse.calibrate import SCORED_SCENARIOS, calibrate, read_measurements
    from dse.catalog import check_profile_id, yaml_text
    from dse.results import check_output_file, write_text_durably

    check_profile_id(profile_id, "--id")
    target = Path(out)
    check_output_file(target, "out")
    chosen = _scenarios(scenario, SCORED_SCENARIOS)
    rows = [m for m in read_measurements(measurements) if m.record.scenario in chosen]
    fit = calibrate(
        rows,
        base=base,
        profile_id=profile_id,
        hardware=hardware,
        engine=engine,
        cross_validate=cross_validate,
        parameters=fit_parameters or (),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_durably(target, yaml_text(fit.record.model_dump(exclude_none=True), sort_keys=False))
    r = fit.record
    formats = "".join(f", {f} {v:.3f}" for f, v in r.compute_efficiency_by_format.items())
    held = f", {fit.held_out:.0%} held out (one accelerator left out at a time)" if fit.held_out is not None else ""
    typer.echo(
        f"{fit.rows} rows: bandwidth_efficiency {r.bandwidth_efficiency:.3f}, compute_efficiency "
        f"{r.compute_efficiency:.3f}{formats}, kernel_overhead_us {r.kernel_overhead_us:.2f}; median |error| "
        f"{fit.before:.0%} ({base}) -> {fit.after:.0%}{held}. Profile: {target} (use it with --profile)"
    )
    if fit.left_out:
        from dse.cli._render import _count

        typer.echo(
            f"note: {_count(fit.left_out, 'selected row')} not fitted: infeasible as measured, or without the load "
            "their figure holds (dse validate --measurements ... lists them, with why)",
            err=True,
        )
    if fit.unidentified:
        from dse.cli._render import _count

        typer.echo(
            f"note: {_count(fit.unidentified, 'selected row')} not fitted: prefill or throughput in a format too few"
            " rows identify (docs/validation.md), whose efficiency would stay generic and bend the rest",
            err=True,
        )
    if fit.after > fit.before:
        typer.echo(
            f"note: the fitted profile's median |error| is above {base}'s on these rows (the fit minimises a robust "
            "loss over every row, not the median); compare the two with dse validate --measurements ... --profile "
            "before using it",
            err=True,
        )


def _emit(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    if fmt is Format.json:
        typer.echo(json.dumps(rows, indent=2))
    elif fmt is Format.csv:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    else:
        from dse.cli._render import render_rows

        render_rows(rows, title)


FormatOption = Annotated[Format, typer.Option("--format", help="table, csv or json.")]


@catalog_app.command("hardware")
def catalog_hardware(fmt: FormatOption = Format.table) -> None:
    """Accelerators: memory, bandwidth, dense peaks, TDP, median on-demand rent and capital cost per device."""
    from dse.cli._catalog_tables import hardware_rows

    _emit(hardware_rows(), fmt, "Accelerators (dense peaks; — = not supported or unknown)")


@catalog_app.command("prices")
def catalog_prices(fmt: FormatOption = Format.table) -> None:
    """Prices: rent offers, purchase quotes and system power, each with its source, date and confidence."""
    from dse.cli._catalog_tables import price_rows

    _emit(price_rows(), fmt, "Prices (hardware/prices; a price sheet overrides them: docs/recommend.md)")


@catalog_app.command("systems")
def catalog_systems(fmt: FormatOption = Format.table) -> None:
    """Systems (node types): accelerator, devices per node, intra- and inter-node links."""
    from dse.cli._catalog_tables import system_rows

    _emit(system_rows(), fmt, "Systems")


@catalog_app.command("models")
def catalog_models(fmt: FormatOption = Format.table) -> None:
    """Models: parameters (computed and stated), layers, attention kind, MoE shape."""
    from dse.cli._catalog_tables import model_rows

    _emit(model_rows(), fmt, "Models (params computed from the architecture; card = model card)")


@catalog_app.command("quant")
def catalog_quant(fmt: FormatOption = Format.table) -> None:
    """Quantization schemes and KV-cache formats with bits per element including scale overhead."""
    from dse.cli._catalog_tables import quant_rows

    _emit(quant_rows(), fmt, "Quantization schemes and KV-cache formats")


@catalog_app.command("profiles")
def catalog_profiles(fmt: FormatOption = Format.table) -> None:
    """Efficiency profiles: achievable bandwidth and compute fractions, overheads."""
    from dse.cli._catalog_tables import profile_rows

    _emit(profile_rows(), fmt, "Efficiency profiles")


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """Warnings as one line on standard error (no file and line of the code that issued them)."""
    typer.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: runs the app, turns ``InputError`` into a message and exit code 2."""
    warnings.showwarning = _show_warning
    try:
        code = app(args=argv, standalone_mode=False)  # returns the code of a typer.Exit in this mode
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:  # pragma: no cover - disk full, closed pipe
        typer.echo(f"error: {exc}", err=True)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except (Interrupted, typer.Abort, KeyboardInterrupt):  # Ctrl-C outside a run (a run itself stops cleanly)
        typer.echo("interrupted", err=True)
        return INTERRUPTED
    except Exception as exc:
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):  # usage errors (exit code 2)
            show()
            return int(exc.exit_code)  # type: ignore[attr-defined]
        raise
    return code if isinstance(code, int) else 0
