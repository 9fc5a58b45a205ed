"""Rich rendering for the CLI: display units live here only."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from dse import units

_console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)
"""The terminal's width (or COLUMNS); 160 columns when writing to a file or pipe without COLUMNS."""


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    for factor, prefix in ((units.PB, "P"), (units.TB, "T"), (units.GB, "G"), (units.MB, "M"), (units.KB, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0:
        return "-" + _seconds(-value)
    if value >= 1:
        return f"{value:.3f} s"
    if value >= units.MS:
        return f"{value / units.MS:.2f} ms"
    return f"{value / units.US:.1f} µs"


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def render_rows(rows: list[dict[str, Any]], title: str) -> None:
    """A plain table of catalog rows; columns that do not fit the terminal are left out from the right (and
    named under the table), rather than folding every cell into unreadable slivers."""
    cells = [
        {k: "—" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for k, v in row.items()} for row in rows
    ]
    columns = list(rows[0]) if rows else []
    width = {c: max([len(c), *(len(r[c]) for r in cells)]) + 3 for c in columns}
    shown = list(columns)
    while len(shown) > 2 and sum(width[c] for c in shown) + 1 > _console.width:
        shown.pop()
    table = Table(title=title, show_lines=False)
    for column in shown:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*(row[c] for c in shown))
    _console.print(table)
    hidden = columns[len(shown) :]
    if hidden:
        _console.print(
            f"[dim]{len(hidden)} more columns do not fit this terminal: {', '.join(hidden)} (widen it, or use"
            " --format csv or json)[/]"
        )


_BOUNDS = {"compute": "compute-bound", "memory": "memory-bound", "network": "network", "pipeline": "pipeline bubble"}


def _bottleneck(layers: list[dict[str, Any]], stage: str) -> str:
    rows = [r for r in layers if r["stage"] == stage]
    total = sum(r["time_s"] for r in rows) or 1.0
    times = {label: sum(r["time_s"] for r in rows if r["bound"] == bound) for bound, label in _BOUNDS.items()}
    shares = ", ".join(f"{t / total:.0%} {label}" for label, t in times.items() if t)
    top = max(rows, key=lambda r: r["time_s"])
    return f"time {shares}; largest: {top['name']} ({top['time_s'] / total:.0%})"


def _deployment_line(d: dict[str, Any]) -> str:
    where = f"{d['accelerator']} in {d['system']}" if d["system"] else f"{d['accelerator']}, bare accelerator"
    split = f"tp {d['tp']} · pp {d['pp']} · ep {d['ep']}"
    if d["attention_dp"] > 1:
        split += f" (attention data-parallel × {d['attention_dp']})"
    if d["micro_batches"] > 1:
        split += f" · {d['micro_batches']} micro-batches"
    if "expert_imbalance" in d:
        rho = d["expert_imbalance"]
        split += f" · expert load ρ {rho['decode']:.2f} decode, {rho['prefill']:.2f} prefill"
    replicas = f"{d['replicas']} replica{'s' if d['replicas'] > 1 else ''} × {d['devices_per_replica']}"
    pools = d.get("pools") or {}
    if pools and pools["prefill"]["hardware"] != pools["decode"]["hardware"]:  # each pool's replicas below
        where = f"prefill on {pools['prefill']['hardware']}, decode on {pools['decode']['hardware']}"
        replicas = f"{d['replicas']} replicas"
    line = f"deployment: {_count(d['devices'], 'device')} ({where}) · {replicas} · {split}"
    if pools:
        line += "\ndisaggregated: " + " · ".join(_pool(name, p) for name, p in pools.items())
    return line


def _count(n: float, noun: str) -> str:
    """``1 device``, ``16 devices``."""
    return f"{n:g} {noun}{'' if n == 1 else 's'}"


def _pool(name: str, p: dict[str, Any]) -> str:
    """One pool of a disaggregated deployment: its replicas, their devices, hardware, tp and pp (above 1)."""
    if p["replicas"] < 1:
        return f"{name}: no replica (a split needs one of each)"
    devices = "?" if p["devices_per_replica"] is None else p["devices_per_replica"]
    stages = f" pp {p['pp']}" if p.get("pp", 1) > 1 else ""
    return f"{name}: {_count(p['replicas'], 'replica')} × {devices} of {p['hardware']} at tp {p['tp']}{stages}"


def _kv_policy_line(kv: dict[str, Any], prompt_len: int) -> str | None:
    parts = []
    if kv["kv_block_size"] is not None:
        parts.append(f"paged blocks of {kv['kv_block_size']} tokens")
    if kv["prefix_cached_tokens"]:
        parts.append(f"{kv['prefix_cached_tokens']} of {prompt_len} prompt tokens from the prefix cache")
    if kv["kv_offload"]:
        parts.append(f"{kv['kv_offload']:.0%} offloaded to host memory")
    return "KV cache: " + " · ".join(parts) if parts else None


def _front_parameters(front: dict[str, Any]) -> list[str]:
    """Hardware, quant, kv, every other parameter that differs along the front (tp, pp, ...), batch, and the
    quality flag when some front member evicts KV."""
    from dse.space import PARAMETERS

    always = ["hardware", "quant", "kv"]
    varying = [p for p in PARAMETERS if p not in (*always, "batch") and len({str(v) for v in front[p]}) > 1]
    flag = ["quality_affecting"] if np.any(np.asarray(front.get("quality_affecting", []), dtype=bool)) else []
    return [*always, *varying, "batch", *flag]


def _network_item(row: dict[str, Any]) -> str:
    if row["name"] == "comm_overlap":
        return f"{_seconds(-row['time_s'])} hidden under compute"
    sent = f"{row['name']} {_si(row['memory_bytes'], 'B')}"
    return f"{sent} in {_seconds(row['time_s'])}" if row["time_s"] > 0 else f"{sent} (off the critical path)"


def _communication_line(data: dict[str, Any]) -> str | None:
    """Collectives per device over each phase (the network rows of the operator table), or None."""
    parts = []
    for stage, label, whole in (("prefill", "prefill", "TTFT"), ("decode", "decode step", "the step")):
        rows = [r for r in data["layers"] if r["stage"] == stage and r["bound"] == "network"]
        if rows:
            share = sum(r["time_s"] for r in rows) / data[stage]["time_s"]
            items = [_network_item(r) for r in rows]
            parts.append(f"{label} {', '.join(items)} ({share:.0%} of {whole})")
    return "communication per device: " + " · ".join(parts) if parts else None


def _numerics_label(inputs: dict[str, Any]) -> str:
    if inputs["weight_bits"] is None and inputs["act_bits"] is None:
        return str(inputs["quant"] or "bf16")
    return f"raw w{inputs['weight_bits'] or 16:g}/a{inputs['act_bits'] or 16:g} bits"


_MEMORY = {
    "weights": "weights_bytes",
    "KV cache": "kv_cache_bytes",
    "activations": "activation_bytes",
    "reserve": "reserve_bytes",
    "total": "total_bytes",
    "usable capacity": "capacity_bytes",
}


def _optional(value: float | None, fmt: str, missing: str = "—") -> str:
    return missing if value is None else format(value, fmt)


def _with_interval(text: str, interval: list[float] | None, show: Callable[[float], str]) -> str:
    """``text`` and, when known and not a single point (a throughput the load fixes), the p10-p90 interval of
    the model's error around it (not the load's percentiles)."""
    if not interval or show(interval[0]) == show(interval[1]):
        return text
    return f"{text} [dim](model error p10-p90 {show(interval[0])}-{show(interval[1])})[/]"


def _summary_table(data: dict[str, Any]) -> Table:
    summary = Table(show_header=False, box=None)
    bars = data.get("intervals") or {}
    summary.add_row(
        "TTFT",
        _with_interval(_seconds(data["ttft_s"]), bars.get("ttft_s"), _seconds),
        "TPOT (mean)",
        _with_interval(_seconds(data["tpot_s"]), bars.get("tpot_s"), _seconds),
    )
    summary.add_row(
        "end-to-end", _seconds(data["e2e_latency_s"]), "tokens/s per user", f"{data['tokens_per_s_per_user']:.1f}"
    )
    summary.add_row(
        "throughput",
        _with_interval(
            f"{data['throughput_tokens_per_s']:.1f} tok/s", bars.get("throughput_tokens_per_s"), "{:.1f}".format
        ),
        "decode throughput",
        f"{data['decode_throughput_tokens_per_s']:.1f} tok/s",
    )
    summary.add_row(
        "$/hour",
        _optional(data["usd_per_hour"], ".2f"),
        "$/M tokens",
        _optional(data["usd_per_million_tokens"], ".3f", "— (price unknown)"),
    )
    summary.add_row("J/token", _optional(data["joules_per_token"], ".3g"), "", "")
    return summary


def _memory_table(mem: dict[str, Any]) -> Table:
    memory = Table(title="Memory per device", show_header=True)
    columns = dict(_MEMORY)
    if mem["host_kv_cache_bytes"]:
        columns |= {"host KV cache": "host_kv_cache_bytes", "host capacity": "host_capacity_bytes"}
    for column in (*columns, "max batch"):
        memory.add_column(column, justify="right")
    memory.add_row(*(_si(mem[key], "B") for key in columns.values()), str(mem["max_batch"]))
    return memory


def _operator_table(layers: list[dict[str, Any]], busy: float | None = None) -> Table:
    """The operators of each phase; ``busy``: continuous batching, whose prefill rows are a lone prompt's and
    whose decode rows are the step with every slot busy (``busy`` sequences), not the operating point's."""
    steps = (
        "decode = one step at context = prompt length"
        if busy is None
        else f"prefill = one prompt alone; decode = one step of every slot busy, {busy:g} sequences, from which "
        "the load's steps are interpolated"
    )
    ops = Table(
        title=f"Operators, per device of the busiest stage (totals over its layers and passes; {steps}; network "
        "bytes are sent over links)"
    )
    for column in ("stage", "operator", "×", "FLOPs", "bytes", "time", "FLOP/byte", "bound"):
        ops.add_column(column, justify="left" if column in ("stage", "operator", "bound") else "right")
    for r in layers:
        ops.add_row(
            r["stage"],
            r["name"],
            "" if r["count"] is None else f"{r['count']:g}",
            _si(r["flops"], "FLOP"),
            _si(r["memory_bytes"], "B"),
            _seconds(r["time_s"]),
            _optional(r["arithmetic_intensity"], ".1f"),
            r["bound"],
        )
    return ops


def _scheduler_label(i: dict[str, Any]) -> str:
    """``continuous batching (max N sequences, K-token steps) at <load>``."""
    load = "every slot busy"
    if i.get("request_rate") is not None:
        load = f"{i['request_rate']:g} requests/s (Poisson)"
    elif i.get("concurrency") is not None:
        load = f"{i['concurrency']} requests in flight"
    return f"continuous batching (at most {i['max_num_seqs']} sequences, {i['chunk_tokens']}-token steps) at {load}"


def _serving_line(data: dict[str, Any]) -> str:
    """Continuous batching's load: requests in the engine, percentiles, the rate the SLOs allow."""
    c, pct, i = data["continuous"], data["percentiles"], data["inputs"]
    ms = lambda q: " / ".join(f"{v * 1e3:.1f}" if v is not None else "inf" for v in q.values())  # noqa: E731
    slos = [f"TTFT <= {i['slo_ttft_s']:g} s" for _ in [0] if i.get("slo_ttft_s")]
    slos += [f"TPOT <= {i['slo_tpot_s'] * 1e3:g} ms" for _ in [0] if i.get("slo_tpot_s")]
    within = f"p{i['slo_percentile']} {' and '.join(slos)}" if slos else "no SLO: every slot busy"
    rate = data["max_request_rate"]
    return (
        f"load: {c['request_rate']:.3g} requests/s served, {c['sequences_in_engine']:.1f} sequences in the engine "
        f"(at most {c['max_sequences']:.0f} fit), {c['utilization']:.0%} of capacity, {c['chunks_per_prompt']:.0f} "
        f"chunk(s) per prompt\n"
        f"over the load's requests: TTFT p50 / p90 / p99 (ms): {ms(pct['ttft_s'])} · TPOT p50 / p90 / p99 (ms): "
        f"{ms(pct['tpot_s'])}\n"
        f"max request rate ({within}): {rate:.3g} requests/s"
        if rate is not None
        else "max request rate: unknown"
    )


def render_analysis(data: dict[str, Any]) -> None:
    """Summary (deployment, latency, throughput, memory vs capacity, cost, communication, bottlenecks) then
    the operator table."""
    i, kv = data["inputs"], data["kv_policy"]
    if not data["feasible"]:
        _console.print(
            f"[bold red]infeasible[/]: {data['infeasible_reason']}. The figures below are what this configuration"
            " would need or do; it cannot be deployed as given."
        )
    batching = f"batch {i['batch']}" if "continuous" not in data else _scheduler_label(i)
    _console.print(
        f"[bold]{i['model']}[/] on [bold]{i['hardware']}[/] · {_numerics_label(i)}"
        f" (computes in {data['compute_format']}) · {batching} · prompt {i['prompt_len']} · gen {i['gen_len']}"
        f" · profile {i['profile']}"
        + (" (calibrated: this accelerator was measured)" if data.get("calibrated") else " (uncalibrated)")
    )
    _console.print(_deployment_line(data["deployment"]))
    if kv["quality_affecting"]:
        _console.print(
            f"[bold yellow]warning[/]: KV budget of {kv['kv_budget']} tokens per sequence and layer: eviction changes"
            " the model's outputs (quality is not modelled, only speed and memory)"
        )
    policy = _kv_policy_line(kv, i["prompt_len"])
    if policy:
        _console.print(policy)
    _console.print("[green]feasible[/]" if data["feasible"] else f"[red]infeasible[/]: {data['infeasible_reason']}")
    summary = _summary_table(data)
    if not data["feasible"]:
        summary.title = "[red]not achievable[/] (infeasible configuration)"
    _console.print(summary)
    if data.get("unpriced_reason"):
        _console.print(f"price unknown: {data['unpriced_reason']}")
    if "continuous" in data:
        _console.print(_serving_line(data))
    _console.print(_memory_table(data["memory"]))
    communication = _communication_line(data)
    if communication:
        _console.print(communication)
    busy = data["continuous"]["sequences_every_slot_busy"] if "continuous" in data else None
    _console.print(f"prefill: {_bottleneck(data['layers'], 'prefill')}")
    decode = "decode:  " if busy is None else f"decode (every slot busy, {busy:g} sequences): "
    _console.print(f"{decode}{_bottleneck(data['layers'], 'decode')}")
    _console.print(_operator_table(data["layers"], busy))


@contextmanager
def progress_bar() -> Iterator[Callable[[dict[str, Any]], None]]:
    """A live line: candidates evaluated, feasible, size of the front, hypervolume."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting")

        def update(status: dict[str, Any]) -> None:
            done = f"evaluated {status['evaluated']:,}"
            if status.get("total"):
                done += f" of {status['total']:,} ({status['evaluated'] / status['total']:.0%})"
            if status.get("eta_s") is not None:
                done += (
                    f" · about {_seconds(status['eta_s']) if status['eta_s'] < 60 else _minutes(status['eta_s'])} left"
                )
            bar.update(
                task,
                description=f"{done} · feasible {status['feasible']:,} · front {status['front']}"
                f" · hypervolume {status['hypervolume']:.4f}",
            )

        yield update


@contextmanager
def stage_line() -> Iterator[Callable[[str], None]]:
    """A live line on the terminal's error stream: what a long command is doing, and for how long (gone when
    it ends; nothing when the stream is not a terminal)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _: None
        return
    columns = (SpinnerColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting")
        yield lambda text: bar.update(task, description=text)


def _answer_table(run: Any) -> Table:
    """Best per objective, the knee, and each hardware's best configuration under the SLOs (``dse.report``)."""
    from dse.report import (
        DISPLAY,
        best_per_hardware,
        best_per_objective,
        best_word,
        config_labels,
        format_number,
        knee,
        shown_parameters,
    )

    trials, front, objectives = run.trials, run.pareto, run.space.record.objectives
    metrics = list(dict.fromkeys([*(o.metric for o in objectives), "ttft_s", "tpot_s"]))
    parameters = [p for p in shown_parameters(trials) if p != "hardware"]
    table = Table(title=f"The answer (full front: {len(front)} rows in pareto.csv)")
    table.add_column("pick")
    table.add_column("hardware")
    table.add_column("configuration")
    for metric in metrics:
        table.add_column(DISPLAY[metric].column, justify="right")
    point = knee(front, objectives)
    sections = [
        best_per_objective(front, objectives),
        [point] if point else [],
        best_per_hardware(trials, objectives, run.space.record.choices.hardware, run.summary),
    ]
    per_hardware = f"{best_word(objectives[0].maximize)} {DISPLAY[objectives[0].metric].short} of it"
    for index, picks in enumerate(sections):
        for pick in picks:
            if pick.row is None:
                table.add_row(per_hardware, pick.role, f"[dim]{pick.note}[/]")
                continue
            config = config_labels(pick.row.to_frame().T, parameters).iloc[0]
            role = per_hardware if index == 2 else pick.role
            cells = [format_number(m, float(pick.row[m])) for m in metrics]
            table.add_row(role, str(pick.row["hardware"]), config, *cells)
        if picks and index < 2:
            table.add_section()
    return table


def _why_table(run: Any) -> Table:
    """Why each hardware has no answer (a run without a front): the notes of best per hardware."""
    from dse.report import best_per_hardware

    record = run.space.record
    table = Table(title="Why, per hardware")
    table.add_column("hardware")
    table.add_column("why")
    for pick in best_per_hardware(run.trials, record.objectives, record.choices.hardware, run.summary):
        table.add_row(pick.role, pick.note)
    return table


def render_run(run: Any, top: int) -> None:
    """Summary line, the answer (best per objective, knee, best per hardware), and ``top`` rows of the front."""
    s = run.summary
    c = s["counts"]
    _console.print(
        f"[bold]{s['space']}[/]: {s['engine']} on {s['executor']} · "
        f"{c['evaluated']:,} evaluated of {c['after_pruning']:,}"
        f" ({c['full_space']:,} before pruning) · {c['feasible']:,} feasible · {c['pareto']:,} on the front"
        f" · {s['wall_time_s']:.2f} s · hypervolume {s['hypervolume']['value']:.4f}"
    )
    front = run.front
    if not len(front["candidate_id"]):
        from dse.report import empty_front

        _console.print(f"[red]{empty_front(c)}[/]")
        _console.print(_why_table(run))
    else:
        _console.print(_answer_table(run))
    if top and len(front["candidate_id"]):
        _console.print(_front_table(run, top))
    _console.print(f"run directory: {run.directory}")


def _front_table(run: Any, top: int) -> Table:
    """The first ``top`` rows of the front, by the first objective."""
    from dse.report import column_name, format_number

    front = run.front
    first = run.space.record.objectives[0]
    order = np.argsort(np.asarray(front[first.metric], dtype=float) * (-1 if first.maximize else 1))[:top]
    table = Table(
        title=f"Pareto front (first {min(top, len(order))} of {len(front['candidate_id'])}, by {first.metric})"
    )
    params = _front_parameters(front)
    metrics = [o.metric for o in run.space.record.objectives]
    metrics += [m for m in ("ttft_s", "tpot_s", "memory_per_device_bytes") if m not in metrics]
    for name in params:
        table.add_column(name, justify="right")
    for name in metrics:
        table.add_column(column_name(name), justify="right")
    for i in order:
        cells = ["default" if front[p][i] is None else str(front[p][i]) for p in params]
        cells += [format_number(name, float(front[name][i])) for name in metrics]
        table.add_row(*cells)
    return table


def _months(option: dict[str, Any]) -> str:
    """Break-even month; null is "never" when both prices are known (renting costs no more than running),
    "—" when one is unknown."""
    value, device = option["break_even_months"], option["per_device"]
    if value is not None:
        return f"{value:.1f} mo"
    known = device["capex_usd"] is not None and device["rent_usd_per_hour"] is not None
    return "never" if known and device["opex_usd_per_hour"] is not None else "—"


def render_recommendation(doc: dict[str, Any]) -> None:
    """``dse recommend``'s answer: the shortlist, the threshold sentences, what is unpriced and what cannot
    serve the load, and the winner's main sensitivities."""
    from dse.report import config_text, format_usd, workload_text

    r, load = doc["request"], doc["load"]
    slos = [
        f"TTFT <= {r['ttft_s']:g} s" if r["ttft_s"] else "",
        f"TPOT <= {r['tpot_s'] / units.MS:g} ms" if r["tpot_s"] else "",
    ]
    slo = ", ".join(s for s in slos if s) or "no SLO"
    if r.get("scheduler") == "continuous":
        slo = f"{slo} at p{r['slo_percentile']}, continuous batching" if any(slos) else "continuous batching"
    title = (
        f"{r['model']}: {workload_text(doc)} at {r['rate']:g} requests/s "
        f"(sized for {load['sizing_rate_rps']:g}), {slo}; {doc['pricing']}, {r['horizon_years']:g}-year horizon"
    )
    table = Table(title=title)
    for name in (
        "#",
        "hardware",
        "per replica",
        "replicas",
        "devices",
        "$/month",
        "TCO",
        "$/M tok",
        "kW",
        "binding",
        "win rate",
        "buy pays back",
    ):
        left = name in ("hardware", "per replica", "binding")
        table.add_column(name, justify="left" if left else "right", no_wrap=name == "per replica", overflow="fold")
    for i, o in enumerate(doc["options"], 1):
        hardware = o["hardware"] if o["target"] == o["hardware"] else f"{o['hardware']} ({o['target']})"
        table.add_row(
            str(i),
            hardware,
            config_text(o),
            str(o["replicas"]),
            str(o["devices"]) + (f" ({o['devices_paid']} bought)" if o["devices_paid"] != o["devices"] else ""),
            format_usd(o["usd_per_month"]),
            format_usd(o["tco_usd"]),
            format_usd(o["usd_per_million_tokens"]),
            _optional(o["power_kw"], ".1f"),
            o["binding"],
            "—" if o["win_rate"] is None else f"{o['win_rate']:.0%}",
            _months(o),
        )
    _console.print(table)
    if not doc["options"]:
        _console.print(
            f"No hardware with a {doc['pricing']} price serves this load; what serves it is listed below, unpriced."
            if doc["unpriced"]
            else "No hardware serves this load under these SLOs and limits."
        )
    for t in doc["thresholds"]:
        _console.print(f"  • {t['sentence']}")
    robust = doc["robustness"]
    if robust and robust["tornado"]:
        winner = doc["options"][0]["hardware"]
        bars = ", ".join(
            f"{b['input']} {format_usd(min(b['low'], b['high']))}–{format_usd(max(b['low'], b['high']))}"
            for b in robust["tornado"][:3]
        )
        _console.print(
            f"  • Robustness ({robust['samples']} draws, seed {robust['seed']}): {winner}'s $/month moves most with "
            f"{bars}; its SLO risk is {doc['options'][0]['slo_risk']:.0%}."
        )
    if doc["unpriced"]:
        items = ", ".join(f"{o['hardware']} ({o['devices']} devices)" for o in doc["unpriced"])
        _console.print(f"Unpriced in {doc['pricing']} (serve the load; no price to rank them): {items}")
    if doc["infeasible"]:
        _console.print(f"Cannot serve this load ({len(doc['infeasible'])}):")
        for item in doc["infeasible"]:
            _console.print(f"  {item['hardware']}: {item['reason']}")


def render_validation(doc: dict[str, Any]) -> None:
    """``dse validate``: error per quantity and scenario, rank correlations, what the model could not fit."""
    from dse.calibrate import group_label

    table = Table(title=f"Predicted vs measured ({doc['measurements']}, profile {doc['profile']})")
    covered = any("interval_coverage" in s for s in doc["summary"])
    by = list(doc.get("by") or [])
    names = (*by, "quantity", "scenario", "rows", "scored", "median |error|", "p90 |error|", "bias")
    for name in (*names, "in p10-p90") if covered else names:
        table.add_column(name, justify="left" if name in (*by, "quantity", "scenario") else "right")

    def share(value: float | None, signed: bool = False) -> str:
        return "—" if value is None else f"{value:+.0%}" if signed else f"{value:.0%}"

    for s in doc["summary"]:
        table.add_row(
            *(group_label(name, s[name]) for name in by),
            s["metric"],
            s["scenario"],
            str(s["rows"]),
            str(s["scored"]),
            share(s["median_abs_error"]),
            share(s["p90_abs_error"]),
            share(s["bias"], signed=True),
            *((share(s.get("interval_coverage")),) if covered else ()),
        )
    _console.print(table)
    _console.print("error = predicted / measured - 1: + on a throughput, - on a latency = optimistic")
    if covered:
        _console.print(
            "cross-validated: each row predicted with its accelerator left out of its family's fit (rows that cannot"
            " be are not scored); in p10-p90 = share inside an interval built without the row's accelerator"
        )
    if doc["ranks"]:
        _console.print(
            f"Hardware rank correlation (Spearman) over {len(doc['ranks'])} groups of >= 4 deployments: "
            f"median {doc['median_spearman']:.2f}, lowest {min(r['spearman'] for r in doc['ranks']):.2f}"
        )
    for why, count in Counter(item["reason"] for item in doc.get("unscored", [])).items():
        _console.print(f"{_count(count, 'row')} not scored, {why} (docs/validation.md)")
    if doc["infeasible"]:
        count = len(doc["infeasible"])
        _console.print(f"{count} measured deployment{'s' if count != 1 else ''} the model says cannot run as measured:")
        for item in doc["infeasible"][:10]:
            _console.print(f"  {item['id']} on {item['hardware']}: {item['infeasible_reason']}")
