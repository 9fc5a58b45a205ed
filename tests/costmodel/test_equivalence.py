"""The fast engine equals the reference evaluator: every number of every candidate, reasons included.

The reference (``dse.costmodel.physics.reference``) evaluates one candidate at a time, every operator at every
generated position; the engine scores a whole chunk at once with coefficient tables, merged rows, blocked
evaluation, closed-form sums over the positions and per-chunk shortcuts. Random chunks of one model, every
catalog model, every dimension a candidate has (hardware and systems, schemes, KV formats and raw bits,
tp/pp/ep, replicas, paged blocks, prefix hits, offload, eviction budgets, imbalance, lengths around windows
and budgets, fused and unfused kernels mixed in one chunk, the generic, ideal and calibrated profiles: per target,
with per-format linear-layer efficiencies).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from candidate_rows import candidates_of
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dse.catalog import hardware_catalog, load_model, model_catalog, quant_catalog, system_catalog
from dse.costmodel import Evaluation, evaluate, evaluate_reference
from dse.costmodel.candidates import TTFT_POINTS
from dse.costmodel.physics import lengths as lengths_of
from dse.scoring import (
    architecture,
)

MODELS = sorted(model_catalog())
HARDWARE = sorted(hardware_catalog()) + 3 * sorted(system_catalog())  # systems weighted: splits can run
SCHEMES = [s.id for s in quant_catalog().schemes]
KV_FORMATS = [None, None, *(k.id for k in quant_catalog().kv_formats)]
TOLERANCE = 1e-9
ABSOLUTE = 1e-12
"""Below this, a difference is rounding of a sum that cancels to zero (a wait of 1e-16 s against 0)."""


def lengths() -> st.SearchStrategy[int]:
    """Short, long, and around the catalog's windows (1024, 4096) and the budgets below."""
    near = st.sampled_from([127, 128, 129, 1000, 1023, 1024, 1025, 2047, 4000, 4095, 4096, 4097, 5000])
    return st.one_of(st.integers(1, 64), st.integers(1, 20_000), near)


candidate = st.fixed_dictionaries(
    {
        "hardware": st.sampled_from(HARDWARE),
        "quant": st.sampled_from(SCHEMES),
        "kv": st.sampled_from(KV_FORMATS),
        "batch": st.one_of(st.integers(1, 8), st.integers(1, 600)),
        "prompt_len": lengths(),
        "gen_len": st.one_of(st.integers(1, 3), lengths()),
        "flash_attention": st.booleans(),
        "tp": st.sampled_from([1, 1, 2, 3, 4, 8, 16]),
        "pp": st.sampled_from([1, 1, 2, 3, 4, 8]),
        "ep": st.sampled_from([1, 1, 2, 4, 8, 16, 32, 64]),
        "replicas": st.integers(1, 4),
        "kv_block_size": st.sampled_from([None, None, 1, 16, 256]),
        "prefix_hit_rate": st.sampled_from([0.0, 0.0, 0.3, 0.9, 1.0]),
        "kv_offload": st.sampled_from([0.0, 0.0, 0.25, 1.0]),
        "kv_budget": st.sampled_from([None, None, 64, 1000, 4096]),
        "expert_imbalance": st.sampled_from([1.0, 1.0, 1.3, 4.0]),
        "scheduler": st.sampled_from(["static", "static", "continuous"]),
        "max_num_seqs": st.sampled_from([1, 8, 256]),
        "chunk_tokens": st.sampled_from([64, 512, 8192]),
        "slo_ttft_s": st.sampled_from([None, 0.5]),
        "slo_tpot_s": st.sampled_from([None, 0.05]),
        "slo_percentile": st.sampled_from([50, 90, 99]),
    }
)
speculation = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"spec_tokens": st.integers(1, 6), "spec_acceptance": st.sampled_from([0.0, 0.6, 1.0]), "draft": st.just("mtp")}
    ),
)
pools = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {
            "mode": st.just("disaggregated"),
            "prefill_replicas": st.integers(1, 3),
            "prefill_hardware": st.sampled_from([None, None, *HARDWARE]),  # the prefill pool's own
            "prefill_tp": st.sampled_from([None, None, 1, 2, 8]),
            "prefill_pp": st.sampled_from([None, None, 1, 2]),
        }
    ),
)
load = st.one_of(
    st.fixed_dictionaries({"request_rate": st.sampled_from([0.5, 5.0, 200.0])}),
    st.fixed_dictionaries({"concurrency": st.sampled_from([1, 7, 64])}),
    st.just({}),
)
spread = st.one_of(  # lengths that vary (physics.lengths): the row's lengths become their means
    st.just({}),
    st.fixed_dictionaries({"prompt_sigma": st.sampled_from([0.3, 1.0]), "output_sigma": st.sampled_from([0.0, 0.8])}),
)
raw_bits = st.fixed_dictionaries(
    {"weight_bits": st.sampled_from([3.0, 4.0, 8.0, 16.0]), "act_bits": st.sampled_from([4.0, 8.0, 16.0, 32.0])}
)


@st.composite
def chunks(draw: st.DrawFn) -> tuple[str, str, list[dict[str, Any]]]:
    """One model, one profile, 1-24 candidates (some with raw bits instead of a scheme)."""
    rows = draw(st.lists(candidate, min_size=1, max_size=24))
    for row in rows:
        if draw(st.integers(0, 9)) == 0:
            row |= draw(raw_bits) | {"quant": None, "kv": None}
        row |= draw(load) | draw(speculation) | draw(pools) | draw(spread)
    return draw(st.sampled_from(MODELS)), draw(st.sampled_from(["default", "ideal", "calibrated"])), rows


def _build(model: str, profile: str, rows: list[dict[str, Any]]) -> Any:
    """The candidates; a row with sigmas has lognormal lengths around its own (``candidate_lengths``)."""
    spreads = [(row.pop("prompt_sigma", None), row.pop("output_sigma", None)) for row in rows]
    cand = candidates_of([row | {"model": model} for row in rows], profile)
    columns = {f.name: getattr(cand, f.name).copy() for f in dataclasses.fields(cand)}
    columns["prompt_quantiles"] = np.ones((len(rows), TTFT_POINTS))
    for i, ((ps, gs), row) in enumerate(zip(spreads, rows, strict=True)):
        if ps is None:
            continue
        served = row.get("scheduler") == "continuous" or "mode" in row
        prompts = lengths_of.lognormal(row["prompt_len"], ps, 50_000)
        outputs = lengths_of.lognormal(row["gen_len"], gs, 50_000)
        for name, value in lengths_of.candidate_lengths(prompts, outputs, [row["batch"]], [served]).items():
            columns[name][i] = value[0]
    return dataclasses.replace(cand, **columns)


def _fields(ev: Evaluation) -> dict[str, Any]:
    """Every number of an evaluation, by name."""
    out = {"tpot_s": ev.tpot_s, "host_kv_write_bytes": ev.host_kv_write_bytes, "host_kv_write_s": ev.host_kv_write_s}
    parts = {"prefill": ev.prefill, "decode_step": ev.decode_step, "memory": ev.memory, "layout": ev.layout}
    parts |= {"metrics": ev.metrics, "comm_prefill": ev.communication[0], "comm_decode": ev.communication[1]}
    for name, part in parts.items():
        out |= {f"{name}.{f.name}": getattr(part, f.name) for f in dataclasses.fields(part)}
    if ev.serving is not None:  # continuous batching
        for f in dataclasses.fields(ev.serving):
            value = getattr(ev.serving, f.name)
            values = value if isinstance(value, tuple) else (value,)
            out |= {f"serving.{f.name}.{i}": v for i, v in enumerate(values)}
    return out


def assert_same(engine: float, reference: float, name: str) -> None:
    """Equal to ``TOLERANCE`` (relative) or ``ABSOLUTE``; non-finite numbers (an unknown price, an offload with no
    host link) equal exactly."""
    if np.isfinite(engine) and np.isfinite(reference):
        scale = max(abs(engine), abs(reference))
        assert abs(engine - reference) <= max(TOLERANCE * scale, ABSOLUTE), (name, engine, reference)
    else:
        assert engine == reference or (np.isnan(engine) and np.isnan(reference)), (name, engine, reference)


_TINY = {
    "hardware": "a10", "kv": None, "batch": 1, "prompt_len": 1, "gen_len": 1, "flash_attention": False, "tp": 1,
    "pp": 1, "replicas": 1, "kv_block_size": None, "prefix_hit_rate": 0.0, "kv_offload": 0.0, "kv_budget": None,
    "expert_imbalance": 1.0, "scheduler": "static", "max_num_seqs": 1, "chunk_tokens": 64, "slo_ttft_s": None,
    "slo_tpot_s": None, "slo_percentile": 50, "request_rate": 0.5,
}  # fmt: skip
_RAW = {"quant": None, "weight_bits": 3.0, "act_bits": 4.0}
"""A chunk with ep 64 over gpt-oss-20b's 32 experts on one device (a split that cannot run) beside rows served
continuously: half an expert per device made the experts touched NaN, and with them the KV a pass writes."""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(chunks())
@example(
    (
        "gpt-oss-20b",
        "default",
        [
            _TINY | _RAW | {"ep": 1, "spec_tokens": 1, "spec_acceptance": 0.0, "draft": "mtp"},
            _TINY | {"quant": "bf16", "ep": 1},
            _TINY | _RAW | {"ep": 64},
        ],
    )
)
def test_engine_equals_reference(chunk: tuple[str, str, list[dict[str, Any]]]) -> None:
    model, profile, rows = chunk
    arch = architecture(load_model(model))
    cand = _build(model, profile, rows)
    engine = _fields(evaluate(arch, cand))
    for i in range(len(rows)):
        reference = _fields(evaluate_reference(arch, cand.row(i)))
        assert int(engine["metrics.reason"][i]) == int(reference["metrics.reason"]), rows[i]
        for name, value in reference.items():
            assert_same(float(engine[name][i]), float(value), f"{model} {rows[i]} {name}")
        static = rows[i].get("scheduler", "static") == "static" and "mode" not in rows[i]
        assert static or set(reference) == set(engine), "continuous figures missing from the engine's evaluation"


def test_every_model_has_been_compared() -> None:
    """A deterministic sweep besides the random one: every catalog model, a chunk mixing fused and unfused
    kernels, splits, a window-crossing generation, an eviction budget, host offload, and a checkpoint's own
    scheme (gpt-oss's MXFP4 on a device with FP4 peaks: attention projections at 16-bit)."""
    rows = [
        {"hardware": "dgx-h100", "quant": "fp8", "batch": 16, "prompt_len": 4000, "gen_len": 300, "tp": 2},
        {
            "hardware": "dgx-h200",
            "quant": "bf16",
            "batch": 3,
            "prompt_len": 900,
            "gen_len": 200,
            "pp": 2,
            "flash_attention": False,
            "kv_budget": 1000,
        },
        {
            "hardware": "gb200-nvl72",
            "quant": "nvfp4",
            "batch": 64,
            "prompt_len": 128,
            "gen_len": 1000,
            "tp": 4,
            "ep": 8,
            "prefix_hit_rate": 0.5,
            "kv_block_size": 16,
        },
        {"hardware": "dgx-h100", "quant": "bf16", "batch": 8, "prompt_len": 2000, "gen_len": 50, "kv_offload": 0.25},
        {"hardware": "h100-sxm", "quant": "w4a16", "batch": 1, "prompt_len": 1, "gen_len": 1},
        {
            "hardware": "b200",
            "quant": "mxfp4",
            "batch": 32,
            "prompt_len": 3000,
            "gen_len": 20,
        },  # gpt-oss: 16-bit attention
    ]
    for model in MODELS:
        arch = architecture(load_model(model))
        cand = _build(model, "default", [dict(r) for r in rows])
        engine = _fields(evaluate(arch, cand))
        for i in range(len(rows)):
            reference = _fields(evaluate_reference(arch, cand.row(i)))
            assert int(engine["metrics.reason"][i]) == int(reference["metrics.reason"])
            for name, value in reference.items():
                assert_same(float(engine[name][i]), float(value), f"{model} {i} {name}")
