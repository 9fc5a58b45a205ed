"""A workload's prompt and output lengths as distributions (``physics.lengths``), read from its record: a
number, a uniform or lognormal law, or a histogram CSV of observed requests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dse.costmodel.physics import lengths
from dse.scoring import read_histogram
from dse.space._schema import (
    HistogramLengthsRecord,
    LognormalLengthsRecord,
    UniformLengthsRecord,
    WorkloadRecord,
)


@dataclass(frozen=True)
class WorkloadLengths:
    """The lengths of a workload: prompts, outputs, and their covariance (tokens²; 0 unless a histogram
    pairs them)."""

    prompts: lengths.Lengths
    outputs: lengths.Lengths
    covariance: float = 0.0
    files: tuple[Path, ...] = ()
    """Histogram files read (their contents are part of the space)."""

    @property
    def varies(self) -> bool:
        return not (self.prompts.fixed and self.outputs.fixed)


LengthLaw = int | UniformLengthsRecord | LognormalLengthsRecord
"""Tokens per request as a number or a law (a histogram is a file of its own: ``workload_lengths``)."""


def law_lengths(record: LengthLaw) -> lengths.Lengths:
    """The lengths of a number of tokens, or of a uniform or lognormal law."""
    if isinstance(record, UniformLengthsRecord):
        return lengths.uniform(record.min, record.max)
    if isinstance(record, LognormalLengthsRecord):
        return lengths.lognormal(record.mean, record.sigma, record.max)
    return lengths.fixed(record)


def beyond_context(prompts: lengths.Lengths, outputs: lengths.Lengths, context: int, model: str) -> str | None:
    """Why lengths that vary do not fit a model's ``context`` (tokens): their longest prompt and longest output
    together exceed it (None: they fit, or neither varies; fixed lengths beyond it are a result with a
    reason)."""
    longest = prompts.largest + outputs.largest
    if (prompts.fixed and outputs.fixed) or longest <= context:
        return None
    return (
        f"the longest request ({longest:,.0f} tokens: prompt {prompts.largest:,.0f} + output "
        f"{outputs.largest:,.0f}) exceeds {model}'s context of {context:,} tokens; lower the distributions' max "
        "(a lognormal's is optional: give it one)"
    )


def workload_lengths(work: WorkloadRecord, base: Path) -> WorkloadLengths:
    """The lengths of ``work`` (histogram paths relative to ``base``); errors name the field."""
    records = {"prompt_tokens": work.prompt_tokens, "output_tokens": work.output_tokens}
    paths = {
        name: base / r.path  # an absolute path stays itself
        for name, r in records.items()
        if isinstance(r, HistogramLengthsRecord)
    }
    columns = {name: r.column or name for name, r in records.items() if isinstance(r, HistogramLengthsRecord)}
    if len(paths) == 2 and paths["prompt_tokens"] == paths["output_tokens"]:  # one file: each row a request
        (p, g), count = read_histogram(
            paths["prompt_tokens"], [columns["prompt_tokens"], columns["output_tokens"]], "workload"
        )
        path = paths["prompt_tokens"]
        return WorkloadLengths(*lengths.paired(p, g, count), (path,))
    read = {}
    for name, record in records.items():
        if isinstance(record, HistogramLengthsRecord):
            (values,), count = read_histogram(paths[name], [columns[name]], f"workload.{name}")
            read[name] = lengths.histogram(values, count)
        else:
            read[name] = law_lengths(record)
    return WorkloadLengths(read["prompt_tokens"], read["output_tokens"], 0.0, tuple(dict.fromkeys(paths.values())))
