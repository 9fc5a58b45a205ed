"""The run directory's files (DESIGN.md §4): manifest.json, trials.parquet, pareto.csv, summary.json."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from dse import __version__
from dse.space import Space

MANIFEST, TRIALS, PARETO, SUMMARY, JOURNAL = (
    "manifest.json",
    "trials.parquet",
    "pareto.csv",
    "summary.json",
    "study.journal",
)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def manifest(space: Space, settings: dict[str, Any]) -> dict[str, Any]:
    """Inputs and their content hashes, and the versions that produced the run."""
    import pydantic

    versions = {
        "dse": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pydantic": pydantic.__version__,
    }
    for name in ("optuna", "ray", "pandas", "pyarrow", "moocore"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    hardware = [
        {"id": h.id, "name": h.name, "provenance": h.record.provenance.model_dump() if h.record.provenance else None}
        for h in space.hardware
    ]
    return {
        "space": {"path": space.source, "sha256": space.digest, "record": space.record.model_dump(mode="json")},
        "model": {
            "id": space.model.id,
            "record_sha256": hashlib.sha256(space.model.record.model_dump_json().encode()).hexdigest(),
        },
        "hardware": hardware,
        "hardware_records_sha256": {
            h.id: hashlib.sha256(h.record.model_dump_json().encode()).hexdigest() for h in space.hardware
        },
        "settings": settings,
        "versions": versions,
    }


def write_table(columns: dict[str, Any], path: Path) -> None:
    """Columns -> parquet (or CSV for ``.csv``), atomically."""
    import pandas as pd

    frame = pd.DataFrame(columns)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def read_trials(path: Path) -> dict[str, Any]:
    """trials.parquet back into columns."""
    import pandas as pd

    frame = pd.read_parquet(path)
    return {name: frame[name].to_numpy() for name in frame.columns}
