"""The Optuna engine: batched ask/tell over the space's dimensions, constrained, multi-objective.

Multivariate TPE proposes the first ``tpe_trials`` trials (it models the dimensions' interactions, which a
genetic algorithm can only stumble on); NSGA-II takes over after, because TPE's cost per trial grows with
the history while NSGA-II's does not. Every trial gets every constraint through ``trial.set_constraint``,
cache hits included (in Optuna 5 a trial without constraints counts as feasible). A candidate already
evaluated is served from the cache, never evaluated twice. Trials are mapped onto the statically pruned space
the exhaustive engine enumerates: one whose parameters the pruning removed is told infeasible, not evaluated.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dse.search._engine import Columns, Engine, concat_columns
from dse.search._pareto import objective_points
from dse.space import SETTINGS, Space

UNKNOWN_PENALTY = 1e30
"""Objective value told for a metric the cost model cannot know (e.g. a price the catalog lacks)."""

PRUNED = -1
"""Candidate id of a trial whose parameters static pruning removed: told infeasible, never evaluated."""


def distributions(space: Space) -> dict[str, Any]:
    """Optuna distributions of the space's dimensions (single-valued dimensions are fixed, not sampled).

    Every dimension but a batch range is categorical, named as its parameter column: the deployment and
    KV-policy values are few, and their effects are far from linear in the value (a split either divides
    the heads or is infeasible), so an ordinal model would not help the samplers.
    """
    import optuna.distributions as d

    choices = space.record.choices
    dims: dict[str, Any] = {}
    categorical: list[tuple[str, list[Any]]] = [
        ("hardware", list(choices.hardware)),
        ("quant", list(choices.quant)),
        ("kv", list(choices.kv)),
    ]
    categorical += [(name, list(space.settings[name])) for name in SETTINGS]
    for name, values in categorical:
        if len(values) > 1:
            dims[name] = d.CategoricalDistribution(values)
    batch = choices.batch
    if isinstance(batch, list):
        if len(space.batches) > 1:
            dims["batch"] = d.CategoricalDistribution([int(b) for b in space.batches])
    elif batch.max > batch.min:
        dims["batch"] = d.IntDistribution(batch.min, batch.max, log=batch.log, step=batch.step)
    return dims


def _ids(space: Space, params: list[dict[str, Any]]) -> np.ndarray:
    """Candidate ids of trials' parameters (a dimension that is not sampled takes its one value) in the
    statically pruned space (``Space.representative_ids``): ``PRUNED`` where static pruning removed them.

    The samplers draw every dimension independently of the others, so they propose combinations the pruning
    removed (weights that do not fit), batches above the largest that fits, and settings a candidate does not
    use; only what the exhaustive engine would evaluate is evaluated."""
    choices = space.record.choices

    def codes(name: str, values: tuple[Any, ...] | list[Any]) -> np.ndarray:
        position = {value: i for i, value in enumerate(values)}
        return np.asarray([position[p.get(name, values[0])] for p in params], dtype=np.int64)

    hw = codes("hardware", choices.hardware)
    num = np.asarray(
        [space.numerics_index[(p.get("quant", choices.quant[0]), p.get("kv", choices.kv[0]))] for p in params],
        dtype=np.int64,
    )
    settings = [codes(name, space.settings[name]) for name in SETTINGS]
    batch = np.searchsorted(space.batches, [p.get("batch", int(space.batches[0])) for p in params])
    return space.representative_ids(space.candidate_ids(hw, num, *settings, batch))


def constraint_values(columns: dict[str, Any], space: Space) -> dict[str, np.ndarray]:
    """Per constraint, a value <= 0 when satisfied (relative violation otherwise; unknown counts as 1)."""
    out = {"cost_model": np.where(np.asarray(columns["cost_model_feasible"], dtype=bool), -1.0, 1.0)}
    for i, (label, metric, low, high) in enumerate(space.bounds):
        name = f"{i}:{label}"
        values = np.asarray(columns[metric], dtype=np.float64)
        if high is not None:
            out[f"{name}_max"] = np.nan_to_num((values - high) / abs(high or 1.0), nan=1.0, posinf=1.0)
        if low is not None:
            out[f"{name}_min"] = np.nan_to_num((low - values) / abs(low or 1.0), nan=1.0, posinf=1.0)
    points = objective_points(columns, space.record.objectives)
    out["objectives_known"] = np.where(np.all(np.isfinite(points), axis=1), -1.0, 1.0)
    return out


@dataclass
class OptunaSearch:
    """A constrained multi-objective Optuna study over ``space``, driven in batches."""

    space: Space
    trials: int
    batch_size: int
    tpe_trials: int
    seed: int
    study: Any = None
    told: dict[int, tuple[list[float], dict[str, float]]] = field(default_factory=dict)
    """Cache: candidate id -> (objective values, constraints) of every candidate evaluated so far, and of
    ``PRUNED`` (infeasible, every metric unknown)."""
    pending: list[Any] = field(default_factory=list)
    """Trials of the current batch, asked but not yet told."""

    def __post_init__(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions: list[Any] = ["maximize" if o.maximize else "minimize" for o in self.space.record.objectives]
        sampler = optuna.samplers.TPESampler(multivariate=True, seed=self.seed, constant_liar=True)
        self.study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            study_name=self.space.record.name,
            directions=directions,
            sampler=sampler,
        )
        with warnings.catch_warnings():  # metric names are experimental in Optuna, but only labels
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.set_metric_names([o.metric for o in self.space.record.objectives])
        self.dims = distributions(self.space)
        self.record(_pruned_row(self.space))

    def resume(self, previous: list[Any]) -> None:
        """Continue from trials of an earlier run (e.g. loaded from its journal)."""
        self.study.add_trials(previous)

    @property
    def completed(self) -> int:
        """Trials told so far (failed or abandoned ones do not count against the budget)."""
        import optuna

        return len(self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))

    @property
    def done(self) -> bool:
        """Whether the trial budget is spent."""
        return self.completed >= self.trials

    def ask(self) -> tuple[list[Any], np.ndarray]:
        """The next batch of trials and their candidate ids (switching to NSGA-II after ``tpe_trials``)."""
        import optuna

        completed = self.completed
        if completed >= self.tpe_trials and not isinstance(self.study.sampler, optuna.samplers.NSGAIISampler):
            self.study.sampler = optuna.samplers.NSGAIISampler(population_size=self.batch_size, seed=self.seed)
        count = min(self.batch_size, self.trials - completed)
        trials = [self.study.ask(self.dims) for _ in range(count)]
        self.pending = list(trials)
        return trials, _ids(self.space, [t.params for t in trials])

    def abandon(self) -> None:
        """Mark trials asked but not told (an interrupted batch) as failed, so a resumed study skips them."""
        import optuna

        for trial in self.pending:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.pending = []

    def missing(self, ids: np.ndarray) -> np.ndarray:
        """Ids not yet evaluated (distinct)."""
        return np.asarray(sorted({int(i) for i in ids} - self.told.keys()), dtype=np.int64)

    def record(self, columns: dict[str, Any]) -> None:
        """Cache freshly evaluated candidates."""
        points = objective_points(columns, self.space.record.objectives)
        sign = np.asarray([-1.0 if o.maximize else 1.0 for o in self.space.record.objectives])
        values = np.where(np.isfinite(points), points * sign, sign * UNKNOWN_PENALTY)
        constraints = constraint_values(columns, self.space)
        for row, cid in enumerate(np.asarray(columns["candidate_id"])):
            self.told[int(cid)] = ([float(v) for v in values[row]], {k: float(c[row]) for k, c in constraints.items()})

    def tell(self, trials: list[Any], ids: np.ndarray) -> None:
        """Tell every trial its values and constraints (from the cache), and the candidate it stands for
        (user attribute ``candidate_id``; None where static pruning removed it)."""
        for trial, cid in zip(trials, ids, strict=True):
            values, constraints = self.told[int(cid)]
            trial.set_user_attr("candidate_id", None if cid == PRUNED else int(cid))
            for name, value in constraints.items():
                trial.set_constraint(name, value if math.isfinite(value) else 1.0)
            self.study.tell(trial, values)
        self.pending = []

    def save_journal(self, path: Path) -> None:
        """Write the study as a new Optuna journal file at ``path`` (``optuna-dashboard`` opens it)."""
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path.unlink(missing_ok=True)
        storage = JournalStorage(JournalFileBackend(str(path)))
        optuna.copy_study(from_study_name=self.study.study_name, from_storage=self.study._storage, to_storage=storage)


def _pruned_row(space: Space) -> dict[str, np.ndarray]:
    """The columns ``PRUNED`` stands for: infeasible for the cost model, every objective and bound unknown."""
    metrics = dict.fromkeys([*(o.metric for o in space.record.objectives), *(b[1] for b in space.bounds)])
    row = {"candidate_id": np.asarray([PRUNED], dtype=np.int64), "cost_model_feasible": np.zeros(1, dtype=bool)}
    return row | {metric: np.full(1, np.nan) for metric in metrics}


POLISH_PER_TRIAL = 10
"""The batch-line polish may evaluate up to this many candidates per trial of the budget (they are cheap:
one vectorised chunk per configuration, while a trial costs the sampler ~5 ms)."""


def batch_polish_ids(space: Space, columns: dict[str, Any], budget: int) -> np.ndarray:
    """Every allowed batch size of the most promising sampled configurations: the polish after the trials.

    Batch is the one ordered dimension, and along it a configuration's metrics trace a smooth trade-off
    (latency up, throughput up): samplers find the good configurations but only some of their batch sizes,
    and a configuration sampled only at the wrong batch sizes can miss the front entirely. So the sampled
    configurations, best first (lowest non-dominated layer of any of their feasible candidates, then most
    sampled), are evaluated along their whole batch line until ``budget`` candidates. Measured on the
    example spaces: from 97.6-99.4 % to 100 % of the exact hypervolume.
    """
    import moocore

    ids = np.asarray(columns["candidate_id"], dtype=np.int64)
    points = objective_points(columns, space.record.objectives)
    ok = np.asarray(columns["feasible"], dtype=bool) & np.all(np.isfinite(points), axis=1)
    rank = np.full(len(ids), np.iinfo(np.int64).max)
    if ok.any():
        rank[ok] = moocore.pareto_rank(points[ok])
    configs, inverse, counts = np.unique(
        np.stack(space.codes_of_ids(ids)[:-1], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    best = np.full(len(configs), np.iinfo(np.int64).max)
    np.minimum.at(best, inverse.ravel(), rank)
    allowed = space.allowed_batches(configs)
    parts, spent = [np.zeros(0, dtype=np.int64)], 0
    for index in np.lexsort((-counts, best)):
        config, n = configs[index], int(allowed[index])
        if spent + n > budget:
            break
        parts.append(space.candidate_ids(*(np.full(n, c) for c in config), np.arange(n)))
        spent += n
    return np.concatenate(parts).astype(np.int64)


class OptunaEngine(Engine):
    """Batched ask/tell of an ``OptunaSearch`` until its trial budget is spent, then the batch-line polish
    (``batch_polish_ids``) over the configurations the search sampled.

    Resuming replays: the study starts again from its seed, every candidate evaluated before is served from
    the cache, so the samplers see exactly the history of an uninterrupted run and ask for exactly the same
    trials (only the sampler's own time is spent again, no evaluation). The study is written as an Optuna
    journal when the run completes (``export``).
    """

    def __init__(self, space: Space, settings: dict[str, Any], previous: Columns | None) -> None:
        self.search = OptunaSearch(
            space, settings["trials"], settings["batch_size"], settings["tpe_trials"], settings["seed"]
        )
        self.space, self.polish_budget = space, POLISH_PER_TRIAL * settings["trials"]
        self.known: list[Columns] = []
        """What the polish needs (``_slim``) of every candidate evaluated, before this run or in it."""
        if previous is not None and len(previous["candidate_id"]):
            self.search.record(previous)
            self.known.append(_slim(previous, space))
        self.sampled: list[np.ndarray] = []
        """Candidate ids the search asked for, evaluated or cached: what the polish starts from."""
        self.stage = "search"
        self.asked: tuple[list[Any], np.ndarray] | None = None
        self.polished = False

    @property
    def done(self) -> bool:
        return self.polished

    def propose(self) -> np.ndarray:
        if not self.search.done:
            self.stage = "search"
            trials, ids = self.search.ask()
            self.asked = (trials, ids)
            self.sampled.append(ids)
            return self.search.missing(ids)
        self.stage = "polish"
        if not self.sampled:
            return _none()
        known = _joined(self.known)
        rows = np.isin(known["candidate_id"], np.concatenate(self.sampled))
        sampled = {name: np.asarray(values)[rows] for name, values in known.items()}
        return self.search.missing(batch_polish_ids(self.space, sampled, self.polish_budget))

    def observe(self, columns: Columns) -> None:
        if len(columns["candidate_id"]):
            self.search.record(columns)
            self.known.append(_slim(columns, self.space))
        if self.stage == "search" and self.asked is not None:
            self.search.tell(*self.asked)
            self.asked = None
        elif self.stage == "polish":
            self.polished = True

    def close(self) -> None:
        self.search.abandon()

    def export(self, path: Path) -> bool:
        self.search.save_journal(path)
        return True


def _slim(columns: Columns, space: Space) -> Columns:
    """What the polish needs of evaluated candidates: ids, feasibility, objectives."""
    keep = {"candidate_id", "feasible", *(o.metric for o in space.record.objectives)}
    return {k: v for k, v in columns.items() if k in keep}


def _joined(parts: list[Columns]) -> Columns:
    """``parts`` joined, and kept joined (the polish reads them all once)."""
    parts[:] = [concat_columns(parts)]
    return parts[0]


def _none() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)
