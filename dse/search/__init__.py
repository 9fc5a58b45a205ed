"""Search engines (exhaustive, optuna) behind one interface, the loop that drives them, Pareto fronts and
hypervolume."""

from __future__ import annotations

import typing
from typing import Any

from dse.search._engine import Columns, Engine, ExhaustiveEngine, chunks, concat_columns, drive
from dse.search._optuna import (
    POLISH_PER_TRIAL,
    OptunaEngine,
    OptunaSearch,
    batch_polish_ids,
    constraint_values,
    distributions,
)
from dse.search._pareto import Normalisation, hypervolume, objective_points, pareto_indices
from dse.space import EngineKind, Space

ENGINES: tuple[str, ...] = typing.get_args(EngineKind)
"""Engine choices (``auto`` picks exhaustive when the pruned space is at most ``engine.exhaustive_limit``)."""

EXHAUSTIVE_BATCH_CHUNKS = 64
"""Chunks per exhaustive proposal: enough to keep every worker of a parallel executor busy."""


def choose_engine(space: Space, kind: str) -> str:
    """The engine ``kind`` names (``auto``: exhaustive for a space of at most ``engine.exhaustive_limit``
    candidates after pruning, else optuna)."""
    if kind == "auto":
        return "exhaustive" if space.size <= space.record.engine.exhaustive_limit else "optuna"
    return kind


def make_engine(
    kind: str, space: Space, settings: dict[str, Any], previous: Columns | None, position: dict[str, Any] | None = None
) -> Engine:
    """An engine of ``kind`` (not ``auto``) continuing from the candidates evaluated before (``previous``) and
    the position it saved (``Engine.position``)."""
    if kind == "exhaustive":
        done = previous["candidate_id"] if previous is not None else None
        return ExhaustiveEngine(space, EXHAUSTIVE_BATCH_CHUNKS * settings["chunk_size"], done, position)
    return OptunaEngine(space, settings, previous)


__all__ = [
    "ENGINES",
    "POLISH_PER_TRIAL",
    "Columns",
    "Engine",
    "ExhaustiveEngine",
    "Normalisation",
    "OptunaEngine",
    "OptunaSearch",
    "batch_polish_ids",
    "choose_engine",
    "chunks",
    "concat_columns",
    "constraint_values",
    "distributions",
    "drive",
    "hypervolume",
    "make_engine",
    "objective_points",
    "pareto_indices",
]
