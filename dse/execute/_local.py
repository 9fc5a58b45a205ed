"""The default executor: in this process, one chunk after another."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from dse.execute._base import Columns, Executor, evaluate_chunk
from dse.space import Space


class LocalExecutor(Executor):
    """Evaluates chunks in the calling process (the cost model is vectorised; one core is plenty)."""

    name = "local"

    def map_ids(self, space: Space, chunks: Iterable[np.ndarray]) -> Iterator[tuple[int, Columns]]:
        for position, ids in enumerate(chunks):
            yield position, evaluate_chunk(space, ids)
