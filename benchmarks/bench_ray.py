"""Ray against one process: the search benchmark's large exhaustive space on the local executor and on a local
Ray with this machine's cores (wall time of the run, Ray's start-up excluded; same front checked).

Run: python benchmarks/bench_ray.py
Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from bench_search import LARGE

from dse.execute import start_ray
from dse.results import run
from dse.space import SpaceRecord, build_space


def main() -> None:
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    space = build_space(SpaceRecord.model_validate(LARGE), source="bench-large")
    ray, _ = start_ray()  # started once, outside the timings
    fronts = {}
    try:
        for executor in ("local", "ray", "local", "ray"):
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                run(space, out=Path(folder) / "run", engine="exhaustive", executor=executor)
                wall = time.perf_counter() - start
                fronts[executor] = (Path(folder) / "run" / "pareto.csv").read_bytes()
            print(f"{executor:5s}: {space.size:,} candidates in {wall:.2f} s = {space.size / wall:,.0f}/s")
    finally:
        ray.shutdown()
    print("same pareto.csv:", fronts["local"] == fronts["ray"])


if __name__ == "__main__":
    main()
