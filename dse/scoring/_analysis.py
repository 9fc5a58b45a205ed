"""One configuration, LLM-Viewer style: phase totals, serving metrics, memory, deployment, KV-cache policy,
communication, and a per-operator table that adds up to each phase."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import CALIBRATED, QUANTITIES, ModelSpec, known_engine, load_model
from dse.costmodel import (
    CHUNK_TOKENS,
    MAX_NUM_SEQS,
    METRIC_NAMES,
    REASON_TEXT,
    SERVING_QUANTILES,
    SPEC_ACCEPTANCE,
    Candidates,
    ContinuousServing,
    CostAssumptions,
    Evaluation,
    OperatorCost,
    PhaseCost,
    Reason,
    evaluate_reference,
    evicts,
    prefix_cached_tokens,
)
from dse.costmodel.physics.lengths import candidate_lengths, paired
from dse.costmodel.physics.parallel import pass_imbalance
from dse.costmodel.physics.roofline import ROOFS, arithmetic_intensity, bound
from dse.errors import AssumptionWarning, InputError
from dse.scoring._build import (
    Target,
    architecture,
    build_candidates,
    numerics_table,
    pool_targets,
    prefilling,
    target_prices,
    target_profiles,
    unpriced_reason,
)
from dse.scoring._draft import with_draft
from dse.scoring._inputs import INPUT_DEFAULTS, candidate_fields, check_keywords, check_speculation
from dse.scoring._intervals import NO_RATIOS, Ratios, intervals, target_ratios
from dse.scoring._lengths import read_histogram

PER_DEVICE_NOTE = (
    "prefill, decode, memory, communication and layers are per device of the busiest pipeline stage (its "
    "share of the layers and its tensor/expert shard). A phase's flops and memory_bytes cover every "
    "micro-batch pass that device runs; its time_s is the whole phase: pipeline passes, collectives and "
    "stage-boundary transfers included. The layers of a phase add up to it: operators and tp/ep collectives "
    "over the device's passes, comm_overlap = collective time hidden under computation (negative, with a "
    "profile's comm_overlap > 0), pp_send = the stage-boundary transfers on the critical path, "
    "pipeline_bubble = time the device waits on the other stages; a network row's memory_bytes are bytes "
    "sent over links."
)

COLLECTIVES = ("tp_all_reduce", "ep_all_to_all", "pp_send")
"""Collective kinds of ``dse.costmodel``'s ``Communication`` (fields ``<kind>_bytes`` and ``<kind>_s``)."""

_ROUNDING = 1e-8
"""Relative difference between a phase and the sum of its rows below which the rows explain it (float sums)."""

_ROW_PARTS = {"weight_bytes": "weight_bytes", "activation_bytes": "act_bytes", "kv_cache_bytes": "kv_bytes"}


def _row(stage: str, name: str, kind: str, time_s: float, **values: Any) -> dict[str, Any]:
    """A ``layers`` row; operators give flops and byte parts, the other rows only what applies."""
    flops, nbytes = values.get("flops", 0.0), values.get("memory_bytes", 0.0)
    return {
        "name": name,
        "stage": stage,
        "count": values.get("count"),
        "flops": flops,
        "memory_bytes": nbytes,
        **{key: values.get(key, 0.0) for key in _ROW_PARTS},
        "time_s": time_s,
        "arithmetic_intensity": arithmetic_intensity(flops, nbytes) if kind in ("compute", "memory") else None,
        "bound": kind,
        "peak": values.get("peak"),
    }


def operator_rows(stage: str, costs: tuple[OperatorCost, ...], passes: float) -> list[dict[str, Any]]:
    """Every operator the busiest stage's device runs in a phase: its instances over ``passes`` passes."""
    rows = []
    for op in costs:
        count = op.count * passes
        parts = {key: count * float(getattr(op, part)) for key, part in _ROW_PARTS.items()}
        flops, nbytes = count * float(op.flops), sum(parts.values())
        if flops == 0 and nbytes == 0:
            continue
        kind = bound(float(op.compute_s), float(op.memory_s))
        rows.append(
            _row(
                stage,
                op.name,
                kind,
                passes * float(op.time_s),
                count=count,
                flops=flops,
                memory_bytes=nbytes,
                peak=op.peak,
                **parts,
            )
        )
    return rows


def schedule_rows(
    stage: str,
    phase: PhaseCost,
    comm: dict[str, float],
    operators: list[dict[str, Any]],
    passes: float,
    pp: int,
    overlap: float,
) -> list[dict[str, Any]]:
    """The rest of a phase, so that the rows add up to it: the busiest stage's tp/ep collectives over its
    ``passes`` passes; with a profile's ``overlap`` > 0 the collective time hidden under computation
    (``comm_overlap``, negative); with pipelining, the stage-boundary transfers on the critical path
    (``pp_send``) and the time the device waits on the other stages (``pipeline_bubble``); and anything the
    per-operator detail does not itemise (``not_itemised``; none is known).

    The schedule is ``dse.costmodel.evaluate_candidates``'s (GPipe's): the prefill ends one trip through
    every stage (sends included) plus m - 1 busiest-stage passes after it starts; a decode step is the larger
    of one trip and m busiest-stage passes, so its sends are on the critical path only as far as the trip
    exceeds the m passes.
    """
    rows = [
        _row(stage, kind, "network", passes * comm[f"{kind}_s"], memory_bytes=passes * comm[f"{kind}_bytes"])
        for kind in ("tp_all_reduce", "ep_all_to_all")
        if comm[f"{kind}_bytes"] > 0
    ]
    time = float(phase.time_s)
    busy = sum(r["time_s"] for r in operators + rows)
    if overlap > 0:
        stage_compute = sum(r["time_s"] for r in operators) / passes
        stage_comm = sum(r["time_s"] for r in rows) / passes
        hidden = passes * overlap * min(stage_compute, stage_comm)
        if hidden > 0:
            rows.append(_row(stage, "comm_overlap", "network", -hidden))
            busy -= hidden
    transfers = pp - 1.0
    if transfers:
        send_s = min(comm["pp_send_s"], max(time - busy, 0.0))
        send_s = send_s if send_s > _ROUNDING * time else 0.0  # hidden behind the other micro-batches
        send = _row(stage, "pp_send", "network", send_s, count=passes)  # one boundary per micro-batch
        rows.append(send | {"memory_bytes": passes * comm["pp_send_bytes"]})
        wait = time - busy - send_s
        if wait > _ROUNDING * time:
            rows.append(_row(stage, "pipeline_bubble", "pipeline", wait))
    rest = {
        "time_s": time - sum(r["time_s"] for r in operators + rows),
        "flops": float(phase.flops) - sum(r["flops"] for r in operators),
        "memory_bytes": float(phase.memory_bytes)
        - sum(r["memory_bytes"] for r in operators if r["bound"] in ("compute", "memory")),
    }
    scale = {"time_s": time, "flops": float(phase.flops), "memory_bytes": float(phase.memory_bytes)}
    if any(abs(v) > _ROUNDING * max(scale[k], 1.0) for k, v in rest.items()):
        time_rest = rest.pop("time_s")
        rows.append(_row(stage, "not_itemised", "other", time_rest, **rest))
    return rows


@dataclass(frozen=True)
class Analysis:
    """The analysis of one candidate, by the reference evaluator (every operator, every position)."""

    inputs: dict[str, Any]
    model: ModelSpec
    evaluation: Evaluation
    compute_format: str
    """The format the linear layers ran in (after any fallback)."""
    accelerator: str = ""
    """Id of the accelerator the candidate runs on."""
    system: str | None = None
    """Id of the system (node type) it runs in; None for a bare accelerator."""
    roofs: dict[str, Any] | None = None
    """The roofline's ceilings: the three peaks (linear-layer format, 16-bit, vector) and the memory bandwidth
    as resolved for this candidate, the profile's efficiencies, and the datasheet's dense peak per format."""
    comm_overlap: float = 0.0
    """The profile's share of the shorter of compute and communication hidden."""
    calibrated: bool = False
    """Whether the accelerator was measured in the fit of the profile used."""
    ratios: dict[str, Ratios] | None = None
    """measured / predicted at p10, p50, p90 per quantity (``interval_ratios``)."""
    unpriced_reason: str | None = None
    """What the pricing lacks to price the deployment (``unpriced_reason``); None when it has a price."""

    def _deployment(self) -> dict[str, Any]:
        ev, i = self.evaluation, self.inputs
        lay = ev.layout
        return (
            {
                "hardware": i["hardware"],
                "accelerator": self.accelerator,
                "system": self.system,
                **{k: i[k] for k in ("tp", "pp", "ep", "replicas")},
                "devices": round(float(ev.metrics.devices)),
                "devices_per_replica": int(lay.devices),
                "attention_dp": int(lay.attention_dp),
                "micro_batches": int(lay.micro_batches),
            }
            | self._imbalance()
            | self._pools()
        )

    def _imbalance(self) -> dict[str, Any]:
        """With experts over ep > 1 devices: the busiest device's routed copies over the mean (ρ, chance's
        times the input skew, docs/cost-model.md §11.4) in the prefill pass and the decode step this analysis
        reports: the batch's, or under continuous batching one request's prompt and a step with every slot
        busy."""
        arch, i, lay = architecture(self.model), self.inputs, self.evaluation.layout
        if arch.moe is None or i["ep"] <= 1:
            return {}
        new = i["prompt_len"] - float(prefix_cached_tokens(i["prefix_hit_rate"], i["prompt_len"]))
        alone = i["scheduler"] == "continuous" or i["mode"] == "disaggregated"
        prompt = replace(lay, micro_batch=1.0) if alone else lay
        ep = float(i["ep"])
        return {
            "expert_imbalance": {
                "prefill": float(pass_imbalance(arch, prompt, ep, new)),
                "decode": float(pass_imbalance(arch, lay, ep, 1.0)),
            }
        }

    def _pools(self) -> dict[str, Any]:
        """Disaggregated: each pool's replicas, hardware, tp, pp and devices per replica (the deployment's own
        ``devices_per_replica`` is the decode pool's)."""
        i = self.inputs
        if i["mode"] != "disaggregated":
            return {}
        x, y = i["prefill_replicas"], i["replicas"] - i["prefill_replicas"]
        n_d = int(self.evaluation.layout.devices)
        n_p = round((float(self.evaluation.metrics.devices) - y * n_d) / x) if y >= 1 else None
        prefill = {"replicas": x, "hardware": i["prefill_hardware"] or i["hardware"], "tp": i["prefill_tp"] or i["tp"]}
        prefill["pp"] = self._prefill_pp()
        decode = {"replicas": y, "hardware": i["hardware"], "tp": i["tp"], "pp": i["pp"]}
        return {
            "pools": {
                "prefill": prefill | {"devices_per_replica": n_p},
                "decode": decode | {"devices_per_replica": n_d},
            }
        }

    def _kv_policy(self) -> dict[str, Any]:
        i = self.inputs
        budget, hit = i["kv_budget"], i["prefix_hit_rate"]
        cached = int(prefix_cached_tokens(hit, i["prompt_len"]))
        evicting = bool(evicts(architecture(self.model), budget, i["prompt_len"] + i["gen_len"]))
        notes = []
        if evicting:
            notes.append(
                f"KV eviction keeps {budget} tokens per sequence and layer: attention sees at most that many keys, "
                "which changes the model's outputs (quality is not modelled)"
            )
        if cached:
            notes.append(f"{cached} prompt tokens per sequence come from the prefix cache: prefill computes the rest")
        if i["kv_offload"]:
            notes.append(
                f"{i['kv_offload']:.0%} of the KV cache lives in host memory: prefill copies it there and decode "
                "reads it back, over the host link"
            )
        return {
            "kv_block_size": i["kv_block_size"],
            "prefix_hit_rate": hit,
            "prefix_cached_tokens": cached,
            "kv_offload": i["kv_offload"],
            "kv_budget": budget,
            "quality_affecting": evicting,
            "note": "; ".join(notes) or None,
        }

    def _communication(self) -> dict[str, dict[str, float]]:
        return {
            phase: {
                f"{kind}_{unit}": float(getattr(comm, f"{kind}_{unit}"))
                for kind in COLLECTIVES
                for unit in ("bytes", "s")
            }
            for phase, comm in zip(("prefill", "decode"), self.evaluation.communication, strict=True)
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``dse analyze --json`` object (DESIGN.md §4 contract, plus extra fields)."""
        ev = self.evaluation
        m, mem = ev.metrics, ev.memory
        out: dict[str, Any] = {"inputs": self.inputs, "compute_format": self.compute_format}
        out["per_device"] = PER_DEVICE_NOTE
        for name, phase in (("prefill", ev.prefill), ("decode", ev.decode_step)):
            out[name] = {
                "flops": float(phase.flops),
                "memory_bytes": float(phase.memory_bytes),
                "time_s": float(phase.time_s),
            }
        out |= {name: float(getattr(m, name)) for name in METRIC_NAMES}
        out["decode_throughput_tokens_per_s"] = float(m.decode_throughput_tokens_per_s)
        out["deployment"] = self._deployment()
        out["kv_policy"] = self._kv_policy()
        out["communication"] = self._communication()
        out["memory"] = {
            "weights_bytes": float(mem.weights_bytes),
            "kv_cache_bytes": float(mem.kv_cache_bytes),
            "activation_bytes": float(mem.activation_bytes),
            "reserve_bytes": float(mem.reserve_bytes),
            "total_bytes": float(mem.total_bytes),
            "capacity_bytes": float(mem.capacity_bytes),
            "max_batch": int(mem.max_batch),
            "host_kv_cache_bytes": float(mem.host_kv_cache_bytes),
            "host_capacity_bytes": float(mem.host_capacity_bytes),
        }
        out["roofline"] = self.roofs
        out["calibrated"] = self.calibrated
        predicted = {
            "ttft_s": float(m.ttft_s),
            "tpot_s": float(m.tpot_s),
            "throughput_tokens_per_s": float(m.throughput_tokens_per_s),
        }
        out["intervals"] = intervals(predicted, self.ratios or dict.fromkeys(QUANTITIES, NO_RATIOS))
        if self.inputs.get("request_rate") is not None and ev.serving is not None:  # the load sets it, not the model
            out["intervals"]["throughput_tokens_per_s"] = [predicted["throughput_tokens_per_s"]] * 2
        if ev.serving is not None:
            out |= continuous_dict(ev.serving)
        out["unpriced_reason"] = self.unpriced_reason
        out["feasible"] = bool(m.feasible)
        out["infeasible_reason"] = REASON_TEXT[Reason(int(m.reason))]
        passes = float(ev.layout.micro_batches)
        pp, overlap = self.inputs["pp"], self.comm_overlap
        out["layers"] = []
        phases = (("prefill", ev.prefill, ev.operators[0]), ("decode", ev.decode_step, ev.operators[1]))
        for stage, phase, costs in phases:
            # a prefill pool of its own pp: its operators are one of its own stages', its passes as many
            stage_pp = self._prefill_pp() if stage == "prefill" else pp
            stage_passes = passes * stage_pp / pp
            if stage == "prefill" and ev.serving is not None:  # served: a lone prompt's one pass (its phase's)
                stage_passes = 1.0
            operators = operator_rows(stage, costs, stage_passes)
            if stage == "prefill" and ev.host_kv_write_s > 0:  # offloaded KV copied to host memory
                written = stage_passes * float(ev.host_kv_write_bytes)
                operators.append(
                    _row(
                        stage,
                        "kv_host_write",
                        "host_link",
                        stage_passes * float(ev.host_kv_write_s),
                        count=stage_passes,
                    )
                    | {"memory_bytes": written}
                )
            comm = out["communication"][stage]
            rows = schedule_rows(stage, phase, comm, operators, stage_passes, stage_pp, overlap)
            out["layers"] += operators + rows
        return finite_json(out)

    def _prefill_pp(self) -> int:
        """The stages a request's prefill crosses: a disaggregated prefill pool's own pp where given."""
        i = self.inputs
        own = i.get("prefill_pp") if i.get("mode") == "disaggregated" else None
        return int(own or i["pp"])


def continuous_dict(serving: ContinuousServing) -> dict[str, Any]:
    """The keys continuous batching adds to ``dse analyze --json`` (issue contract: ``percentiles``,
    ``max_request_rate``; the rest under ``continuous``)."""
    names = [f"p{round(q * 100)}" for q in SERVING_QUANTILES]
    return {
        "percentiles": {
            "ttft_s": {n: float(v) for n, v in zip(names, serving.ttft_quantiles_s, strict=True)},
            "tpot_s": {n: float(v) for n, v in zip(names, serving.tpot_quantiles_s, strict=True)},
        },
        "max_request_rate": float(serving.max_request_rate),
        "continuous": {
            "request_rate": float(serving.request_rate),
            "sequences_in_engine": float(serving.slots),
            "max_sequences": float(serving.max_slots),
            "sequences_every_slot_busy": float(serving.busy_slots),
            "chunks_per_prompt": float(serving.chunks),
            "mixed_step_share": float(serving.prefill_share),
            "utilization": float(serving.utilization),
            "wait_s": float(serving.wait_s),
            "mixed_step_s": float(serving.mixed_step_s),
            "decode_step_s": float(serving.decode_step_s),
        },
    }


def finite_json(value: Any) -> Any:
    """NaN/inf -> None, tuples -> lists, through dicts and lists, so the JSON is standard (unknown prices stay
    explicitly unknown)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def _with_lengths(cand: Candidates, path: str, context: int) -> Candidates:
    """``cand`` with the lengths of the requests in the histogram at ``path`` (``physics.lengths``), whose
    longest must fit in the model's ``context``."""
    (prompts, outputs), counts = read_histogram(Path(path), ["prompt_tokens", "output_tokens"], "lengths")
    longest = float(np.max(prompts + outputs))
    if longest > context:
        raise InputError(
            f"a request of {longest:,.0f} tokens exceeds the model's context of {context:,}", field="lengths"
        )
    served = np.asarray(cand.continuous) | np.asarray(cand.disaggregated)
    prompt_lengths, output_lengths, covariance = paired(prompts, outputs, counts)
    return replace(cand, **candidate_lengths(prompt_lengths, output_lengths, cand.batch, served, covariance))


def analyze(
    model: str,
    hardware: str,
    *,
    quant: str | None = None,
    weight_bits: float | None = None,
    act_bits: float | None = None,
    kv_bits: float | None = None,
    kv: str | None = None,
    batch: int = 1,
    prompt_len: int = 1024,
    gen_len: int = 256,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    replicas: int = 1,
    kv_block_size: int | None = None,
    prefix_hit_rate: float = 0.0,
    kv_offload: float = 0.0,
    kv_budget: int | None = None,
    expert_imbalance: float = 1.0,
    scheduler: str = "static",
    mode: str = "aggregated",
    prefill_replicas: int = 1,
    prefill_hardware: str | None = None,
    prefill_tp: int | None = None,
    prefill_pp: int | None = None,
    max_num_seqs: int = int(MAX_NUM_SEQS),
    chunk_tokens: int = int(CHUNK_TOKENS),
    request_rate: float | None = None,
    concurrency: int | None = None,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    slo_percentile: int = 90,
    spec_tokens: int = 0,
    spec_acceptance: float = SPEC_ACCEPTANCE,
    draft: str | None = None,
    flash_attention: bool = True,
    lengths: str | None = None,
    ideal: bool = False,
    profile: str | None = None,
    engine: str | None = None,
    costs: CostAssumptions = CostAssumptions(),
) -> Analysis:
    """Analyse one deployment candidate with the reference evaluator: every operator of prefill and of a
    decode step, every generated position; the same numbers as ``dse.evaluate`` (to rounding).

    The inputs are ``dse.scoring.INPUTS``: ``hardware`` is an accelerator id, a system id (a node type with its
    links, needed for tp, pp or ep > 1) or a YAML path; ``tp``, ``pp``, ``ep`` split one replica over
    max(tp, ep) x pp devices; ``replicas`` copies multiply throughput and cost; the KV-cache policy is
    ``kv_block_size`` (None: token by token), ``prefix_hit_rate``, ``kv_offload``, ``kv_budget`` (None: no
    eviction; any budget changes the outputs); ``expert_imbalance`` >= 1. ``scheduler="continuous"`` serves
    with continuous batching (``max_num_seqs``, ``chunk_tokens``) at a load (``request_rate`` or
    ``concurrency``; neither: every slot busy), adding percentiles and ``max_request_rate`` under the SLOs
    (``slo_ttft_s``, ``slo_tpot_s`` at ``slo_percentile``); ``mode="disaggregated"`` splits the replicas
    into ``prefill_replicas`` that prefill, on ``prefill_hardware`` at ``prefill_tp`` and ``prefill_pp`` when
    given, and the others that decode. ``spec_tokens`` > 0 decodes speculatively with
    ``draft`` (``mtp`` or a draft model) at ``spec_acceptance``. ``lengths``: a CSV of observed requests
    (``prompt_tokens``, ``output_tokens`` and an optional ``count`` column) whose lengths replace
    ``prompt_len`` and ``gen_len`` (docs/cost-model.md §19). ``engine``: whose fitted profile scores the
    hardware (``tensorrt-llm``, ``vllm``, ...; the generic profile where none is fitted for it). Bad values
    raise ``InputError``, NaN among them (an input left out is None; ``dse.evaluate`` reads NaN in a column as
    left out).
    """
    arguments = locals()
    if ideal and profile is not None:
        raise InputError("give either --ideal or --profile, not both", field="profile")
    if engine is not None and (ideal or profile is not None):
        raise InputError(
            "--engine chooses among the fitted profiles: give it without --profile or --ideal", field="engine"
        )
    if engine is not None:
        known_engine(engine)
    if mode != "disaggregated" and any(x is not None for x in (prefill_hardware, prefill_tp, prefill_pp)):
        warnings.warn(
            AssumptionWarning(
                "prefill_hardware, prefill_tp and prefill_pp apply to disaggregated serving only (--mode "
                "disaggregated): ignored, every replica prefills and decodes on --hardware at --tp and --pp"
            ),
            stacklevel=2,
        )
    inputs = {"model": model, "hardware": hardware} | {name: arguments[name] for name in INPUT_DEFAULTS}
    check_keywords(inputs)
    columns = {k: [v] for k, v in inputs.items()}
    fields = candidate_fields(columns)
    chosen = "ideal" if ideal else (profile or CALIBRATED)
    targets, hw_codes, pool_codes = pool_targets([hardware], [prefill_hardware])
    target = targets[0]
    prof = target_profiles([target], chosen, engine)[0]
    calibrated, ratios = target_ratios([target], prof)[0]
    prefill = int(prefilling(hw_codes, pool_codes, mode == "disaggregated")[0])
    if prefill != hw_codes[0]:  # TTFT is the prefill pool's: its residuals
        ratios = ratios | {"ttft_s": target_ratios([targets[prefill]], chosen, engine)[0][1]["ttft_s"]}
    codes, numerics = numerics_table(columns)
    spec = load_model(model)
    cand, formats = build_candidates(
        spec, targets, hw_codes, numerics, codes, fields, profile=chosen, costs=costs, engine=engine,
        prefill_codes=pool_codes,
    )  # fmt: skip
    check_speculation(fields["spec_tokens"], [draft])
    cand = with_draft(spec, cand, [draft])
    if lengths is not None:
        cand = _with_lengths(cand, lengths, architecture(spec).max_position_embeddings)
        inputs |= {"prompt_len": int(cand.prompt_len[0]), "gen_len": int(cand.gen_len[0]), "lengths": lengths}
    evaluation = evaluate_reference(architecture(spec), cand.row(0))
    accelerator, system = target
    row = cand.row(0)
    roofs = {
        "peak_flops_per_s": {kind: float(getattr(row, f"{kind}_flops_per_s")) for kind in ROOFS},
        "compute_efficiency": float(row.compute_efficiency),
        "matmul_efficiency": float(row.matmul_efficiency),
        "memory_bandwidth_bytes_per_s": float(row.bandwidth_bytes_per_s),
        "bandwidth_efficiency": float(row.bandwidth_efficiency),
        "datasheet_peak_flops_per_s": dict(accelerator.peak_flops_per_s),
    }
    return Analysis(
        inputs | {"profile": prof.id, "pricing": costs.scenario},
        spec,
        evaluation,
        str(formats[0]),
        accelerator=accelerator.id,
        system=system.id if system is not None else None,
        roofs=roofs,
        comm_overlap=float(row.comm_overlap),
        calibrated=calibrated,
        ratios=ratios,
        unpriced_reason=_unpriced([targets[i] for i in sorted({int(hw_codes[0]), prefill})], costs),
    )


def _unpriced(targets: Sequence[Target], costs: CostAssumptions) -> str | None:
    """What the pricing lacks to price any of the deployment's targets (a disaggregated one may have two: each
    is then named)."""
    reasons = [(target[0].id, unpriced_reason(target_prices(target, costs), costs)) for target in targets]
    missing = [(name, why) for name, why in reasons if why]
    if len(targets) == 1 or not missing:
        return missing[0][1] if missing else None
    return "; ".join(f"{name}: {why}" for name, why in missing)
