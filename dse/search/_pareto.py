"""Pareto fronts and hypervolume over a space's objectives (non-dominated sorting by moocore)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.space import ObjectiveRecord

HV_MARGIN = 0.1
"""Reference point = nadir + 10 % of the ideal-nadir range (per objective, after normalisation)."""


def objective_points(columns: Any, objectives: Sequence[ObjectiveRecord]) -> NDArray[np.float64]:
    """(N x k) values of ``objectives`` (a space's ``record.objectives``) in ``columns`` (a dict of arrays or a
    DataFrame), all to be minimised: maximised metrics are negated."""
    cols = [
        -np.asarray(columns[o.metric], dtype=np.float64)
        if o.maximize
        else np.asarray(columns[o.metric], dtype=np.float64)
        for o in objectives
    ]
    return np.stack(cols, axis=1)


def pareto_indices(columns: dict[str, Any], objectives: Sequence[ObjectiveRecord]) -> NDArray[np.intp]:
    """Rows of ``columns`` on the front, in candidate-id order: feasible, finite objectives, not dominated by
    any other, one row per candidate id.

    Ties are kept: candidates with equal objective values (an int8 and an fp8 configuration with the same
    metrics, say) are all on the front. So the front is a function of the set of candidates evaluated, not of
    the order they arrived in: the same space and seed give the same front on any executor, chunking,
    interruption and resume.
    """
    import moocore

    points = objective_points(columns, objectives)
    ok = np.flatnonzero(np.asarray(columns["feasible"], dtype=bool) & np.all(np.isfinite(points), axis=1))
    if not len(ok):
        return ok
    ids = np.asarray(columns["candidate_id"])[ok]
    _, first = np.unique(ids, return_index=True)  # sorted by id; a repeated candidate (cache hit) counts once
    ok = ok[first]
    mask = moocore.is_nondominated(points[ok], keep_weakly=True)
    return ok[mask]


@dataclass(frozen=True)
class Normalisation:
    """How objective values become the unit box for hypervolume: log10, then (x - ideal) / (nadir - ideal).

    Store it with a hypervolume: two hypervolumes compare only under the same normalisation.
    """

    ideal: tuple[float, ...]
    nadir: tuple[float, ...]

    @classmethod
    def of_front(cls, points: NDArray[np.float64]) -> Normalisation:
        logged = _log(points)
        return cls(tuple(logged.min(axis=0)), tuple(logged.max(axis=0)))

    def apply(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        ideal, nadir = np.asarray(self.ideal), np.asarray(self.nadir)
        span = np.where(nadir > ideal, nadir - ideal, 1.0)
        return (_log(points) - ideal) / span  # type: ignore[no-any-return]


def _log(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signed log10: objectives span orders of magnitude (latency, cost); negated maxima stay negative."""
    return np.sign(points) * np.log10(np.maximum(np.abs(points), 1e-300))  # type: ignore[no-any-return]


def hypervolume(points: NDArray[np.float64], norm: Normalisation) -> float:
    """Hypervolume of minimised ``points`` in the normalised box with reference point 1 + margin."""
    import moocore

    if not len(points):
        return 0.0
    scaled = norm.apply(points)
    ref = np.full(points.shape[1], 1.0 + HV_MARGIN)
    inside = scaled[np.all(scaled < ref, axis=1)]
    return float(moocore.hypervolume(inside, ref=ref)) if len(inside) else 0.0
