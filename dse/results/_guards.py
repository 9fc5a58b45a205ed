"""Checks made before a run writes anything: will it fit in memory, can its directory be written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dse import units
from dse.errors import InputError
from dse.space import Space

TRIAL_BYTES = 720
"""Peak memory per candidate a run keeps (every evaluated row, for trials.parquet, and the copies made to write
it): 705 bytes measured on a 1.3 M-candidate exhaustive run (docs/benchmarks.md), rounded up."""


def available_memory_bytes() -> float:
    """Memory the system can give this run now (Linux: MemAvailable; elsewhere: all physical memory)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * units.KiB
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def refuse_if_too_large(space: Space, engine: str, trials: int, keep: str = "all") -> None:
    """Refuse (``InputError``) a run whose candidates cannot be held in memory, before anything starts. Only
    a run that keeps every row grows with its size (``keep`` = feasible keeps what the SLOs admit; front, a
    front)."""
    from dse.search import POLISH_PER_TRIAL

    if keep != "all":
        return
    count = space.size if engine == "exhaustive" else min(space.size, trials * (1 + POLISH_PER_TRIAL))
    need, have = count * TRIAL_BYTES, available_memory_bytes()
    if need > 0.8 * have:
        raise InputError(
            f"a {engine} run of {count:,} candidates needs about {need / units.GB:,.1f} GB of memory ({TRIAL_BYTES}"
            f" bytes per candidate kept for trials.parquet) and {have / units.GB:,.1f} GB is available: narrow the"
            " space (fewer choices, a batch range with a step or a list of batches), keep fewer rows (--keep"
            " front or feasible)"
            + (", or search it with --engine optuna" if engine == "exhaustive" else ", or ask for fewer --trials"),
            source=space.source,
        )


def _unwritable(directory: Path) -> str | None:
    """Why no file could be made in ``directory`` (made, with its missing parents, when written), or None.
    Nothing is left behind: the nearest folder that exists is tried with a file made and removed at once."""
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    try:
        handle, name = tempfile.mkstemp(prefix=".dse-write-test-", dir=existing)
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        return f"nothing can be created in {existing} ({exc.strerror or exc})"
    return None


def check_output_file(path: Path, option: str) -> None:
    """Refuse (``InputError`` naming ``--option``) a file path that cannot be written, before the work that
    fills it: a directory, or a place where no file can be made. Nothing is created."""
    if path.is_dir():
        raise InputError("is a directory; expected a file path", source=str(path), field=f"--{option}")
    why = _unwritable(path.parent)
    if why is not None:
        raise InputError(f"cannot be written: {why}", source=str(path), field=f"--{option}")


def check_output_directory(directory: Path, option: str) -> None:
    """Refuse (``InputError`` naming ``--option``) a directory path that cannot hold files, before the work
    that fills it: an existing file, or a place where no directory can be made. Nothing is created."""
    if directory.exists() and not directory.is_dir():
        raise InputError("is a file; expected a directory path", source=str(directory), field=f"--{option}")
    why = _unwritable(directory)
    if why is not None:
        raise InputError(f"cannot be written: {why}", source=str(directory), field=f"--{option}")


def writable_directory(directory: Path, option: str) -> None:
    """Create ``directory`` (and parents), or say which option names a place that cannot hold it."""
    check_output_directory(directory, option)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".dse-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"cannot write a directory here ({exc.strerror or exc}); expected a writable directory path",
            source=str(directory),
            field=f"--{option}",
        ) from None
