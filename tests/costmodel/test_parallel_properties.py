"""Invariants of multi-device deployments and KV-cache policies, checked on random candidates (hypothesis)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from candidate_rows import candidates
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dse.catalog import load_model
from dse.costmodel import Evaluation, evaluate_reference
from dse.costmodel import evaluate as engine
from dse.costmodel.physics.passes import prefill_pass
from dse.costmodel.physics.schedule import overlapped
from dse.scoring import architecture

deployment = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["llama-3.1-70b", "llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "gemma-3-27b"]),
        "hardware": st.sampled_from(["dgx-h100", "dgx-h200", "hgx-b200", "mi300x-platform", "gb200-nvl72"]),
        "quant": st.sampled_from(["bf16", "fp8", "w4a16"]),
        "batch": st.integers(1, 256),
        "prompt_len": st.integers(1, 16384),
        "gen_len": st.integers(1, 2048),
        "flash_attention": st.booleans(),
        "tp": st.sampled_from([1, 2, 4, 8, 16]),
        "pp": st.sampled_from([1, 2, 3, 4]),
        "ep": st.sampled_from([1, 1, 8, 16, 32]),
        "replicas": st.integers(1, 4),
        "kv_block_size": st.sampled_from([None, 16, 256]),
        "prefix_hit_rate": st.sampled_from([0.0, 0.3, 0.9]),
        "kv_offload": st.sampled_from([0.0, 0.0, 0.5]),
        "kv_budget": st.sampled_from([None, None, 1024, 8192]),
        "expert_imbalance": st.sampled_from([1.0, 1.5]),
    }
)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def evaluate(row: dict[str, Any], **changes: float) -> Evaluation:
    c = candidates(row)
    if changes:
        c = dataclasses.replace(c, **{k: np.asarray([v]) for k, v in changes.items()})
    return engine(architecture(load_model(row["model"])), c)


@FAST
@given(deployment, st.floats(1.01, 8.0))
def test_more_link_bandwidth_is_never_slower(row: dict[str, Any], factor: float) -> None:
    c = candidates(row)
    base = evaluate(row)
    faster = evaluate(
        row,
        intra_link_bytes_per_s=c.intra_link_bytes_per_s[0] * factor,
        inter_link_bytes_per_s=c.inter_link_bytes_per_s[0] * factor,
        host_link_bytes_per_s=c.host_link_bytes_per_s[0] * factor,
    )
    assert faster.prefill.time_s[0] <= base.prefill.time_s[0] * (1 + 1e-12)
    assert faster.tpot_s[0] <= base.tpot_s[0] * (1 + 1e-12)


SKEWED_EXPERTS = {
    "model": "deepseek-v3", "hardware": "dgx-h100", "quant": "bf16", "batch": 1, "prompt_len": 2, "gen_len": 1,
    "flash_attention": False, "tp": 1, "pp": 1, "ep": 16, "replicas": 1, "kv_block_size": None,
    "prefix_hit_rate": 0.0, "kv_offload": 0.0, "kv_budget": None, "expert_imbalance": 1.5,
}  # fmt: skip
"""One new token instead of two under a skewed router: the experts it touches were counted from chance's share
of the skew alone at two tokens and from the whole skew at one, so one token read more (0.163 of them, 0.160)."""


@FAST
@given(deployment, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
@example(SKEWED_EXPERTS, 0.0, 1.0)
@example(SKEWED_EXPERTS | {"model": "mixtral-8x7b", "ep": 8, "expert_imbalance": 1.0}, 0.0, 1.0)  # 1 expert a device
def test_more_prefix_hits_never_add_prefill_work(row: dict[str, Any], low: float, high: float) -> None:
    low, high = sorted((low, high))
    less, more = evaluate(dict(row, prefix_hit_rate=low)), evaluate(dict(row, prefix_hit_rate=high))
    assert more.prefill.flops[0] <= less.prefill.flops[0] * (1 + 1e-12)
    assert more.prefill.memory_bytes[0] <= less.prefill.memory_bytes[0] * (1 + 1e-12)
    assert more.prefill.time_s[0] <= less.prefill.time_s[0] * (1 + 1e-12)
    assert more.memory.kv_cache_bytes[0] == less.memory.kv_cache_bytes[0]
    assert more.tpot_s[0] == less.tpot_s[0]  # decode is untouched


@FAST
@given(deployment)
def test_full_prefix_hit_leaves_one_token_per_sequence(row: dict[str, Any]) -> None:
    """At hit rate 1 the linear layers see one row per sequence: the prefill of a 1-token prompt."""
    hit = evaluate(dict(row, prefix_hit_rate=1.0))
    c = candidates(dict(row, prefix_hit_rate=1.0))
    p = prefill_pass(architecture(load_model(row["model"])), c, hit.layout, c.prompt_len - 1.0)
    assert p.R[0] == hit.layout.group_batch[0]


@FAST
@given(deployment, st.integers(1, 65536), st.integers(1, 65536))
def test_kv_budget_never_increases_memory(row: dict[str, Any], small: int, large: int) -> None:
    small, large = sorted((small, large))
    none = evaluate(dict(row, kv_budget=None))
    tight, loose = evaluate(dict(row, kv_budget=small)), evaluate(dict(row, kv_budget=large))
    for kind in ("kv_cache_bytes", "total_bytes", "host_kv_cache_bytes"):
        assert getattr(tight.memory, kind)[0] <= getattr(loose.memory, kind)[0] * (1 + 1e-12)
        assert getattr(loose.memory, kind)[0] <= getattr(none.memory, kind)[0] * (1 + 1e-12)
    assert tight.tpot_s[0] <= none.tpot_s[0] * (1 + 1e-12)


@FAST
@given(deployment)
def test_decode_step_composes_stage_passes_and_collectives(row: dict[str, Any]) -> None:
    """The one decode step (reference evaluator: operator by operator) is its stage passes composed with the
    collectives and the pipeline exactly as documented."""
    c = candidates(row)
    ev = evaluate_reference(architecture(load_model(row["model"])), c.row(0))
    comm = ev.communication[1]
    outside = ("embedding", "position_embedding", "final_norm", "lm_head")
    lam = ev.layout.layer_share
    layers_s = sum(op.time_s for op in ev.operators[1] if op.name not in outside) / lam
    other_s = sum(op.time_s for op in ev.operators[1] if op.name in outside)
    busiest = overlapped(lam * layers_s + other_s, comm.stage_s, c.comm_overlap[0])
    trip = overlapped(layers_s + other_s, comm.all_stages_s, c.comm_overlap[0]) + comm.pp_send_s
    passes = ev.layout.micro_batches
    np.testing.assert_allclose(ev.decode_step.time_s, np.maximum(trip, passes * busiest), rtol=1e-9)
    np.testing.assert_allclose(
        ev.decode_step.flops, passes * sum(op.count * op.flops for op in ev.operators[1]), rtol=1e-12
    )


@FAST
@given(deployment)
def test_more_tensor_parallelism_never_more_weights_per_device(row: dict[str, Any]) -> None:
    for low, high in ((1, 2), (2, 4), (4, 8)):
        a, b = evaluate(dict(row, tp=low, ep=1)), evaluate(dict(row, tp=high, ep=1))
        assert b.memory.weights_bytes[0] <= a.memory.weights_bytes[0] * (1 + 1e-12)


@FAST
@given(deployment, st.floats(0.0, 1.0))
def test_overlap_never_slower_and_never_below_the_longer_part(row: dict[str, Any], overlap: float) -> None:
    none, some = evaluate(row, comm_overlap=0.0), evaluate(row, comm_overlap=overlap)
    assert some.tpot_s[0] <= none.tpot_s[0] * (1 + 1e-12)
    assert some.prefill.time_s[0] <= none.prefill.time_s[0] * (1 + 1e-12)


@FAST
@given(
    st.sampled_from([(1, 16), (2, 8), (8, 256), (4, 128), (8, 128), (4, 32), (6, 64)]),
    st.sampled_from([1, 2, 4, 8, 16, 32, 64]),
    st.integers(1, 20000),
    st.integers(1, 50),
)
def test_chance_imbalance_is_bounded_and_falls_with_rows(shape: tuple[int, int], ep: int, rows: int, more: int) -> None:
    """Uniform routing's busiest device: at least the mean, at most what routing allows, never busier with more
    rows, and within 5 % of the mean by a million rows."""
    from dse.costmodel.physics import moe

    k, E = shape
    ep = min(ep, E)
    cap = moe.imbalance_cap(ep, k, E)
    few, many = (np.minimum(moe.routing_imbalance(float(r), ep, k, E), cap) for r in (rows, rows + more))
    assert 1.0 <= many <= few <= cap
    assert moe.routing_imbalance(1e6, ep, k, E) < 1.05
    assert (ep == 1) == (moe.routing_imbalance(float(rows), ep, k, E) == 1.0)
