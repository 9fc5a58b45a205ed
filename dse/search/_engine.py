"""The engine interface, the exhaustive engine, and the one loop that drives any engine.

An engine decides which candidates to evaluate next and learns from the results; it does not evaluate them
(an executor does, through the ``evaluate`` callable ``drive`` is given) and it writes no run directory (the
caller records what ``drive`` hands it).
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dse.space import Space

Columns = dict[str, Any]
"""Evaluated candidates as columns (parameters, metrics, ``feasible``, ``infeasible_reason``)."""


class Engine(abc.ABC):
    """A search strategy over a space's candidate ids.

    Contract: ``propose`` returns candidate ids that were never evaluated in this run (distinct; possibly none
    when every candidate the engine wants is already known); each proposal is evaluated and handed back, all
    of it, to ``observe`` before the next ``propose``, unless the run stops (then ``close`` follows, and a
    proposal left unobserved is forgotten: a resumed run proposes again). ``stage`` names what the current
    proposal is for (it becomes the ``stage`` column of the trials).

    An engine keeps no state that the trials cannot rebuild: given the candidates evaluated before (a resumed
    run), it replays its own decisions from the start and proposes exactly what an uninterrupted run would
    have proposed next, so the trials table is the only thing a run must save to survive any interruption.
    ``export`` writes what an engine offers beyond the trials (the Optuna study) once a run is complete.
    """

    stage: str
    observes_columns: bool = True
    """Whether ``observe`` reads the evaluated columns (if not, ``drive`` does not keep a proposal's chunks)."""

    @property
    @abc.abstractmethod
    def done(self) -> bool:
        """Whether the engine has nothing more to propose."""

    @abc.abstractmethod
    def propose(self) -> np.ndarray:
        """The next candidate ids to evaluate (int64)."""

    @abc.abstractmethod
    def observe(self, columns: Columns) -> None:
        """The evaluated columns of the last proposal."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """The run stops: forget work proposed but not observed (nothing by default)."""

    def position(self) -> dict[str, Any]:
        """Where the engine is, as JSON-able data saved with the trials (resume hands it back): for runs that
        keep only some of the trials, which then cannot tell what was evaluated. Nothing by default."""
        return {}

    def export(self, path: Path) -> bool:
        """Write the engine's own record of a complete run to ``path``; False when it has none (the default)."""
        return False


class ExhaustiveEngine(Engine):
    """Every candidate of the statically pruned space, in order, exactly; a resumed run starts after the last
    proposal it observed (``position``) and skips the ids evaluated before. Proposals are ``batch`` ids (many
    executor chunks, so a parallel executor has work for all its workers)."""

    stage = "exhaustive"
    observes_columns = False

    def __init__(
        self, space: Space, batch: int, evaluated: np.ndarray | None = None, position: dict[str, Any] | None = None
    ) -> None:
        self.space, self.batch = space, batch
        self.start = self.observed = int((position or {}).get("observed", 0))
        self.evaluated = np.sort(evaluated) if evaluated is not None and len(evaluated) else None

    @property
    def done(self) -> bool:
        return self.start >= self.space.size

    def propose(self) -> np.ndarray:
        index = np.arange(self.start, min(self.start + self.batch, self.space.size))
        self.start += self.batch
        ids = self.space.candidate_ids(*self.space.codes_of_index(index))
        if self.evaluated is not None:
            ids = ids[~np.isin(ids, self.evaluated)]
        return ids

    def observe(self, columns: Columns) -> None:
        """Nothing to learn (the order is fixed); the proposal is done."""
        self.observed = min(self.start, self.space.size)

    def position(self) -> dict[str, Any]:
        """The pruned-enumeration index up to which every candidate was evaluated."""
        return {"observed": self.observed}


def chunks(ids: np.ndarray, size: int) -> list[np.ndarray]:
    """``ids`` in pieces of ``size`` (one executor call each)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def drive(
    engine: Engine,
    evaluate: Callable[[np.ndarray], Iterator[Columns]],
    record: Callable[[Columns, str], None],
    stop: threading.Event,
    checkpoint_s: float,
    checkpoint: Callable[[], None],
) -> None:
    """Run ``engine`` until it is done or ``stop`` is set: propose; evaluate (``evaluate`` yields the columns
    of the proposal chunk by chunk, in any order); ``record`` each chunk with its stage as it arrives; observe
    the whole proposal; call ``checkpoint`` (the caller saves what was recorded) at most every
    ``checkpoint_s`` seconds. ``stop`` is honoured between chunks (what was evaluated is recorded, the rest
    of the proposal is not observed). The caller closes the engine, after saving what was recorded."""
    saved = time.monotonic()
    while not engine.done and not stop.is_set():
        ids, stage = engine.propose(), engine.stage
        parts = []
        for columns in evaluate(ids):
            record(columns, stage)
            if engine.observes_columns:
                parts.append(columns)
            if stop.is_set():
                break
            if time.monotonic() - saved > checkpoint_s:
                checkpoint()
                saved = time.monotonic()
        if stop.is_set():
            break
        engine.observe(concat_columns(parts) if parts else {"candidate_id": np.zeros(0, dtype=np.int64)})


def concat_columns(parts: list[Columns]) -> Columns:
    """Join column dicts chunk after chunk."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
