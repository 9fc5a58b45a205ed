"""Histograms of observed prompt and output lengths: CSV files a workload names (docs/spaces.md, "Lengths that
vary")."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dse.errors import InputError

COUNT_COLUMN = "count"
"""Optional histogram column: how many requests a row stands for (default one)."""


def read_histogram(path: Path, columns: list[str], field: str) -> tuple[list[np.ndarray], np.ndarray]:
    """``columns`` of a histogram CSV (a header row, one request per row) as positive whole numbers, and each
    row's ``COUNT_COLUMN`` (1 without it); errors name the file, line and column (``field``: what named the
    file)."""
    source = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's byte-order mark too
            reader = csv.DictReader(handle)
            rows, lines = [], []  # each row, and the line it ends on (blank lines are skipped, not counted out)
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise InputError(f"histogram file not found: {source}", field=field) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read histogram {source} ({exc})", field=field) from None
    header = list(rows[0].keys()) if rows else []
    if not rows:
        raise InputError("no rows (expected a header and one row per request)", source=source, field=field)
    extra = next((i for i, row in zip(lines, rows, strict=True) if row.get(None)), None)  # type: ignore[call-overload]
    if extra is not None:
        raise InputError(f"line {extra}: more cells than the header names", source=source, field=field)
    out = []
    for column in [*columns, COUNT_COLUMN]:
        if column not in header:
            if column == COUNT_COLUMN:
                out.append(np.ones(len(rows)))
                continue
            raise InputError(f"no column {column!r} (columns: {', '.join(header)})", source=source, field=field)
        values = []
        for i, row in zip(lines, rows, strict=True):
            try:
                value = float(row[column] or "nan")
            except ValueError:
                value = np.nan
            if not (np.isfinite(value) and value > 0 and (column == COUNT_COLUMN or value == int(value))):
                what = "a positive count" if column == COUNT_COLUMN else "a positive whole number of tokens"
                message = f"line {i}, column {column!r}: {row[column]!r} is not {what}"
                raise InputError(message, source=source, field=field)
            values.append(value)
        out.append(np.asarray(values))
    return out[:-1], out[-1]
