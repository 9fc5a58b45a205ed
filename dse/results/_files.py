"""The run directory's files (DESIGN.md §4): manifest.json, trials.parquet, pareto.csv, summary.json."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from dse.space import OPTIONAL_INTS, Space
from dse.version import __version__

MANIFEST, TRIALS, PARETO, SUMMARY, JOURNAL, POSITION = (
    "manifest.json",
    "trials.parquet",
    "pareto.csv",
    "summary.json",
    "study.journal",
    "position.json",
)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def replace_durably(tmp: Path, path: Path) -> None:
    """Move a fully written ``tmp`` over ``path``: its bytes reach the disk first (fsync), then the rename, then
    the directory entry, so a crash or power loss leaves either the old file or the new one, never a torn one.
    A move that fails (``path`` a directory, the disk gone) removes ``tmp`` and raises."""
    try:
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _discard(tmp: Path) -> None:
    """Remove a temporary file a failed write left (a directory of that name is not ours: it stays)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def temporary(path: Path) -> Path:
    """Where ``path`` is written before it is moved into place: ``<name>.tmp`` beside it."""
    return path.with_name(path.name + ".tmp")


def write_text_durably(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably: into ``temporary(path)``, then moved over
    ``path`` (``replace_durably``). A write that fails leaves the old file, and no temporary one."""
    tmp = temporary(path)
    try:
        tmp.write_text(text, encoding="utf-8")
    except BaseException:
        _discard(tmp)
        raise
    replace_durably(tmp, path)
    return path


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically and durably (``write_text_durably``)."""
    write_text_durably(path, json.dumps(data, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def manifest(space: Space, settings: dict[str, Any]) -> dict[str, Any]:
    """Inputs and their content hashes, and the versions that produced the run."""
    versions: dict[str, str | None] = {"dse": __version__, "python": platform.python_version()}
    for name in ("numpy", "pydantic", "optuna", "ray", "pandas", "pyarrow", "moocore"):
        try:
            versions[name] = metadata.version(name)  # no import: ray alone takes a second to import
        except metadata.PackageNotFoundError:
            versions[name] = None
    hardware = []
    records = {}
    for ref, (accelerator, system) in zip(space.record.choices.hardware, space.hardware, strict=True):
        entry = system if system is not None else accelerator
        provenance = entry.record.provenance
        hardware.append(
            {
                "id": ref,
                "name": entry.name,
                "accelerator": accelerator.id,
                "system": system.id if system is not None else None,
                "provenance": provenance.model_dump() if provenance else None,
            }
        )
        records[ref] = hashlib.sha256(
            (entry.record.model_dump_json() + accelerator.record.model_dump_json()).encode()
        ).hexdigest()
    return {
        "space": {
            "path": _absolute(space.source),
            "sha256": space.digest,
            "record": space.record.model_dump(mode="json"),
        },
        "model": {
            "id": space.model.id,
            "record_sha256": hashlib.sha256(space.model.record.model_dump_json().encode()).hexdigest(),
        },
        "hardware": hardware,
        "hardware_records_sha256": records,
        "settings": settings,
        "versions": versions,
    }


def _absolute(source: str) -> str:
    """The space file's absolute path (so ``--resume`` works from any directory), or the label as given."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else source


def write_table(columns: dict[str, Any] | list[dict[str, Any]], path: Path) -> None:
    """Columns -> parquet (or CSV for ``.csv``), atomically and durably (``replace_durably``).

    ``columns`` may be a list of parts (chunks as they were evaluated): parquet then gets one row group per
    part, written one after another, so the whole table is never joined in memory. String columns hold a
    handful of distinct values (hardware ids, formats, reasons): they are written dictionary-encoded from
    hash-factorized codes, which is several times faster than letting the writer convert a million Python
    strings. ``OPTIONAL_INTS`` (whole numbers or None) are int64 with nulls.
    """
    import pandas as pd

    parts = columns if isinstance(columns, list) else [columns]
    tmp = temporary(path)
    try:
        if path.suffix == ".csv":
            pd.concat([pd.DataFrame(part) for part in parts]).to_csv(tmp, index=False)
        else:
            import pyarrow.parquet as pq

            tables = (_arrow_table(part) for part in parts)
            first = next(tables)
            strings = [f.name for f in first.schema if str(f.type).startswith("dictionary")]
            with pq.ParquetWriter(tmp, first.schema, use_dictionary=strings) as writer:  # floats never repeat
                writer.write_table(first)
                for table in tables:
                    writer.write_table(table.cast(first.schema))
    except BaseException:
        _discard(tmp)
        raise
    replace_durably(tmp, path)


def _arrow_table(columns: dict[str, Any]) -> Any:
    """One part as an Arrow table (types as ``write_table`` describes)."""
    import pandas as pd
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if name in OPTIONAL_INTS:
            missing = pd.isna(values)
            filled = np.where(missing, 0, values).astype(np.int64)
            arrays[name] = pa.array(filled, mask=missing, type=pa.int64())
        elif values.dtype == object:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            dictionary = pa.array([None if u is None else str(u) for u in uniques], type=pa.string())
            indices = pa.array(codes, mask=codes < 0, type=pa.int32())
            arrays[name] = pa.DictionaryArray.from_arrays(indices, dictionary)
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def read_trials(path: Path) -> dict[str, Any]:
    """trials.parquet (or pareto.csv) back into columns."""
    import pandas as pd

    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if name in OPTIONAL_INTS:  # int64 with nulls reads back as floats with NaN: back to int/None
            missing = series.isna().to_numpy()
            values = np.where(missing, 0, series.to_numpy()).astype(np.int64).astype(object)
            values[missing] = None
            columns[name] = values
        elif isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object:
            values = np.array(series.astype(object).to_numpy(), dtype=object)
            values[series.isna().to_numpy()] = None  # missing strings come back as None, as they went in
            columns[name] = values
        else:
            columns[name] = series.to_numpy()
    return columns
