"""Disaggregated prefill and decode (docs/cost-model.md §18): pools by hand, Little's law, and the property
the design rests on: with identical pools and a free link, splitting never loses TTFT at equal devices."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
from candidate_rows import candidates_of
from hypothesis import example, given, settings
from hypothesis import strategies as st

import dse
from dse.catalog import load_model
from dse.costmodel import evaluate
from dse.costmodel.physics.continuous import Pools, StepTimes
from dse.costmodel.physics.queueing import closed_wait_s
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


def test_a_closed_loop_waits_at_the_prefill_pool_by_hand() -> None:
    """n requests in a closed loop queue for the prefill pool (one server taking 1 / (x μ_p) a prompt, the
    rest of the cycle elsewhere: ``closed_wait_s``), at least what the smaller pool's rate imposes; the rate
    is n over the cycle. Every slot busy (n = 0) waits for nothing."""
    pools = Pools(1.0, 1.0, 0.05, 0.05, 40.0, 0.002, StepTimes(101.0, 0.01, 0.01, 0.03, 0.03))
    alone = pools.busy(1.0, 201.0)
    assert alone.wait_s == 0.0
    load = pools.busy(16.0, 201.0)
    latency = 0.052 + 200.0 * load.tpot_s
    S = 1.0 / 40.0
    assert load.wait_s == pytest.approx(closed_wait_s(16.0, S, latency - S), rel=1e-12)
    assert 0.0 < load.wait_s < 0.05  # 16 requests, each prefilling for 25 ms of its ~2.3 s cycle
    assert load.rate * (load.wait_s + latency) == pytest.approx(16.0, rel=1e-12)
    assert pools.busy(0.0, 201.0).wait_s == 0.0
    # far beyond the decode pool's slots the wait is Little's law's, at the decode pool's rate
    crowd = pools.busy(1000.0, 201.0)
    assert crowd.rate == pytest.approx(pools.decode_rate(101.0, 201.0), rel=1e-9)


def test_max_rate_by_hand_for_one_deployment_and_each_of_its_slos() -> None:
    """The pools' max rate under a TPOT SLO alone is where the decode instances' T_d reaches it (T_d linear in
    b: b = 1 + (SLO - 10 ms) / 0.2 ms); without SLOs the capacity; one deployment's pools under an array of
    SLOs give one rate per SLO, the same as each alone."""
    pools = Pools(1.0, 1.0, 0.05, 0.05, 40.0, 0.002, StepTimes(101.0, 0.01, 0.01, 0.03, 0.03))
    slots = 1.0 + (0.02 - 0.01) / 0.0002  # 51 sequences at a 20 ms TPOT
    assert pools.max_rate(201.0, np.inf, 0.02, 0.9) == pytest.approx(pools.decode_rate(slots, 201.0), rel=1e-6)
    assert pools.max_rate(201.0, np.inf, np.inf, 0.9) == pools.capacity(201.0)
    ttft, tpot = np.array([1.0, np.inf, np.inf]), np.array([np.inf, np.inf, 0.02])
    each = [pools.max_rate(201.0, a, b, 0.9) for a, b in zip(ttft, tpot, strict=True)]
    assert pools.max_rate(201.0, ttft, tpot, 0.9).tolist() == each


def _free_link(rows: list[dict[str, Any]]) -> Any:
    """The rows with a link of no cost between the pools: infinite bandwidth and no latency."""
    cand = candidates_of(rows, "default")
    infinite = np.full(len(cand), np.inf)
    return dataclasses.replace(
        cand,
        inter_link_bytes_per_s=np.zeros(len(cand)),
        intra_link_bytes_per_s=infinite,
        host_link_bytes_per_s=infinite,
        intra_link_latency_s=np.zeros(len(cand)),
        inter_link_latency_s=np.zeros(len(cand)),
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(64, 6000), st.integers(16, 2000), st.floats(0.001, 0.03))
@example(P=801, G=16, share=0.015625)
@example(P=5235, G=45, share=0.026)
def test_identical_pools_and_a_free_link_never_lose_ttft_to_an_engine_that_also_decodes(
    P: int, G: int, share: float
) -> None:
    """One prefill and one decode replica against one aggregated replica taking the same prompts, at a light
    load (up to 3 % of the pools' capacity): a prompt's steps carry no decode tokens, and the prefill replica
    runs no decode steps a prompt could arrive during, so its TTFT is never longer.

    Against two aggregated replicas (equal devices) this does not hold even at light loads where prompts are
    most of the work (5,235-token prompts, 45-token answers: 1.2 % longer at 2.6 % of capacity): a prompt
    finds the one prefill replica mid-step about twice as often as one of two aggregated replicas, each
    taking half the prompts. Only an aggregated engine charged half a step even when idle lost to it there."""
    arch = architecture(load_model("llama-3.1-8b"))
    row = BASE | {"prompt_len": P, "gen_len": G, "scheduler": "continuous"}
    capacity = float(evaluate(arch, _free_link([row | {"mode": "disaggregated"}])).metrics.max_request_rate[0])
    rate = capacity * share
    both = _free_link(
        [row | {"request_rate": rate, "replicas": 1}, row | {"mode": "disaggregated", "request_rate": rate}]
    )
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


def test_a_pipelined_prefill_pool_runs_a_chunk_in_every_stage_at_once() -> None:
    """A prefill instance of pp stages keeps pp micro-batches in flight, each its own budget of prompt tokens
    (virtual engines, as vLLM schedules a pipeline): Llama-3.1-70B FP8 at tp 4, 4,000-token prompts and
    16-token answers, one prefill replica beside seven decode ones (prefill binds): two stages complete
    nearly twice the prompts of one (a cycle is at least two passes of half the layers, each end charged to
    the busiest stage), not the one a pass through every stage would."""
    row = BASE | {"model": "llama-3.1-70b", "quant": "fp8", "tp": 4, "replicas": 8, "mode": "disaggregated"}
    row |= {"prefill_replicas": 1, "prompt_len": 4000, "gen_len": 16, "scheduler": "continuous"}
    one, two = dse.evaluate(pd.DataFrame([row | {"pp": 1}, row | {"pp": 2}]))["max_request_rate"]
    assert 1.8 * one < two <= 2.0 * one


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


# --- prefill pools of their own hardware and tp -----------------------------------------------------------------

POOL = {
    "model": "llama-3.1-70b",
    "hardware": "dgx-h200",
    "quant": "fp8",
    "tp": 4,
    "replicas": 4,
    "mode": "disaggregated",
    "prefill_replicas": 1,
    "prefill_hardware": "dgx-h100",
    "prefill_tp": 8,
    "prompt_len": 2000,
    "gen_len": 300,
}


def _metrics(cand: Any) -> dict[str, np.ndarray]:
    arch = architecture(load_model("llama-3.1-70b"))
    m = evaluate(arch, cand).metrics
    return {f.name: np.asarray(getattr(m, f.name)) for f in dataclasses.fields(m)}


def test_a_pool_holding_the_candidates_own_values_changes_nothing() -> None:
    """The prefill pool's path (its own static evaluation, the transfer at the slower side, the fleet's price)
    with the candidate's own values gives every metric bit for bit as without a pool."""
    from dse.costmodel import POOL_FIELDS

    rows = [BASE | {"mode": "disaggregated", "request_rate": r, "prompt_len": 3000} for r in (0.5, 5.0, 40.0)]
    rows.append(BASE | {"mode": "disaggregated", "concurrency": 16})
    plain = candidates_of(rows, "default")
    assert plain.prefill_pool.shape == (4, 0)
    own = np.stack([np.asarray(getattr(plain, f), dtype=np.float64) for f in POOL_FIELDS], axis=-1)
    pooled = dataclasses.replace(plain, prefill_pool=own)
    for name, values in _metrics(plain).items():
        np.testing.assert_array_equal(_metrics(pooled)[name], values, err_msg=name)


def test_the_fleet_by_hand() -> None:
    """1 prefill replica of 8 H100s (tp 8) and 3 decode replicas of 4 H200s (tp 4): 20 devices, paid each at its
    own rent; the decode pool's TPOT does not depend on what prefills (three requests in flight, at most one
    per decode replica: each decodes alone, whichever pool prefilled it and however long that took)."""
    cand = candidates_of([POOL | {"concurrency": 3}], "default")
    h100 = candidates_of([POOL | {"hardware": "dgx-h100", "mode": "aggregated"}], "default").usd_per_device_hour[0]
    h200 = cand.usd_per_device_hour[0]
    assert h100 < h200
    m = _metrics(cand)
    assert m["devices"][0] == 1 * 8 + 3 * 4
    assert m["usd_per_hour"][0] == pytest.approx(8 * h100 + 12 * h200, rel=1e-12)
    same = _metrics(candidates_of([POOL | {"concurrency": 3, "prefill_hardware": None, "prefill_tp": None}], "default"))
    assert same["devices"][0] == 16 and same["usd_per_hour"][0] == pytest.approx(16 * h200, rel=1e-12)
    assert m["tpot_s"][0] == pytest.approx(same["tpot_s"][0], rel=1e-9)


def test_the_kv_transfer_runs_at_the_slower_side() -> None:
    """One request in flight: TTFT = its prefill + the KV transfer. Llama-3.1-70B holds 2 x 8 x 128 x 80 = 163,840
    KV elements a token (fp16 with fp8 weights: 327,680 bytes); of a 2,000-token prompt an H100 at tp 8 sends
    1/8 (81.92 MB) and an H200 at tp 4 receives 1/4 (163.84 MB). Over 50 GB/s links on both sides the
    receiving side sets the time: 3.2768 ms more than over free links."""
    from dse.costmodel import POOL_FIELDS

    cand = candidates_of([POOL | {"concurrency": 1}], "default")
    assert cand.kv_bits[0] == 16

    def links(bandwidth: float) -> Any:
        pool = cand.prefill_pool.copy()
        pool[:, POOL_FIELDS.index("inter_link_bytes_per_s")] = bandwidth
        pool[:, POOL_FIELDS.index("inter_link_latency_s")] = 0.0
        one = np.full(1, bandwidth)
        return dataclasses.replace(
            cand, prefill_pool=pool, inter_link_bytes_per_s=one, inter_link_latency_s=np.zeros(1)
        )

    free, slow = _metrics(links(np.inf))["ttft_s"][0], _metrics(links(50e9))["ttft_s"][0]
    assert slow - free == pytest.approx(2000 * 327_680 / 4 / 50e9, rel=1e-9)

    # no network on either side: what leaves each machine goes over its host link (64 GB/s here), not its
    # NVLink (the pools are machines of their own); the decode side's 163.84 MB is still the slower
    apart = links(0.0)
    pool = apart.prefill_pool.copy()
    pool[:, POOL_FIELDS.index("host_link_bytes_per_s")] = 64e9
    apart = dataclasses.replace(apart, prefill_pool=pool, host_link_bytes_per_s=np.full(1, 64e9))
    latency = apart.intra_link_latency_s[0]  # the side's own latency figure (no network: its node's)
    assert _metrics(apart)["ttft_s"][0] - free == pytest.approx(latency + 2000 * 327_680 / 4 / 64e9, rel=1e-9)


def test_the_fleet_counts_whole_devices() -> None:
    """4 prefill replicas at tp 2 and 7 decode replicas at tp 1: 15 devices, not 11 x 15 / 11."""
    row = POOL | {"tp": 1, "replicas": 11, "prefill_replicas": 4, "prefill_hardware": None, "prefill_tp": 2}
    assert _metrics(candidates_of([row], "default"))["devices"][0] == 15
    analysis = dse.analyze(**{k: v for k, v in row.items() if k != "model"}, model="llama-3.1-70b").to_dict()
    assert analysis["deployment"]["devices"] == 15
    assert analysis["deployment"]["pools"]["prefill"]["devices_per_replica"] == 2
    # its prefill section is the prefill pool's: at tp 2 a device does half the FLOPs it would at tp 1
    plain = dse.analyze(**{k: v for k, v in row.items() if k not in ("model", "prefill_tp")}, model="llama-3.1-70b")
    assert analysis["prefill"]["flops"] == pytest.approx(plain.to_dict()["prefill"]["flops"] / 2, rel=0.02)


def test_a_pipelined_prefill_pool_completes_its_stages_prompts_at_once() -> None:
    """A prefill pool of pp stages keeps pp micro-batches of prompts in flight (virtual engines, docs/cost-model.md
    §16): Llama-3.1-70B FP8 on DGX H100s, 4,000-token prompts at tp 4, one prefill replica beside one decode
    replica, the prefill pool the bound. At prefill pp 2 the deployment sustains twice the requests/s (within
    the stage boundary's send) on 4 more devices, each paid; the decode pool and its TPOT are untouched; and
    prefill_pp equal to pp is the same deployment as none given."""
    row = {
        "model": "llama-3.1-70b", "hardware": "dgx-h100", "quant": "fp8", "tp": 4, "replicas": 2,
        "mode": "disaggregated", "prefill_replicas": 1, "prompt_len": 4000, "gen_len": 300, "request_rate": 1.0,
    }  # fmt: skip
    one, two, same = (row | {"prefill_pp": pp} for pp in (None, 2, 1))
    m = _metrics(candidates_of([one, two, same], "default"))
    assert m["max_request_rate"][1] / m["max_request_rate"][0] == pytest.approx(2.0, rel=0.01)
    assert (m["devices"][0], m["devices"][1]) == (8, 12)
    assert m["usd_per_hour"][1] == pytest.approx(m["usd_per_hour"][0] * 12 / 8, rel=1e-12)
    assert m["tpot_s"][1] == pytest.approx(m["tpot_s"][0], rel=1e-9)
    for name, values in m.items():
        np.testing.assert_array_equal(values[2], values[0], err_msg=name)
    pools = dse.analyze(**{k: v for k, v in two.items() if k != "model"}, model="llama-3.1-70b").to_dict()
    pools = pools["deployment"]["pools"]
    assert pools["prefill"]["pp"] == 2 and pools["prefill"]["devices_per_replica"] == 8
    assert pools["decode"]["pp"] == 1 and pools["decode"]["devices_per_replica"] == 4


def test_a_rows_figures_do_not_depend_on_the_rows_scored_beside_it() -> None:
    """On a system without an inter-node link (an L40S server), a request's KV cache crosses the node's own link
    while both pools share the machine, and the host link only where the prefill pool is of its own: a row
    without a pool of its own scores the same alone and beside one with (prefill pp 2), which once sent
    every row of such a batch over the host link."""
    row = {
        "model": "llama-3.1-8b", "hardware": "l40s-server", "quant": "fp8", "tp": 2, "replicas": 3,
        "mode": "disaggregated", "prefill_replicas": 1, "prompt_len": 4000, "gen_len": 300, "request_rate": 1.0,
    }  # fmt: skip
    alone = _metrics(candidates_of([row], "default"))
    beside = _metrics(candidates_of([row, row | {"prefill_pp": 2}], "default"))
    for name, values in alone.items():
        np.testing.assert_array_equal(beside[name][:1], values, err_msg=name)
    assert beside["ttft_s"][1] != beside["ttft_s"][0]


def test_faster_prefill_hardware_shortens_ttft_not_tpot() -> None:
    rows = [POOL | {"request_rate": 2.0, "prefill_hardware": h} for h in ("dgx-a100", "dgx-h100", "hgx-b200")]
    m = _metrics(candidates_of(rows, "default"))
    assert m["ttft_s"][0] > m["ttft_s"][1] > m["ttft_s"][2]
    np.testing.assert_allclose(m["tpot_s"], m["tpot_s"][0], rtol=1e-9)


def test_a_prefill_pool_that_cannot_run_makes_the_candidate_infeasible() -> None:
    """A bare H100 cannot hold a tp-8 replica: the candidate is infeasible with the prefill pool's own code,
    whose text says which pool."""
    from dse.costmodel import REASON_TEXT, Reason

    m = _metrics(candidates_of([POOL | {"prefill_hardware": "h100-sxm", "request_rate": 2.0}], "default"))
    assert not m["feasible"][0]
    assert Reason(int(m["reason"][0])) == Reason.PREFILL_EXCEEDS_SYSTEM
    assert REASON_TEXT[Reason.PREFILL_EXCEEDS_SYSTEM] == f"prefill pool: {REASON_TEXT[Reason.EXCEEDS_SYSTEM]}"


def test_an_aggregated_row_ignores_a_prefill_pool_even_an_unpriced_one() -> None:
    """A prefill pool on hardware without a price (a bare H20: no offer in the price catalog) costs an
    aggregated row nothing, its price and devices are its own; a disaggregated row's fleet price is then
    unknown, not a guess."""
    rows = [POOL | {"mode": "aggregated", "request_rate": 2.0}, POOL | {"request_rate": 2.0}]
    pooled = candidates_of([r | {"prefill_hardware": "h20", "prefill_tp": 1} for r in rows], "default")
    plain = candidates_of([r | {"prefill_hardware": None, "prefill_tp": None} for r in rows], "default")
    a, b = _metrics(pooled), _metrics(plain)
    assert a["usd_per_hour"][0] == b["usd_per_hour"][0] and a["devices"][0] == b["devices"][0] == 16
    assert np.isnan(a["usd_per_hour"][1]) and a["devices"][1] == 1 + 3 * 4


def test_a_prefill_pool_holds_a_steps_activations_not_a_whole_prompts() -> None:
    """Llama-3.1-8B fp8 prefilled on an RTX 4090 (24 GiB) for H100 decode: an 80k-token prompt fits chunked
    (8 GB of weights, 10.5 GB of its KV cache, one 8,192-token step's activations) though its whole prompt's
    activations do not fit one static batch; at 100k tokens the KV cache alone no longer fits."""
    from dse.costmodel import Reason

    base = {"model": "llama-3.1-8b", "quant": "fp8", "gen_len": 200, "concurrency": 1}
    pool = base | {"hardware": "dgx-h100", "replicas": 2, "mode": "disaggregated", "prefill_hardware": "rtx-4090"}
    alone = base | {"hardware": "rtx-4090", "concurrency": None}
    rows = [pool | {"prompt_len": 80_000}, pool | {"prompt_len": 100_000}, alone | {"prompt_len": 80_000}]
    arch = architecture(load_model("llama-3.1-8b"))
    reasons = [int(r) for r in evaluate(arch, candidates_of(rows, "default")).metrics.reason]
    assert reasons == [Reason.OK, Reason.PREFILL_MEMORY_EXCEEDED, Reason.MEMORY_EXCEEDED]


def test_ttft_error_bars_come_from_the_hardware_that_prefills() -> None:
    """A disaggregated row's TTFT interval takes the prefill hardware's residuals, its TPOT's the decode
    hardware's (each as an aggregated row on that hardware has them)."""
    common = {"model": "llama-3.1-70b", "quant": "fp8", "tp": 4, "scheduler": "continuous", "request_rate": 1.0}
    rows = pd.DataFrame(
        [
            common | {"hardware": "dgx-h200", "replicas": 2, "mode": "disaggregated", "prefill_hardware": "dgx-a100"},
            common | {"hardware": "dgx-a100"},
            common | {"hardware": "dgx-h200"},
        ]
    )
    out = dse.evaluate(rows, intervals=True)
    ratio = lambda q, i: out[f"{q}_p90"][i] / out[q][i]  # noqa: E731
    assert ratio("ttft_s", 1) != ratio("ttft_s", 2)  # the two families' residuals differ
    assert ratio("ttft_s", 0) == pytest.approx(ratio("ttft_s", 1), rel=1e-12)
    assert ratio("tpot_s", 0) == pytest.approx(ratio("tpot_s", 2), rel=1e-12)
    first = {k: v for k, v in rows.iloc[0].items() if not (isinstance(v, float) and np.isnan(v))}
    analysis = dse.analyze(**first).to_dict()
    high = analysis["intervals"]["ttft_s"][1]
    assert high / analysis["ttft_s"] == pytest.approx(ratio("ttft_s", 1), rel=1e-9)


def test_rows_that_do_not_split_get_no_prefill_pool_and_analyze_says_it_ignores_one() -> None:
    """An aggregated row naming a prefill hardware or tp builds no pool (nothing to evaluate twice), and
    ``dse.analyze`` warns that it ignores them."""
    from dse.errors import AssumptionWarning

    row = POOL | {"mode": "aggregated", "request_rate": 1.0}
    assert candidates_of([row], "default").prefill_pool.shape == (1, 0)
    with pytest.warns(AssumptionWarning, match="disaggregated serving only"):
        dse.analyze(**{k: v for k, v in row.items() if k != "model"}, model="llama-3.1-70b")
