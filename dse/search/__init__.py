"""Search engines (exhaustive, optuna), Pareto filtering and hypervolume."""

from dse.search._exhaustive import exhaustive_chunks
from dse.search._optuna import (
    POLISH_PER_TRIAL,
    OptunaSearch,
    batch_polish_ids,
    constraint_values,
    distributions,
    load_journal_trials,
)
from dse.search._pareto import Normalisation, hypervolume, objective_points, pareto_indices

__all__ = [
    "POLISH_PER_TRIAL",
    "Normalisation",
    "OptunaSearch",
    "batch_polish_ids",
    "constraint_values",
    "distributions",
    "exhaustive_chunks",
    "hypervolume",
    "load_journal_trials",
    "objective_points",
    "pareto_indices",
]
