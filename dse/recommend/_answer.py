"""The answer: one option per accelerator (its cheapest target), ranked by cost, with exact price thresholds and
the rent-vs-buy break-even month.

Thresholds are exact because a fleet's cost is linear in the price behind it: a target's fleet of d devices
costs ``d x 730 h x (f x + o)`` a month when its price entry's figure is x ($ per device-hour to rent, f = 1,
o = 0; or the purchase quote in $, f the amortisation-and-share factor, o the electricity), and the fleet
itself does not depend on x (``_fleet``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from dse import units
from dse.costmodel.physics.serving import HOURS_PER_MONTH, break_even_months, buy_usd_per_device_hour
from dse.recommend._fleet import Choice, Grid, assumptions, tokens_per_month
from dse.recommend._request import Request


@dataclass
class Option:
    """One accelerator's cheapest fleet for the load (``usd_per_month`` None: unpriced in this pricing)."""

    hardware: str
    target: str
    quant: str
    kv: str
    tp: int
    pp: int
    ep: int
    batch: int
    """The static batch; under continuous batching the engine's ``max_num_seqs``."""
    replicas: int
    devices: int
    devices_paid: int
    """Devices paid for: ``devices`` rounded up to whole systems when buying at a system's quote."""
    usd_per_month: float | None
    tco_usd: float | None
    usd_per_million_tokens: float | None
    power_kw: float | None
    binding: str
    ttft_s: float
    tpot_s: float
    capacity_rps: float
    usd_per_device_hour: float | None
    price_basis: str | None
    price_sources: tuple[str, ...]
    break_even_months: float | None
    row: int
    by_pricing: dict[str, dict[str, float] | None] = field(default_factory=dict)
    """This fleet's $/month and TCO in each pricing scenario (None: no price for it)."""
    choices: list[Choice] = field(repr=False, default_factory=list)
    """Every target of this accelerator that serves the load (for thresholds)."""
    chosen: Choice | None = field(repr=False, default=None)
    win_rate: float | None = None
    expected_regret_usd_per_month: float | None = None
    slo_risk: float | None = None
    scheduler: str = "static"
    requests_in_engine: float | None = None
    """Continuous: sequences in a replica's engine at its share of the sizing load."""
    spec_tokens: int = 0
    """Draft tokens per verification step (0: no speculative decoding)."""
    mode: str = "aggregated"
    """``disaggregated``: a replica is a group of ``prefill_instances`` that prefill and ``decode_instances``
    that decode (each tp x pp devices)."""
    prefill_instances: int | None = None
    decode_instances: int | None = None


@dataclass(frozen=True)
class Infeasible:
    hardware: str
    reason: str


@dataclass(frozen=True)
class Threshold:
    kind: str
    """``price`` or ``break_even``."""
    hardware: str
    sentence: str
    price_id: str | None = None
    unit: str | None = None
    now: float | None = None
    threshold: float | None = None
    direction: str | None = None
    """``below``: the option becomes the cheapest below it; ``above``: the winner stops being the cheapest."""
    months: float | None = None


def _option(choice: Choice, grid: Grid, request: Request, group: list[Choice]) -> Option:
    row = choice.row
    assert row is not None
    c = choice.costing
    usd = choice.usd_per_month
    capex = c.prices.capex
    bought = int(c.prices.bought(choice.devices))
    months = None
    if capex is not None and c.rent_usd_per_device_hour is not None and c.opex_usd_per_device_hour is not None:
        months = break_even_months(
            bought * capex.value, choice.devices * c.rent_usd_per_device_hour, bought * c.opex_usd_per_device_hour
        )
    basis, sources = (c.price.basis, c.price.sources) if c.price is not None else (None, ())
    by_pricing: dict[str, dict[str, float] | None] = {}
    on_demand, reserved = c.prices.rent.get("on-demand"), c.prices.rent.get(request.reserved_term)
    owned = None
    if capex is not None and c.prices.power_w is not None:
        owned = buy_usd_per_device_hour(capex.value, c.prices.power_w, assumptions(request))
    for scenario, hourly in (
        ("rent-on-demand", on_demand.value if on_demand else None),
        ("rent-reserved", reserved.value if reserved else None),
        ("buy", owned),
    ):
        fleet = bought if scenario == "buy" else choice.devices
        monthly = fleet * hourly * HOURS_PER_MONTH if hourly is not None else None
        by_pricing[scenario] = (
            None if monthly is None else {"usd_per_month": monthly, "tco_usd": monthly * request.horizon_years * 12}
        )
    prefilling = int(grid.prefill_instances[row])
    split = prefilling > 0  # a disaggregated group
    return Option(
        hardware=choice.target[0].id,
        target=choice.ref,
        quant=str(grid.quant[row]),
        kv=str(grid.kv[row]) if grid.kv[row] is not None else "default",
        tp=int(grid.tp[row]),
        pp=int(grid.pp[row]),
        ep=int(grid.ep[row]),
        batch=int(grid.batch[row]),
        replicas=choice.replicas,
        devices=choice.devices,
        devices_paid=choice.devices_paid,
        usd_per_month=usd,
        tco_usd=usd * request.horizon_years * 12.0 if usd is not None else None,
        usd_per_million_tokens=usd / tokens_per_month(request) * units.TOKENS_PER_MILLION if usd is not None else None,
        power_kw=choice.power_kw,
        binding=choice.binding or "",
        ttft_s=float(grid.ttft_s[row]),
        tpot_s=float(grid.tpot_s[row]),
        capacity_rps=float(grid.capacity_rps[row]),
        usd_per_device_hour=c.usd_per_device_hour,
        price_basis=basis,
        price_sources=sources,
        break_even_months=months,
        row=row,
        by_pricing=by_pricing,
        choices=group,
        chosen=choice,
        scheduler=request.scheduler,
        requests_in_engine=float(grid.slots[row]) if request.scheduler == "continuous" else None,
        spec_tokens=int(grid.spec_tokens[row]),
        mode="disaggregated" if split else "aggregated",
        prefill_instances=prefilling if split else None,
        decode_instances=int(grid.instances[row]) - prefilling if split else None,
    )


def _cost_key(choice: Choice) -> tuple[float, int, str]:
    usd = choice.usd_per_month if choice.usd_per_month is not None else math.inf
    return (usd, choice.devices_paid, choice.ref)


def options(
    choices: Sequence[Choice], grid: Grid, request: Request
) -> tuple[list[Option], list[Option], list[Infeasible]]:
    """(priced options ranked cheapest first, unpriced options by devices, infeasible accelerators with why).

    Targets are grouped by accelerator: one option per accelerator, on whichever of its targets (the bare
    device or a system built on it) serves the load cheapest."""
    groups: dict[str, list[Choice]] = {}
    for c in choices:
        groups.setdefault(c.target[0].id, []).append(c)
    priced: list[Option] = []
    unpriced: list[Option] = []
    infeasible: list[Infeasible] = []
    for hardware, group in groups.items():
        serving = [c for c in group if c.row is not None]
        if not serving:
            infeasible.append(Infeasible(hardware, _nearest_reason(group)))
            continue
        best = min(serving, key=_cost_key)
        option = _option(best, grid, request, serving)
        (priced if option.usd_per_month is not None else unpriced).append(option)
    priced.sort(key=lambda o: (o.usd_per_month, o.devices_paid, o.devices, o.hardware))
    unpriced.sort(key=lambda o: (o.devices, o.hardware))
    infeasible.sort(key=lambda i: i.hardware)
    return priced, unpriced, infeasible


_NEARNESS = ("limits", "ttft and tpot", "tpot", "ttft", "memory")


def _nearest_reason(group: Sequence[Choice]) -> str:
    """The reason of the target that came closest: a limit over an SLO, an SLO over memory, and between two
    targets an SLO blocks, the one whose fastest latency is nearer to it (a system splitting the model
    against the bare device)."""

    def nearness(c: Choice) -> tuple[int, float]:
        reason = c.reason or ""
        return next((i for i, k in enumerate(_NEARNESS) if reason.startswith(k)), len(_NEARNESS)), c.miss

    return min(group, key=nearness).reason or ""


def crossing(option: Option, level: float) -> float | None:
    """The figure x of ``option``'s price entry at which its cheapest fleet costs ``level`` $/month.

    Its targets priced from that entry cost ``d x 730 x (f x + o)``; the others do not move, so x is the
    largest of the targets' solutions; None when a target not priced from it already costs less than
    ``level`` (the option's cost cannot rise past it by this price alone)."""
    chosen = option.chosen
    assert chosen is not None
    pid = chosen.costing.price_id
    solutions = []
    for c in option.choices:
        if c.usd_per_month is None:
            continue
        if c.costing.price_id != pid:
            if c.usd_per_month < level:
                return None
            continue
        f, o = c.costing.price_factor, c.costing.price_offset
        solutions.append((level / (c.devices_paid * HOURS_PER_MONTH) - o) / f)
    return max(solutions) if solutions else None


def _money(x: float) -> str:
    return f"${x:,.4g}" if abs(x) < 100 else f"${x:,.0f}"


def thresholds(ranked: Sequence[Option], request: Request, top: int) -> list[Threshold]:
    """Price thresholds for the shortlist (the winner's up to which it stays the cheapest, each other's below
    which it becomes the cheapest) and the winner's rent-vs-buy break-even."""
    if not ranked:
        return []
    out: list[Threshold] = []
    winner = ranked[0]
    buy = request.pricing == "buy"
    term = request.reserved_term if request.pricing == "rent-reserved" else "on-demand"

    def unit(o: Option) -> str:
        return f"$ per {term} device-hour" if not buy else "$ purchase quote"

    def describe(o: Option, x: float) -> str:
        pid = o.chosen.costing.price_id if o.chosen else o.hardware
        if buy:
            return f"a purchase price of {_money(x)} for {pid}"
        return f"{_money(x)} per {term} device-hour of {pid}"

    if len(ranked) > 1:
        second = ranked[1]
        assert second.usd_per_month is not None and winner.chosen is not None
        x = crossing(winner, second.usd_per_month)
        now = winner.chosen.costing.price_now
        if x is not None and x > 0 and now is not None:
            out.append(
                Threshold(
                    "price",
                    winner.hardware,
                    f"{winner.hardware} stays the cheapest up to {describe(winner, x)} (now {_money(now)}); "
                    f"above it {second.hardware} is cheaper.",
                    winner.chosen.costing.price_id,
                    unit(winner),
                    now,
                    x,
                    "above",
                )
            )
    assert winner.usd_per_month is not None
    for o in ranked[1:top]:
        assert o.chosen is not None
        x = crossing(o, winner.usd_per_month)
        now = o.chosen.costing.price_now
        if now is None:
            continue
        if x is None or x <= 0:
            sentence = f"{o.hardware} cannot become the cheapest by its price alone (its running costs exceed "
            sentence += f"{winner.hardware}'s whole cost)."
            out.append(Threshold("price", o.hardware, sentence, o.chosen.costing.price_id, unit(o), now, None, "below"))
            continue
        out.append(
            Threshold(
                "price",
                o.hardware,
                f"{o.hardware} becomes the cheapest below {describe(o, x)} (now {_money(now)}), "
                f"{x / now - 1:+.0%} from today's.",
                o.chosen.costing.price_id,
                unit(o),
                now,
                x,
                "below",
            )
        )
    months = winner.break_even_months
    rent_term = term if request.pricing != "buy" else "on-demand"
    if months is None:
        sentence = (
            f"Buying {winner.hardware} cannot be weighed against renting it: the catalog lacks its "
            f"{'purchase price or power' if winner.usd_per_device_hour is not None else 'rent'} "
            "(a price sheet can add it)."
        )
        out.append(Threshold("break_even", winner.hardware, sentence))
    elif math.isinf(months):
        c = winner.chosen.costing if winner.chosen else None
        lot = c.prices.capex_unit if c is not None else 1
        why = (
            f"whole systems of {lot} must be bought to have {winner.devices} in service"
            if lot > winner.devices
            else "running it costs as much"
        )
        sentence = f"Buying {winner.hardware} never beats renting it {rent_term} at this load ({why})."
        out.append(Threshold("break_even", winner.hardware, sentence))
    else:
        verdict = "within" if months <= request.horizon_years * 12 else "only after"
        sentence = (
            f"Buying {winner.hardware} beats renting it {rent_term} after {months:.1f} months at this load "
            f"({verdict} the {request.horizon_years:g}-year horizon)."
        )
        out.append(Threshold("break_even", winner.hardware, sentence, months=months))
    return out
