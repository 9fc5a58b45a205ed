"""The answer a run gives (best per objective, knee, best per hardware) on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dse.report import (
    TIE_RTOL,
    best_per_hardware,
    best_per_objective,
    empty_front,
    knee_position,
    lexicographic_best,
)
from dse.space import ObjectiveRecord

TPOT_THROUGHPUT = [ObjectiveRecord(metric="tpot_s"), ObjectiveRecord(metric="throughput_tokens_per_s_per_device")]


def _trials() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "candidate_id": [0, 1, 2, 3, 4, 5],
            "hardware": ["a", "a", "b", "b", "c", "c"],
            "quant": "bf16",
            "batch": [1, 8, 1, 8, 1, 8],
            "tpot_s": [0.010, 0.020, 0.010, 0.030, 0.005, 0.006],
            "throughput_tokens_per_s_per_device": [100.0, 400.0, 90.0, 300.0, 500.0, 600.0],
            "feasible": [True, True, True, True, False, False],
            "infeasible_reason": [None, None, None, None, "exceeds the TTFT SLO", "does not fit in memory"],
        }
    )


def test_best_per_objective_breaks_ties_by_the_next_objective() -> None:
    front = _trials().iloc[:4]
    picks = best_per_objective(front, TPOT_THROUGHPUT)
    assert [p.role for p in picks] == ["lowest TPOT", "highest per device"]
    assert picks[0].row is not None and picks[0].row["candidate_id"] == 0  # a and b tie on TPOT; a is faster
    assert picks[1].row is not None and picks[1].row["candidate_id"] == 1


def test_best_per_hardware_uses_feasible_rows_and_explains_the_rest() -> None:
    picks = best_per_hardware(_trials(), TPOT_THROUGHPUT, ["c", "b", "a", "d"])
    assert [p.role for p in picks] == ["c", "b", "a", "d"]
    c, b, a, d = picks
    assert c.row is None and c.note.startswith("no feasible configuration: ")
    assert "(1 of 2 candidates)" in c.note
    assert b.row is not None and b.row["candidate_id"] == 2
    assert a.row is not None and a.row["candidate_id"] == 0
    assert d.row is None and d.note == "not evaluated"


def test_best_per_hardware_gives_the_pruning_reasons_of_hardware_not_evaluated() -> None:
    pruned = [
        {"hardware": "d", "reason": "tp must divide the attention heads"},
        {"hardware": "d", "reason": "tp must divide the attention heads"},
        {"hardware": "d", "reason": "weights exceed memory"},
        {"hardware": "a", "reason": "weights exceed memory"},  # a was evaluated too: its rows answer
    ]
    picks = best_per_hardware(_trials(), TPOT_THROUGHPUT, ["a", "d"], {"keep": "all", "pruned": pruned})
    assert picks[0].row is not None
    assert picks[1].note == "pruned before evaluation: tp must divide the attention heads (2 of 3 combinations)"
    kept = best_per_hardware(_trials(), TPOT_THROUGHPUT, ["d"], {"keep": "feasible", "pruned": pruned})
    assert kept[0].note.startswith("none of its candidates kept (--keep feasible): none feasible; pruned before")


def test_a_hardware_none_of_whose_rows_were_kept_gets_its_counted_reason() -> None:
    """``--keep feasible`` or ``front`` drops rows; summary.json's by_hardware still says why one has none."""
    counted = {
        "d": {"feasible": 0, "infeasible": {"exceeds the TTFT SLO": 7, "does not fit in memory": 3}},
        "e": {"feasible": 2, "infeasible": {"exceeds the TTFT SLO": 9}},  # feasible, just not on the front
    }
    summary = {"keep": "front", "by_hardware": counted}
    d, e = best_per_hardware(_trials(), TPOT_THROUGHPUT, ["d", "e"], summary)
    assert d.note == "no feasible configuration: exceeds the TTFT SLO (7 of 10 candidates)"
    assert e.note == "none of its candidates kept (--keep front): it has none on the front (2 feasible of 11 evaluated)"
    pruned = [{"hardware": "e", "reason": "weights exceed memory"}] * 2  # some of e's combinations, not all
    (e,) = best_per_hardware(_trials(), TPOT_THROUGHPUT, ["e"], summary | {"pruned": pruned})
    assert e.note == (
        "none of its candidates kept (--keep front): it has none on the front (2 feasible of 11 evaluated);"
        " 2 other combinations pruned before evaluation (weights exceed memory)"
    )


def test_empty_front_says_why_from_the_counts() -> None:
    assert empty_front({"evaluated": 0, "feasible": 0, "after_pruning": 0}).endswith(
        "pruned before evaluation (it cannot run)"
    )
    assert empty_front({"evaluated": 12, "feasible": 0}).startswith("no feasible candidate: each of the 12 evaluated")
    assert (
        empty_front({"evaluated": 12, "feasible": 3})
        == "no front: each of the 3 feasible candidates has an objective unknown"
    )


def test_best_per_hardware_names_an_unknown_objective() -> None:
    trials = _trials().assign(usd_per_million_tokens=[1.0, 2.0, np.nan, np.nan, 1.0, 1.0])
    picks = best_per_hardware(trials, [ObjectiveRecord(metric="usd_per_million_tokens")], ["a", "b"])
    assert picks[0].row is not None and picks[0].row["candidate_id"] == 0
    assert picks[1].row is None and "cost per million output tokens unknown" in picks[1].note
    why = "no on-demand rent price in the price catalog"
    picks = best_per_hardware(
        trials, [ObjectiveRecord(metric="usd_per_million_tokens")], ["b"], {"unpriced": {"b": why}}
    )
    assert picks[0].note == f"2 feasible configurations, but cost per million output tokens unknown: {why}"


def test_best_per_hardware_breaks_a_tie_in_the_last_bits_by_the_next_objective() -> None:
    # h200-sxm in spaces/chat-lengths-lognormal.yaml: bf16 and fp8 deployments sized for the same load cost the
    # same to 2 ulps; bf16 came out cheaper by rounding, and fp8 (faster to the first token) is on the front
    cost = 0.64387464387464388
    trials = pd.DataFrame(
        {
            "candidate_id": [52, 76],
            "hardware": "h200-sxm",
            "quant": ["bf16", "fp8"],
            "usd_per_million_tokens": [np.nextafter(np.nextafter(cost, 0), 0), cost],
            "ttft_s": [0.04767, 0.03251],
            "feasible": True,
            "infeasible_reason": None,
        }
    )
    objectives = [ObjectiveRecord(metric="usd_per_million_tokens"), ObjectiveRecord(metric="ttft_s")]
    (pick,) = best_per_hardware(trials, objectives, ["h200-sxm"])
    assert pick.row is not None and pick.row["quant"] == "fp8"
    (cheapest, _) = best_per_objective(trials, objectives)
    assert cheapest.row is not None and cheapest.row["quant"] == "fp8"


def test_a_real_difference_in_the_first_objective_still_decides() -> None:
    points = np.array([[1.0, 9.0], [1.0 + 1e3 * TIE_RTOL, 1.0]])
    assert lexicographic_best(points, np.zeros(2, dtype=np.intp))[1].tolist() == [0]


SHAPES = st.tuples(st.integers(1, 12), st.integers(1, 3))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, SHAPES, elements=st.sampled_from([-2.0, 1.0, 3.0])), st.data())
def test_lexicographic_best_is_never_dominated_within_its_group(points: np.ndarray, data: st.DataObject) -> None:
    jitter = 1 + data.draw(hnp.arrays(np.float64, points.shape, elements=st.sampled_from([0.0, 1e-15, -1e-15])))
    points = points * jitter  # equal values and values equal to the last bits
    groups = data.draw(hnp.arrays(np.intp, len(points), elements=st.integers(0, 2)))
    found, rows = lexicographic_best(points, groups)
    assert found.tolist() == sorted(set(groups.tolist()))
    for group, row in zip(found, rows, strict=True):
        assert groups[row] == group
        mine = points[groups == group]
        dominated = np.all(mine <= points[row], axis=1) & np.any(mine < points[row], axis=1)
        assert not dominated.any()
        best = mine[:, 0].min()  # and it is best on the first objective, to the tolerance
        assert points[row, 0] <= best + TIE_RTOL * abs(best)


def test_knee_is_the_member_closest_to_the_ideal_point() -> None:
    # after log10 and scaling to 0..1: (0, 1), (1, 0) and a middle point at about (0.3, 0.3)
    front = pd.DataFrame({"tpot_s": [0.001, 0.1, 0.004], "throughput_tokens_per_s_per_device": [10.0, 1000.0, 400.0]})
    assert knee_position(front, TPOT_THROUGHPUT) == 2
    assert knee_position(front.iloc[:0], TPOT_THROUGHPUT) is None
    one = [ObjectiveRecord(metric="tpot_s")]
    assert knee_position(front, one) == 0  # with one objective the knee is the best member
