"""Fleet sizing: for every hardware target, the cheapest configuration that serves the load under the SLOs.

A replica is one deployment (quant, KV format, tp x pp x ep devices) scored by the roofline cost model. Under
the static-batch model (``scheduler="static"``) it serves a static batch B: B requests per end-to-end latency,
so ``capacity = throughput / output tokens`` requests/s. Under continuous batching (``"continuous"``) it runs
an engine of at most ``max_num_seqs`` sequences with chunked prefill, and its capacity is the Poisson request
rate it sustains with TTFT and TPOT at the SLO percentile within the SLOs (the cost model's
``max_request_rate``, docs/cost-model.md §16). Either way the load needs ``replicas = ceil(sizing rate /
capacity)`` of them. Every configuration of a grid is scored at once (one vectorised call), and per target
the one with the lowest fleet cost kept. Within one target every device costs the same, so the cheapest fleet
is the one with the fewest devices: the choice does not depend on the price, which keeps the costs linear in
it (``_answer`` relies on that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dse import units
from dse.catalog import (
    DevicePrices,
    HardwareSpec,
    ModelSpec,
    Price,
    SystemSpec,
    hardware_catalog,
    load_model,
    load_target,
    system_catalog,
)
from dse.costmodel import REASON_TEXT, SERVING_QUANTILES, CostAssumptions, Reason
from dse.costmodel.physics.lengths import candidate_lengths
from dse.costmodel.physics.serving import HOURS_PER_MONTH, buy_usd_per_device_hour, opex_usd_per_device_hour
from dse.errors import InputError
from dse.recommend._request import Request
from dse.scoring import scenario_rent, score_columns, target_prices, target_profiles

BATCHES = np.unique(np.concatenate([np.arange(1, 33), np.round(32 * 2 ** (np.arange(1, 57) / 8))])).astype(int)
"""Batch sizes tried: every size to 32, then eight steps an octave to 4096 (a fleet's cost moves by at most
~9 % between neighbours)."""
SEQUENCES = tuple(sorted({2**i for i in range(11)} | {3 * 2**i for i in range(9)}))
"""``max_num_seqs`` tried under continuous batching: 1, 2, 3, 4, 6, 8, 12 ... 768, 1,024, two steps an octave
(vLLM's default is 256; its V1 engine raises it to 1,024 on large GPUs). A larger cap is not always better:
more sequences share each step, so TPOT and the queue grow (MI355X, Llama-3.1-70B, 1,000 + 300 tokens, TTFT <= 1 s
and TPOT <= 50 ms at p90: 8.6 requests/s at 384, 8.3 at 1,024; docs/recommend.md), hence the grid."""
PIPELINE = (1, 2, 4, 8)
"""Pipeline degrees tried on systems (tensor degrees: the powers of two up to a node)."""

Target = tuple[HardwareSpec, SystemSpec | None]


def targets(request: Request) -> list[tuple[str, Target]]:
    """The targets to consider: the request's ids (accelerators or systems), or every one in the catalog."""
    ids = request.hardware or (*hardware_catalog(), *system_catalog())
    found = []
    for i, ref in enumerate(ids):
        try:
            found.append((ref, load_target(ref)))
        except InputError as exc:
            raise InputError(str(exc).split(": ", 1)[-1], field=f"hardware[{i}]") from None
    return found


def _layouts(model: ModelSpec, target: Target) -> list[tuple[int, int, int]]:
    """(tp, pp, ep) tried on a target: one device for a bare accelerator; on a system, tensor degrees up to a
    node, pipeline degrees while they fit the system's nodes, and for mixture-of-experts models expert degrees
    equal to tp or to a whole node."""
    _, system = target
    if system is None:
        return [(1, 1, 1)]
    node = system.devices_per_node
    nodes = system.max_nodes if system.inter_node_link is not None else 1
    nodes = min(nodes or 8, 8)
    tps = sorted({t for t in (1, 2, 4, 8, 16, 32, 72) if t <= node})
    moe = model.num_moe_layers > 0
    out: list[tuple[int, int, int]] = []
    for tp in tps:
        for pp in PIPELINE:
            if tp * pp > node * nodes:
                continue
            eps = sorted({1, tp, node}) if moe else [1]
            out.extend((tp, pp, ep) for ep in eps if ep % tp == 0 or ep == 1)
    return out


@dataclass(frozen=True)
class Grid:
    """Scored configurations: one row per (target, quant, kv, tp, pp, ep, batch); under continuous batching
    ``batch`` is the engine's ``max_num_seqs``, and ``ttft_s`` and ``tpot_s`` are at the SLO percentile with
    the replica at its share of the sizing load."""

    target: np.ndarray
    """Index into the targets list."""
    quant: np.ndarray
    kv: np.ndarray
    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray
    batch: np.ndarray
    spec_tokens: np.ndarray
    """Draft tokens per verification step (0: no speculative decoding)."""
    instances: np.ndarray
    """Instances of a unit the fleet is counted in: 1 (an aggregated replica) or a disaggregated group's."""
    prefill_instances: np.ndarray
    """Of those, the ones that only prefill (0 where aggregated)."""
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    capacity_rps: np.ndarray
    """Requests/s one replica serves."""
    devices: np.ndarray
    """Devices of one replica."""
    reason: np.ndarray
    """Cost-model reason code (0: it fits)."""
    decode_flops: np.ndarray
    decode_bytes: np.ndarray
    compute_format: np.ndarray
    slots: np.ndarray
    """Continuous: sequences a replica's engine holds at its share of the sizing load (NaN: static)."""
    busy_slots: np.ndarray
    """Continuous: the sequences it holds with every slot busy, b_max (``max_num_seqs``, memory, the token
    budget: the smallest), from ``score_grid``'s first pass (in a grid scored at a load, the slots there)."""
    memory_slots: np.ndarray
    """Continuous: the sequences whose KV cache fits in memory at mean occupancy."""
    capped: np.ndarray
    """Continuous: the capacity is the utilisation cap's (``Request.max_utilization`` of every slot busy's
    rate), below what the SLOs allow."""
    limit: np.ndarray | None = None
    """Continuous: what caps each replica's capacity (``_limits``; None: not found)."""
    loaded: bool = False
    """Continuous: ``ttft_s`` and ``tpot_s`` are at each replica's share of the sizing load (``score_grid``)."""


def _system_devices(target: Target) -> int:
    """Devices one system holds: a node times the nodes its inter-node link joins (one without a link); a bare
    accelerator, being one device, none to share with another instance (0)."""
    _, system = target
    if system is None:
        return 0
    nodes = (system.max_nodes or 8) if system.inter_node_link is not None else 1
    return system.devices_per_node * nodes


def _columns(found: Sequence[tuple[str, Target]], request: Request, spec: ModelSpec) -> dict[str, list]:
    """One row per configuration; a disaggregated group only where it fits in one system, whose links carry
    its KV transfers (on a bare accelerator there is no such link: none)."""
    names = ("target", "quant", "kv", "tp", "pp", "ep", "spec_tokens", "mode", "replicas", "prefill_replicas")
    cols: dict[str, list] = {k: [] for k in names}
    for code, (_, target) in enumerate(found):
        room = _system_devices(target)
        for tp, pp, ep in _layouts(spec, target):
            modes = [m for m in request.serving_modes if m[0] == "aggregated" or m[1] * max(tp, ep) * pp <= room]
            for quant in request.quants:
                for kv in request.kv:
                    for k in request.tried_spec_tokens:
                        for mode, instances, prefilling in modes:
                            row = (code, quant, None if kv == "default" else kv, tp, pp, ep, k, mode)
                            for name, value in zip(names, (*row, instances, prefilling), strict=True):
                                cols[name].append(value)
    return cols


def serving_columns(request: Request, n: int) -> dict[str, object]:
    """The request's serving settings every row shares: the prefix cache's hit rate and speculation's draft
    and acceptance rate (each row's ``spec_tokens`` says whether it speculates)."""
    return {
        "prefix_hit_rate": np.full(n, request.prefix_hit_rate),
        "draft": [request.draft] * n,
        "spec_acceptance": np.full(n, request.spec_acceptance),
    }


Say = Callable[[str], None]
"""Told what a long step is doing (a progress line)."""


def quiet(_: str) -> None:
    """Hears nothing (``Say``'s default)."""


def score_grid(request: Request, found: Sequence[tuple[str, Target]], say: Say = quiet) -> Grid:
    """Score every configuration of every target at the request's workload: static batches of ``BATCHES``, or
    under continuous batching engines of ``SEQUENCES`` sequences, each first at its capacity under the SLOs,
    then at its share of the sizing load (its latencies there); with a draft, each with and without
    speculative decoding (``Request.tried_spec_tokens``). ``say`` hears each pass begin."""
    spec = load_model(request.model)
    base = _columns(found, request, spec)
    sizes = SEQUENCES if request.scheduler == "continuous" else BATCHES
    n_base, n_size = len(base["target"]), len(sizes)
    repeat = {
        k: np.repeat(np.asarray(v, dtype=object if k in ("quant", "kv", "mode") else np.int64), n_size)
        for k, v in base.items()
    }
    size = np.tile(np.asarray(sizes, dtype=np.int64), n_base)
    refs = [ref for ref, _ in found]
    columns = {
        "model": [request.model] * len(size),
        "hardware": [refs[i] for i in repeat["target"]],
        "quant": list(repeat["quant"]),
        "kv": list(repeat["kv"]),
        "tp": repeat["tp"],
        "pp": repeat["pp"],
        "ep": repeat["ep"],
        "batch": size,
        "prompt_len": np.full(len(size), round(request.mean_prompt_tokens)),
        "gen_len": np.full(len(size), round(request.mean_output_tokens)),
        "spec_tokens": repeat["spec_tokens"],
        "mode": list(repeat["mode"]),
        "replicas": repeat["replicas"],
        "prefill_replicas": repeat["prefill_replicas"],
    } | serving_columns(request, len(size))
    what = "capacity under the SLOs" if request.scheduler == "continuous" else "static batches"
    say(f"scoring {len(size):,} configurations ({len(found)} targets): {what}")
    grid = score_configurations(columns, repeat["target"], request)
    if request.scheduler != "continuous":
        return grid
    # each replica at its share of the sizing load: the latencies its users see (a lone request's where
    # nothing meets the SLOs, to say how far off they are)
    serving = grid.capacity_rps > 0
    share = request.sizing_rate / replicas_for(request.sizing_rate, grid.capacity_rps)
    load = {
        "request_rate": np.where(serving, share, np.nan),
        "concurrency": np.where(serving, np.nan, 1.0),  # a lone request, in a closed loop of one
    }
    say(f"scoring {len(size):,} configurations: latencies at the load")
    loaded = score_configurations(columns | load, repeat["target"], request)
    return replace(
        grid,
        ttft_s=loaded.ttft_s,
        tpot_s=loaded.tpot_s,
        slots=loaded.slots,
        limit=_limits(request, columns, repeat["target"], grid, say),
        loaded=True,
    )


TIGHT = 0.995
"""An SLO binds a replica's capacity where, at that capacity, its latency is within 0.5 % of the SLO (the
search for the rate stops 2^-24 of the slots short of it)."""
FULL = 1.0 - 1e-6
"""Slots count as full at this share of a cap (the cost model's slot counts carry rounding: 511.99999999999994
of 512)."""


def _limits(
    request: Request, columns: Mapping[str, object], target: np.ndarray, grid: Grid, say: Say = quiet
) -> np.ndarray:
    """Continuous: what caps each replica's capacity. ``utilization`` where the cap on utilisation does; else,
    at that rate, an SLO its latency reaches (``ttft``, ``tpot``); where none is reached, the engine's slots are
    full: ``max_num_seqs``, ``memory`` (the KV cache), or ``chunk_tokens`` (the budget cannot carry more
    sequences or keep more fed), whichever set them; a disaggregated group whose decode slots are not full is
    held by its prefill instances (``prefill``). Empty where nothing serves."""
    limit = np.full(len(target), "", dtype=object)
    serving = (grid.reason == 0) & (grid.capacity_rps > 0)
    limit[serving & grid.capped] = "utilization"
    rows = np.flatnonzero(serving & ~grid.capped)  # the others are scored at their capacity to see what binds
    if len(rows) == 0:
        return limit
    part: dict[str, object] = {
        k: [v[i] for i in rows] if isinstance(v, list) else np.asarray(v)[rows] for k, v in columns.items()
    }
    part["request_rate"] = grid.capacity_rps[rows] * (1.0 - 1e-6)
    say(f"scoring {len(rows):,} configurations: what binds each")
    at = score_configurations(part, target[rows], request)
    ttft_slo = request.ttft_s if request.ttft_s is not None else np.inf
    tpot_slo = request.tpot_s if request.tpot_s is not None else np.inf
    # a group's decode slots at its capacity (its first pass ran a closed loop, not every decode slot busy)
    slots, sequences = np.where(grid.prefill_instances[rows] > 0, at.slots, grid.busy_slots[rows]), grid.batch[rows]
    limit[rows] = np.select(
        [
            at.ttft_s >= TIGHT * ttft_slo,
            at.tpot_s >= TIGHT * tpot_slo,
            slots >= sequences * FULL,
            slots >= grid.memory_slots[rows] * FULL,
            grid.prefill_instances[rows] > 0,  # disaggregated, its decode slots not full: its prefill instances
        ],
        ["ttft", "tpot", "max_num_seqs", "memory", "prefill"],
        "chunk_tokens",
    )
    return limit


def continuous_columns(request: Request, n: int, speed: np.ndarray | float = 1.0) -> dict[str, object]:
    """The input columns that serve ``n`` rows by continuous batching with the request's token budget and SLOs
    (nothing for the static-batch model). ``speed``: a factor f on the model's predicted speed, per row; every
    time the model predicts divides by f, so the rate sustained under the SLOs is f times the rate the
    predicted times sustain under the SLOs x f: the columns carry the SLOs x f, ``score_configurations``
    multiplies the rate by f."""
    if request.scheduler != "continuous":
        return {}
    factor = np.broadcast_to(np.asarray(speed, dtype=float), (n,))
    columns: dict[str, object] = {
        "scheduler": ["continuous"] * n,
        "chunk_tokens": np.full(n, request.chunk_tokens),
        "slo_percentile": np.full(n, request.slo_percentile),
    }
    if request.ttft_s is not None:
        columns["slo_ttft_s"] = request.ttft_s * factor
    if request.tpot_s is not None:
        columns["slo_tpot_s"] = request.tpot_s * factor
    return columns


def score_configurations(
    columns: Mapping[str, object],
    target: np.ndarray,
    request: Request,
    speed: np.ndarray | float = 1.0,
    scale: tuple[np.ndarray | float, np.ndarray | float] = (1.0, 1.0),
) -> Grid:
    """Score configurations given as input columns (``dse.scoring.INPUTS``; ``target``: each row's index into
    the targets list) into a ``Grid``: latencies, capacity per replica, devices, reason, the decode step.

    Under continuous batching ``batch`` is the engine's ``max_num_seqs``; the capacity is ``max_request_rate``
    under the request's SLOs, and the latencies are at the SLO percentile (at the columns' ``request_rate``,
    or every slot busy). ``speed`` (per row): the model's predicted speed times this, latencies divided by it
    and capacities multiplied. Lengths that vary (``Request.lengths``) replace the ``prompt_len`` and
    ``gen_len`` columns, every prompt times ``scale[0]`` and every output times ``scale[1]`` (per row); fixed
    lengths are the columns'."""
    n = len(target)
    continuous = request.scheduler == "continuous"
    if continuous:
        columns = dict(columns) | {"max_num_seqs": columns["batch"], "batch": np.ones(n, dtype=np.int64)}
        columns |= continuous_columns(request, n, speed)
    traffic, lengths = request.traffic, None
    if traffic.varies:  # a static batch is padded to its longest (expected over the batch's draws)
        batch, served = np.asarray(columns["batch"], dtype=float), np.full(n, continuous)
        lengths = candidate_lengths(traffic.prompts, traffic.outputs, batch, served, traffic.covariance, *scale)
    quantile = SERVING_QUANTILES.index(request.slo_percentile / 100)
    grouped = np.asarray(columns.get("mode", ["aggregated"] * n), dtype=object) == "disaggregated"
    keys = ("ttft", "tpot", "thr", "dev", "reason", "fl", "by", "rate", "b", "fit", "busy")
    out = {k: np.full(n, np.nan) for k in keys}
    formats = np.empty(n, dtype=object)
    for rows, scored in score_columns(columns, profile=request.profile, lengths=lengths):  # type: ignore[arg-type]
        m, serving = scored.metrics, scored.serving
        out["ttft"][rows], out["tpot"][rows] = m.ttft_s, m.tpot_s
        out["thr"][rows], out["dev"][rows], out["reason"][rows] = m.throughput_tokens_per_s, m.devices, m.reason
        out["fl"][rows], out["by"][rows] = scored.decode_step.flops, scored.decode_step.memory_bytes
        formats[rows] = scored.compute_format
        if continuous:
            out["ttft"][rows] = serving.ttft_quantiles_s[quantile]
            out["tpot"][rows] = serving.tpot_quantiles_s[quantile]
            out["rate"][rows], out["b"][rows], out["fit"][rows] = m.max_request_rate, serving.slots, serving.max_slots
            # every slot busy's rate: the rate / utilisation; a group's utilisation is its prefill pool's, and
            # without a load its rate is already the group's, whichever pool fills first
            with np.errstate(invalid="ignore", divide="ignore"):
                busy = serving.request_rate / np.where(grouped[rows], 1.0, serving.utilization)
            out["busy"][rows] = busy
    # requests/s from tokens/s: the output a request delivers (a padded batch's padding is not delivered)
    gen = np.asarray(columns["gen_len"], dtype=float)
    if lengths is not None:
        gen = lengths["gen_len"] - lengths["gen_padding"]
    factor = np.broadcast_to(np.asarray(speed, dtype=float), (n,))
    cap = request.max_utilization * out["busy"]
    capped = continuous & (cap < out["rate"])
    with np.errstate(invalid="ignore", divide="ignore"):
        capacity = (np.where(capped, cap, out["rate"]) if continuous else out["thr"] / gen) * factor
    return Grid(
        target=np.asarray(target),
        quant=np.asarray(columns["quant"], dtype=object),
        kv=np.asarray(columns["kv"], dtype=object),
        tp=np.asarray(columns["tp"]),
        pp=np.asarray(columns["pp"]),
        ep=np.asarray(columns["ep"]),
        batch=np.asarray(columns["max_num_seqs"] if continuous else columns["batch"]),
        spec_tokens=np.asarray(columns.get("spec_tokens", np.zeros(n, dtype=np.int64))),
        instances=np.asarray(columns.get("replicas", np.ones(n, dtype=np.int64))),
        prefill_instances=np.where(grouped, np.asarray(columns.get("prefill_replicas", np.zeros(n))), 0),
        ttft_s=out["ttft"] / factor,
        tpot_s=out["tpot"] / factor,
        capacity_rps=capacity,
        devices=out["dev"],
        reason=out["reason"].astype(np.int64),
        decode_flops=out["fl"],
        decode_bytes=out["by"],
        compute_format=formats,
        slots=out["b"],
        busy_slots=out["b"],
        memory_slots=out["fit"],
        capped=capped,
    )


def meets_slos(ttft: np.ndarray, tpot: np.ndarray, request: Request) -> np.ndarray:
    ok = np.ones(np.shape(ttft), dtype=bool)
    if request.ttft_s is not None:
        ok &= ttft <= request.ttft_s
    if request.tpot_s is not None:
        ok &= tpot <= request.tpot_s
    return ok


def serves(grid: Grid, request: Request) -> np.ndarray:
    """Rows that serve under the SLOs: fit in memory, serve at a positive rate, and meet the SLOs: static, at
    their batch; continuous, at their share of the sizing load where the grid has it (``Grid.loaded``; the
    capacity is the rate the SLOs allow, but the rate search and the latency at a rate may land on different
    sides of a step in the engine's state, so the latencies are checked too)."""
    ok = (grid.reason == 0) & (grid.capacity_rps > 0)
    if request.scheduler != "continuous":
        return ok & meets_slos(grid.ttft_s, grid.tpot_s, request)
    # a share equal to the capacity sits on the SLO itself, within rounding
    return ok & meets_slos(grid.ttft_s * FULL, grid.tpot_s * FULL, request) if grid.loaded else ok


def replicas_for(rate: float | np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Replicas serving ``rate`` requests/s: ceil(rate / capacity), at least one (a relative slack of 1e-12 keeps
    a ratio that is a whole number up to rounding at that number)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(1.0, np.ceil(rate / capacity * (1.0 - 1e-12)))


@dataclass(frozen=True)
class Costing:
    """A target's per-device figures in the request's pricing."""

    prices: DevicePrices
    usd_per_device_hour: float | None
    """In the chosen pricing (None: unpriced)."""
    rent_usd_per_device_hour: float | None
    """Rent of the term compared with buying (on-demand, or the reserved term when renting reserved)."""
    opex_usd_per_device_hour: float | None
    """Running an owned device (None without a purchase price or power)."""
    price_id: str | None
    """The price entry the chosen pricing's figure comes from."""
    price_factor: float
    """$ per device-hour per $ of that entry's figure (rent: 1; buy: the amortisation and server-share
    factor), and ``price_offset``: the part that does not move with it (buy: electricity)."""
    price_offset: float
    price_now: float | None
    """That entry's figure now (rent: $ per device-hour; buy: the quote in $)."""
    price: Price | None = None
    """The price behind ``usd_per_device_hour`` (rent per device-hour, or the capital cost of a device), with
    its range."""
    unit: int = 1
    """Devices paid for together: buying at a system's quote buys whole systems; renting is by the device."""

    def paid(self, devices: np.ndarray | float) -> np.ndarray:
        """Devices paid for to have ``devices`` in service: whole systems when buying at a system's quote."""
        return self.prices.bought(devices) if self.unit > 1 else np.asarray(devices, dtype=float)

    def usd_per_device_hour_at(self, position: np.ndarray | float) -> np.ndarray | float:
        """$ per device-hour with the price drawn at ``position`` (``Price.at``; 0: low end, 1: high end)."""
        if self.price is None or self.usd_per_device_hour is None:
            return np.nan if self.usd_per_device_hour is None else self.usd_per_device_hour
        return self.price.at(position) / self.price.factor * self.price_factor + self.price_offset


def assumptions(request: Request) -> CostAssumptions:
    return CostAssumptions(
        pricing=request.pricing,
        amortization_years=request.horizon_years,
        usd_per_kwh=request.usd_per_kwh,
        pue=request.pue,
        reserved_term=request.reserved_term,
        ops_share_per_year=request.ops_share_per_year,
        sheet=request.prices,
    )


def costing(target: Target, request: Request) -> Costing:
    """Per-device prices of a target in the request's pricing, with how they move with the entry behind them."""
    a = assumptions(request)
    prices = target_prices(target, a)
    rent = scenario_rent(prices, a)
    capex, power = prices.capex, prices.power_w
    opex = opex_usd_per_device_hour(capex.value, power, a) if capex is not None and power is not None else None
    if request.pricing != "buy":
        value = rent.value if rent is not None else None
        pid = rent.ids[0] if rent is not None else None
        return Costing(prices, value, value, opex, pid, 1.0, 0.0, value, rent)
    if capex is None or power is None:
        return Costing(prices, None, rent.value if rent else None, opex, None, 1.0, 0.0, None)
    per_usd = buy_usd_per_device_hour(1.0, 0.0, a)  # $/device-hour per $ of capex (energy excluded)
    energy = buy_usd_per_device_hour(0.0, power, a)
    quote = capex.value / capex.factor
    return Costing(
        prices,
        buy_usd_per_device_hour(capex.value, power, a),
        rent.value if rent is not None else None,
        opex,
        capex.ids[0],
        per_usd * capex.factor,
        energy,
        quote,
        capex,
        prices.capex_unit,
    )


@dataclass(frozen=True)
class Choice:
    """The cheapest fleet on one target, or why there is none."""

    ref: str
    target: Target
    costing: Costing
    row: int | None
    """Row of the grid (None: nothing serves the load under the SLOs and limits)."""
    replicas: int
    devices: int
    """Devices in service: replicas x devices per replica."""
    devices_paid: int
    """Devices paid for: ``devices`` rounded up to whole systems when buying at a system's quote."""
    usd_per_month: float | None
    power_kw: float | None
    """Of the devices paid for, at maximum, host included."""
    reason: str | None
    binding: str | None
    miss: float = np.inf
    """Where an SLO blocks it: the fastest latency over the SLO (the nearer to 1, the nearer to serving)."""


def _why_not(grid: Grid, rows: np.ndarray, request: Request, limited: np.ndarray | None) -> tuple[str, float]:
    """Why none of a target's configurations serves the load: the constraint that blocks the nearest, and by
    how much where it is an SLO (the fastest latency over the SLO; inf otherwise)."""
    fits = rows[grid.reason[rows] == 0]
    if len(fits) == 0:
        codes, counts = np.unique(grid.reason[rows], return_counts=True)
        memory = [c for c in codes if c in (Reason.WEIGHTS_EXCEED_MEMORY, Reason.MEMORY_EXCEEDED)]
        code = memory[0] if memory else codes[np.argmax(counts)]
        kind = "memory" if memory else "cannot run"
        return f"{kind}: {REASON_TEXT[Reason(int(code))]} in every configuration tried", np.inf
    at = " (a lone request)" if request.scheduler == "continuous" else ""
    if request.ttft_s is not None and (fastest := np.nanmin(grid.ttft_s[fits])) > request.ttft_s:
        return f"ttft: fastest TTFT{at} {fastest:.3g} s > SLO {request.ttft_s:g} s", fastest / request.ttft_s
    if request.tpot_s is not None and (fastest := np.nanmin(grid.tpot_s[fits])) > request.tpot_s:
        text = f"tpot: fastest TPOT{at} {fastest * 1e3:.3g} ms > SLO {request.tpot_s * 1e3:g} ms"
        return text, fastest / request.tpot_s
    if limited is not None and not limited.any():
        return "ttft and tpot: no configuration meets both SLOs", np.inf
    return "limits: every fleet that meets the SLOs exceeds the budget, power or device limit", np.inf


def size_fleets(request: Request, found: Sequence[tuple[str, Target]], grid: Grid) -> list[Choice]:
    """Per target, the configuration with the lowest fleet cost: the fewest devices paid for (then in service;
    under continuous batching then the fleet with the most capacity; then the lowest TPOT, TTFT, batch)."""
    ok = serves(grid, request)
    replicas = replicas_for(request.sizing_rate, grid.capacity_rps)
    devices = replicas * grid.devices
    choices = []
    for code, (ref, target) in enumerate(found):
        c = costing(target, request)
        rows = np.flatnonzero(grid.target == code)
        paid = c.paid(devices[rows])
        allowed = ok[rows].copy()
        power_w = c.prices.power_w
        if request.max_devices is not None:
            allowed &= paid <= request.max_devices
        if request.max_power_kw is not None:  # unknown power cannot be shown to meet a power limit
            allowed &= paid * power_w / units.WATTS_PER_KW <= request.max_power_kw if power_w is not None else False
        if request.budget_usd_per_month is not None and c.usd_per_device_hour is not None:
            allowed &= paid * c.usd_per_device_hour * HOURS_PER_MONTH <= request.budget_usd_per_month
        good = np.flatnonzero(allowed)
        if len(good) == 0:
            reason, miss = _why_not(grid, rows, request, ok[rows])
            if request.max_power_kw is not None and power_w is None and ok[rows].any():
                reason = "limits: its power is unknown (no TDP or system power), so no power limit can be met"
            choices.append(Choice(ref, target, c, None, 0, 0, 0, None, None, reason, None, float(miss)))
            continue
        picked = rows[good]
        # ties: continuous, the fleet with the most capacity (headroom at the same cost; its replicas may differ
        # in devices and number); then the lowest TPOT, TTFT, batch
        fleet = replicas[picked] * grid.capacity_rps[picked]
        headroom = -fleet if request.scheduler == "continuous" else np.zeros(len(good))
        order = np.lexsort(
            (grid.batch[picked], grid.ttft_s[picked], grid.tpot_s[picked], headroom, devices[picked], paid[good])
        )
        pick = good[order[0]]
        row = int(rows[pick])
        n_dev, n_paid, n_rep = int(devices[row]), int(paid[pick]), int(replicas[row])
        usd = n_paid * c.usd_per_device_hour * HOURS_PER_MONTH if c.usd_per_device_hour is not None else None
        kw = n_paid * power_w / units.WATTS_PER_KW if power_w is not None else None
        accumulate = target_profiles([target], request.profile)[0].record.gemm_accumulate
        binding = _binding(grid, row, ok, n_rep, request, target[0].peaks_for(accumulate), target[0])
        choices.append(Choice(ref, target, c, row, n_rep, n_dev, n_paid, usd, kw, None, binding))
    return choices


def _binding(
    grid: Grid,
    row: int,
    ok: np.ndarray,
    replicas: int,
    request: Request,
    peaks: Mapping[str, float],
    hw: HardwareSpec,
) -> str:
    """What caps this configuration's capacity per device. ``load``: one replica serves it all. Under continuous
    batching, ``Grid.limit`` (``_limits``). Static: the blocker of the first batch size past the largest that
    serves (memory, ttft, tpot), or when every batch tried serves, the resource the decode step is bound by at
    the datasheet peaks the engine gets (``peaks``: FP16-accumulate rates for an engine that accumulates so;
    compute, bandwidth)."""
    if replicas == 1:
        return "load"
    if grid.limit is not None:
        return str(grid.limit[row])
    same = np.flatnonzero(
        (grid.target == grid.target[row])
        & (grid.quant == grid.quant[row])
        & (grid.kv == grid.kv[row])
        & (grid.tp == grid.tp[row])
        & (grid.pp == grid.pp[row])
        & (grid.ep == grid.ep[row])
        & (grid.spec_tokens == grid.spec_tokens[row])
    )
    largest = grid.batch[same][ok[same]].max()
    past = same[grid.batch[same] > largest]
    if len(past):
        r = past[np.argmin(grid.batch[past])]
        if grid.reason[r] != 0:
            return "memory"
        return "ttft" if request.ttft_s is not None and grid.ttft_s[r] > request.ttft_s else "tpot"
    peak = peaks.get(str(grid.compute_format[row])) or max(peaks.values())
    compute_s = grid.decode_flops[row] / peak
    memory_s = grid.decode_bytes[row] / hw.memory_bandwidth_bytes_per_s
    return "compute" if compute_s >= memory_s else "bandwidth"


def tokens_per_month(request: Request) -> float:
    """Output tokens served a month at the average load (the mean output where lengths vary)."""
    return request.rate * request.mean_output_tokens * HOURS_PER_MONTH * units.SECONDS_PER_HOUR
