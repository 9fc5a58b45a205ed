"""Bounded memory: an exhaustive run of about 10^8 candidates with ``--keep front`` (trials.parquet holds the
front; counts, front and position are kept as chunks arrive), its wall time and peak memory (max RSS).

Run: python benchmarks/bench_keep.py [--keep front|feasible|all]
Takes a few minutes on two cores. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

from bench_search import LARGE

from dse.results import run
from dse.space import SpaceRecord, build_space

HUGE = LARGE | {
    "name": "bench-keep",
    "choices": LARGE["choices"]
    | {"kv_block_size": [None, 16, 32], "replicas": list(range(1, 9)), "kv_budget": [None, 512, 1024, 2048]},
}
"""The search benchmark's large space with paged KV, up to 8 replicas and KV budgets: about 10^8 candidates."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", default="front", choices=("all", "feasible", "front"))
    keep = parser.parse_args().keep
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    space = build_space(SpaceRecord.model_validate(HUGE), source="bench-keep")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = run(space, out=Path(folder) / "run", engine="exhaustive", keep=keep)
        wall = time.perf_counter() - start
        size = (Path(folder) / "run" / "trials.parquet").stat().st_size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    counts = result.summary["counts"]
    print(
        f"--keep {keep}: {space.size:,} candidates in {wall:.1f} s ({space.size / wall:,.0f}/s), "
        f"{counts['feasible']:,} feasible, front {counts['pareto']}; peak memory {peak / 1e9:.2f} GB "
        f"(after building the space: {before * 1024 / 1e9:.2f} GB); trials.parquet {size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
