"""Which dominated points a chart draws: the front is always drawn in full; the rest is thinned so that a run
of millions of candidates stays a chart of a few megabytes that a browser draws at once.

The rule (docs/report.md): lay a grid of ``CELLS`` cells per axis over the chart as drawn (in log10 on a log
axis) and keep, for each group (hardware) and each occupied cell, the first candidate in evaluation order.
What the eye sees, the cloud's extent and density per hardware, survives; points on top of each other don't.
Points a log axis cannot show (zero, negative) and unknown values are dropped, and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CELLS = 100
"""Grid cells per axis for a 2-D chart (a 600-pixel axis: one cell per ~6 pixels, about a marker's width);
measured on a 2-million-candidate run: 160 cells made a 15 MB page, 100 keep it under 10 MB
(docs/benchmarks.md)."""
CELLS_3D = 48
"""Grid cells per axis for a 3-D chart (a rotated cloud needs fewer to look the same)."""


@dataclass(frozen=True)
class Axis:
    """One coordinate of the chart: values as drawn, and whether the axis is logarithmic."""

    values: np.ndarray
    log: bool


def drawable(axes: Sequence[Axis]) -> np.ndarray:
    """Rows every axis can draw: finite, and positive on log axes."""
    ok = np.ones(len(axes[0].values), dtype=bool)
    for axis in axes:
        values = np.asarray(axis.values, dtype=float)
        ok &= np.isfinite(values) & ((values > 0) if axis.log else True)
    return ok


def thin(axes: Sequence[Axis], groups: np.ndarray, cells: int = CELLS) -> np.ndarray:
    """Positions of the rows kept: the first row of each (group, grid cell), among the drawable rows,
    in row order."""
    ok = np.flatnonzero(drawable(axes))
    if not len(ok):
        return ok
    key = np.asarray(groups)[ok].astype(np.int64)
    for axis in axes:
        values = np.asarray(axis.values, dtype=float)[ok]
        values = np.log10(values) if axis.log else values
        low, high = values.min(), values.max()
        span = high - low if high > low else 1.0
        cell = np.minimum(((values - low) / span * cells).astype(np.int64), cells - 1)
        key = key * cells + cell
    _, first = np.unique(key, return_index=True)
    return ok[np.sort(first)]


def spans_decades(values: np.ndarray, ratio: float = 30.0) -> bool:
    """A log axis reads better: every value positive and the largest at least ``ratio`` times the smallest
    (about one and a half decades)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return bool(len(values)) and bool(values.min() > 0) and values.max() >= ratio * values.min()
