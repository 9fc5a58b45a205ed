"""The ``dse`` command line: parse, call the Python API, print. Bad input -> message and exit code 2."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any

import typer

from dse.errors import InputError

app = typer.Typer(
    help="Design-space exploration for LLM inference: hardware, quantization, batch, parallelism, and their costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="List the catalogs (hardware, systems, models, quantization, profiles).", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")


class Pricing(str, Enum):
    rent = "rent"
    buy = "buy"


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def analyze(
    model: Annotated[
        str, typer.Option(help="Model catalog id, or a path to a model YAML or a Hugging Face config.json.")
    ],
    hardware: Annotated[
        str,
        typer.Option(
            help="Accelerator id (h100-sxm: one device), system id (dgx-h100: a node type with its links, needed for "
            "--tp/--pp/--ep > 1; see `dse catalog systems`), or a path to a hardware or system YAML."
        ),
    ],
    quant: Annotated[
        str | None, typer.Option(help="Quantization scheme id (see `dse catalog quant`). Default bf16.")
    ] = None,
    weight_bits: Annotated[float | None, typer.Option(help="Raw weight bits (exact, no scale overhead).")] = None,
    act_bits: Annotated[float | None, typer.Option(help="Raw activation bits.")] = None,
    kv_bits: Annotated[float | None, typer.Option(help="Raw KV-cache bits.")] = None,
    kv: Annotated[str | None, typer.Option(help="KV-cache format id (fp16, bf16, fp8, int8, int4).")] = None,
    batch: Annotated[int, typer.Option(help="Sequences decoded together.")] = 1,
    prompt_len: Annotated[int, typer.Option(help="Prompt tokens per sequence.")] = 1024,
    gen_len: Annotated[int, typer.Option(help="Generated tokens per sequence.")] = 256,
    tp: Annotated[
        int, typer.Option(help="Tensor-parallel degree: heads, FFN and vocabulary split over N devices.")
    ] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline-parallel degree: layers split into N stages.")] = 1,
    ep: Annotated[
        int,
        typer.Option(
            help="Expert-parallel degree (MoE): routed experts spread over N devices; N = k x tp makes "
            "attention data-parallel over k groups."
        ),
    ] = 1,
    replicas: Annotated[int, typer.Option(help="Independent copies of the deployment (throughput and cost x N).")] = 1,
    kv_block_size: Annotated[
        int | None, typer.Option(help="Paged KV-cache block size in tokens (default: allocated token by token).")
    ] = None,
    prefix_hit_rate: Annotated[
        float, typer.Option(help="Share of each prompt served from a prefix cache, 0..1 (skips that prefill work).")
    ] = 0.0,
    kv_offload: Annotated[
        float, typer.Option(help="Share of the KV cache kept in host memory, 0..1 (read over the host link).")
    ] = 0.0,
    kv_budget: Annotated[
        int | None,
        typer.Option(
            help="KV tokens kept per sequence and layer by an eviction policy (default: no eviction). "
            "Changes the model's outputs."
        ),
    ] = None,
    expert_imbalance: Annotated[
        float, typer.Option(help="Busiest expert-parallel device's routed tokens over the mean, >= 1.")
    ] = 1.0,
    flash_attention: Annotated[
        bool, typer.Option("--flash-attention/--no-flash-attention", help="Fused attention kernels.")
    ] = True,
    ideal: Annotated[
        bool, typer.Option("--ideal", help="Pure roofline: efficiency 1, no overheads, no reserve.")
    ] = False,
    profile: Annotated[str | None, typer.Option(help="Efficiency profile id or YAML path (default: default).")] = None,
    pricing: Annotated[
        Pricing, typer.Option(help="rent: cloud $/hour; buy: amortised purchase + power.")
    ] = Pricing.rent,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (DESIGN.md §4).")] = False,
) -> None:
    """Analyse one deployment: latency, throughput, memory against capacity, cost, and every operator."""
    from dse.costmodel import CostAssumptions
    from dse.scoring import analyze as run_analysis

    result = run_analysis(
        model,
        hardware,
        quant=quant,
        weight_bits=weight_bits,
        act_bits=act_bits,
        kv_bits=kv_bits,
        kv=kv,
        batch=batch,
        prompt_len=prompt_len,
        gen_len=gen_len,
        tp=tp,
        pp=pp,
        ep=ep,
        replicas=replicas,
        kv_block_size=kv_block_size,
        prefix_hit_rate=prefix_hit_rate,
        kv_offload=kv_offload,
        kv_budget=kv_budget,
        expert_imbalance=expert_imbalance,
        flash_attention=flash_attention,
        ideal=ideal,
        profile=profile,
        costs=CostAssumptions(pricing=pricing.value),
    )
    data = result.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from dse._cli_render import render_analysis

    render_analysis(data)


class Engine(str, Enum):
    auto = "auto"
    exhaustive = "exhaustive"
    optuna = "optuna"


class ExecutorKind(str, Enum):
    local = "local"
    ray = "ray"


@app.command("run")
def run_command(
    space: Annotated[str | None, typer.Argument(help="Search-space YAML (see docs/spaces.md).")] = None,
    out: Annotated[str | None, typer.Option(help="Run directory (default experiments/runs/<name>-<time>).")] = None,
    engine: Annotated[Engine | None, typer.Option(help="auto, exhaustive or optuna (default: the space's).")] = None,
    trials: Annotated[int | None, typer.Option(help="Optuna trial budget.")] = None,
    executor: Annotated[ExecutorKind | None, typer.Option(help="local or ray.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler seed.")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Connect to an existing Ray cluster.")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the interrupted run in this directory.")] = None,
    top: Annotated[int, typer.Option(help="Pareto rows to print.")] = 15,
) -> None:
    """Search a space: the Pareto front of its objectives, written to a run directory."""
    from dse._cli_render import progress_bar, render_run
    from dse.results import resume as resume_run
    from dse.results import run as start_run

    if (space is None) == (resume is None):
        raise InputError("give a space file, or --resume DIR (not both)", field="space")
    if resume is not None and any(v is not None for v in (out, engine, trials, seed, ray_address)):
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
                progress=update,
            )
    render_run(result, top)
    if not result.summary["complete"]:
        typer.echo(f"interrupted: resume with `dse run --resume {result.directory}`", err=True)
        raise typer.Exit(130)


@app.command("sweep")
def sweep_command(
    experiment: Annotated[str, typer.Argument(help="Sweep YAML: a base space and a grid of overrides.")],
    out: Annotated[str | None, typer.Option(help="Sweep directory (default experiments/runs/<name>).")] = None,
) -> None:
    """Run one study per point of a grid (in parallel on Ray if the sweep asks) and join their fronts."""
    from dse.results import sweep

    result = sweep(experiment, out=out)
    typer.echo(f"{len(result.table)} Pareto rows over the sweep -> {result.directory / 'sweep.csv'}")
    if not result.complete:
        typer.echo(
            f"interrupted: see {result.directory / 'sweep.json'}; resume a point with dse run --resume", err=True
        )
        raise typer.Exit(130)


def _emit(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    if fmt is Format.json:
        typer.echo(json.dumps(rows, indent=2))
    elif fmt is Format.csv:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    else:
        from dse._cli_render import render_rows

        render_rows(rows, title)


FormatOption = Annotated[Format, typer.Option("--format", help="table, csv or json.")]


@catalog_app.command("hardware")
def catalog_hardware(fmt: FormatOption = Format.table) -> None:
    """Accelerators: memory, bandwidth, dense peaks, TDP, prices, and where the figures come from."""
    from dse._catalog_tables import hardware_rows

    _emit(hardware_rows(), fmt, "Accelerators (dense peaks; — = not supported or unknown)")


@catalog_app.command("systems")
def catalog_systems(fmt: FormatOption = Format.table) -> None:
    """Systems (node types): accelerator, devices per node, intra- and inter-node links."""
    from dse._catalog_tables import system_rows

    _emit(system_rows(), fmt, "Systems")


@catalog_app.command("models")
def catalog_models(fmt: FormatOption = Format.table) -> None:
    """Models: parameters (computed and stated), layers, attention kind, MoE shape."""
    from dse._catalog_tables import model_rows

    _emit(model_rows(), fmt, "Models (params computed from the architecture; card = model card)")


@catalog_app.command("quant")
def catalog_quant(fmt: FormatOption = Format.table) -> None:
    """Quantization schemes and KV-cache formats with bits per element including scale overhead."""
    from dse._catalog_tables import quant_rows

    _emit(quant_rows(), fmt, "Quantization schemes and KV-cache formats")


@catalog_app.command("profiles")
def catalog_profiles(fmt: FormatOption = Format.table) -> None:
    """Efficiency profiles: achievable bandwidth and compute fractions, overheads."""
    from dse._catalog_tables import profile_rows

    _emit(profile_rows(), fmt, "Efficiency profiles")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: runs the app, turns ``InputError`` into a message and exit code 2."""
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
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except Exception as exc:
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):  # usage errors (exit code 2)
            show()
            return int(exc.exit_code)  # type: ignore[attr-defined]
        raise
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
