"""A run: engine + executor over a space, written to a run directory; interruptible and resumable."""

from __future__ import annotations

import functools
import json
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import InputError
from dse.execute import Columns, Executor, concat_columns, make_executor
from dse.results._files import (
    JOURNAL,
    MANIFEST,
    PARETO,
    POSITION,
    SUMMARY,
    TRIALS,
    manifest,
    replace_durably,
    write_json,
    write_table,
)
from dse.results._guards import check_output_directory, refuse_if_too_large, writable_directory
from dse.results._verify import check_run
from dse.search import (
    Normalisation,
    choose_engine,
    chunks,
    drive,
    hypervolume,
    make_engine,
    objective_points,
    pareto_indices,
)
from dse.space import DIMENSIONS, Space, check_seed, load_space

Progress = Callable[[dict[str, Any]], None]


@dataclass
class Run:
    """A finished (or interrupted) run and its tables."""

    directory: Path
    space: Space
    parts: list[Columns]
    """Every evaluated candidate, in the chunks they were evaluated in (``columns`` joins them)."""
    front: Columns
    summary: dict[str, Any]

    @functools.cached_property
    def columns(self) -> Columns:
        """Every evaluated candidate, as one table of columns (joined on first use)."""
        return concat_columns(self.parts)

    @property
    def trials(self) -> Any:
        """Every evaluated candidate, as a pandas DataFrame."""
        return _frame(self.columns)

    @property
    def pareto(self) -> Any:
        """The feasible non-dominated set, as a pandas DataFrame."""
        return _frame(self.front)


def _frame(columns: Columns) -> Any:
    """Columns as a DataFrame without copying them: one block per column (no consolidation, which copies
    every array) and strings kept as Python objects (converting millions to pandas' string type takes longer
    than everything a run's answer does with them). 0.02 s instead of 2-2.5 s for 2.7 M rows x 28 columns."""
    import pandas as pd

    series = [
        pd.Series(values, name=name, dtype=object if np.asarray(values).dtype == object else None, copy=False)
        for name, values in columns.items()
    ]
    return pd.concat(series, axis=1) if series else pd.DataFrame()


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Ctrl-C, ``kill``, and a closed terminal all stop a run the same way."""


@contextmanager
def interruptible(stop: threading.Event) -> Iterator[None]:
    """The stop signals set ``stop`` while the block runs (the run finishes its chunk, writes everything, and
    returns); a second signal changes nothing, so it cannot cut the writing short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Collector:
    """Accumulates evaluated chunks (the rows ``keep`` asks for), keeps the front and the counts current,
    checkpoints, reports progress."""

    def __init__(
        self,
        space: Space,
        directory: Path,
        previous: Columns | None,
        progress: Progress | None,
        exhaustive: bool,
        keep: str = "all",
        saved: dict[str, Any] | None = None,
    ) -> None:
        self.space, self.directory, self.progress, self.keep = space, directory, progress, keep
        self.exhaustive = exhaustive
        """Whether the run evaluates the whole pruned space (then the time left can be told)."""
        self.started = time.monotonic()
        self.parts: list[Columns] = [previous] if previous is not None and len(previous["candidate_id"]) else []
        self.front: Columns | None = None
        self.last_report = time.monotonic()
        self.by_stage: Counter[str] = Counter()
        """Evaluated candidates per stage (exhaustive; search = Optuna trials; polish = batch lines)."""
        self.by_hardware: dict[str, tuple[int, Counter[str]]] = {}
        """Where ``keep`` drops rows: per hardware, its feasible candidates and its others by reason (the rows
        kept cannot say why a hardware has none)."""
        counts = (saved or {}).get("counts")
        if keep != "all" and counts:  # the rows kept cannot tell how many were evaluated: the saved counts can
            self.evaluated, self.feasible = int(counts["evaluated"]), int(counts["feasible"])
            self.by_stage.update(counts["by_stage"])
            for name, seen in counts.get("by_hardware", {}).items():
                self.by_hardware[name] = (int(seen["feasible"]), Counter(seen["infeasible"]))
        else:
            self.evaluated = sum(len(p["candidate_id"]) for p in self.parts)
            self.feasible = sum(int(np.sum(p["feasible"])) for p in self.parts)
            for part in self.parts:
                stages, n = np.unique(np.asarray(part["stage"], dtype=str), return_counts=True)
                self.by_stage.update(dict(zip(stages.tolist(), n.tolist(), strict=True)))
        self.already = self.evaluated
        self.known = np.sort(previous["candidate_id"]) if keep != "all" and self.parts and previous else None
        """Ids kept before a resume: a run keeping only some rows evaluates its last proposal again."""
        self.position: Callable[[], dict[str, Any]] = dict
        """The engine's position (``Engine.position``), set once the engine exists."""
        self.saved = {"position": (saved or {}).get("position", {}), "counts": self.counts()}
        for part in list(self.parts):
            self._merge_front(part)

    def add_nothing(self) -> None:
        """The run ends: take in the engine's last move (a complete run's position is its end)."""
        self._moved()

    def counts(self) -> dict[str, Any]:
        counts = {"evaluated": self.evaluated, "feasible": self.feasible, "by_stage": dict(self.by_stage)}
        return counts | ({"by_hardware": self.hardware_counts()} if self.keep != "all" else {})

    def hardware_counts(self) -> dict[str, dict[str, Any]]:
        """``by_hardware`` as ``summary.json`` holds it: hardware -> {feasible: n, infeasible: {reason: n}}."""
        return {
            name: {"feasible": feasible, "infeasible": dict(reasons.most_common())}
            for name, (feasible, reasons) in sorted(self.by_hardware.items())
        }

    def _count_by_hardware(self, cols: Columns) -> None:
        """Add a chunk's feasible candidates and infeasibility reasons to ``by_hardware`` (the hardware code is
        the leading digit of the candidate id: cheaper than the names)."""
        import pandas as pd

        names = self.space.record.choices.hardware
        hardware = np.asarray(cols["candidate_id"], dtype=np.int64) // math.prod(self.space.radices[1:])
        feasible = np.asarray(cols["feasible"], dtype=bool)
        reason, reasons = pd.factorize(
            np.asarray(cols["infeasible_reason"], dtype=object)[~feasible], use_na_sentinel=False
        )
        ok = np.bincount(hardware[feasible], minlength=len(names))
        bad = np.bincount(hardware[~feasible] * len(reasons) + reason, minlength=len(names) * len(reasons))
        for i, name in enumerate(names):
            row = bad[i * len(reasons) : (i + 1) * len(reasons)]
            if not ok[i] and not row.any():
                continue
            seen, why = self.by_hardware.get(str(name), (0, Counter()))
            why.update({str(reasons[j]): int(row[j]) for j in np.flatnonzero(row)})
            self.by_hardware[str(name)] = (seen + int(ok[i]), why)

    def _moved(self) -> None:
        """The engine observed a proposal since the last chunk: remember where, and the counts there (a run
        resumed from this position evaluates everything after it again, and counts it again)."""
        position = self.position()
        if position and position != self.saved["position"]:
            self.saved = {"position": position, "counts": self.counts()}

    def _merge_front(self, cols: Columns) -> None:
        pool = cols if self.front is None else concat_columns([self.front, cols])
        keep = pareto_indices(pool, self.space.record.objectives)
        self.front = {k: np.asarray(v)[keep] for k, v in pool.items()}

    def add(self, cols: Columns, stage: str) -> None:
        """Take evaluated candidates; ``stage`` (exhaustive, search, polish) is kept as a column."""
        self._moved()
        cols = cols | {"stage": np.full(len(cols["candidate_id"]), stage, dtype=object)}
        kept = self._kept(cols)
        if kept is not None and len(kept["candidate_id"]):
            self.parts.append(kept)
        self.by_stage[stage] += len(cols["candidate_id"])
        self.evaluated += len(cols["candidate_id"])
        self.feasible += int(np.sum(cols["feasible"]))
        if self.keep != "all":
            self._count_by_hardware(cols)
        self._merge_front(cols)
        now = time.monotonic()
        if self.progress and (now - self.last_report > 0.2 or len(self.parts) == 1):
            self.last_report = now
            self.progress(self.status())

    def status(self) -> dict[str, Any]:
        front = self.front if self.front is not None else {"candidate_id": []}
        hv = 0.0
        if len(front["candidate_id"]):
            points = objective_points(front, self.space.record.objectives)
            hv = hypervolume(points, Normalisation.of_front(points))
        return {
            "evaluated": self.evaluated,
            "total": self.space.size,  # as the summary counts: candidates of the pruned space, whatever the engine
            "eta_s": self._eta_s(),
            "feasible": self.feasible,
            "front": len(front["candidate_id"]),
            "hypervolume": hv,
        }

    def _eta_s(self) -> float | None:
        """Seconds left at this session's rate, when the run evaluates the whole space (exhaustive runs)."""
        done, elapsed = self.evaluated - self.already, time.monotonic() - self.started
        if not self.exhaustive or done <= 0 or elapsed <= 0:
            return None
        return max(self.space.size - self.evaluated, 0) / (done / elapsed)

    def _kept(self, cols: Columns) -> Columns | None:
        """The rows of a chunk that ``keep`` keeps (none for ``front``: the front is kept apart)."""
        if self.keep == "front":
            return None
        rows = np.asarray(cols["feasible"], dtype=bool) if self.keep == "feasible" else None
        if self.known is not None:  # kept before the resume, evaluated again: keep once
            fresh = ~np.isin(np.asarray(cols["candidate_id"]), self.known)
            rows = fresh if rows is None else rows & fresh
        return cols if rows is None else {k: np.asarray(v)[rows] for k, v in cols.items()}

    def tables(self) -> list[Columns]:
        """The candidates kept, as the parts they arrived in (``keep`` = front: the front; one empty part when
        there is none)."""
        if self.keep == "front" and self.front is not None:
            return [self.front]
        if not self.parts or self.keep == "front":
            empty = self.space.evaluate_codes(*(np.zeros(0, dtype=np.int64),) * len(DIMENSIONS))
            return [empty | {"stage": np.zeros(0, dtype=object)}]
        return self.parts

    def checkpoint(self) -> None:
        """Save the candidates kept so far (``trials.parquet``), then the engine's position and the counts
        there (``position.json``), each replaced atomically: a crash between the two leaves an older position,
        which costs work again, never a lost candidate."""
        write_table(self.tables(), self.directory / TRIALS)
        write_json(self.directory / POSITION, self.saved | {"keep": self.keep})


def run(
    space: Space | str | Path,
    *,
    out: str | Path | None = None,
    engine: str | None = None,
    trials: int | None = None,
    executor: str | None = None,
    seed: int | None = None,
    ray_address: str | None = None,
    keep: str | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Run:
    """Search ``space`` and write the run directory; returns the tables (``Run.trials``, ``Run.pareto``).

    Arguments override the space's ``engine`` and ``execution`` settings. Interrupting (SIGINT/SIGTERM or
    ``stop``) keeps everything evaluated so far; ``resume(directory)`` continues without repeating work.
    """
    if trials is not None and trials < 1:
        raise InputError(f"expected at least 1 trial, got {trials}", field="trials")
    if seed is not None:
        seed = check_seed(seed)
    space = space if isinstance(space, Space) else load_space(space)
    rec = space.record
    settings: dict[str, Any] = {
        "engine": engine or rec.engine.kind,
        "trials": trials or rec.engine.trials,
        "batch_size": rec.engine.batch_size,
        "tpe_trials": rec.engine.tpe_trials,
        "seed": rec.engine.seed if seed is None else seed,
        "executor": executor or rec.execution.executor,
        "chunk_size": rec.execution.chunk_size,
        "checkpoint_s": rec.execution.checkpoint_s,
        "keep": keep or rec.execution.keep,
        "ray_address": ray_address or rec.execution.ray_address,
    }
    directory = Path(out) if out is not None else default_directory(rec.name)
    if (directory / MANIFEST).exists():
        raise InputError(
            "already holds a run: continue it with --resume, or choose another --out", source=str(directory)
        )
    if ray_address is not None and settings["executor"] != "ray":
        raise InputError(
            "connects the ray executor, which this run does not use: add --executor ray (or executor: ray to the "
            "space's execution)",
            field="ray-address",
        )
    refuse_if_too_large(space, choose_engine(space, settings["engine"]), settings["trials"], settings["keep"])
    check_output_directory(directory, "out")
    started = time.perf_counter()  # the wall time counts the executor's start, as a user waits for it
    pool = _connect(settings)
    try:
        writable_directory(directory, "out")
        write_json(directory / MANIFEST, manifest(space, settings) | {"created": _now()})
    except BaseException:
        pool.close()
        raise
    return _execute(space, directory, settings, (pool, started), None, progress, stop or threading.Event())


def _connect(settings: dict[str, Any]) -> Executor:
    """The run's executor, made before the stop signals are held (``interruptible``): Ctrl-C stops a
    connection to a cluster (KeyboardInterrupt), and one that fails leaves the run directory as it was."""
    return make_executor(settings["executor"], ray_address=settings["ray_address"])


def resume(
    directory: str | Path,
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    executor: str | None = None,
) -> Run:
    """Continue an interrupted run in ``directory``: same space (checked by hash), nothing evaluated twice.

    Every file is checked first (``dse.results._verify``): what can be put right safely is, and said in
    ``summary.json``'s ``resume_repairs``; anything else raises ``InputError`` before anything is touched."""
    directory = Path(directory)
    checked = check_run(directory)
    settings = checked.settings | ({"executor": executor} if executor else {})
    before = _earlier_sessions(directory)
    stop = stop or threading.Event()
    started = time.perf_counter()
    pool = _connect(settings)
    result = _execute(
        checked.space, directory, settings, (pool, started), checked.previous, progress, stop, checked.position
    )
    session = result.summary["wall_time_s"]
    result.summary |= {  # the run's, over every session: a resume adds to what the sessions before it did
        "wall_time_s": before["wall_time_s"] + session,
        "wall_time_this_session_s": session,
        "work": _merged_work(before.get("work"), result.summary.get("work")),
    }
    if checked.repairs:
        result.summary["resume_repairs"] = checked.repairs
    write_json(directory / SUMMARY, result.summary)
    return result


def _earlier_sessions(directory: Path) -> dict[str, Any]:
    """What ``summary.json`` says the sessions before a resume took: their wall time (s) and work (nothing where
    a session was stopped before its summary, or the file is unreadable: the resume's own figures stand)."""
    try:
        summary = json.loads((directory / SUMMARY).read_text())
        wall = float(summary["wall_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"wall_time_s": 0.0}
    work = summary.get("work")
    return {"wall_time_s": wall if np.isfinite(wall) and wall >= 0 else 0.0} | (
        {"work": work} if isinstance(work, dict) else {}
    )


def _merged_work(before: dict[str, Any] | None, now: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where the chunks of every session were evaluated: chunks per node summed over the sessions (a local
    session's work is its one process)."""
    if not before or not now:
        return now or before
    chunks = dict(before.get("chunks_per_node") or {})
    for node, n in (now.get("chunks_per_node") or {}).items():
        chunks[node] = chunks.get(node, 0) + n
    if not chunks:
        return {"nodes": max(int(before.get("nodes") or 0), int(now.get("nodes") or 0))}
    return {"nodes": len(chunks), "chunks_per_node": chunks}


def _execute(
    space: Space,
    directory: Path,
    settings: dict[str, Any],
    executor: tuple[Executor, float],
    previous: Columns | None,
    progress: Progress | None,
    stop: threading.Event,
    saved: dict[str, Any] | None = None,
) -> Run:
    """Drive the engine, then write the run directory in the order that never loses an evaluated candidate:
    trials, front, the engine's export (complete runs), summary. The stop signals are held off for the whole
    of it: an interruption ends the search at the next chunk, never the writing. ``executor``: the executor
    (closed at the end) and when its start began (``time.perf_counter``)."""
    pool, started = executor
    engine = choose_engine(space, settings["engine"])
    try:
        collector = _Collector(space, directory, previous, progress, engine == "exhaustive", settings["keep"], saved)
    except BaseException:
        pool.close()
        raise
    with interruptible(stop):

        def evaluate(ids: np.ndarray) -> Iterator[Columns]:
            return (columns for _, columns in pool.map_ids(space, chunks(ids, settings["chunk_size"])))

        keeps_all = settings["keep"] == "all"
        try:
            position = (saved or {}).get("position")
            search = make_engine(engine, space, settings, previous if keeps_all else None, position)
        except BaseException:
            pool.close()
            raise
        collector.position = search.position
        try:
            drive(search, evaluate, collector.add, stop, settings["checkpoint_s"], collector.checkpoint)
        finally:
            work = pool.work()
            pool.close()
            search.close()
            collector.add_nothing()
            parts = collector.tables()
            collector.checkpoint()
        wall = time.perf_counter() - started
        front = collector.front or {k: np.asarray(v)[:0] for k, v in parts[0].items()}
        write_table(front, directory / PARETO)
        finished = collector.evaluated >= space.size if engine == "exhaustive" else not stop.is_set()
        if finished:
            _export(search, directory / JOURNAL)
        summary = _summary(space, engine, settings, collector, wall, complete=finished) | {"work": work}
        write_json(directory / SUMMARY, summary)
    return Run(directory, space, parts, front, summary)


def _export(search: Any, path: Path) -> None:
    """The engine's own record of the run (the Optuna journal), written whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    if search.export(tmp):
        replace_durably(tmp, path)
    for leftover in (tmp, tmp.with_name(tmp.name + ".lock")):
        leftover.unlink(missing_ok=True)


def _summary(
    space: Space,
    engine: str,
    settings: dict[str, Any],
    collector: _Collector,
    wall: float,
    complete: bool,
) -> dict[str, Any]:
    status = collector.status()
    front = collector.front
    norm = None
    if front is not None and len(front["candidate_id"]):
        norm = Normalisation.of_front(objective_points(front, space.record.objectives))
    new = collector.evaluated - collector.already
    return {
        "space": space.record.name,
        "engine": engine,
        "executor": settings["executor"],
        "keep": settings["keep"],
        "complete": complete,
        "counts": {
            "full_space": space.full_size,
            "after_pruning": space.size,
            "pruned_combinations": len(space.pruned),
            "evaluated": collector.evaluated,
            "evaluated_this_session": new,
            "feasible": collector.feasible,
            "pareto": status["front"],
            "by_stage": dict(sorted(collector.by_stage.items())),
        },
        "objectives": [{"metric": o.metric, "maximize": o.maximize} for o in space.record.objectives],
        "hypervolume": {
            "value": status["hypervolume"],
            "normalisation": "log10, then (x - ideal) / (nadir - ideal) of this front; reference 1.1 per objective",
            "ideal": list(norm.ideal) if norm else None,
            "nadir": list(norm.nadir) if norm else None,
        },
        "wall_time_s": wall,
        "candidates_per_s": new / wall if wall > 0 else None,
        "pruned": [entry._asdict() for entry in space.pruned],
        "unpriced": space.unpriced,
    } | ({"by_hardware": collector.hardware_counts()} if settings["keep"] != "all" else {})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_directory(name: str) -> Path:
    """``experiments/runs/<name>-<local time>``, with ``-2``, ``-3``... when that exists: a new directory for
    every run or sweep, even two started in the same second."""
    base = Path("experiments") / "runs" / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
