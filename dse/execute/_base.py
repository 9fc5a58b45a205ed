"""Executors evaluate chunks of candidates; engines decide which."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from dse.search import Columns, chunks, concat_columns
from dse.space import Space


class Executor(abc.ABC):
    """Evaluates candidates of one space, chunk by chunk.

    Contract: every chunk handed in is evaluated exactly once in the results (a failed worker's chunk is
    retried, never dropped or duplicated); results of ``map_ids`` may come back in any order, each tagged
    with the chunk it answers; one call per chunk, never one per candidate.
    """

    name: str

    @abc.abstractmethod
    def map_ids(self, space: Space, chunks: Iterable[np.ndarray]) -> Iterator[tuple[int, Columns]]:
        """Evaluate chunks of candidate ids; yield (position of the chunk in ``chunks``, columns) as done."""

    def evaluate_ids(self, space: Space, ids: np.ndarray, chunk_size: int) -> Columns:
        """Evaluate ``ids`` (split into chunks of ``chunk_size``) and return the columns in ``ids`` order."""
        pieces = chunks(ids, chunk_size) or [ids]
        parts = dict(self.map_ids(space, pieces))
        return concat_columns([parts[i] for i in range(len(pieces))])

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers (no-op for in-process executors)."""

    def work(self) -> dict[str, Any]:
        """Where the chunks were evaluated (for the run summary): ``{"nodes": 1}`` for one process."""
        return {"nodes": 1}


def evaluate_chunk(space: Space, ids: np.ndarray) -> Columns:
    """The unit of work every executor runs: one vectorised evaluation of a chunk of candidate ids."""
    return space.evaluate_codes(*space.codes_of_ids(np.asarray(ids, dtype=np.int64)))
