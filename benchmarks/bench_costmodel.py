"""Cost-model throughput: candidates scored per second, vectorised vs the scalar (N = 1) path.

Three figures per model, all with full metrics (TTFT, exact mean TPOT, memory, feasibility, cost):
- ``core``: the cost model on struct-of-arrays candidates, in chunks, as search engines call it (they hold
  candidates as index arrays and build the arrays by indexing; phase FLOP and byte totals, which a search
  does not use, are skipped);
- ``columns``: from id/format columns (hashing ids, catalog lookups and array building included), the
  ``dse.evaluate`` path; ``+ intervals`` adds each candidate's p10 / p90 of TTFT, TPOT and throughput;
- ``scalar``: one candidate per call through the same code (N = 1), the ``dse analyze`` path.

Two candidate sets per model, both varying hardware (systems), quantization, tensor / pipeline / expert
parallelism and the KV-cache policies, each target scored with its fitted family profile (``calibrated``):
``random`` (every field drawn independently per candidate, the worst case for the cost model's per-chunk
shortcuts) and ``grid`` (every combination, batch varying fastest: the order in which the exhaustive engine
enumerates a space).

Run: python benchmarks/bench_costmodel.py [--n 1000000] [--repeat 5]
Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: no BLAS worker threads either
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import functools
import itertools
import platform
import time
from collections.abc import Callable, Hashable

import numpy as np

from dse.catalog import CALIBRATED, hardware_catalog, load_model, load_target
from dse.costmodel import CostAssumptions
from dse.scoring import (
    CHUNK_SIZE,
    build_candidates,
    candidate_fields,
    factorize,
    numerics_table,
    ratio_table,
    score_columns,
    score_model,
    target_ratios,
    with_defaults,
)

HARDWARE = [
    "dgx-h100",
    "dgx-h200",
    "dgx-a100",
    "hgx-b200",
    "mi300x-platform",
    "gb200-nvl72",
    "l40s-server",
    "h100-sxm",
]
"""Systems (node size, links) and one bare accelerator (single device: its splits are infeasible)."""
QUANT = ["bf16", "fp8", "int8", "w4a16", "nvfp4"]
MODELS = ["llama-3.1-70b", "deepseek-v3"]
EXPERT_PARALLEL = {"llama-3.1-70b": [1], "deepseek-v3": [1, 8, 16, 32]}


def random_columns(model: str, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """N random candidates of one model over hardware, quantization, batch, prompt and output lengths,
    tensor / pipeline / expert parallelism, replicas and KV-cache policies."""
    rng = np.random.default_rng(seed)
    return {
        "model": np.full(n, model, dtype=object),
        "hardware": rng.choice(HARDWARE, n).astype(object),
        "quant": rng.choice(QUANT, n).astype(object),
        "batch": rng.integers(1, 257, n),
        "prompt_len": rng.integers(128, 8193, n),
        "gen_len": rng.integers(16, 1025, n),
        "flash_attention": rng.random(n) < 0.8,
        "tp": rng.choice([1, 2, 4, 8], n),
        "pp": rng.choice([1, 2, 4], n),
        "ep": rng.choice(EXPERT_PARALLEL[model], n),
        "replicas": rng.integers(1, 5, n),
        "kv_block_size": rng.choice(np.asarray([None, 16], dtype=object), n),
        "prefix_hit_rate": rng.choice([0.0, 0.5, 0.9], n),
        "kv_offload": rng.choice([0.0, 0.0, 0.25], n),
        "kv_budget": rng.choice(np.asarray([None, None, 4096], dtype=object), n),
    }


def serving_columns(model: str, n: int, seed: int = 2) -> dict[str, np.ndarray]:
    """``random_columns`` served with continuous batching: the sequence cap, the token budget, the load (every
    slot busy, or Poisson arrivals at a rate) and the SLOs ``max_request_rate`` is found under drawn too."""
    rng = np.random.default_rng(seed)
    columns = random_columns(model, n, seed)
    return columns | {
        "scheduler": np.full(n, "continuous", dtype=object),
        "max_num_seqs": rng.choice([16, 64, 256, 1024], n),
        "chunk_tokens": rng.choice([512, 2048, 8192], n),
        "request_rate": np.where(rng.random(n) < 0.5, np.nan, rng.uniform(0.5, 50.0, n)),
        "slo_ttft_s": rng.choice(np.asarray([None, 1.0], dtype=object), n),
        "slo_tpot_s": rng.choice(np.asarray([None, 0.05], dtype=object), n),
    }


def grid_columns(model: str, n: int) -> dict[str, np.ndarray]:
    """About N candidates in the order an exhaustive search enumerates a space: every combination of
    hardware, quantization, flash, tp, pp, ep and KV policy, batch varying fastest; one workload (prompt
    2048, output 256 tokens, half of each prompt from the prefix cache), as in a search space."""
    dims = {
        "hardware": HARDWARE,
        "quant": QUANT,
        "flash_attention": [True, False],
        "tp": [1, 2, 4, 8],
        "pp": [1, 2, 4],
        "ep": EXPERT_PARALLEL[model],
        "kv_block_size": [None, 16],
        "kv_offload": [0.0, 0.25],
        "kv_budget": [None, 4096],
    }
    combos = list(itertools.product(*dims.values()))
    batches = np.arange(1, max(n // len(combos), 1) + 1)
    rows = len(combos) * len(batches)
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(dims):
        values = np.empty(len(combos), dtype=object)
        values[:] = [combo[i] for combo in combos]
        columns[name] = np.repeat(values, len(batches))
    for name in ("flash_attention", "tp", "pp", "ep", "kv_offload"):
        columns[name] = columns[name].astype(bool if name == "flash_attention" else np.float64)
    columns["batch"] = np.tile(batches, len(combos))
    columns["prompt_len"] = np.full(rows, 2048)
    columns["gen_len"] = np.full(rows, 256)
    columns["replicas"] = np.ones(rows)
    columns["prefix_hit_rate"] = np.full(rows, 0.5)
    columns["model"] = np.full(rows, model, dtype=object)
    return columns


def struct_of_arrays(columns: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    """The candidates as the cost model takes them (built once, outside the timing)."""
    columns = with_defaults(columns)
    hw_codes, hw_refs = factorize(columns["hardware"])
    q_codes, numerics = numerics_table(columns)
    model = load_model(str(columns["model"][0]))
    hardware = [load_target(h) for h in hw_refs]
    cand, formats = build_candidates(
        model,
        hardware,
        hw_codes,
        numerics,
        q_codes,
        candidate_fields(columns),
        profile=CALIBRATED,
        costs=CostAssumptions(),
    )
    return model, cand, formats


def with_intervals(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``score_columns`` (fitted profiles per target) and each candidate's p10 / p90 of TTFT, TPOT and
    throughput, as ``dse.evaluate(intervals=True)`` adds them."""
    out: dict[str, np.ndarray] = {}
    codes, refs = factorize(columns["hardware"])
    tables = ratio_table(target_ratios([load_target(str(ref)) for ref in refs], CALIBRATED))
    for rows, scored in score_columns(columns):
        m = scored.metrics
        for quantity, table in tables.items():
            ratios = table[codes[rows]]
            out[f"{quantity}_p10"] = getattr(m, quantity) * ratios[:, 0]
            out[f"{quantity}_p90"] = getattr(m, quantity) * ratios[:, 2]
    return out


def cpu_time(fn: Callable[[], object]) -> float:
    """CPU time of one call: of this process (one thread, one core), which is what the target is about."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Best CPU time of ``repeat`` runs after one untimed warm-up run (heap growth, caches)."""
    fn()
    return min(cpu_time(fn) for _ in range(repeat))


def best_interleaved(repeat: int, fns: dict[Hashable, Callable[[], object]]) -> dict[Hashable, float]:
    """Best CPU time of each function over ``repeat`` rounds that run every function once in turn.

    The shared virtual machines this runs on have slow spells of a minute or more (up to 2x, even in CPU
    time, through the shared caches); taking turns spreads each function's runs over the whole benchmark,
    so one slow spell does not sink one figure.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], cpu_time(fn))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--scalar-n", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    hardware_catalog()  # load catalogs once, outside the timings
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}; N = {args.n:,} per model, chunks of {CHUNK_SIZE:,}, "
        f"best of {args.repeat} interleaved rounds"
    )
    prepared = {
        (name, order): (columns, *struct_of_arrays(columns))
        for name in MODELS
        for order, columns in (
            ("random", random_columns(name, args.n)),
            ("grid", grid_columns(name, args.n)),
            ("serving", serving_columns(name, args.n)),
        )
    }
    for _, model, cand, formats in prepared.values():  # warm the whole process up first (heap, caches, clocks)
        for _ in range(2):
            score_model(model, cand, formats, totals=False)
    core = best_interleaved(
        args.repeat,
        {key: functools.partial(score_model, m, c, f, totals=False) for key, (_, m, c, f) in prepared.items()},
    )
    full = best_interleaved(args.repeat, {key: functools.partial(score_columns, p[0]) for key, p in prepared.items()})
    bars = best_interleaved(args.repeat, {key: functools.partial(with_intervals, p[0]) for key, p in prepared.items()})
    for (name, order), (_, _, cand, _) in prepared.items():
        n = len(cand)
        line = f"{name:14s} {order:7s} N={n:9,}  core {n / core[name, order]:11,.0f}/s   "
        line += f"columns {n / full[name, order]:11,.0f}/s   + intervals {n / bars[name, order]:11,.0f}/s"
        if order == "random":
            small = random_columns(name, args.scalar_n, seed=1)
            singles = [{k: v[i : i + 1] for k, v in small.items()} for i in range(args.scalar_n)]
            scalar = best_of(1, lambda: [score_columns(row) for row in singles])  # noqa: B023
            scalar_rate = args.scalar_n / scalar
            line += f"   scalar {scalar_rate:7,.0f}/s   core / scalar = {n / core[name, order] / scalar_rate:,.0f}x"
        print(line)


if __name__ == "__main__":
    main()
