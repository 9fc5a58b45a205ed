"""Disaggregated prefill and decode (docs/cost-model.md §18): pools by hand, Little's law, and the property
the design rests on: with identical pools and a free link, splitting never loses TTFT at equal devices."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
from candidate_rows import candidates_of
from hypothesis import given, settings
from hypothesis import strategies as st

import dse
from dse.catalog import load_model
from dse.costmodel import evaluate
from dse.costmodel.physics.continuous import Pools, StepTimes
from dse.scoring import architecture

BASE = {"model": "llama-3.1-8b", "hardware": "dgx-h100", "quant": "bf16", "replicas": 2}


def test_pools_by_hand() -> None:
    # decode steps 10 ms at one sequence, 30 ms at 101: X_d(b) = b / ((G - 1) T_d(b))
    pools = Pools(1.0, 1.0, 0.05, 0.05, 40.0, 0.002, StepTimes(101.0, 0.01, 0.01, 0.03, 0.03))
    assert pools.decode_rate(101.0, 201.0) == pytest.approx(101.0 / (200.0 * 0.03))
    b = pools.decode_slots(5.0, 201.0)  # the b whose rate is 5/s: 5 = b / (200 (0.01 + (b - 1) 0.0002))
    assert pools.decode_rate(b, 201.0) == pytest.approx(5.0)
    assert pools.capacity(201.0) == pytest.approx(min(40.0, 101.0 / 6.0))
    load = pools.load(5.0, 201.0)
    # M/D/1 at rho = 5 / 40, service 1 / 40 s; half a prefill step in progress a rho of the time
    rho = 5.0 / 40.0
    wait = rho * (1.0 / 40.0) / (2.0 * (1.0 - rho)) + rho * 0.05 / 2.0
    assert load.ttft_s == pytest.approx(wait + 0.05 + 0.002)
    assert load.tpot_quantiles_s[0] == load.tpot_quantiles_s[2] == load.tpot_s  # no prompts among decode steps
    # prompts that vary (c² = 0.5): an M/G/1 queue at the prefill instances, the wait x 1.5
    varied = dataclasses.replace(pools, prompt_cv2=0.5).load(5.0, 201.0)
    assert varied.ttft_s == pytest.approx(1.5 * rho * (1.0 / 40.0) / (2.0 * (1.0 - rho)) + rho * 0.05 / 2.0 + 0.052)


def _free_link(rows: list[dict[str, Any]]) -> Any:
    cand = candidates_of(rows, "default")
    infinite = np.full(len(cand), np.inf)
    return dataclasses.replace(
        cand,
        inter_link_bytes_per_s=np.zeros(len(cand)),
        intra_link_bytes_per_s=infinite,
        host_link_bytes_per_s=infinite,
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(64, 6000), st.integers(16, 2000), st.floats(0.001, 0.03))
def test_identical_pools_and_a_free_link_never_lose_ttft_at_equal_devices(P: int, G: int, share: float) -> None:
    """One prefill and one decode replica against two aggregated replicas, at a light load (up to 3 % of the
    pools' capacity): a prompt's steps carry no decode tokens, so its TTFT is never longer. Under heavier
    loads with short outputs the lone prefill replica queues more than two aggregated ones (prefill is
    then most of the work, and aggregated serving has twice the prefill capacity): the model says so, and
    docs/cost-model.md §18 shows it. The turn comes early for prompts far longer than their outputs
    (5,021-token prompts and 85-token answers: 1e-6 longer at 4.7 % of capacity, 0.2 % at 5 %)."""
    arch = architecture(load_model("llama-3.1-8b"))
    row = BASE | {"prompt_len": P, "gen_len": G, "scheduler": "continuous"}
    capacity = float(evaluate(arch, _free_link([row | {"mode": "disaggregated"}])).metrics.max_request_rate[0])
    rate = capacity * share
    both = _free_link([row | {"request_rate": rate}, row | {"mode": "disaggregated", "request_rate": rate}])
    ev = evaluate(arch, both)
    aggregated, disaggregated = ev.metrics.ttft_s
    assert disaggregated <= aggregated * (1 + 1e-9)


def test_littles_law_and_the_link() -> None:
    rows = [BASE | {"mode": "disaggregated", "scheduler": "continuous", "concurrency": 64, "replicas": 3}]
    out = dse.evaluate(pd.DataFrame(rows)).iloc[0]
    assert out["throughput_tokens_per_s"] / 256 * out["e2e_latency_s"] == pytest.approx(64, rel=1e-9)  # 256 out
    # the KV cache crosses DGX H100's InfiniBand (50 GB/s per GPU): slower than no crossing at all
    arch = architecture(load_model("llama-3.1-8b"))
    slow = candidates_of([BASE | {"mode": "disaggregated", "request_rate": 2.0}], "default")
    assert (
        evaluate(arch, slow).metrics.ttft_s[0]
        > evaluate(arch, _free_link([BASE | {"mode": "disaggregated", "request_rate": 2.0}])).metrics.ttft_s[0]
    )


def test_pools_need_a_prefill_and_a_decode_replica() -> None:
    out = dse.evaluate(pd.DataFrame([BASE | {"mode": "disaggregated", "prefill_replicas": 2}])).iloc[0]
    assert not out["feasible"] and "prefill_replicas < replicas" in out["infeasible_reason"]


def test_decode_instances_are_fed_by_the_prefill_pool_not_by_their_own_budget() -> None:
    """A budget too small to feed many sequences with chunks limits an aggregated engine, not a decode instance
    (it runs no chunks)."""
    row = BASE | {"scheduler": "continuous", "chunk_tokens": 512, "prompt_len": 1000, "gen_len": 200, "replicas": 2}
    ev = evaluate(architecture(load_model("llama-3.1-8b")), _free_link([row, row | {"mode": "disaggregated"}]))
    aggregated, disaggregated = ev.serving.slots
    assert aggregated <= 200.0 / 3.0 + 1.0  # continuous.fed_slots: (G - 1) k / P + 1 with 3 chunks of 333
    assert disaggregated > aggregated
