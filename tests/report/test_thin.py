"""The thinning rule of dense charts (docs/report.md): one point per group and grid cell, front never thinned."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.report._thin import Axis, drawable, spans_decades, thin


def _cells(values: np.ndarray, log: bool, cells: int) -> np.ndarray:
    v = np.log10(values) if log else values
    span = v.max() - v.min() if v.max() > v.min() else 1.0
    return np.minimum(((v - v.min()) / span * cells).astype(int), cells - 1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.01, 1e4), st.floats(0.01, 1e4), st.integers(0, 3)), min_size=1, max_size=300),
    st.booleans(),
    st.integers(2, 40),
)
def test_every_cell_of_every_group_keeps_exactly_its_first_point(rows: list, log: bool, cells: int) -> None:
    x, y, g = (np.array(c) for c in zip(*rows, strict=True))
    kept = thin([Axis(x, log), Axis(y, False)], g, cells)
    keys = list(zip(g, _cells(x, log, cells), _cells(y, False, cells), strict=True))
    expected = sorted({k: i for i, k in reversed(list(enumerate(keys)))}.values())
    assert kept.tolist() == expected


def test_a_log_axis_drops_what_it_cannot_draw() -> None:
    x = np.array([1.0, 0.0, -1.0, np.nan, 10.0])
    assert drawable([Axis(x, True)]).tolist() == [True, False, False, False, True]
    assert thin([Axis(x, True), Axis(np.ones(5), False)], np.zeros(5)).tolist() == [0, 4]


def test_two_million_points_thin_to_at_most_one_per_cell() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.lognormal(0, 2, 2_000_000), rng.random(2_000_000)
    kept = thin([Axis(x, True), Axis(y, False)], rng.integers(0, 5, 2_000_000), 160)
    assert 0 < len(kept) <= 5 * 160 * 160


def test_log_axis_when_values_span_decades() -> None:
    assert spans_decades(np.array([1.0, 31.0]))
    assert not spans_decades(np.array([1.0, 29.0]))
    assert not spans_decades(np.array([-1.0, 100.0]))
    assert not spans_decades(np.array([np.nan]))
