"""A run or sweep directory read back as plain tables and the question it answered (no plotting here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from dse.errors import InputError
from dse.results import MANIFEST, PARETO, SUMMARY, SWEEP_INDEX, TRIALS
from dse.space import METRICS, ObjectiveRecord, SpaceRecord


@dataclass(frozen=True)
class Bound:
    """A bound a feasible candidate meets: an SLO (upper) or a space constraint (lower and/or upper)."""

    metric: str
    low: float | None
    high: float | None
    kind: str
    """``SLO`` or ``constraint``."""


@dataclass(frozen=True)
class RunResults:
    """A run directory: the question (the space as written), every trial, the front, the summary."""

    directory: Path
    record: SpaceRecord
    trials: pd.DataFrame
    front: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def objectives(self) -> Sequence[ObjectiveRecord]:
        return self.record.objectives

    @property
    def bounds(self) -> tuple[Bound, ...]:
        bounds = self.record.slo.model_dump().items()  # latency bounds, not their percentile or confidence
        slo = [Bound(m, None, v, "SLO") for m, v in bounds if v is not None and m in METRICS]
        return (*slo, *(Bound(c.metric, c.min, c.max, "constraint") for c in self.record.constraints))

    @property
    def hardware(self) -> list[str]:
        """Hardware ids in the order the space lists them (colours follow this order)."""
        return list(self.record.choices.hardware)

    @property
    def quants(self) -> list[str]:
        return list(self.record.choices.quant)

    @property
    def engine(self) -> str:
        return str(self.summary.get("engine", self.record.engine.kind))


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its overrides and its run (None when the sweep stopped before it)."""

    overrides: dict[str, Any]
    run: RunResults | None

    @property
    def label(self) -> str:
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.overrides.items())


@dataclass(frozen=True)
class SweepResults:
    """A sweep directory: its points (each a run) and the joined front (``sweep.csv``)."""

    directory: Path
    name: str
    points: tuple[SweepPoint, ...]
    complete: bool

    @property
    def runs(self) -> list[tuple[str, RunResults]]:
        """(label, run) of every finished point."""
        return [(p.label, p.run) for p in self.points if p.run is not None]


def load_results(directory: str | Path) -> RunResults | SweepResults:
    """Read a run directory (``manifest.json``) or a sweep directory (``sweep.json``).

    Raises ``InputError`` for anything else, naming what was expected.
    """
    path = Path(directory)
    if (path / SWEEP_INDEX).is_file():
        return load_sweep(path)
    if (path / MANIFEST).is_file():
        return load_run(path)
    raise InputError(
        f"not a run or sweep directory: expected {MANIFEST} (from dse run) or {SWEEP_INDEX} (from dse sweep)",
        source=str(path),
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable: {exc}", source=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", source=str(path))
    return data


def load_run(directory: Path) -> RunResults:
    """Read one run directory. An interrupted run without ``pareto.csv`` gets its front recomputed."""
    manifest = _json(directory / MANIFEST)
    try:
        record = SpaceRecord.model_validate(manifest["space"]["record"])
    except (KeyError, TypeError, ValidationError) as exc:
        raise InputError(f"no readable space record ({exc})", source=str(directory / MANIFEST)) from None
    if not (directory / TRIALS).is_file():
        raise InputError(f"no {TRIALS}: the run evaluated nothing yet", source=str(directory))
    trials = _read_trials(directory / TRIALS)
    needed = _needed(record)
    _has(trials, needed, directory / TRIALS)
    if (directory / PARETO).is_file():
        try:
            front = pd.read_csv(directory / PARETO)
        except (OSError, ValueError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
            raise InputError(f"unreadable: {exc}", source=str(directory / PARETO)) from None
        _has(front, needed, directory / PARETO)
    else:
        from dse.search import pareto_indices

        columns = {name: trials[name].to_numpy() for name in trials.columns}
        front = trials.iloc[pareto_indices(columns, record.objectives)].reset_index(drop=True)
    summary = _json(directory / SUMMARY) if (directory / SUMMARY).is_file() else {}
    return RunResults(directory, record, trials, _aligned(front, trials), summary)


REPORTED = ("candidate_id", "hardware", "quant", "feasible", "ttft_s", "tpot_s", "tokens_per_s_per_user")
"""Columns every run's report reads (its charts' and summaries' besides the objectives')."""


def _needed(record: SpaceRecord) -> list[str]:
    """The columns a run's tables must hold for its report: ``REPORTED`` and the objectives' metrics."""
    return list(dict.fromkeys([*REPORTED, *(o.metric for o in record.objectives)]))


def _has(table: pd.DataFrame, columns: list[str], path: Path) -> None:
    """A run's table holds ``columns``, else ``InputError`` naming the missing ones (a damaged or foreign file)."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"not a run's table: no column {', '.join(missing)}", source=str(path))


def _read_trials(path: Path) -> pd.DataFrame:
    """trials.parquet with its dictionary-encoded strings as plain object columns (categoricals compare and
    group awkwardly, and a report reads each column a few times at most)."""
    try:
        trials = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"unreadable: {exc}", source=str(path)) from None
    for name in trials.columns:
        if isinstance(trials[name].dtype, pd.CategoricalDtype):
            trials[name] = trials[name].astype(object).where(trials[name].notna(), None)
    return trials


def _aligned(front: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """The front with the trials' column types (CSV reads missing strings as NaN and ids as numbers)."""
    for name in front.columns:
        if name in trials and trials[name].dtype == object:
            front[name] = front[name].astype(object).where(front[name].notna(), None)
    return front


def load_sweep(directory: Path) -> SweepResults:
    """Read a sweep directory: every point's run that finished."""
    index = _json(directory / SWEEP_INDEX)
    points = []
    for entry in index.get("points", []):
        point_dir = directory / Path(entry["directory"]).name  # the sweep directory may have moved
        point_dir = point_dir if point_dir.is_dir() else Path(entry["directory"])
        run = load_run(point_dir) if entry.get("summary") and (point_dir / MANIFEST).is_file() else None
        points.append(SweepPoint(dict(entry.get("overrides", {})), run))
    if not any(p.run for p in points):
        raise InputError("the sweep has no finished point to report", source=str(directory / SWEEP_INDEX))
    return SweepResults(directory, str(index.get("name", directory.name)), tuple(points), bool(index.get("complete")))
