"""Run directories: manifest, trials table, Pareto table, summary, Optuna journal; interrupt, resume, sweep."""

from dse.results._run import Run, resume, run
from dse.results._sweep import Sweep, SweepRecord, sweep

__all__ = ["Run", "Sweep", "SweepRecord", "resume", "run", "sweep"]
