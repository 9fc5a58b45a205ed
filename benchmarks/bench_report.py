"""Report speed and size on a large run: ``dse report`` of an exhaustive run of >= 2,000,000 candidates.

Run: python benchmarks/bench_report.py
Prints the run's size, the time to read it and write report.html (every chart), the HTML's size, the points
drawn against the points evaluated, and the time to export every chart as PNG and SVG. Figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import platform
import tempfile
import time
from pathlib import Path

from bench_search import LARGE

from dse.report import RunResults, load_results, report, run_charts
from dse.results import run
from dse.space import SpaceRecord, build_space

HUGE = LARGE | {"name": "bench-report", "choices": LARGE["choices"] | {"kv_block_size": [None, 16]}}
"""The search benchmark's large space with paged and unpaged KV: over 2,000,000 candidates after pruning."""


def main() -> None:
    space = build_space(SpaceRecord.model_validate(HUGE), source="bench-report")
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        start = time.perf_counter()
        result = run(space, out=out, engine="exhaustive")
        print(
            f"run: {space.size:,} candidates evaluated in {time.perf_counter() - start:.1f} s, "
            f"front {result.summary['counts']['pareto']}, feasible {result.summary['counts']['feasible']:,}"
        )
        start = time.perf_counter()
        written = report(out)
        html_s = time.perf_counter() - start
        size = written.html.stat().st_size
        results = load_results(out)
        assert isinstance(results, RunResults)
        charts = run_charts(results)[0]
        drawn = sum(len(t.x) for c in charts for t in c.figure.data if getattr(t, "x", None) is not None)
        print(
            f"report.html: {html_s:.2f} s (read the run + build {len(charts)} charts + write), "
            f"{size / 1e6:.2f} MB ({size / 1e6 - 4.8:.2f} MB beyond plotly.js), {drawn:,} points drawn"
        )
        start = time.perf_counter()
        images = report(out, out=Path(folder) / "static", formats=("png", "svg")).images
        print(f"png + svg: {len(images)} files in {time.perf_counter() - start:.1f} s (one Chromium, kaleido)")


if __name__ == "__main__":
    main()
