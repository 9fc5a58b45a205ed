"""``dse.recommend``: fleet sizing checked by hand, exact price thresholds, robustness, the ranking's invariants."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dse
from dse.catalog import system_catalog
from dse.costmodel.physics import lengths
from dse.errors import InputError
from dse.recommend import OPTION_KEYS, Recommendation
from dse.recommend._fleet import SEQUENCES
from dse.recommend._request import make_request
from dse.scoring import analyze

MONTH_H = 8760 / 12
SMALL = ("h100-sxm", "h200-sxm", "a100-sxm-80gb", "l40s", "mi300x")
"""A few accelerators (their systems come along) so each recommendation takes a fraction of a second."""
BASE = {
    "model": "llama-3.1-8b",
    "prompt_tokens": 1000,
    "output_tokens": 250,
    "rate": 40.0,
    "ttft_s": 1.0,
    "tpot_s": 0.05,
    "hardware": SMALL,
    "samples": 0,
}


def _sheet(tmp_path: Path, entries: dict[str, str], name: str = "prices.yaml") -> str:
    path = tmp_path / name
    path.write_text("prices:\n" + "".join(f"  - id: {key}\n{body}" for key, body in entries.items()))
    return str(path)


def _rent(usd: float) -> str:
    return f"    rent:\n      - {{usd_per_device_hour: {usd!r}, term: on-demand, provider: us, provider_kind: user}}\n"


def _rank(rec: Recommendation, hardware: str) -> int:
    return [o.hardware for o in rec.options].index(hardware)


def _capacity(model: str, target: str, flags: dict[str, object]) -> float:
    """A continuous replica's capacity from ``dse analyze``: its max_request_rate under the SLOs in ``flags``,
    at most 90 % of its every-slot-busy rate (the SLOs dropped)."""
    under_slos = analyze(model, target, **flags).to_dict()["max_request_rate"]
    busy = analyze(model, target, **flags | {"slo_ttft_s": None, "slo_tpot_s": None}).to_dict()
    return float(min(under_slos, 0.9 * busy["max_request_rate"]))


def test_one_hardware_sized_by_hand_from_dse_analyze(tmp_path: Path) -> None:
    sheet = _sheet(
        tmp_path,
        {
            "h100-sxm": _rent(2.0),
            "dgx-h100": "    buy:\n      - {usd: 240000, item: system}\n    power: {system_kw: 10.2}\n",
        },
    )
    one = {"hardware": ("h100-sxm",), "quants": ("bf16",), "kv": ("default",), "scheduler": "static"}
    rec = dse.recommend(**{**BASE, **one}, prices=sheet)
    (o,) = rec.options
    a = analyze("llama-3.1-8b", o.target, quant="bf16", batch=o.batch, prompt_len=1000, gen_len=250, tp=o.tp, pp=o.pp)
    d = a.to_dict()
    assert d["ttft_s"] <= 1.0 and d["tpot_s"] <= 0.05
    capacity = o.batch / (d["ttft_s"] + 249 * d["tpot_s"])  # requests/s of one replica: B per end-to-end latency
    assert o.capacity_rps == pytest.approx(capacity, rel=1e-9)
    per_replica = o.tp * o.pp
    assert o.replicas == math.ceil(40.0 / capacity)
    assert o.devices == o.replicas * per_replica
    assert o.usd_per_month == pytest.approx(o.devices * 2.0 * MONTH_H)
    assert o.tco_usd == pytest.approx(o.usd_per_month * 36)
    tokens_a_month = 40.0 * 250 * 8760 / 12 * 3600
    assert o.usd_per_million_tokens == pytest.approx(o.usd_per_month / tokens_a_month * 1e6)
    assert o.power_kw == pytest.approx(o.devices * 10.2 / 8)
    # buying: whole DGX nodes of 8 (240,000 $ each, 30,000 $ a device); each device bought draws 1.275 kW at
    # 1.3 PUE and 0.08 $/kWh and costs 10 % of its price a year to run; renting: 2 $ a device-hour in service
    bought = math.ceil(o.devices / 8) * 8
    assert o.devices_paid == o.devices  # renting is by the device
    opex = 1.275 * 1.3 * 0.08 + 30000 * 0.10 / 8760
    saving_a_month = (o.devices * 2.0 - bought * opex) * MONTH_H
    assert o.break_even_months == pytest.approx(bought * 30000 / saving_a_month)
    # the fewest devices: one replica fewer would not serve the load
    assert (o.replicas - 1) * capacity < 40.0


def test_continuous_batching_sized_by_hand_from_dse_analyze(tmp_path: Path) -> None:
    """Under continuous batching a replica's capacity is ``dse analyze``'s max_request_rate under the SLOs at
    p90, with its max_num_seqs; at its share of the load it meets them; one replica fewer would not."""
    sheet = _sheet(tmp_path, {"h100-sxm": _rent(2.0)})
    one = {"hardware": ("h100-sxm",), "quants": ("bf16",), "kv": ("default",)}
    (o,) = dse.recommend(**{**BASE, **one}, prices=sheet).options
    assert o.scheduler == "continuous" and o.batch in SEQUENCES
    flags = {"quant": "bf16", "prompt_len": 1000, "gen_len": 250, "tp": o.tp, "pp": o.pp, "scheduler": "continuous"}
    flags |= {"max_num_seqs": o.batch, "slo_ttft_s": 1.0, "slo_tpot_s": 0.05, "slo_percentile": 90}
    under_slos = analyze("llama-3.1-8b", o.target, **flags).to_dict()["max_request_rate"]
    busy = analyze("llama-3.1-8b", o.target, **flags | {"slo_ttft_s": None, "slo_tpot_s": None}).to_dict()
    capacity = min(under_slos, 0.9 * busy["max_request_rate"])  # the SLOs', or 90 % of every slot busy's
    assert o.capacity_rps == pytest.approx(capacity, rel=1e-9)
    assert o.replicas == math.ceil(40.0 / capacity) and (o.replicas - 1) * capacity < 40.0
    assert o.devices == o.replicas * o.tp * o.pp
    assert o.usd_per_month == pytest.approx(o.devices * 2.0 * MONTH_H)
    loaded = analyze("llama-3.1-8b", o.target, **flags, request_rate=40.0 / o.replicas).to_dict()
    p90 = {q: loaded["percentiles"][q]["p90"] for q in ("ttft_s", "tpot_s")}
    assert p90["ttft_s"] <= 1.0 and p90["tpot_s"] <= 0.05
    assert (o.ttft_s, o.tpot_s) == pytest.approx((p90["ttft_s"], p90["tpot_s"]), rel=1e-9)
    assert o.requests_in_engine == pytest.approx(loaded["continuous"]["sequences_in_engine"], rel=1e-9)
    doc = dse.recommend(**{**BASE, **one}, prices=sheet).to_dict()["options"][0]
    assert (doc["batch"], doc["max_num_seqs"], doc["scheduler"]) == (o.batch, o.batch, "continuous")
    assert doc["requests_in_engine"] == pytest.approx(o.requests_in_engine)  # the running batch at the load


def test_continuous_batching_needs_fewer_devices_than_static_batches() -> None:
    """The TTFT SLO caps a static batch (every prompt prefilled before the first token); continuous batching
    with chunked prefill runs many more sequences under the same SLO. Llama-3.1-70B, 2,000 + 300 tokens at 20
    requests/s: 20 devices in static batches of 13, 6 under continuous batching (p90 SLOs)."""
    request = {**BASE, "model": "llama-3.1-70b", "prompt_tokens": 2000, "output_tokens": 300, "rate": 20.0}
    static, continuous = (dse.recommend(**request, scheduler=s).options[0] for s in ("static", "continuous"))
    assert static.binding == "ttft" and static.batch < 32
    per_device = [o.devices / o.replicas for o in (static, continuous)]
    assert continuous.requests_in_engine / per_device[1] > 4 * static.batch / per_device[0]  # sequences a device
    assert continuous.devices_paid * 2 < static.devices_paid


NO_SLOS = {"ttft_s": None, "tpot_s": None}


@pytest.mark.parametrize(
    ("slos", "binding"),
    [
        ({"ttft_s": None, "tpot_s": 0.012}, ("tpot",)),
        (NO_SLOS, ("utilization",)),
        (NO_SLOS | {"max_utilization": 1.0}, ("memory", "max_num_seqs")),
    ],
)
def test_what_caps_a_continuous_replica(slos: dict[str, float | None], binding: tuple[str, ...]) -> None:
    """A tight TPOT SLO caps the rate a replica sustains; without SLOs the utilisation cap does (90 % of its
    rate with every slot busy), and without that cap its slots do (memory or max_num_seqs)."""
    rec = dse.recommend(**{**BASE, **slos, "hardware": ("h100-sxm",), "quants": ("fp8",), "rate": 200.0})
    o = rec.options[0]
    assert o.replicas > 1 and o.binding in binding
    if binding == ("utilization",):
        flags = {"quant": "fp8", "kv": None if o.kv == "default" else o.kv, "prompt_len": 1000, "gen_len": 250}
        flags |= {"tp": o.tp, "pp": o.pp, "scheduler": "continuous", "max_num_seqs": o.batch}
        busy = analyze("llama-3.1-8b", o.target, **flags).to_dict()["max_request_rate"]
        assert o.capacity_rps == pytest.approx(0.9 * busy, rel=1e-9)


def test_a_model_f_times_as_fast_sustains_f_times_the_rate_under_slos_scaled_by_f() -> None:
    """Robustness draws scale the model's speed by f: every time divides by f, so the rate found under the SLOs
    is f times the rate the predicted times sustain under the SLOs times f (0.8: tighter)."""
    from dse.recommend._fleet import score_configurations

    request = make_request(**{**BASE, "hardware": ("h100-sxm",)})
    columns = {
        "model": ["llama-3.1-8b"] * 2,
        "hardware": ["h100-sxm"] * 2,
        "quant": ["fp8"] * 2,
        "kv": [None] * 2,
        "tp": np.ones(2, dtype=int),
        "pp": np.ones(2, dtype=int),
        "ep": np.ones(2, dtype=int),
        "batch": np.full(2, 64),
        "prompt_len": np.full(2, 1000),
        "gen_len": np.full(2, 250),
    }
    slow = score_configurations(columns, np.zeros(2, dtype=int), request, speed=np.asarray([1.0, 0.8]))
    loose = make_request(**{**BASE, "hardware": ("h100-sxm",), "ttft_s": 0.8, "tpot_s": 0.04})
    looser = score_configurations(columns, np.zeros(2, dtype=int), loose)
    assert slow.capacity_rps[1] == pytest.approx(0.8 * looser.capacity_rps[0], rel=1e-12)
    assert slow.capacity_rps[1] < slow.capacity_rps[0]


def test_buy_costs_by_hand(tmp_path: Path) -> None:
    sheet = _sheet(
        tmp_path, {"dgx-h100": "    buy:\n      - {usd: 240000, item: system}\n    power: {system_kw: 10.2}\n"}
    )
    rec = dse.recommend(**{**BASE, "hardware": ("h100-sxm",)}, prices=sheet, pricing="buy", horizon_years=4)
    (o,) = rec.options
    hourly = 30000 / (4 * 8760) + 30000 * 0.10 / 8760 + 1.275 * 1.3 * 0.08
    assert o.devices_paid == math.ceil(o.devices / 8) * 8  # a system's quote buys whole systems
    assert o.usd_per_month == pytest.approx(o.devices_paid * hourly * MONTH_H)
    assert o.tco_usd == pytest.approx(o.usd_per_month * 48)
    assert o.power_kw == pytest.approx(o.devices_paid * 10.2 / 8)


def _first(sheet: str | None = None, **fields: object) -> str:
    return dse.recommend(**{**BASE, **fields}, prices=sheet).options[0].hardware


@pytest.mark.parametrize("pricing", ["rent-on-demand", "buy"])
def test_thresholds_flip_the_ranking_exactly_where_they_say(tmp_path: Path, pricing: str) -> None:
    rec = dse.recommend(**BASE, pricing=pricing)
    winner = rec.options[0].hardware
    checked = 0
    for t in rec.thresholds:
        if t.kind != "price" or t.threshold is None:
            continue
        assert t.price_id is not None
        for factor, flips in ((0.999, t.direction == "below"), (1.001, t.direction == "above")):
            x = t.threshold * factor
            body = _rent(x) if pricing != "buy" else f"    buy:\n      - {{usd: {x!r}, item: {_item(t.price_id)}}}\n"
            sheet = _sheet(tmp_path, {t.price_id: body}, f"{t.price_id}-{factor}.yaml")
            first = _first(sheet, pricing=pricing)
            if t.direction == "below":  # the option becomes the cheapest below it, not above
                assert (first == t.hardware) == flips, (t.sentence, factor, first)
            else:  # the winner stays the cheapest up to it
                assert (first == winner) == (not flips), (t.sentence, factor, first)
        checked += 1
    assert checked >= 2


def _item(price_id: str) -> str:
    """The kind of quote a price entry's figure is: a system's, or a device's."""
    return "system" if price_id in system_catalog() else "device"


def test_break_even_sentence_for_the_winner() -> None:
    rec = dse.recommend(**{**BASE, "rate": 160.0, "hardware": ("h100-sxm", "l40s")})  # a fleet of several devices
    (even,) = [t for t in rec.thresholds if t.kind == "break_even"]
    assert even.hardware == rec.options[0].hardware and even.months is not None
    assert even.months == pytest.approx(rec.options[0].break_even_months)
    assert f"after {even.months:.1f} months" in even.sentence
    unknown = dse.recommend(**{**BASE, "hardware": ("mi300x",)})  # no purchase price in the catalog
    (none,) = [t for t in unknown.thresholds if t.kind == "break_even"]
    assert none.months is None and "lacks its purchase price" in none.sentence


def test_win_rates_sum_to_one_and_the_seed_fixes_the_answer() -> None:
    fields = {**BASE, "samples": 400, "top": 50}
    a, b = dse.recommend(**fields, seed=7), dse.recommend(**fields, seed=7)
    assert sum(o.win_rate or 0.0 for o in a.options) == pytest.approx(1.0)
    assert a.to_dict() == b.to_dict()
    c = dse.recommend(**fields, seed=8)
    assert [o.win_rate for o in c.options] != [o.win_rate for o in a.options]
    short = dse.recommend(**{**fields, "top": 2}, seed=7).to_dict()
    assert sum(o["win_rate"] for o in short["options"]) + short["win_rate_others"] == pytest.approx(1.0)
    beyond = short["win_rates_beyond_shortlist"]  # each option beyond the shortlist that wins, most wins first
    assert [(o["rank"], o["hardware"], o["win_rate"]) for o in beyond] == sorted(
        ((i + 1, o.hardware, o.win_rate) for i, o in enumerate(a.options) if i >= 2 and o.win_rate),
        key=lambda x: -x[2],
    )
    tornado = a.to_dict()["robustness"]["tornado"]
    spans = [abs(t["high"] - t["low"]) for t in tornado]
    assert spans == sorted(spans, reverse=True) and {t["input"] for t in tornado} >= {"price", "load"}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 4), factor=st.floats(0.2, 0.99))
def test_a_lower_price_never_ranks_an_option_worse(tmp_path: Path, pick: int, factor: float) -> None:
    before = dse.recommend(**BASE)
    option = before.options[min(pick, len(before.options) - 1)]
    assert option.chosen is not None and option.chosen.costing.price_now is not None
    sheet = _sheet(tmp_path, {option.chosen.costing.price_id or "": _rent(option.chosen.costing.price_now * factor)})
    after = dse.recommend(**BASE, prices=sheet)
    assert _rank(after, option.hardware) <= _rank(before, option.hardware)
    assert after.options[_rank(after, option.hardware)].usd_per_month < option.usd_per_month  # type: ignore[operator]


def test_unpriced_hardware_is_kept_apart_never_dropped() -> None:
    rec = dse.recommend(**{**BASE, "hardware": ("h100-sxm", "rtx-4080"), "quants": ("bf16", "int8")})
    assert [o.hardware for o in rec.options] == ["h100-sxm"]
    (unpriced,) = rec.unpriced
    assert unpriced.hardware == "rtx-4080" and unpriced.usd_per_month is None and unpriced.devices > 0
    assert rec.to_dict()["unpriced"][0]["hardware"] == "rtx-4080"


def test_no_hardware_meeting_the_slos_is_an_answer_with_reasons() -> None:
    rec = dse.recommend(**{**BASE, "tpot_s": 1e-4, "hardware": ("h100-sxm", "rtx-4080")})
    assert rec.options == [] and rec.unpriced == []
    reasons = {i.hardware: i.reason for i in rec.infeasible}
    assert set(reasons) == {"h100-sxm", "rtx-4080"}
    assert all(r.startswith("tpot: fastest TPOT") for r in reasons.values())
    big = dse.recommend(**{**BASE, "model": "llama-3.1-70b", "hardware": ("rtx-4080",), "quants": ("bf16",)})
    assert big.infeasible[0].reason.startswith("memory:")


def test_an_accelerator_that_cannot_serve_says_how_near_its_nearest_target_came() -> None:
    """H100 alone misses a 50 ms TTFT by 4.6x on Llama-3.1-70B; split over a DGX H100 by 1.15x: the answer
    names the nearer (the DGX's), whichever target comes first."""
    request = {**BASE, "model": "llama-3.1-70b", "prompt_tokens": 2000, "ttft_s": 0.05}
    (group,) = dse.recommend(**request | {"hardware": ("h100-sxm",)}).infeasible  # the device and its systems
    (system,) = dse.recommend(**request | {"hardware": ("dgx-h100",)}).infeasible
    assert group.reason == system.reason
    fastest = float(group.reason.split("request) ")[1].split(" s")[0])
    bare = analyze("llama-3.1-70b", "h100-sxm", quant="fp8", prompt_len=2000, gen_len=250).to_dict()["ttft_s"]
    assert 0.05 < fastest < bare / 3  # one H100 alone is over four times too slow


def test_limits_bind_and_say_so() -> None:
    capped = dse.recommend(
        **{**BASE, "rate": 400.0}, max_devices=dse.recommend(**{**BASE, "rate": 400.0}).options[0].devices - 1
    )
    assert capped.request.max_devices is not None
    assert all(o.devices <= capped.request.max_devices for o in capped.options)
    broke = dse.recommend(**BASE, budget_usd_per_month=1.0)
    assert broke.options == [] and all(
        i.reason.startswith("limits:") for i in broke.infeasible if "memory" not in i.reason
    )


def test_the_document_keeps_its_contract() -> None:
    doc = dse.recommend(**{**BASE, "samples": 100}).to_dict()
    assert doc["schema_version"] == 1
    assert set(doc) >= {"schema_version", "options", "unpriced", "infeasible", "thresholds"}
    contract = {
        "hardware",
        "quant",
        "kv",
        "tp",
        "pp",
        "ep",
        "batch",
        "replicas",
        "devices",
        "usd_per_month",
        "tco_usd",
        "usd_per_million_tokens",
        "power_kw",
        "binding",
        "win_rate",
    }
    assert contract <= set(OPTION_KEYS) and all(contract <= set(o) for o in doc["options"])
    costs = [o["usd_per_month"] for o in doc["options"]]
    assert costs == sorted(costs)
    static = {"memory", "ttft", "tpot", "compute", "bandwidth", "load"}
    assert {o["binding"] for o in doc["options"]} <= static | {"max_num_seqs", "chunk_tokens", "utilization"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rate": -5.0}, "rate"),
        ({"rate": 1e300}, "rate: expected at most 3.43e+09 requests/s"),
        ({"rate": 1e9, "peak_factor": 4.0}, "peak_factor: the fleet is sized for"),
        ({"prompt_tokens": 0}, "prompt_tokens"),
        ({"hardware": ("h100-sxn",)}, "hardware[0]"),
        ({"pricing": "lease"}, "pricing"),
        ({"peak_factor": 0.5}, "peak_factor"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
    ],
)
def test_bad_requests_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        dse.recommend(**{**BASE, **fields})
    assert field in str(info.value)


def test_the_largest_load_accepted_still_has_whole_fleets_and_a_price_per_token() -> None:
    """At MAX_SIZING_RATE the answer keeps its units: whole replicas, a positive, finite $/M tokens equal to
    $/month over the tokens of a month (1e300 requests/s gave 1e298 replicas at $0 per million tokens)."""
    from dse.recommend import MAX_SIZING_RATE

    rec = dse.recommend(**{**BASE, "rate": MAX_SIZING_RATE, "hardware": ("h100-sxm",)})
    option = rec.options[0]
    tokens = MAX_SIZING_RATE * 250 * MONTH_H * 3600
    assert option.replicas > 1 and option.devices % option.replicas == 0
    assert option.usd_per_million_tokens == pytest.approx(option.usd_per_month / tokens * 1e6)
    assert 0 < option.usd_per_million_tokens < math.inf


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"quant": "fp8"}, "quant: unknown keyword (did you mean: quants?)"),
        ({"pool_split": ((1, 2),)}, "pool_split: unknown keyword (did you mean: pool_splits?)"),
        ({"colour": "blue"}, "colour: unknown keyword (expected one of model, prompt_tokens,"),
    ],
)
def test_an_unknown_keyword_names_the_one_meant(fields: dict[str, object], expected: str) -> None:
    with pytest.raises(InputError) as info:
        dse.recommend(**{**BASE, **fields})
    assert str(info.value).startswith(expected)
    request = make_request(**BASE)
    with pytest.raises(InputError, match="did you mean: quants"):
        dse.recommend(request, quant="fp8")


def test_unknown_power_cannot_meet_a_power_limit() -> None:
    fields = {**BASE, "hardware": ("tpu-v5e", "h100-sxm"), "max_power_kw": 1000.0}
    rec = dse.recommend(**fields)
    reasons = {i.hardware: i.reason for i in rec.infeasible}
    if rec.options and any(o.hardware == "tpu-v5e" for o in rec.options):
        assert rec.options[0].power_kw is not None  # tpu-v5e has a power figure after all
    else:
        assert reasons["tpu-v5e"].startswith("limits:")


def test_draws_keep_the_limits() -> None:
    free = dse.recommend(**{**BASE, "samples": 400})
    winner = free.options[0]
    capped = dse.recommend(**{**BASE, "samples": 400}, max_devices=winner.devices_paid)
    same = next(o for o in capped.options if o.hardware == winner.hardware)
    assert same.slo_risk is not None and winner.slo_risk is not None
    assert same.slo_risk > winner.slo_risk  # draws with more load need more devices than the limit allows


def test_reserved_rent_is_never_dearer_than_on_demand() -> None:
    rec = dse.recommend(**{**BASE, "hardware": ("a100-sxm-80gb", "l40s")}, pricing="rent-reserved")
    for o in rec.options:
        assert o.chosen is not None
        on_demand = o.chosen.costing.prices.rent["on-demand"].value
        assert o.usd_per_device_hour is not None and o.usd_per_device_hour <= on_demand


def test_the_operations_share_is_a_parameter() -> None:
    fields = {**BASE, "hardware": ("h100-sxm",), "pricing": "buy"}
    cheap, dear = dse.recommend(**fields, ops_share_per_year=0.0), dse.recommend(**fields, ops_share_per_year=0.2)
    a, b = cheap.options[0], dear.options[0]
    assert a.chosen is not None and a.chosen.costing.prices.capex is not None
    capex = a.chosen.costing.prices.capex.value
    assert b.usd_per_month - a.usd_per_month == pytest.approx(a.devices_paid * capex * 0.2 / 12)  # type: ignore[operator]


def test_model_error_defaults_to_each_options_measured_spread() -> None:
    """Without --model-error an option's speed varies log-normally with the p10-p90 of its profile's held-out
    throughput residuals, centred on 1: the tornado's "model speed" ends are that spread's p10 and p90."""
    from dse.catalog import profile_for
    from dse.recommend._robust import Z90, model_spread, speed_draws
    from dse.scoring import interval_ratios

    rec = dse.recommend(**{**BASE, "hardware": ("h100-sxm", "gaudi3"), "samples": 200})
    options = [o for o in rec.options if o.chosen is not None]
    spread = model_spread(make_request(**{**BASE, "hardware": ("h100-sxm", "gaudi3")}), options)
    for o, sigma in zip(options, spread, strict=True):
        lo, _, hi = interval_ratios(profile_for(o.hardware)[0])["throughput_tokens_per_s"]
        assert sigma == pytest.approx(math.log(hi / lo) / (2 * Z90))
    assert spread[0] != spread[1]  # a fitted family (H100) and the generic profile (Gaudi 3) measured differently
    draws = speed_draws(make_request(**BASE), options, np.random.default_rng(0), 20_000)
    assert np.log(draws).std(axis=1) == pytest.approx(spread, rel=0.03)
    assert np.median(draws, axis=1) == pytest.approx([1.0, 1.0], abs=0.02)
    (speed,) = [t for t in rec.to_dict()["robustness"]["tornado"] if t["input"] == "model speed"]
    assert speed["low_setting"] == f"{math.exp(-Z90 * spread[0]):.2f} x predicted"
    assert rec.to_dict()["robustness"]["model_error_basis"] == "measured"
    banded = dse.recommend(**{**BASE, "hardware": ("h100-sxm",), "samples": 50, "model_error": 0.1}).to_dict()
    assert banded["robustness"]["model_error_basis"] == "band" and banded["robustness"]["bands"]["model_error"] == 0.1


def test_a_recommendation_says_what_each_long_step_is_doing() -> None:
    """``say`` hears each scoring pass (with how many configurations), the sizing and the draws, in order; the
    answer is the same as without it."""
    heard: list[str] = []
    fields = BASE | {"hardware": ("h100-sxm", "l40s"), "samples": 20}
    rec = dse.recommend(**fields, say=heard.append)
    n, targets = rec.candidates, len(rec.to_dict()["request"]["hardware"])  # the accelerators and their systems
    assert heard[:2] == [
        f"scoring {n:,} configurations ({targets} targets): capacity under the SLOs",
        f"scoring {n:,} configurations: latencies at the load",
    ]
    assert heard[2].startswith("scoring ") and heard[2].endswith(" configurations: what binds each")
    assert heard[3:] == ["sizing fleets", "20 robustness draws"]
    assert rec.to_dict()["options"] == dse.recommend(**fields).to_dict()["options"]


# --- lengths that vary: the traffic's observed requests ------------------------------------------------------


def _lengths(tmp_path: Path, rows: list[tuple[int, int]], name: str = "traffic.csv") -> str:
    path = tmp_path / name
    path.write_text("prompt_tokens,output_tokens\n" + "".join(f"{p},{g}\n" for p, g in rows))
    return str(path)


CHAT = [(200, 60), (400, 300), (800, 150), (1000, 250), (1500, 200), (3000, 500), (6000, 90), (600, 1200)]
"""Eight requests: prompts 200-6,000 tokens (mean 1,687.5), outputs 60-1,200 (mean 343.75)."""


@pytest.mark.parametrize("scheduler", ["continuous", "static"])
def test_observed_lengths_sized_by_hand_from_dse_analyze(tmp_path: Path, scheduler: str) -> None:
    """With ``lengths`` a replica's capacity is ``dse analyze --lengths``'s: under continuous batching its
    max_request_rate under the SLOs (capped at 90 % of every slot busy), at its share of the load its p90
    latencies; in static batches (padded to the batch's longest) its batch's delivered tokens per second over
    the mean output."""
    traffic = _lengths(tmp_path, CHAT)
    one = {"hardware": ("h100-sxm",), "quants": ("bf16",), "kv": ("default",), "scheduler": scheduler}
    fields = {k: v for k, v in BASE.items() if k not in ("prompt_tokens", "output_tokens")}
    rec = dse.recommend(**fields | one, lengths=traffic, prices=_sheet(tmp_path, {"h100-sxm": _rent(2.0)}))
    (o,) = rec.options
    flags = {"quant": "bf16", "tp": o.tp, "pp": o.pp, "lengths": traffic, "scheduler": scheduler}
    if scheduler == "continuous":
        flags |= {"max_num_seqs": o.batch, "slo_ttft_s": 1.0, "slo_tpot_s": 0.05, "slo_percentile": 90}
        assert o.capacity_rps == pytest.approx(_capacity("llama-3.1-8b", o.target, flags), rel=1e-9)
        loaded = analyze("llama-3.1-8b", o.target, **flags, request_rate=40.0 / o.replicas).to_dict()
        p90 = (loaded["percentiles"]["ttft_s"]["p90"], loaded["percentiles"]["tpot_s"]["p90"])
        assert (o.ttft_s, o.tpot_s) == pytest.approx(p90, rel=1e-9)
    else:
        d = analyze("llama-3.1-8b", o.target, **flags, batch=o.batch).to_dict()
        assert o.capacity_rps == pytest.approx(d["throughput_tokens_per_s"] / 343.75, rel=2e-3)  # whole tokens
        assert (o.ttft_s, o.tpot_s) == pytest.approx((d["ttft_s"], d["tpot_s"]), rel=1e-9)
    assert o.replicas == math.ceil(40.0 / o.capacity_rps) and (o.replicas - 1) * o.capacity_rps < 40.0
    work = rec.to_dict()["workload"]
    assert work["varies"] and work["requests"] == 8 and work["lengths"] == traffic
    assert (work["prompt_tokens_mean"], work["output_tokens_mean"]) == (1687.5, 343.75)
    prompts = work["prompt_tokens"]
    assert (prompts["p50"], prompts["p90"], prompts["max"]) == (800, 6000, 6000)
    assert rec.to_dict()["load"]["output_tokens_per_month"] == pytest.approx(40.0 * 343.75 * MONTH_H * 3600)


def test_one_observed_length_is_the_fixed_request(tmp_path: Path) -> None:
    """A traffic file whose every request is 1,000 + 250 tokens gives the fixed request's answer."""
    fields = {k: v for k, v in BASE.items() if k not in ("prompt_tokens", "output_tokens")}
    same = dse.recommend(**fields, lengths=_lengths(tmp_path, [(1000, 250)] * 3)).options
    fixed = dse.recommend(**BASE).options
    assert [(o.hardware, o.devices, o.batch) for o in same] == [(o.hardware, o.devices, o.batch) for o in fixed]
    assert [o.capacity_rps for o in same] == pytest.approx([o.capacity_rps for o in fixed], rel=1e-12)


def test_a_long_tail_of_prompts_costs_more_than_their_mean(tmp_path: Path) -> None:
    """The p90 TTFT SLO sees the long prompts: the observed lengths need more devices than requests of their
    mean lengths (1,688 + 344 tokens), at 70 B where TTFT binds."""
    fields = {k: v for k, v in BASE.items() if k not in ("prompt_tokens", "output_tokens")}
    fields |= {"model": "llama-3.1-70b", "ttft_s": 0.5, "hardware": ("h100-sxm", "b200")}
    spread = dse.recommend(**fields, lengths=_lengths(tmp_path, CHAT)).options
    mean = dse.recommend(**fields, prompt_tokens=1688, output_tokens=344).options
    assert {o.hardware for o in spread} == {o.hardware for o in mean}
    by = {o.hardware: o for o in mean}
    assert all(o.devices_paid >= by[o.hardware].devices_paid for o in spread)
    assert any(o.devices_paid > by[o.hardware].devices_paid for o in spread)
    assert all(o.ttft_s <= 0.5 for o in spread)


def test_robustness_scales_observed_lengths_as_a_whole(tmp_path: Path) -> None:
    fields = {k: v for k, v in BASE.items() if k not in ("prompt_tokens", "output_tokens")}
    rec = dse.recommend(**fields | {"samples": 200}, lengths=_lengths(tmp_path, CHAT))
    bars = {b["input"]: b for b in rec.robustness.tornado}
    assert bars["prompt tokens"]["low_setting"] == "mean 1350 tokens"  # 1,687.5 x 0.8
    assert bars["output tokens"]["high_setting"] == "mean 412 tokens"  # 343.75 x 1.2
    assert bars["prompt tokens"]["high"] >= bars["prompt tokens"]["low"]
    assert sum(o.win_rate for o in rec.options) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"prompt_tokens": 1000}, ["lengths", "not both"]),
        ({"lengths": "missing.csv"}, ["lengths", "not found", "missing.csv"]),
        ({"lengths": "BAD"}, ["line 3", "output_tokens", "positive whole number"]),
        ({"lengths": "LONG"}, ["lengths", "exceeds the model's context of 131,072"]),
    ],
)
def test_bad_lengths_name_the_file_and_field(tmp_path: Path, fields: dict[str, object], expected: list[str]) -> None:
    base = {k: v for k, v in BASE.items() if k not in ("prompt_tokens", "output_tokens")}
    files = {"BAD": [(100, 10), (100, 0)], "LONG": [(130000, 2000)]}
    if fields.get("lengths") in files:
        fields = {"lengths": _lengths(tmp_path, files[str(fields["lengths"])])}
    elif "prompt_tokens" in fields:
        fields |= {"lengths": _lengths(tmp_path, CHAT)}
    with pytest.raises(InputError) as info:
        make_request(**base, **fields)
    for part in expected:
        assert part in str(info.value)
    with pytest.raises(InputError, match="prompt_tokens and output_tokens, or lengths"):
        make_request(**base)


# --- lengths that vary: laws, as a space's workload takes them --------------------------------------------------

CHAT_LAWS = {
    "prompt_tokens": {"distribution": "lognormal", "mean": 1500, "sigma": 0.9, "max": 16000},
    "output_tokens": {"distribution": "uniform", "min": 50, "max": 600},
}


def test_a_law_of_one_length_is_the_fixed_request() -> None:
    """uniform 1,000-1,000 and 250-250 are the fixed request, exactly."""
    laws = {"prompt_tokens": {"distribution": "uniform", "min": 1000, "max": 1000}}
    laws |= {"output_tokens": {"distribution": "uniform", "min": 250, "max": 250}}
    same = dse.recommend(**BASE | laws).options
    fixed = dse.recommend(**BASE).options
    assert [(o.hardware, o.devices, o.batch) for o in same] == [(o.hardware, o.devices, o.batch) for o in fixed]
    assert [o.capacity_rps for o in same] == [o.capacity_rps for o in fixed]


def test_laws_are_described_and_their_tail_costs_more_than_their_mean() -> None:
    """A lognormal prompt law (σ 0.9) and uniform outputs: the workload says the laws, their means and
    percentiles (``physics.lengths``); the p90 TTFT SLO sees the long prompts, so the laws need at least the
    devices requests of their mean lengths need, and more for some hardware."""
    fields = BASE | {"model": "llama-3.1-70b", "ttft_s": 0.3, "hardware": ("h100-sxm", "b200"), "samples": 0}
    rec = dse.recommend(**fields | CHAT_LAWS)
    work = rec.to_dict()["workload"]
    prompts, outputs = lengths.lognormal(1500, 0.9, 16000), lengths.uniform(50, 600)
    assert work["laws"] == {
        "prompt_tokens": "lognormal (mean 1500, σ 0.9, max 16000)",
        "output_tokens": "uniform 50-600",
    }
    assert work["varies"] and work["lengths"] is None and work["requests"] is None
    assert (work["prompt_tokens_mean"], work["output_tokens_mean"]) == (prompts.mean, outputs.mean)
    assert work["prompt_tokens"]["p90"] == prompts.percentile(0.9) and work["prompt_tokens"]["max"] == 16000
    mean = dse.recommend(**fields | {"prompt_tokens": round(prompts.mean), "output_tokens": round(outputs.mean)})
    by = {o.hardware: o for o in mean.options}
    assert {o.hardware for o in rec.options} == set(by)
    assert all(o.devices_paid >= by[o.hardware].devices_paid for o in rec.options)
    assert any(o.devices_paid > by[o.hardware].devices_paid for o in rec.options)
    assert all(o.ttft_s <= 0.3 for o in rec.options)


@pytest.mark.parametrize(
    ("law", "expected"),
    [
        ({"distribution": "gamma", "k": 2}, ["prompt_tokens", "a number of tokens, or a law"]),
        (
            {"distribution": "uniform", "min": 600, "max": 50},
            ["prompt_tokens.uniform", "max (50) must be >= min (600)"],
        ),
        ({"distribution": "lognormal", "mean": 1500, "sigma": 4}, ["prompt_tokens.lognormal.sigma", "3"]),
        (
            {"distribution": "lognormal", "mean": 100000, "sigma": 1, "max": 200000},
            ["prompt_tokens", "context of 131,072"],
        ),
        ({"distribution": "uniform", "min": 1}, ["prompt_tokens.uniform.max", "required"]),
        (200_000, ["prompt_tokens", "a request of 200,250 tokens", "context of 131,072"]),  # no hardware serves it
    ],
)
def test_bad_laws_name_the_field(law: dict[str, object] | int, expected: list[str]) -> None:
    with pytest.raises(InputError) as info:
        make_request(**BASE | {"prompt_tokens": law})
    for part in expected:
        assert part in str(info.value)


# --- speculative decoding and a prefix cache -------------------------------------------------------------------


def test_speculation_is_tried_with_and_without_and_sized_from_dse_analyze(tmp_path: Path) -> None:
    """With a draft every configuration is tried without speculation and at 1 and 3 draft tokens; the chosen
    one's capacity is ``dse analyze``'s with its draft tokens, and at a tight TPOT SLO speculation serves the
    load with fewer devices (Leviathan et al. 2023: up to 1 + k tokens a verification step)."""
    tight = {**BASE, "tpot_s": 0.008, "hardware": ("h100-sxm",), "quants": ("bf16",), "kv": ("default",)}
    plain = dse.recommend(**tight)
    rec = dse.recommend(**tight, draft="mtp", spec_acceptance=0.8)
    assert rec.candidates == 3 * plain.candidates
    (o,) = rec.options
    assert o.spec_tokens in (1, 3) and o.devices_paid < plain.options[0].devices_paid
    flags = {"quant": "bf16", "prompt_len": 1000, "gen_len": 250, "tp": o.tp, "pp": o.pp, "scheduler": "continuous"}
    flags |= {"max_num_seqs": o.batch, "slo_ttft_s": 1.0, "slo_tpot_s": 0.008, "slo_percentile": 90}
    flags |= {"spec_tokens": o.spec_tokens, "draft": "mtp", "spec_acceptance": 0.8}
    assert o.capacity_rps == pytest.approx(_capacity("llama-3.1-8b", o.target, flags), rel=1e-9)
    doc = rec.to_dict()
    assert doc["request"]["spec_tokens"] == [0, 1, 3] and doc["options"][0]["spec_tokens"] == o.spec_tokens


def test_a_draft_never_accepted_is_never_chosen() -> None:
    """An acceptance rate of 0 gains nothing and costs the draft: the answer is the one without it (no
    speculation is always among the choices, named or not)."""
    useless = dse.recommend(**BASE, draft="mtp", spec_tokens=(2,), spec_acceptance=0.0).options
    plain = dse.recommend(**BASE).options
    assert all(o.spec_tokens == 0 for o in useless)
    assert [(o.hardware, o.devices, o.capacity_rps) for o in useless] == [
        (o.hardware, o.devices, o.capacity_rps) for o in plain
    ]


def test_a_prefix_cache_is_sized_from_dse_analyze_and_never_costs_devices() -> None:
    one = {"hardware": ("h100-sxm", "l40s"), "quants": ("bf16",), "kv": ("default",)}
    devices = []
    for hit in (0.0, 0.5, 0.9):
        options = dse.recommend(**{**BASE, **one, "prefix_hit_rate": hit}).options
        devices.append({o.hardware: o.devices_paid for o in options})
        o = options[0]
        flags = {"quant": "bf16", "prompt_len": 1000, "gen_len": 250, "tp": o.tp, "pp": o.pp, "prefix_hit_rate": hit}
        flags |= {"scheduler": "continuous", "max_num_seqs": o.batch, "slo_ttft_s": 1.0, "slo_tpot_s": 0.05}
        assert o.capacity_rps == pytest.approx(_capacity("llama-3.1-8b", o.target, flags), rel=1e-9)
    for fewer, more in itertools.pairwise(devices):
        assert all(more[h] <= fewer[h] for h in fewer)
    assert sum(devices[-1].values()) < sum(devices[0].values())


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"spec_tokens": (2,)}, "spec_tokens", "need a draft"),
        ({"spec_tokens": (-1,), "draft": "mtp"}, "spec_tokens", "whole numbers from 0 to 16"),
        ({"spec_tokens": (100,), "draft": "mtp"}, "spec_tokens", "whole numbers from 0 to 16"),
        ({"prompt_tokens": None}, "prompt_tokens", "or lengths"),
        ({"output_tokens": None}, "output_tokens", "or lengths"),
        ({"draft": "no-such-model"}, "draft", "unknown model id"),
        ({"prefix_hit_rate": 1.5}, "prefix_hit_rate", "less than or equal to 1"),
    ],
)
def test_bad_serving_settings_name_the_field(fields: dict[str, object], field: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        make_request(**{**BASE, **fields})
    assert info.value.field == field and expected in str(info.value)


# --- disaggregated prefill and decode --------------------------------------------------------------------------


def test_a_disaggregated_group_is_sized_by_hand_from_dse_analyze() -> None:
    """With ``disaggregate`` a replica may be a group of x prefill and y decode instances: its capacity is
    ``dse analyze --mode disaggregated``'s max_request_rate for the group (capped at 90 % of every slot
    busy), its devices (x + y) x tp x pp; at a tight TPOT SLO (no prefill chunk slows a decode step there) it
    serves with fewer devices than aggregated replicas, and never with more (those are still tried)."""
    tight = {**BASE, "model": "llama-3.1-70b", "tpot_s": 0.02, "hardware": ("b200", "h200-sxm")}
    tight |= {"quants": ("fp8",), "kv": ("fp8",)}
    apart, together = dse.recommend(**tight | {"samples": 50}, disaggregate=True), dse.recommend(**tight)
    same = {o.hardware: o.devices_paid for o in together.options}
    assert all(o.devices_paid <= same[o.hardware] for o in apart.options)
    split = [o for o in apart.options if o.mode == "disaggregated"]
    assert split and any(o.devices_paid < same[o.hardware] for o in split)
    o = split[0]
    x, y = o.prefill_instances, o.decode_instances
    assert (x, y) in ((1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (2, 3), (3, 2))
    flags = {"quant": "fp8", "kv": "fp8", "prompt_len": 1000, "gen_len": 250, "tp": o.tp, "pp": o.pp}
    flags |= {"scheduler": "continuous", "max_num_seqs": o.batch, "slo_ttft_s": 1.0, "slo_tpot_s": 0.02}
    flags |= {"mode": "disaggregated", "replicas": x + y, "prefill_replicas": x}
    d = analyze("llama-3.1-70b", o.target, **flags).to_dict()
    assert o.capacity_rps == pytest.approx(_capacity("llama-3.1-70b", o.target, flags), rel=1e-9)
    assert o.devices == o.replicas * (x + y) * o.tp * o.pp == o.replicas * d["devices"]
    assert o.replicas == math.ceil(40.0 / o.capacity_rps)
    loaded = analyze("llama-3.1-70b", o.target, **flags, request_rate=40.0 / o.replicas).to_dict()
    p90 = (loaded["percentiles"]["ttft_s"]["p90"], loaded["percentiles"]["tpot_s"]["p90"])
    assert (o.ttft_s, o.tpot_s) == pytest.approx(p90, rel=1e-9) and o.tpot_s <= 0.02
    doc = apart.to_dict()
    first = next(d for d in doc["options"] if d["mode"] == "disaggregated")
    assert (first["prefill_instances"], first["decode_instances"]) == (x, y)
    assert doc["request"]["disaggregate"]
    assert sum(o.win_rate or 0.0 for o in apart.options) == pytest.approx(1.0)  # draws re-score the groups
    assert o.slo_risk is not None and o.slo_risk < 0.5


def test_disaggregation_needs_continuous_batching() -> None:
    with pytest.raises(InputError) as info:
        make_request(**BASE, disaggregate=True, scheduler="static")
    assert info.value.field == "disaggregate" and "continuous" in str(info.value)
    with pytest.raises(InputError) as info:  # splits without disaggregation would be ignored: said instead
        make_request(**BASE, pool_splits=((2, 1),))
    assert info.value.field == "pool_splits" and "disaggregate=True" in str(info.value)
    round_trip = make_request(**BASE, disaggregate=True, pool_splits=((2, 1),)).model_dump()
    assert make_request(**round_trip).serving_modes == (("aggregated", 1, 1), ("disaggregated", 3, 2))


def test_a_disaggregated_group_fits_one_system_and_its_busier_pool_caps_it() -> None:
    """Groups only where their instances fit one system (their KV caches cross its links), none on a bare
    accelerator; and a group's capacity is at most --max-utilization of what its busier pool completes (its
    prefill pool's utilisation alone would let a full decode pool through)."""
    from dse.catalog import load_target
    from dse.recommend._fleet import score_grid, targets

    request = make_request(**{**BASE, **NO_SLOS, "model": "llama-3.1-70b", "hardware": ("mi300x", "mi300x-platform")})
    request = request.model_copy(update={"disaggregate": True, "quants": ("fp8",), "kv": ("fp8",)})
    found = targets(request)
    grid = score_grid(request, found)
    groups = np.flatnonzero(grid.prefill_instances > 0)
    assert len(groups)
    for row in groups:
        _, system = load_target(found[int(grid.target[row])][0])
        assert system is not None  # a bare accelerator holds no group
        assert grid.instances[row] * max(grid.tp[row], grid.ep[row]) * grid.pp[row] <= system.devices_per_node
    rng = np.random.default_rng(0)
    for row in rng.choice(groups[grid.capacity_rps[groups] > 0], 4, replace=False):
        x, n = int(grid.prefill_instances[row]), int(grid.instances[row])
        flags = {"quant": "fp8", "kv": "fp8", "prompt_len": 1000, "gen_len": 250, "tp": int(grid.tp[row])}
        flags |= {"pp": int(grid.pp[row])}
        flags |= {"scheduler": "continuous", "max_num_seqs": int(grid.batch[row]), "mode": "disaggregated"}
        busiest = analyze("llama-3.1-70b", "mi300x-platform", **flags, replicas=n, prefill_replicas=x).to_dict()
        assert grid.capacity_rps[row] <= 0.9 * busiest["max_request_rate"] * (1 + 1e-9)
