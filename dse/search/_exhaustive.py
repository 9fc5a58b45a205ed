"""The exhaustive engine: every candidate of the statically pruned space, in chunks, exactly."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dse.space import Space


def exhaustive_chunks(space: Space, chunk_size: int, done: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Candidate ids of the pruned enumeration, ``chunk_size`` at a time, skipping ``done`` ids (resume)."""
    for start in range(0, space.size, chunk_size):
        index = np.arange(start, min(start + chunk_size, space.size))
        ids = space.candidate_ids(*space.codes_of_index(index))
        if done is not None and len(done):
            ids = ids[~np.isin(ids, done)]
        if len(ids):
            yield ids
