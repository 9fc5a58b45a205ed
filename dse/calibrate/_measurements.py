"""Published (or a user's own) measurements in dse's CSV format: one row per measured quantity.

Columns (docs/validation.md): ``id, source, model, hardware, tp, pp, ep, quant, kv, prompt_len, gen_len,
batch, scenario, metric, value, notes``, and optionally ``engine`` (the engine measured, e.g. ``tensorrt-llm``,
``vllm``, ``llama.cpp``: ``dse validate`` scores a row with that engine's fitted profile). Ids are catalog ids
(``hardware`` a system for several devices); ``value`` is SI. ``scenario``: ``batch`` (a fixed batch,
measured directly), ``max-throughput`` (offline, all requests queued; the engine chooses the batch),
``server`` (requests arriving at a rate; latencies include queueing).

A ``server`` row of TTFT or TPOT may give its load: ``request_rate`` (Poisson requests/s the deployment was
sent), and the engine's ``max_num_seqs`` and ``chunk_tokens`` (its token budget; both optional: the engine's
documented defaults, else dse's); it is then scored under continuous batching at that rate, and
``statistic`` says which of the latency's figures ``value`` is: ``mean`` (the default), ``p50``, ``p90`` or
``p99``. (A throughput at a rate the deployment sustains is the rate's, whatever the model: nothing to
check.) A ``max-throughput`` row without a batch is scored under continuous batching with every slot busy,
and may give the engine's ``max_num_seqs`` and ``chunk_tokens`` too.
"""

from __future__ import annotations

import csv
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, field_validator

from dse.catalog import load_kv_format, load_model, load_scheme, load_target
from dse.errors import InputError

Scenario = Literal["batch", "max-throughput", "server"]
SCENARIOS: tuple[Scenario, ...] = typing.get_args(Scenario)
Metric = Literal["tpot_s", "ttft_s", "prefill_tokens_per_s", "throughput_tokens_per_s_per_device"]
METRICS: tuple[Metric, ...] = ("tpot_s", "ttft_s", "prefill_tokens_per_s", "throughput_tokens_per_s_per_device")
COLUMNS = (
    "id",
    "source",
    "model",
    "hardware",
    "tp",
    "pp",
    "ep",
    "quant",
    "kv",
    "prompt_len",
    "gen_len",
    "batch",
    "scenario",
    "metric",
    "value",
    "notes",
)
OPTIONAL_COLUMNS = ("engine", "request_rate", "max_num_seqs", "chunk_tokens", "statistic")
Statistic = Literal["mean", "p50", "p90", "p99"]
LATENCIES = ("tpot_s", "ttft_s")
"""The metrics a row at a ``request_rate`` is scored for, its ``statistic`` their mean or a percentile."""


class MeasurementRecord(BaseModel):
    """One row as read (CSV text converted: empty cells are None)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    model: str = Field(min_length=1)
    hardware: str = Field(min_length=1)
    tp: PositiveInt = 1
    pp: PositiveInt = 1
    ep: PositiveInt = 1
    quant: str | None = None
    kv: str | None = None
    prompt_len: PositiveInt
    gen_len: PositiveInt
    batch: PositiveInt | None = None
    scenario: Scenario
    metric: Metric
    value: PositiveFloat
    notes: str | None = None
    engine: str | None = None
    request_rate: PositiveFloat | None = None
    max_num_seqs: PositiveInt | None = None
    chunk_tokens: PositiveInt | None = None
    statistic: Statistic | None = None
    """Which of a latency's figures ``value`` is (None: the mean)."""

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def figure(self) -> Statistic:
        """``statistic``, the mean where none is given."""
        return self.statistic or "mean"

    @property
    def served(self) -> bool:
        """Scored under continuous batching at its ``request_rate``."""
        return self.request_rate is not None

    @property
    def saturated(self) -> bool:
        """Scored under continuous batching with every slot busy: a ``max-throughput`` row whose batch the
        engine chose (all requests queued at once, as offline benchmarks send them)."""
        return self.scenario == "max-throughput" and self.batch is None

    @property
    def continuous(self) -> bool:
        """Scored under continuous batching (at a rate, or with every slot busy), not as a static batch."""
        return self.served or self.saturated


@dataclass(frozen=True)
class Measurement:
    record: MeasurementRecord
    line: int
    """Line of the CSV file (1: the header)."""
    source: str | None = None
    """The CSV file (None: rows made in code)."""


_REFERENCES: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("model", load_model),
    ("hardware", load_target),
    ("quant", load_scheme),
    ("kv", load_kv_format),
)
"""The columns that name catalog entries (ids, or paths for models and hardware), and how each is looked up."""


def _unknown_references(
    record: MeasurementRecord, known: dict[tuple[str, str], str | None]
) -> Iterator[tuple[str, str]]:
    """(column, what is wrong) for each catalog reference of ``record`` that does not resolve; ``known`` keeps
    each answer, so a file of many rows looks each distinct value up once."""
    for column, load in _REFERENCES:
        value = getattr(record, column)
        if value is None:
            continue
        if (column, value) not in known:
            try:
                load(value)
                known[column, value] = None
            except InputError as exc:  # a file named in the cell says its own name, with its problem
                known[column, value] = exc.message if exc.source is None else str(exc)
        why = known[column, value]
        if why is not None:
            yield column, why


def _load_problem(record: MeasurementRecord) -> tuple[str, str] | None:
    """(column, what is wrong) where a row's load does not fit it: a load and a percentile describe a server
    row's latency at a rate, the engine's limits a row served under continuous batching (at a rate, or a
    max-throughput row's every slot busy)."""
    if record.request_rate is None:
        limits = [c for c in ("max_num_seqs", "chunk_tokens") if getattr(record, c) is not None]
        given = [] if record.saturated else limits
        if record.figure != "mean":
            given.append("statistic")
        if given:
            return given[0], (
                f"{given[0]} is read only with a request_rate (a server row's load)"
                + ("" if given[0] == "statistic" else " or on a max-throughput row without a batch")
            )
    elif record.scenario != "server":
        return "request_rate", f"a request_rate is a server row's load, not a {record.scenario} row's"
    elif record.metric not in LATENCIES:  # below capacity the throughput is the rate's: nothing to check
        return "metric", f"a row at a request_rate is scored for {' or '.join(LATENCIES)}, not {record.metric}"
    return None


def read_measurements(path: str | Path) -> list[Measurement]:
    """Every row of a measurements CSV, validated (its model, hardware, quant and kv known to the catalogs); a
    bad row raises ``InputError`` naming the file, the line and the column."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark too
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file ({exc})", source=source) from None
    reader = csv.DictReader(text.splitlines())
    try:  # each row with the line it ends on (blank lines are skipped, not counted out)
        header = tuple(reader.fieldnames or ())
        read = [(row, reader.line_num) for row in reader]
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: not CSV ({exc})", source=source) from None
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise InputError(
            f"expected the columns {', '.join(COLUMNS)} (and optionally {', '.join(OPTIONAL_COLUMNS)})"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else ""),
            source=source,
        )
    rows, seen = [], set()
    known: dict[tuple[str, str], str | None] = {}
    for row, line in read:
        if None in row:  # cells beyond the header's columns (``DictReader``'s restkey)
            raise InputError(f"line {line}: more cells than the header names", source=source)
        try:
            record = MeasurementRecord(**row)  # type: ignore[arg-type]
        except ValidationError as exc:
            error = exc.errors()[0]
            column = ".".join(str(p) for p in error["loc"])
            raise InputError(
                f"line {line}: {error['msg']} (got {error.get('input')!r})", source=source, field=column
            ) from None
        if record.id in seen:
            raise InputError(f"line {line}: id {record.id!r} given twice", source=source, field="id")
        seen.add(record.id)
        problem = _load_problem(record)
        if problem is not None:
            raise InputError(f"line {line}: {problem[1]}", source=source, field=problem[0])
        reference = next(_unknown_references(record, known), None)
        if reference is not None:
            raise InputError(f"line {line}: {reference[1]}", source=source, field=reference[0])
        rows.append(Measurement(record, line, source))
    if not rows:
        raise InputError("no measurement rows", source=source)
    return rows
