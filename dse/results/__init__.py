"""Run directories: manifest, trials table, Pareto table, summary, Optuna journal; interrupt, resume, sweep."""

from dse.results._files import JOURNAL, MANIFEST, PARETO, SUMMARY, TRIALS, replace_durably, write_text_durably
from dse.results._guards import check_output_directory, check_output_file, writable_directory
from dse.results._run import Run, resume, run
from dse.results._sweep import SWEEP_INDEX, SWEEP_TABLE, Sweep, SweepRecord, sweep

__all__ = [
    "JOURNAL",
    "MANIFEST",
    "PARETO",
    "SUMMARY",
    "SWEEP_INDEX",
    "SWEEP_TABLE",
    "TRIALS",
    "Run",
    "Sweep",
    "SweepRecord",
    "check_output_directory",
    "check_output_file",
    "replace_durably",
    "resume",
    "run",
    "sweep",
    "writable_directory",
    "write_text_durably",
]
