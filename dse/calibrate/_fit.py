"""``dse calibrate``: an efficiency profile fitted to measurements, by robust least squares, with error bars.

The physics stays fixed; the fit moves only the profile's efficiencies, the parameters that say how far real
kernels get from the roofline: ``bandwidth_efficiency``, ``compute_efficiency`` (16-bit matmuls, attention,
vector work), ``kernel_overhead_us``, and the linear layers' efficiency in each low-precision compute format
the rows use (``compute_efficiency_by_format``: FP8 and FP4 kernels reach a different share of their peak
than 16-bit ones). Each row's residual is ``log(predicted / measured)`` (symmetric in over- and
under-prediction, unit-free, so a latency and a throughput weigh alike); the loss is soft-L1 with scale 0.1
(about 10 %), so a few rows the physics cannot explain (another engine's overheads, a transcription error) do
not drag the fit.

Error bars are split-conformal: each measured accelerator in turn is left out, the profile refitted on the
others (``_left_out``), and the left-out rows predicted. The p10/p50/p90 of measured / predicted over those
held-out rows (per quantity) is the spread to expect on hardware (``IntervalRecord``). A fitted profile keeps
its rows, residuals, hardware, parameters, method and date.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dse.calibrate._measurements import LATENCIES, Measurement
from dse.calibrate._validate import predict
from dse.catalog import (
    CALIBRATED,
    GENERIC,
    QUANTILES,
    QUANTITIES,
    EfficiencyProfile,
    FitRecord,
    IntervalRecord,
    ProfileRecord,
    check_profile_id,
    efficiency_profile,
    load_profile,
    load_target,
    profile_catalog,
)
from dse.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

PARAMETERS = ("bandwidth_efficiency", "compute_efficiency", "kernel_overhead_us")
"""What every fit moves, in this order; then one efficiency per low-precision format the rows compute in."""
BOUNDS = {"bandwidth_efficiency": (0.02, 0.92), "compute_efficiency": (0.02, 0.9), "kernel_overhead_us": (0.0, 100.0)}
"""Physical ranges: an efficiency is a share of the peak; kernel overhead in microseconds."""
LOW_PRECISION = ("fp8", "int8", "fp6", "fp4", "int4")
"""Compute formats whose linear-layer efficiency is fitted on its own when enough rows use it."""
FORMAT_PREFIX = "compute_efficiency_by_format."
LOSS_SCALE = 0.1
"""Residuals (log ratios) beyond about 10 % weigh linearly, not quadratically (soft-L1)."""
MIN_ROWS = 3
"""Rows a fit needs, and rows a format needs for its own efficiency."""
ENGINE_WIDE = ("bandwidth_efficiency", "kernel_overhead_us")
"""What an engine's decode kernels reach on any device (the share of peak bandwidth its mat-vec kernels stream,
its launch and tail per kernel): where a family's remaining rows cannot identify them (an accelerator left
out), the engine's decode rows on the other accelerators stand in for the generic figures."""
FITTED_POOL = "fitted profiles"
MIN_INTERVAL_ROWS = 5
"""Held-out rows a quantity needs for its interval (fewer: the generic profile's interval stands in)."""
QUANTITY_OF = {
    "tpot_s": ("tpot_s", -1.0),
    "ttft_s": ("ttft_s", -1.0),
    "prefill_tokens_per_s": ("ttft_s", 1.0),
    "throughput_tokens_per_s_per_device": ("throughput_tokens_per_s", -1.0),
}
"""Metric -> (quantity its interval speaks of, sign turning log(predicted / measured) into log(measured /
predicted) of that quantity): a prefill rate over-predicted by x is a TTFT under-predicted by x."""


@dataclass(frozen=True)
class Fit:
    record: ProfileRecord
    rows: int
    """Rows fitted (feasible under the base profile)."""
    before: float
    """Median |error| under the base profile."""
    after: float
    """Median |error| under the fitted one."""
    held_out: float | None
    """Median |error| of the left-out rows (leave-one-hardware-out); None with one accelerator."""
    held_out_residuals: dict[str, float]
    """Row id -> log(predicted / measured) with the row's accelerator left out of the fit."""
    left_out: int = 0
    """Rows selected but not fitted: the model calls them infeasible as measured, or their figure depends on a
    load they do not give (``dse validate`` lists both, with their reasons)."""
    unidentified: int = 0
    """Rows selected but not fitted because they compute in a format too few rows identify (``_unidentified``)."""


def accelerator_of(m: Measurement) -> str:
    return load_target(m.record.hardware)[0].id


def _accelerators(refs: Sequence[str]) -> list[str]:
    """The accelerator ids of ``refs`` (accelerator or system ids, or hardware files); an unknown one raises
    ``InputError`` naming it, with the near misses (a misspelt id would select no row and say only that)."""
    return [load_target(ref)[0].id for ref in refs]


def select(
    measurements: Sequence[Measurement], *, hardware: Sequence[str] = (), engine: str | None = None
) -> list[Measurement]:
    """The rows measured on one of ``hardware``'s accelerators (all when empty) with ``engine`` (any when
    None)."""
    chosen = set(hardware)
    return [
        m
        for m in measurements
        if (not chosen or accelerator_of(m) in chosen) and (engine is None or m.record.engine == engine)
    ]


def _with(base: ProfileRecord, names: Sequence[str], values: Sequence[float] | np.ndarray) -> ProfileRecord:
    update: dict[str, object] = {}
    by_format = dict(base.compute_efficiency_by_format)
    for name, value in zip(names, (float(v) for v in values), strict=True):
        if name.startswith(FORMAT_PREFIX):
            by_format[name.removeprefix(FORMAT_PREFIX)] = value  # type: ignore[index]
        else:
            update[name] = value
    return base.model_copy(update=update | {"compute_efficiency_by_format": by_format})


def _residuals(rows: Sequence[Measurement], profile: EfficiencyProfile) -> tuple[np.ndarray, np.ndarray]:
    """log(predicted / measured) per row (NaN where the row does not fit), and each row's compute format."""
    table = predict(rows, profile)
    r = np.log(table["predicted"].to_numpy() / table["measured"].to_numpy())
    return np.where(table["feasible"].to_numpy(), r, np.nan), table["compute_format"].to_numpy()


def _solver(start: ProfileRecord, names: Sequence[str]) -> Callable[[Sequence[Measurement], np.ndarray], np.ndarray]:
    """A least-squares fit of ``names`` of ``start`` to some rows, from a starting vector."""
    from scipy.optimize import least_squares

    bounds = [BOUNDS.get(n, BOUNDS["compute_efficiency"]) for n in names]
    lower, upper = (np.asarray(b, dtype=float) for b in zip(*bounds, strict=True))

    def solve(rows: Sequence[Measurement], x0: np.ndarray) -> np.ndarray:
        def residuals(values: np.ndarray) -> np.ndarray:
            r, _ = _residuals(rows, efficiency_profile(_with(start, names, values)))
            return np.where(np.isfinite(r), r, 10.0)  # a row that stops fitting in memory: a large, finite miss

        x0 = np.clip(x0, lower, upper)
        solution = least_squares(
            residuals,
            x0,
            bounds=(lower, upper),
            loss="soft_l1",
            f_scale=LOSS_SCALE,
            x_scale=np.maximum(np.abs(x0), 1.0),
        )
        return np.asarray(solution.x)

    return solve


def conformal_ratios(log_ratios: np.ndarray) -> list[float]:
    """measured / predicted at ``QUANTILES`` from held-out log ratios: split-conformal order statistics of the
    sorted values, counted from the bottom: rank ceil((n + 1) q) for q > 0.5, floor((n + 1) q) for q < 0.5, the
    median between. With n >= 9 a new exchangeable row falls under the upper one with probability at least q;
    with fewer rows the rank exceeds n and the largest (smallest) value stands in, a weaker guarantee."""
    x = np.sort(np.asarray(log_ratios, dtype=float))
    n = len(x)
    out = []
    for q in QUANTILES:
        if q > 0.5:
            k = min(n, math.ceil((n + 1) * q)) - 1
        elif q < 0.5:
            k = max(1, math.floor((n + 1) * q)) - 1
        else:
            out.append(float(np.exp(np.median(x))))
            continue
        out.append(float(np.exp(x[k])))
    return out


def interval_table(rows: Sequence[Measurement], residuals: np.ndarray) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per quantity: ``conformal_ratios`` of the rows' residuals (log(predicted / measured)), and the count;
    quantities with fewer than ``MIN_INTERVAL_ROWS`` finite residuals are left out. Only rows of a mean count:
    an interval brackets a predicted mean, and a percentile's residual (a row's ``statistic``) is another
    quantity's error."""
    by: dict[str, list[float]] = {q: [] for q in QUANTITIES}
    for m, r in zip(rows, residuals, strict=True):
        if np.isfinite(r) and m.record.figure == "mean":
            quantity, sign = QUANTITY_OF[m.record.metric]
            by[quantity].append(sign * float(r))
    ratios = {q: conformal_ratios(np.asarray(v)) for q, v in by.items() if len(v) >= MIN_INTERVAL_ROWS}
    return ratios, {q: len(v) for q, v in by.items() if len(v) >= MIN_INTERVAL_ROWS}


def interval_record(ratios: dict[str, list[float]], counts: dict[str, int], held_out: str) -> IntervalRecord:
    """An ``IntervalRecord`` of held-out ratios (``held_out``: which rows were held out, and how)."""
    return IntervalRecord(
        method=f"split-conformal: quantiles {list(QUANTILES)} of measured / predicted over {held_out}",
        held_out={q: [round(v, 4) for v in r] for q, r in ratios.items()},
        rows=counts,
    )


def held_out_interval(ratios: dict[str, list[float]], counts: dict[str, int], pooled: str) -> IntervalRecord:
    """An ``IntervalRecord`` of leave-one-accelerator-out ratios (``pooled``: whose held-out rows)."""
    how = f"the held-out rows of {pooled}, each accelerator left out of its fit in turn and predicted by the refit"
    return interval_record(ratios, counts, how)


def residual_interval(measurements: Sequence[Measurement], profile: str) -> IntervalRecord:
    """The interval record of a profile that was not fitted to ``measurements``: every row is held out, so
    its residuals are the held-out spread directly (the generic profile's, on all published rows)."""
    residuals, _ = _residuals(measurements, load_profile(profile))
    ratios, counts = interval_table(measurements, residuals)
    return interval_record(ratios, counts, f"{len(measurements)} measurements the profile was not fitted to")


def identified(rows: Sequence[Measurement], formats: np.ndarray) -> tuple[str, ...]:
    """The parameters the rows pin down (at least ``MIN_ROWS`` rows each); the others keep the base's values.

    Bandwidth efficiency and kernel overhead need decode-latency rows (``tpot_s``): a max-throughput row
    mixes them with the batch the engine reached, which the fit would bend them to explain. Compute
    efficiency needs prefill or max-throughput rows: the 16-bit one, such rows computing their linear layers
    at 16 bits (where every row computes them in FP8 or FP4, only attention and element-wise work read it,
    too little of a step to pin it: MLPerf's nine AMD rows, all one workload in FP8, let it drift from 0.37
    to 0.07 with the residuals unchanged); a low-precision format's, such rows computing in it.
    A percentile (a row's ``statistic``) is fitted as its own target but identifies nothing: a p99 TPOT is
    mostly the prompts its steps carried, not a decode kernel's bandwidth."""
    mean = np.asarray([m.record.figure == "mean" for m in rows], dtype=bool)
    metric = np.asarray([m.record.metric for m in rows])
    decode = np.count_nonzero((metric == "tpot_s") & mean)
    compute = (metric != "tpot_s") & mean
    names = ["bandwidth_efficiency", "kernel_overhead_us"] if decode >= MIN_ROWS else []
    sixteen = ~np.isin(formats, LOW_PRECISION)
    names += ["compute_efficiency"] if np.count_nonzero(compute & sixteen) >= MIN_ROWS else []
    names += [FORMAT_PREFIX + f for f in LOW_PRECISION if np.count_nonzero(compute & (formats == f)) >= MIN_ROWS]
    return tuple(names)


def _unidentified(rows: Sequence[Measurement], formats: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Which rows are prefill or throughput rows (their figure mostly compute) in a format whose efficiency
    ``names`` does not move: a low-precision format's own, or the 16-bit one. Held at a figure no row pins down
    (the generic one), they would bend the parameters that are fitted, so fits leave them out. Decode rows
    stay whatever their format: they identify bandwidth and overhead, and compute is a small part of them."""
    compute = np.asarray([m.record.metric != "tpot_s" for m in rows], dtype=bool)
    low = np.isin(formats, LOW_PRECISION)
    moved = np.asarray(
        [
            FORMAT_PREFIX + str(f) in names if is_low else "compute_efficiency" in names
            for f, is_low in zip(formats, low, strict=True)
        ],
        dtype=bool,
    )
    return compute & ~moved


def _median_abs(log_ratios: np.ndarray) -> float:
    finite = log_ratios[np.isfinite(log_ratios)]
    return float(np.median(np.abs(np.expm1(finite)))) if len(finite) else math.nan


BEYOND_IDEAL = 10.0
"""How far beyond the ideal roofline (every kernel at peak bandwidth and FLOP/s, no overhead) a measurement may
read before ``calibrate`` refuses it as a unit slip: no engine beats the roofline, but rows read in ways the
model only approximates may seem to (a server row's TTFT at a concurrency, scored as a static batch, reads 2.2x
beyond it in calibration/holdout.csv; expert routing taken as uniform); a slip of units (milliseconds for
seconds: 1,000x) lies far beyond ten."""


def _check_physical(rows: Sequence[Measurement]) -> None:
    """Refuse (``InputError`` naming the line) the first row faster than the ideal roofline by more than
    ``BEYOND_IDEAL``: a value in the wrong unit (milliseconds for seconds, say) would otherwise be fitted
    as an efficiency far beyond one."""
    if not rows:
        return
    ideal, _ = _residuals(rows, efficiency_profile(load_profile("ideal").record))  # log(ideal / measured)
    for m, r in zip(rows, ideal, strict=True):
        beyond = r if m.record.metric in LATENCIES else -r  # a latency above the ideal's, a throughput below
        if np.isfinite(beyond) and beyond > np.log(BEYOND_IDEAL):
            quantity = "shorter" if m.record.metric in LATENCIES else "higher"
            raise InputError(
                f"line {m.line}: {m.record.metric} {m.record.value:g} is {np.exp(beyond):,.3g}x {quantity} than the"
                " ideal roofline allows (every kernel at peak, no overhead): not physical; values are SI"
                " (seconds, tokens/s), check the unit",
                source=m.source,
                field="value",
            )


def calibrate(
    measurements: Sequence[Measurement],
    *,
    base: str = "default",
    profile_id: str = "fitted",
    hardware: Sequence[str] | None = None,
    engine: str | None = None,
    cross_validate: bool = True,
    parameters: Sequence[str] = (),
    prior: Sequence[Measurement] | None = None,
) -> Fit:
    """Fit the ``base`` profile to the rows of ``hardware`` (default: the base's own ``hardware`` list, all
    rows when that is empty) measured with ``engine`` (default: the base's ``engine``, any when None); with
    ``cross_validate``, leave each accelerator out in turn for the held-out error and the intervals.
    ``parameters``: what to fit (default: what the rows identify, ``identified``). ``prior``: the engine's
    rows on any hardware, for what a left-out round's rows cannot identify (``ENGINE_WIDE``; default: the
    engine's rows among ``measurements``)."""
    check_profile_id(profile_id, "profile_id")
    start = load_profile(base).record
    hardware = start.hardware if hardware is None else _accelerators(hardware)
    engine = start.engine if engine is None else engine
    rows = select(measurements, hardware=hardware, engine=engine)
    _check_physical(rows)
    first, formats = _residuals(rows, efficiency_profile(start)) if rows else (np.empty(0), np.empty(0))
    usable = [m for m, r in zip(rows, first, strict=True) if np.isfinite(r)]
    if len(usable) < MIN_ROWS:
        raise InputError(
            f"{len(usable)} rows the model can score (hardware {', '.join(hardware) or 'any'}, engine "
            f"{engine or 'any'}); a fit needs at least {MIN_ROWS}"
        )
    formats = formats[np.isfinite(first)]
    names = tuple(parameters) if parameters else identified(usable, formats)
    unknown = [n for n in names if n not in PARAMETERS and n.removeprefix(FORMAT_PREFIX) not in LOW_PRECISION]
    if unknown or not names:
        raise InputError(
            f"cannot fit {', '.join(unknown) or 'nothing'}: expected some of {', '.join(PARAMETERS)} or "
            f"{FORMAT_PREFIX}<{'|'.join(LOW_PRECISION)}>",
            field="fit",
        )
    unidentified = 0
    if not parameters:  # rows that would bend the fit, their efficiency held at a figure no row pins down (the
        # rows that identify a parameter all stay: at least MIN_ROWS remain)
        keep = ~_unidentified(usable, formats, names)
        unidentified = len(usable) - int(np.count_nonzero(keep))
        usable, formats = [m for m, k in zip(usable, keep, strict=True) if k], formats[keep]
    start = start if parameters else _without_stale(start, names)  # --fit: the rest is the base's, as asked
    solve = _solver(start, names)
    x0 = _generic_values(names)  # one start whatever the base says: a refit of its own output moves nothing
    x = np.round(solve(usable, x0), 4)  # the profile as written; its residuals are those of these values
    final, _ = _residuals(usable, efficiency_profile(_with(start, names, x)))
    measured_on = sorted({accelerator_of(m) for m in usable})

    held = np.full(len(usable), np.nan)
    if cross_validate and len(measured_on) > 1:
        pool = select(measurements if prior is None else prior, engine=engine)
        held = _left_out(start, names, usable, formats, fixed=bool(parameters), prior=pool)
    held_out, counts = interval_table(usable, held)
    today = datetime.date.today().isoformat()
    method = f"scipy least_squares, soft_l1 loss, f_scale {LOSS_SCALE}, log(predicted / measured); base {start.id}"
    fit = FitRecord(
        rows=[m.record.id for m in usable],
        residuals=[round(float(r), 6) if np.isfinite(r) else 10.0 for r in final],
        method=method,
        date=today,
        hardware=measured_on,
        parameters=list(names),
    )
    interval = held_out_interval(held_out, counts, "this fit")
    description = (
        f"Fitted to {len(usable)} measurements on {', '.join(measured_on)}"
        + (f" ({engine})" if engine else "")
        + f" by `dse calibrate` (base profile: {start.id})."
    )
    record = _with(start, names, x).model_copy(
        update={
            "id": profile_id,
            "description": description,
            "fit": fit,
            "interval": interval if held_out else None,
            "provenance": None,
            "engine": engine,
            "hardware": list(hardware),
        }
    )
    record = ProfileRecord.model_validate(record.model_dump())
    return Fit(
        record,
        len(usable),
        before=_median_abs(first),
        after=_median_abs(final),
        held_out=_median_abs(held) if np.isfinite(held).any() else None,
        held_out_residuals={m.record.id: float(r) for m, r in zip(usable, held, strict=True) if np.isfinite(r)},
        left_out=len(rows) - len(usable) - unidentified,
        unidentified=unidentified,
    )


def _without_stale(start: ProfileRecord, names: Sequence[str]) -> ProfileRecord:
    """``start`` with what its own earlier fit moved and this one does not: a refit whose rows no longer
    identify a parameter (rows moved to another family, a format no longer measured) would otherwise carry
    the old fit's value, which no row of it supports, into the new profile. Such a parameter takes the
    generic figure; such a format's own efficiency is dropped, the format falling back to the profile's
    ``compute_efficiency``. Parameters the base sets by hand (no fit of its own named them) keep their
    values; so does everything when the caller names what to fit (``calibrate``'s ``parameters``)."""
    before = start.fit.parameters if start.fit is not None else []
    stale = [n for n in before if n not in names]
    if not stale:
        return start
    by_format = dict(start.compute_efficiency_by_format)
    for name in stale:
        if name.startswith(FORMAT_PREFIX):
            by_format.pop(name.removeprefix(FORMAT_PREFIX), None)  # type: ignore[call-overload]
    start = start.model_copy(update={"compute_efficiency_by_format": by_format})
    plain = [n for n in stale if not n.startswith(FORMAT_PREFIX)]
    return _with(start, plain, _generic_values(plain)) if plain else start


def _values(record: ProfileRecord, names: Sequence[str]) -> np.ndarray:
    """``record``'s figures for ``names`` (a format without its own efficiency: ``compute_efficiency``)."""
    own = record.compute_efficiency_by_format
    return np.asarray(
        [
            own.get(n.removeprefix(FORMAT_PREFIX), record.compute_efficiency)  # type: ignore[call-overload]
            if n.startswith(FORMAT_PREFIX)
            else getattr(record, n)
            for n in names
        ]
    )


def _generic_values(names: Sequence[str]) -> np.ndarray:
    """The generic profile's figures for ``names``: what a fit with no rows left would have."""
    return _values(load_profile(GENERIC).record, names)


def _left_out(
    start: ProfileRecord,
    names: Sequence[str],
    rows: Sequence[Measurement],
    formats: np.ndarray,
    *,
    fixed: bool,
    prior: Sequence[Measurement] = (),
) -> np.ndarray:
    """log(predicted / measured) of each row with its accelerator left out: the fit redone from the generic
    figures on the other accelerators' rows, moving only what those rows identify (all of ``names`` when
    ``fixed``; the prefill and throughput rows in a format whose efficiency they no longer identify, the
    16-bit one included, are left out of it, since a generic figure for it would bend the others:
    ``_unidentified``). ``ENGINE_WIDE`` figures those rows cannot identify come from the
    engine's decode rows on the other accelerators (``prior``, at least ``MIN_ROWS``), else stay generic; with
    nothing identified, those figures alone. Nothing of the left-out rows, nor of a fit that used them,
    reaches their prediction."""
    neutral = _with(start.model_copy(update={"compute_efficiency_by_format": {}}), names, _generic_values(names))
    accelerators = np.asarray([accelerator_of(m) for m in rows])
    held = np.full(len(rows), np.nan)
    for accelerator in sorted(set(accelerators)):
        out = accelerators == accelerator
        train = [m for m, o in zip(rows, out, strict=True) if not o]
        test = [m for m, o in zip(rows, out, strict=True) if o]
        moved = tuple(names) if fixed else tuple(n for n in identified(train, formats[~out]) if n in names)
        if not fixed:  # what this round cannot identify would bend the rest
            bending = _unidentified(train, formats[~out], moved)
            train = [m for m, b in zip(train, bending, strict=True) if not b]
        base = neutral
        wide = tuple(n for n in ENGINE_WIDE if n in names and n not in moved)
        decode = [m for m in prior if m.record.metric == "tpot_s" and accelerator_of(m) != accelerator] if wide else []
        if len(decode) >= MIN_ROWS:
            base = _with(neutral, wide, _solver(neutral, wide)(decode, _generic_values(wide)))
        record = base
        if moved and len(train) >= MIN_ROWS:
            record = _with(base, moved, _solver(base, moved)(train, _values(base, moved)))
        held[out], _ = _residuals(test, efficiency_profile(record))
    return held


def cross_validated(measurements: Sequence[Measurement]) -> pd.DataFrame:
    """``predict`` with the ``calibrated`` profiles, every row predicted without its own accelerator's
    measurements: rows a fitted family profile was fitted on are predicted by that family refitted without
    their accelerator (leave-one-hardware-out); the others were never fitted on (``held_out`` column)."""
    table = predict(measurements, CALIBRATED)
    table["held_out"] = ~table["calibrated"].to_numpy(dtype=bool)
    for profile in profile_catalog().values():
        if profile.record.fit is None or not profile.record.hardware:
            continue
        mine = [m for m, p in zip(measurements, table["profile"], strict=True) if p == profile.id]
        if not mine:
            continue
        mine_rows = table["profile"] == profile.id
        try:
            engine_rows = select(measurements, engine=profile.record.engine)
            fit = calibrate(mine, base=profile.id, profile_id=profile.id, prior=engine_rows)
            residuals = fit.held_out_residuals
        except InputError:  # too few of these rows to refit: none of them can be predicted held out
            residuals = {}
        at = table["id"].isin(residuals) & mine_rows
        r = table.loc[at, "id"].map(residuals).to_numpy(dtype=float)
        table.loc[at, "predicted"] = table.loc[at, "measured"].to_numpy() * np.exp(r)
        table.loc[at, "held_out"] = True
        # measured in the shipped fit but not predicted without it: not a held-out figure, so not scored
        table.loc[mine_rows & ~at & ~table["held_out"], "predicted"] = np.nan
    table["error"] = table["predicted"] / table["measured"] - 1.0
    table["covered"] = held_out_coverage(table)
    return table


def held_out_coverage(table: pd.DataFrame) -> np.ndarray:
    """Whether each row's measurement falls inside a p10-p90 interval built without its accelerator, the way
    the shipped intervals are built: ``conformal_ratios`` of the other accelerators' held-out residuals of the
    same quantity, pooled over the fitted profiles (rows of an unfitted profile: over that profile's rows),
    the generic profile's stored interval where fewer than ``MIN_INTERVAL_ROWS`` remain. NaN where the row is
    not scored. This checks the intervals on rows they were not built from."""
    quantity = table["metric"].map(lambda m: QUANTITY_OF[m][0]).to_numpy()
    sign = table["metric"].map(lambda m: QUANTITY_OF[m][1]).to_numpy(dtype=float)
    log_ratio = sign * np.log(table["predicted"].to_numpy(dtype=float) / table["measured"].to_numpy(dtype=float))
    usable = table["feasible"].to_numpy(dtype=bool) & np.isfinite(log_ratio)
    fitted = {p.id for p in profile_catalog().values() if p.record.fit is not None}
    pool = np.asarray([FITTED_POOL if p in fitted else p for p in table["profile"]], dtype=object)
    generic = load_profile(GENERIC).record.interval
    fallback = generic.held_out if generic else {}
    covered = np.full(len(table), np.nan)
    accelerator = table["accelerator"].to_numpy()
    for i in np.flatnonzero(usable):
        same = usable & (pool == pool[i]) & (quantity == quantity[i]) & (accelerator != accelerator[i])
        if np.count_nonzero(same) >= MIN_INTERVAL_ROWS:
            lo, _, hi = conformal_ratios(log_ratio[same])
        elif quantity[i] in fallback:
            lo, _, hi = fallback[quantity[i]]
        else:
            continue
        covered[i] = float(lo <= np.exp(log_ratio[i]) <= hi)
    return covered
