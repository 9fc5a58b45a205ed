"""Exact sums of a roofline over decode positions: Σ_j max(u0 + u1 j, v0 + v1 j) in closed form.

A decode-attention operator's FLOPs and bytes are linear in the keys it attends to (``physics.attention``),
so its roofline time at position j is the max of two lines in j; summing it position by position (as the
reference evaluator does) and summing it here give the same number.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def _series(first: Array | float, last: Array, c0: Array, c1: Array) -> Array:
    """Sum over integers j in [first, last] of (c0 + c1 j); zero where the range is empty."""
    count, middle = _range_sums(first, last)
    return count * c0 + middle * c1  # type: ignore[no-any-return]


def _range_sums(first: Array | float, last: Array) -> tuple[Array, Array]:
    """The number of integers in [first, last] and their sum (both 0 where the range is empty)."""
    count = np.maximum(last - first + 1.0, 0.0)
    return count, (first + last) * count / 2.0


def sum_max_linear(u0: Array, u1: Array, v0: Array, v1: Array, first: Array | float, last: Array) -> Array:
    """Exact sum over integers j in [first, last] of max(u0 + u1 j, v0 + v1 j).

    The difference d(j) = (u0 - v0) + (u1 - v1) j is linear, so it is positive on one side of its root; the
    sum is the v-series plus the positive part of d, both arithmetic series. Where d has one sign at both
    ends of the range it has it throughout, and the positive part is 0 or the whole d-series; only the
    ranges d crosses zero in need the root (rare: an operator that turns compute-bound within one
    generation), and are computed apart. Vectorised; empty ranges give 0.
    """
    d0, d1 = u0 - v0, u1 - v1
    at_first, at_last = d0 + d1 * first > 0, d0 + d1 * last > 0  # d > 0 at either end
    count, middle = _range_sums(first, last)  # once for both series (the bounds are often per candidate only)
    total = count * v0 + middle * v1
    above = at_first & at_last
    if np.any(above):
        total += above * (count * d0 + middle * d1)
    crossing = np.flatnonzero(at_first != at_last)
    if len(crossing):
        some = [_at(x, total.shape, crossing) for x in (d0, d1, first, last)]
        total.flat[crossing] += _positive_part(*some)
    return total


def _at(values: Array | float, shape: tuple[int, ...], flat: NDArray[np.intp]) -> Array:
    """``values`` broadcast to ``shape``, at flat (C-order) indices ``flat``, without materialising the
    broadcast (an array of the last axis alone, as the lines' bounds are, is indexed by the column)."""
    values = np.asarray(values)
    if values.shape == shape:
        return values.ravel()[flat]  # type: ignore[no-any-return]
    if values.ndim == 0:
        return np.full(len(flat), float(values))
    if values.shape == shape[-1:]:
        return values[flat % shape[-1]]  # type: ignore[no-any-return]
    return np.broadcast_to(values, shape).ravel()[flat]  # type: ignore[no-any-return]


def _positive_part(d0: Array, d1: Array, first: Array, last: Array) -> Array:
    """Sum over integers j in [first, last] of max(d0 + d1 j, 0), for lines whose sign differs at the two
    ends (so d1 != 0): the integers past the root when the line rises, those before it when it falls."""
    root = -d0 / d1
    rising = d1 > 0
    positive_first = np.where(rising, np.maximum(first, np.floor(root) + 1.0), first)
    positive_last = np.where(rising, last, np.minimum(last, np.ceil(root) - 1.0))
    return _series(positive_first, positive_last, d0, d1)
