"""The answer a run gives, as rows (no plotting): the best configuration per objective, the knee of the front,
and each hardware's best configuration under the SLOs. The terminal, the report's summary table and its
"best per hardware" chart all read these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dse.report._labels import DISPLAY, best_word
from dse.search import Normalisation, objective_points
from dse.space import ObjectiveRecord


@dataclass(frozen=True)
class Pick:
    """One line of the answer: why it was picked, and the configuration (a trials row), or why there is none."""

    role: str
    """``lowest TPOT`` (best on an objective), ``knee``, or a hardware id."""
    row: pd.Series | None
    note: str = ""
    """For a hardware without an answer: why (its most common infeasibility reason, with counts)."""


PRICED = frozenset({"usd_per_hour", "usd_per_million_tokens"})
"""The metrics a hardware's price enters: unknown where its pricing has none (``summary.json``'s ``unpriced``
says why)."""

TIE_RTOL = 1e-10
"""Objective values this close (relative to the best) tie. One quantity reached by two paths of float arithmetic
differs in its last bits (two formats' deployments sized for the same load cost the same, to 1e-16): the next
objective must decide, not the rounding. The tolerance a resume calls two saved values the same with."""


def lexicographic_best(points: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's best row: best on the first column, ties (within ``TIE_RTOL``) broken by the next, and so on;
    then the exact lexicographic order among the rows left, then position. So no row of its group dominates the
    pick. ``points`` (N x k) are finite and all minimised, ``groups`` (N) are codes 0..G-1. Returns (groups,
    rows), each group once, in increasing order."""
    rows = np.arange(len(points))
    for column in points.T:
        values, codes = column[rows], groups[rows]
        best = np.full(int(groups.max(initial=-1)) + 1, np.inf)
        np.minimum.at(best, codes, values)
        rows = rows[values <= best[codes] + TIE_RTOL * np.abs(best[codes])]
    rows = rows[np.lexsort((*points[rows].T[::-1], groups[rows]))]
    found, first = np.unique(groups[rows], return_index=True)
    return found, rows[first]


def best_per_objective(front: pd.DataFrame, objectives: Sequence[ObjectiveRecord]) -> list[Pick]:
    """For each objective, the front member best on it (ties, within ``TIE_RTOL``, broken by the other objectives,
    in order)."""
    if not len(front):
        return []
    points = objective_points(front, objectives)
    one = np.zeros(len(front), dtype=np.intp)
    picks = []
    for i, objective in enumerate(objectives):
        order = [i, *(j for j in range(len(objectives)) if j != i)]
        role = f"{best_word(objective.maximize)} {DISPLAY[objective.metric].short}"
        _, (row,) = lexicographic_best(points[:, order], one)
        picks.append(Pick(role, front.iloc[int(row)]))
    return picks


def knee_position(front: pd.DataFrame, objectives: Sequence[ObjectiveRecord]) -> int | None:
    """Row position of the knee: the front member closest (Euclidean) to the ideal point once each objective is
    normalised as for the hypervolume (log10, then scaled so that the front spans 0..1). None for an empty front.

    The usual compromise-programming choice (Zeleny, *Multiple Criteria Decision Making*, 1982); with one
    objective it is the best member.
    """
    if not len(front):
        return None
    points = objective_points(front, objectives)
    finite = np.all(np.isfinite(points), axis=1)
    if not finite.any():
        return None
    scaled = Normalisation.of_front(points[finite]).apply(points[finite])
    return int(np.flatnonzero(finite)[np.argmin(np.sqrt(np.sum(scaled**2, axis=1)))])


def knee(front: pd.DataFrame, objectives: Sequence[ObjectiveRecord]) -> Pick | None:
    position = knee_position(front, objectives)
    return None if position is None else Pick("knee", front.iloc[position])


def best_per_hardware(
    trials: pd.DataFrame,
    objectives: Sequence[ObjectiveRecord],
    hardware: Sequence[str],
    summary: Mapping[str, Any] | None = None,
) -> list[Pick]:
    """For each hardware (in ``hardware``'s order), its best feasible configuration on the first objective (ties,
    within ``TIE_RTOL``, broken by the others: ``lexicographic_best``); feasible means every SLO and constraint
    met. A hardware with none gets why instead: its most common infeasibility reason, or its pruning reason.
    ``summary`` is the run's ``summary.json``: its ``keep`` says what the run kept of its trials (the search is
    among those rows; ``by_hardware`` counts the reasons of the rows it did not keep), its ``pruned`` what was
    pruned before evaluation. Every column is read once (a run may hold millions of rows)."""
    summary = summary or {}
    kept = str(summary.get("keep", "all"))
    codes, names = pd.factorize(trials["hardware"])
    feasible = trials["feasible"].to_numpy(dtype=bool)
    points = objective_points(trials, objectives)
    known = np.isfinite(points)
    usable = feasible & np.all(known, axis=1)
    rows = np.flatnonzero(usable)
    found, chosen = lexicographic_best(points[rows], codes[rows])
    best = {str(names[code]): int(rows[row]) for code, row in zip(found, chosen, strict=True)}
    code_of = {str(name): i for i, name in enumerate(names)}
    pruned = _pruning_reasons(summary.get("pruned", ()))
    counted = summary.get("by_hardware", {})
    unpriced = summary.get("unpriced", {})
    reasons = None
    picks = []
    for name in hardware:
        if name in best:
            picks.append(Pick(name, trials.iloc[best[name]]))
            continue
        mine = codes == code_of.get(name, -2)
        if reasons is None:
            reasons = trials["infeasible_reason"].to_numpy()
        note = _why_not(mine, feasible, known, reasons, objectives, unpriced.get(name))
        if note == "not evaluated":
            note = _not_evaluated(kept, pruned.get(name), counted.get(name))
        picks.append(Pick(name, None, note))
    return picks


def _pruning_reasons(entries: Iterable[Mapping[str, Any]]) -> dict[str, Counter[str]]:
    """Pruned combinations (``summary.json``'s ``pruned``: one per combination of every choice but the batch)
    counted by hardware and reason."""
    out: dict[str, Counter[str]] = {}
    for entry in entries:
        out.setdefault(str(entry["hardware"]), Counter())[str(entry["reason"])] += 1
    return out


def _not_evaluated(kept: str, pruned: Counter[str] | None, counted: Mapping[str, Any] | None = None) -> str:
    """Why a hardware has no row: pruned before evaluation (its most common reason, with counts), or not kept
    (``--keep``: where none of its candidates was feasible, its most common reason from ``counted``, the run's
    ``by_hardware`` entry, as a run that keeps every row says it), or not evaluated at all (an interrupted run,
    a search that did not reach it)."""
    counted = counted or {}
    reasons = Counter({str(k): int(v) for k, v in counted.get("infeasible", {}).items()})
    if kept != "all" and reasons and not counted.get("feasible"):
        reason, count = reasons.most_common(1)[0]
        return f"no feasible configuration: {reason} ({count:,} of {sum(reasons.values()):,} candidates)"
    reason, count = pruned.most_common(1)[0] if pruned else ("", 0)
    why_pruned = f"{reason} ({count:,} of {sum(pruned.values()):,} combinations)" if pruned else ""
    if kept != "all":
        why = "it has none on the front" if kept == "front" else "none feasible"
        note = f"none of its candidates kept (--keep {kept}): {why}"
        evaluated = int(counted.get("feasible") or 0) + sum(reasons.values())
        if evaluated:  # what was evaluated says more than what was pruned (some combinations at most)
            note += f" ({int(counted.get('feasible') or 0):,} feasible of {evaluated:,} evaluated)"
            if pruned:
                note += f"; {sum(pruned.values()):,} other combinations pruned before evaluation ({reason})"
            return note
        return f"{note}; pruned before evaluation: {why_pruned}" if pruned else note
    return f"pruned before evaluation: {why_pruned}" if pruned else "not evaluated"


def _why_not(
    mine: np.ndarray,
    feasible: np.ndarray,
    known: np.ndarray,
    reasons: np.ndarray,
    objectives: Sequence[ObjectiveRecord],
    unpriced: str | None = None,
) -> str:
    """Why a hardware has no answer: an objective unknown on all its feasible candidates (``unpriced``: what
    its pricing lacks, ``summary.json``'s ``unpriced``), or its most common infeasibility reason, e.g. ``no
    feasible configuration: exceeds the TTFT SLO (812 of 832 candidates)``."""
    evaluated = int(mine.sum())
    if not evaluated:
        return "not evaluated"
    ok = mine & feasible
    if ok.any():
        unknown = [o.metric for i, o in enumerate(objectives) if not known[ok, i].any()]
        what = ", ".join(DISPLAY[m].title for m in unknown) or "an objective"
        why = f": {unpriced}" if unpriced and PRICED.intersection(unknown) else " (no price in the catalog?)"
        return f"{int(ok.sum()):,} feasible configurations, but {what} unknown{why}"
    counts = pd.Series(reasons[mine]).fillna("unknown").value_counts()
    return f"no feasible configuration: {counts.index[0]} ({int(counts.iloc[0]):,} of {evaluated:,} candidates)"


def empty_front(counts: Mapping[str, Any]) -> str:
    """Why a run has no front, in one sentence, from ``summary.json``'s ``counts`` (evaluated, feasible,
    after_pruning); each hardware's reason is its best-per-hardware note."""
    evaluated, feasible = int(counts.get("evaluated", 0)), int(counts.get("feasible", 0))
    if not evaluated:
        if counts.get("after_pruning") == 0:
            return "no feasible candidate: every candidate was pruned before evaluation (it cannot run)"
        return "no candidate evaluated yet"
    if not feasible:
        return f"no feasible candidate: each of the {evaluated:,} evaluated breaks an SLO or constraint, or cannot run"
    return f"no front: each of the {feasible:,} feasible candidates has an objective unknown"
