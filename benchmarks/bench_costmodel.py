"""Cost-model throughput: candidates scored per second, vectorised vs the scalar (N = 1) path.

Run: python benchmarks/bench_costmodel.py [--n 1000000] [--repeat 3]
Prints one line per model and path; figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from dse.catalog import hardware_catalog
from dse.scoring import score_columns

HARDWARE = ["h100-sxm", "h200-sxm", "a100-sxm-80gb", "mi300x", "b200", "l40s", "rtx-4090", "gaudi3"]
QUANT = ["bf16", "fp8", "int8", "w4a16", "nvfp4"]
MODELS = ["llama-3.1-70b", "deepseek-v3"]


def random_columns(model: str, n: int, seed: int = 0) -> dict[str, object]:
    """N random candidates of one model over hardware, quantization, batch, prompt and output lengths."""
    rng = np.random.default_rng(seed)
    return {
        "model": np.full(n, model, dtype=object),
        "hardware": rng.choice(HARDWARE, n).astype(object),
        "quant": rng.choice(QUANT, n).astype(object),
        "batch": rng.integers(1, 257, n),
        "prompt_len": rng.integers(128, 8193, n),
        "gen_len": rng.integers(16, 1025, n),
        "flash_attention": rng.random(n) < 0.8,
    }


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--scalar-n", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    hardware_catalog()  # load catalogs once, outside the timings
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    for model in MODELS:
        columns = random_columns(model, args.n)
        vec = best_of(args.repeat, lambda columns=columns: score_columns(columns))
        small = random_columns(model, args.scalar_n, seed=1)
        singles = [{k: [v[i]] for k, v in small.items()} for i in range(args.scalar_n)]  # type: ignore[index]
        scalar = best_of(1, lambda singles=singles: [score_columns(row) for row in singles])
        vec_rate, scalar_rate = args.n / vec, args.scalar_n / scalar
        print(
            f"{model:16s} vectorised: {vec_rate:12,.0f} candidates/s ({args.n:,} in {vec:.2f} s)   "
            f"scalar: {scalar_rate:8,.0f} candidates/s   ratio {vec_rate / scalar_rate:,.0f}x"
        )


if __name__ == "__main__":
    main()
