"""``dse calibrate``: an efficiency profile fitted to measurements, by robust least squares.

The physics stays fixed; the fit moves only the profile's efficiencies, the parameters that say how far real
kernels get from the roofline: ``bandwidth_efficiency``, ``compute_efficiency`` and ``kernel_overhead_us``.
Each row's residual is ``log(predicted / measured)`` (symmetric in over- and under-prediction, unit-free, so a
latency and a throughput weigh alike); the loss is soft-L1 with scale 0.1 (about 10 %), so a few rows the
physics cannot explain (another engine's overheads, a transcription error) do not drag the fit. The fitted
profile keeps the rows it was fitted on, their residuals, and the date.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse.calibrate._measurements import Measurement
from dse.calibrate._validate import predict
from dse.catalog import EfficiencyProfile, FitRecord, ProfileRecord, efficiency_profile, load_profile
from dse.errors import InputError

PARAMETERS = ("bandwidth_efficiency", "compute_efficiency", "kernel_overhead_us")
"""What a fit moves, in this order."""
BOUNDS = ((0.02, 1.0), (0.02, 1.0), (0.0, 100.0))
"""Physical ranges: an efficiency is a share of the peak; kernel overhead in microseconds."""
LOSS_SCALE = 0.1
"""Residuals (log ratios) beyond about 10 % weigh linearly, not quadratically (soft-L1)."""
MIN_ROWS = 3


@dataclass(frozen=True)
class Fit:
    record: ProfileRecord
    rows: int
    """Rows fitted (feasible under both the base and the fitted profile)."""
    before: float
    """Median |error| under the base profile."""
    after: float
    """Median |error| under the fitted one."""


def _with(base: ProfileRecord, values: Sequence[float] | np.ndarray, **extra: object) -> ProfileRecord:
    return base.model_copy(update=dict(zip(PARAMETERS, (float(v) for v in values), strict=True)) | extra)


def _residuals(rows: Sequence[Measurement], profile: EfficiencyProfile) -> np.ndarray:
    table = predict(rows, profile)
    return np.log(table["predicted"].to_numpy() / table["measured"].to_numpy())


def calibrate(measurements: Sequence[Measurement], *, base: str = "default", profile_id: str = "fitted") -> Fit:
    """Fit ``PARAMETERS`` of the ``base`` profile to the measurements (rows of every scenario given)."""
    from scipy.optimize import least_squares

    start = load_profile(base).record
    first = _residuals(measurements, efficiency_profile(start))
    usable = [m for m, r in zip(measurements, first, strict=True) if np.isfinite(r)]
    if len(usable) < MIN_ROWS:
        raise InputError(f"{len(usable)} rows the model can score; a fit needs at least {MIN_ROWS}")
    x0 = np.asarray([getattr(start, name) for name in PARAMETERS], dtype=float)
    lower, upper = (np.asarray(b, dtype=float) for b in zip(*BOUNDS, strict=True))

    def residuals(values: np.ndarray) -> np.ndarray:
        r = _residuals(usable, efficiency_profile(_with(start, values)))
        return np.where(np.isfinite(r), r, 10.0)  # a row that stops fitting in memory: a large, finite miss

    solution = least_squares(
        residuals,
        np.clip(x0, lower, upper),
        bounds=(lower, upper),
        loss="soft_l1",
        f_scale=LOSS_SCALE,
        x_scale=np.maximum(np.abs(x0), 1.0),
    )
    final = residuals(solution.x)
    fit = FitRecord(
        rows=[m.record.id for m in usable],
        residuals=[round(float(r), 6) for r in final],
        method=f"scipy least_squares, soft_l1 loss, f_scale {LOSS_SCALE}, log(predicted / measured); base {base}",
        date=datetime.date.today().isoformat(),
    )
    description = f"Fitted to {len(usable)} measurements by `dse calibrate` (base profile: {base})."
    record = _with(start, solution.x, id=profile_id, description=description, fit=fit, provenance=None)
    before = float(np.median(np.abs(np.expm1(first[np.isfinite(first)]))))
    after = float(np.median(np.abs(np.expm1(final))))
    return Fit(ProfileRecord.model_validate(record.model_dump()), len(usable), before, after)
