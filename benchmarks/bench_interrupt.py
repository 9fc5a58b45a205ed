"""How long Ctrl-C takes: a large exhaustive run started with ``dse run``, SIGINT after a few seconds, and
the time until the process has exited with everything written (and the rows it kept).

Run: python benchmarks/bench_interrupt.py
Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_search import LARGE

ROOT = Path(__file__).resolve().parents[1]


def interrupt_after(space: Path, seconds: float) -> tuple[float, int, int]:
    """(seconds from SIGINT to exit, exit code, candidates in trials.parquet)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dse.cli", "run", str(space), "--out", str(out), "--engine", "exhaustive"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ | {"PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        while not (out / "manifest.json").exists():
            time.sleep(0.01)
        time.sleep(seconds)
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        code = proc.wait()
        latency = time.perf_counter() - start
        kept = json.loads((out / "summary.json").read_text())["counts"]["evaluated"]
    return latency, code, kept


def main() -> None:
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as folder:
        space = Path(folder) / "space.yaml"
        space.write_text(yaml.safe_dump(LARGE | {"choices": LARGE["choices"] | {"kv_block_size": [None, 16, 32]}}))
        for seconds in (0.5, 1.5, 3.0):
            latency, code, kept = interrupt_after(space, seconds)
            print(f"SIGINT after {seconds:.1f} s: exit {code} in {latency:.2f} s, {kept:,} candidates kept")


if __name__ == "__main__":
    main()
