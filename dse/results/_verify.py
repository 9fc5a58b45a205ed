"""What a resume may trust: the run directory's files checked against the manifest and the space, repaired
where that is safe (and said), refused where it is not (``InputError``: exit 2, nothing touched)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from dse.errors import InputError
from dse.execute import Columns, evaluate_chunk
from dse.results._files import JOURNAL, MANIFEST, POSITION, TRIALS, read_trials
from dse.space import DIMENSIONS, Space, SpaceRecord, build_space, check_seed, load_space

SAMPLE = 256
"""Rows of trials.parquet re-evaluated on resume: each must be what its candidate id means in this space."""
SAME_RTOL = 1e-10
"""Relative difference below which a re-evaluated metric is the saved one (the engine may sum a chunk's terms
in another order)."""


@dataclass
class Checked:
    """A run directory as far as a resume may trust it."""

    space: Space
    settings: dict[str, Any]
    previous: Columns | None
    position: dict[str, Any] | None = None
    """``position.json``: the engine's position and the counts there (runs that keep only some rows)."""
    repairs: list[str] = field(default_factory=list)


def _manifest(directory: Path) -> dict[str, Any]:
    try:
        saved = json.loads((directory / MANIFEST).read_text())
        saved["space"]["path"], saved["space"]["sha256"], dict(saved["settings"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"not a run directory: no readable {MANIFEST} ({exc})", source=str(directory)) from None
    return saved  # type: ignore[no-any-return]


def _space(saved: dict[str, Any], directory: Path, repairs: list[str]) -> Space:
    """The run's space: its file when it is still where the run started (and unchanged), else the copy of the
    space the manifest keeps."""
    path = Path(saved["space"]["path"])
    if path.is_file():
        space = load_space(path)
        if space.digest != saved["space"]["sha256"]:
            raise InputError("the space file changed since this run started; start a new run", source=str(path))
        return space
    try:
        record = SpaceRecord.model_validate(saved["space"]["record"])
    except (KeyError, ValidationError) as exc:
        raise InputError(
            f"the space file is gone and {MANIFEST} holds no usable copy ({exc})", source=str(path)
        ) from None
    repairs.append(f"the space file {path} is gone: using the copy of the space in {MANIFEST}")
    return build_space(record, source=f"{directory / MANIFEST} (space)", digest=saved["space"]["sha256"])


def _trials(space: Space, directory: Path, repairs: list[str], counted: int = 0) -> Columns | None:
    """trials.parquet, checked: readable, this space's columns, every row what its candidate id means here, and
    at least the ``counted`` rows a run keeping every row had saved at its last position (a table removed or
    cut short since would resume from that position without them: a front and counts lost)."""
    path = directory / TRIALS
    if not path.exists():
        if counted:
            raise InputError(
                f"missing, where {POSITION} counts {counted:,} candidates evaluated: resuming would lose them;"
                " restore the table or start a new run",
                source=str(path),
            )
        return None
    try:
        columns = read_trials(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise InputError(f"unreadable ({type(exc).__name__}: {exc}); start a new run", source=str(path)) from None
    expected = set(space.evaluate_codes(*(np.zeros(0, dtype=np.int64),) * len(DIMENSIONS))) | {"stage"}
    if set(columns) != expected:
        differ = sorted(set(columns) ^ expected)
        raise InputError(f"not this version's trials table (columns differ: {', '.join(differ)})", source=str(path))
    ids = np.asarray(columns["candidate_id"], dtype=np.int64)
    if len(ids) < counted:
        raise InputError(
            f"{len(ids):,} rows, where {POSITION} counts {counted:,} candidates evaluated: the table was cut short"
            " since, and resuming would lose the rest; restore it or start a new run",
            source=str(path),
        )
    if len(ids) and (ids.min() < 0 or ids.max() >= space.full_size):
        raise InputError(f"candidate ids outside this space (0..{space.full_size - 1})", source=str(path))
    _, first = np.unique(ids, return_index=True)
    if len(first) < len(ids):
        repairs.append(f"{len(ids) - len(first):,} repeated rows of trials.parquet dropped (each candidate once)")
        keep = np.sort(first)
        columns = {name: np.asarray(values)[keep] for name, values in columns.items()}
    _check_rows(space, columns, path)
    return columns


def _check_rows(space: Space, columns: Columns, path: Path) -> None:
    """Re-evaluate a sample of rows: a table copied from another space (or edited) does not match its ids."""
    n = len(columns["candidate_id"])
    if not n:
        return
    rows = np.unique(np.linspace(0, n - 1, min(SAMPLE, n)).round().astype(np.int64))
    fresh = evaluate_chunk(space, np.asarray(columns["candidate_id"], dtype=np.int64)[rows])
    for name, values in fresh.items():
        saved = np.asarray(columns[name])[rows]
        values = np.asarray(values)
        if values.dtype.kind == "f":
            same = np.isclose(saved.astype(float), values, rtol=SAME_RTOL, atol=0.0, equal_nan=True)
        else:
            same = np.array([str(a) == str(b) for a, b in zip(saved, values, strict=True)])
        if not same.all():
            row = int(rows[np.flatnonzero(~same)[0]])
            cid = int(columns["candidate_id"][row])
            raise InputError(
                f"row {row} (candidate {cid}) is not this space's candidate: {name} is {columns[name][row]!r} where"
                f" the space gives {values[np.flatnonzero(~same)[0]]!r}; the table belongs to another run or was"
                " edited: start a new run",
                source=str(path),
            )


def _leftovers(directory: Path, repairs: list[str]) -> None:
    """Half-written files of a run killed mid-write (the complete ones were never touched)."""
    for name in (
        f"{TRIALS}.tmp",
        "pareto.csv.tmp",
        "summary.json.tmp",
        f"{POSITION}.tmp",
        f"{JOURNAL}.tmp",
        f"{JOURNAL}.tmp.lock",
    ):
        leftover = directory / name
        if leftover.exists():
            leftover.unlink()
            repairs.append(f"removed {name}, left by an interrupted write")


def check_run(directory: Path) -> Checked:
    """Everything a resume needs from ``directory``, verified; ``repairs`` says what was put right."""
    repairs: list[str] = []
    saved = _manifest(directory)
    space = _space(saved, directory, repairs)
    settings = dict(saved["settings"])
    settings.setdefault("checkpoint_s", space.record.execution.checkpoint_s)  # runs started before the setting
    settings.setdefault("keep", "all")
    try:
        check_seed(settings.get("seed", 0))
    except InputError as exc:  # a run started before seeds were checked stopped before its first candidate
        raise InputError(
            f"{exc.message}: this run cannot resume; start a new one (another --out, or remove this directory)",
            source=str(directory / MANIFEST),
            field="settings.seed",
        ) from None
    position = _position(directory)
    counted = int(position["counts"]["evaluated"]) if position is not None and settings["keep"] == "all" else 0
    previous = _trials(space, directory, repairs, counted)
    if settings["keep"] != "all" and position is None and previous is not None:
        raise InputError(f"keeps only some rows and has no {POSITION}: start a new run", source=str(directory))
    _leftovers(directory, repairs)
    return Checked(space, settings, previous, position, repairs)


def _position(directory: Path) -> dict[str, Any] | None:
    path = directory / POSITION
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        int(data["counts"]["evaluated"]), dict(data["position"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable ({exc}); start a new run", source=str(path)) from None
    return data  # type: ignore[no-any-return]
