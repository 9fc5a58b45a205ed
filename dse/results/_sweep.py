"""Sweeps: one base space, a product of overrides, one study per point; one combined table."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from dse.catalog import is_path, read_document, validate, yaml_text
from dse.errors import InputError
from dse.results._files import MANIFEST, PARETO, SUMMARY, read_trials, write_json, write_table
from dse.results._guards import writable_directory
from dse.results._run import default_directory, interruptible, resume, run
from dse.space import NAME_LENGTH, ExecutorKind, SpaceRecord, load_space

SWEEP_TABLE, SWEEP_INDEX = "sweep.csv", "sweep.json"
"""A sweep directory's joined front and its index of points (overrides, directory, summary)."""


class SweepRecord(BaseModel):
    """An experiment YAML: ``grid`` maps dotted keys of the base space to lists of values."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=NAME_LENGTH)
    description: str | None = None
    base: str = Field(description="the base space YAML, relative to this file")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(min_length=1)

    executor: ExecutorKind = "local"
    ray_address: str | None = None
    parallel: PositiveInt | None = Field(default=None, description="studies at once on Ray (default: all CPUs)")

    @field_validator("grid")
    @classmethod
    def _not_the_name(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if "name" in grid:
            raise ValueError("the sweep names its points itself (<base name>-NNN): remove 'name' from the grid")
        return grid


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: its directory and the combined Pareto table with the sweep keys as columns."""

    directory: Path
    table: Any
    complete: bool
    """False when interrupted: the table then holds the points finished so far (``sweep.json`` says which)."""


def _override(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            raise InputError(f"no mapping {key!r} in the base space", source=source, field=f"grid.{dotted}")
        node = node[key]
    node[keys[-1]] = value


def points(record: SweepRecord, base: dict[str, Any], source: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(overrides, space data) for every point of the grid, validated before anything runs."""
    keys = list(record.grid)
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for values in itertools.product(*(record.grid[k] for k in keys)):
        data = copy.deepcopy(base)
        overrides = dict(zip(keys, values, strict=True))
        for key, value in overrides.items():
            _override(data, key, value, source)
        data["name"] = f"{base['name']}-{len(out):03d}"
        validate(SpaceRecord, data, source=f"{source} (point {len(out)}: {overrides})")
        out.append((overrides, data))
    return out


def _run_point(space_file: str, out: str, stop: threading.Event | None = None) -> dict[str, Any]:
    """One study of the sweep, on the local executor (a sweep parallelises over studies, not chunks): run it,
    or (a resumed sweep) continue it, or read it back when it is complete."""
    directory = Path(out)
    if (directory / MANIFEST).exists():
        summary = json.loads((directory / SUMMARY).read_text()) if (directory / SUMMARY).exists() else {}
        if summary.get("complete"):
            front = read_trials(directory / PARETO)
            return {"front": front, "summary": summary}
        result = resume(directory, stop=stop)
    else:
        result = run(space_file, out=out, executor="local", stop=stop)
    return {"front": result.front, "summary": result.summary}


def sweep(path: str | Path | None = None, *, out: str | Path | None = None, resume: str | Path | None = None) -> Sweep:
    """Run every point of the sweep (in parallel on Ray when asked) and join their fronts.

    ``resume`` continues the sweep in that directory (its ``sweep.json`` names the experiment file): complete
    points are read back, interrupted ones resumed, the rest run."""
    if resume is not None:
        try:
            path, out = json.loads((Path(resume) / SWEEP_INDEX).read_text())["experiment"], resume
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(f"not a sweep directory: no readable {SWEEP_INDEX}", source=str(resume)) from None
    if path is None:
        raise InputError("give a sweep file, or --resume DIR", field="experiment")
    path = Path(path)
    record = validate(SweepRecord, read_document(path), source=str(path), path=path)
    base_path = (path.parent / record.base).resolve()
    base = read_document(base_path)
    if not isinstance(base, dict) or not isinstance(base.get("name"), str):
        raise InputError("the base space must be a space YAML mapping with a name", source=str(base_path))
    directory = Path(out) if out else default_directory(record.name)
    if resume is None and (directory / SWEEP_INDEX).exists():
        raise InputError(
            "already holds a sweep: continue it with --resume, or choose another --out", source=str(directory)
        )
    writable_directory(directory, "out")
    jobs = []
    for index, (overrides, data) in enumerate(points(record, base, str(path))):
        point_dir = directory / f"point-{index:03d}"
        point_dir.mkdir(exist_ok=True)
        model = data.get("model", "")
        if isinstance(model, str) and is_path(model):
            data["model"] = str((base_path.parent / model).resolve())
        for lengths in (data.get("workload") or {}).values():  # histogram files, as the base space names them
            if isinstance(lengths, dict) and isinstance(lengths.get("path"), str):
                lengths["path"] = str((base_path.parent / lengths["path"]).resolve())
        space_file = point_dir / "space.yaml"
        space_file.write_text(yaml_text(data, sort_keys=False))
        load_space(space_file)  # resolve ids now: a bad point fails before any study starts
        jobs.append((overrides, str(space_file), str(point_dir)))
    _index(directory, record.name, path, jobs, [])  # written first: an interrupted sweep can be resumed
    results = _execute(jobs, record)
    table = _combine(jobs, results) if results else {}
    write_table(table, directory / SWEEP_TABLE)
    _index(directory, record.name, path, jobs, results)
    import pandas as pd

    complete = len(results) == len(jobs) and all(r["summary"]["complete"] for r in results)
    return Sweep(directory, pd.DataFrame(table), complete)


def _index(
    directory: Path, name: str, experiment: Path, jobs: list[tuple[dict[str, Any], str, str]], results: list[Any]
) -> None:
    """``sweep.json``: the experiment, every point (overrides, directory, summary once run), complete or not."""
    write_json(
        directory / SWEEP_INDEX,
        {
            "name": name,
            "experiment": str(experiment.resolve()),
            "complete": len(results) == len(jobs) and all(r["summary"]["complete"] for r in results),
            "points": [
                {"overrides": o, "directory": d, "summary": r["summary"] if r else None}
                for (o, _, d), r in itertools.zip_longest(jobs, results)
            ],
        },
    )


def _execute(jobs: list[tuple[dict[str, Any], str, str]], record: SweepRecord) -> list[dict[str, Any]]:
    if record.executor == "local":
        stop = threading.Event()
        done: list[dict[str, Any]] = []
        with interruptible(stop):  # Ctrl-C stops the current study (kept, resumable) and the sweep
            for _, space_file, out in jobs:
                done.append(_run_point(space_file, out, stop))
                if stop.is_set():
                    break
        return done
    from dse.execute import start_ray

    ray, owns = start_ray(record.ray_address)
    try:
        task = ray.remote(max_retries=2)(_run_point)
        return list(ray.get([task.remote(space_file, out) for _, space_file, out in jobs]))
    finally:
        if owns:
            ray.shutdown()


def _combine(jobs: list[tuple[dict[str, Any], str, str]], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The fronts of the points run so far (the first ``len(results)`` jobs: fewer after an interrupt), one table
    with each point's overrides as ``sweep.<key>`` columns."""
    import numpy as np

    columns: dict[str, list[Any]] = {}
    keys = list(jobs[0][0])
    # a key with a list or a mapping among its values (a distribution of lengths) is written as text throughout
    as_text = {key for key in keys for overrides, _, _ in jobs if isinstance(overrides[key], list | dict)}
    for (overrides, _, _), result in zip(jobs[: len(results)], results, strict=True):  # the points run, in order
        front = result["front"]
        n = len(front["candidate_id"])
        for key in keys:
            value = overrides[key]
            if key in as_text and isinstance(value, dict):
                value = yaml.safe_dump(value, default_flow_style=True).strip()
            elif key in as_text:
                value = str(value)
            columns.setdefault(f"sweep.{key}", []).extend([value] * n)
        for name, values in front.items():
            columns.setdefault(name, []).extend(np.asarray(values).tolist())
    return columns
