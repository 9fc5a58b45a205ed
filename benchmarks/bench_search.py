"""Search throughput: exhaustive candidates/s end to end, Optuna trials/s and time to 99 % hypervolume.

Run: python benchmarks/bench_search.py
- exhaustive: a space of >= 1,000,000 candidates after pruning, evaluated and Pareto-filtered, the run
  directory written (trials.parquet included): candidates/s over the whole run;
- optuna: the quickstart space with the default budget: trials/s, and the wall time at which the front's
  hypervolume first reaches 99 % of the exact front's (same normalisation).
Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dse.results import run
from dse.search import Normalisation, hypervolume, objective_points, pareto_indices
from dse.space import SpaceRecord, build_space, load_space

ROOT = Path(__file__).resolve().parents[1]
LARGE = {
    "name": "bench-large",
    "model": "llama-3.1-8b",
    "workload": {"prompt_tokens": 256, "output_tokens": 64},
    "slo": {"ttft_s": 5.0, "tpot_s": 0.1},
    "choices": {
        "hardware": [
            "h100-sxm",
            "h200-sxm",
            "b200",
            "a100-sxm-80gb",
            "mi300x",
            "mi325x",
            "l40s",
            "gaudi3",
            "h100-pcie",
            "a100-pcie-80gb",
            "rtx-pro-6000",
            "h20",
            "gb200",
            "b300",
            "h200-nvl",
            "mi355x",
            "gaudi2",
        ],
        "quant": ["bf16", "fp8", "int8", "w4a16", "nvfp4"],
        "kv": [None, "fp8", "int8"],
        "flash_attention": [True, False],
        "batch": {"min": 1, "max": 8192, "log": True},
    },
    "objectives": [
        {"metric": "tpot_s"},
        {"metric": "throughput_tokens_per_s_per_device"},
        {"metric": "usd_per_million_tokens"},
    ],
}


def exhaustive() -> None:
    space = build_space(SpaceRecord.model_validate(LARGE), source="bench-large")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = run(space, out=out, engine="exhaustive")
        wall = time.perf_counter() - start
    print(
        f"exhaustive: {space.size:,} candidates ({space.full_size:,} before pruning) in {wall:.2f} s = "
        f"{space.size / wall:,.0f} candidates/s end to end (evaluation + Pareto + run directory); "
        f"front {result.summary['counts']['pareto']}, search alone {result.summary['candidates_per_s']:,.0f}/s"
    )


def _hv_after(result, counts: list[int], norm: Normalisation) -> list[float]:  # type: ignore[no-untyped-def]
    """Hypervolume of the front of the first n evaluated candidates, for each n."""
    out = []
    for n in counts:
        part = {k: np.asarray(v)[:n] for k, v in result.columns.items()}
        idx = pareto_indices(part, result.space.record.objectives)
        out.append(
            hypervolume(objective_points({k: v[idx] for k, v in part.items()}, result.space.record.objectives), norm)
        )
    return out


def optuna(tpe_trials: tuple[int, ...] = (1, 300, 2000)) -> None:
    """Trials/s, time to 99 % of the exact hypervolume, and the TPE -> NSGA-II switch point compared."""
    path = ROOT / "spaces" / "quickstart.yaml"
    with tempfile.TemporaryDirectory() as out:
        exact = run(path, out=Path(out) / "exact", engine="exhaustive")
        norm = Normalisation.of_front(objective_points(exact.front, exact.space.record.objectives))
        full = hypervolume(objective_points(exact.front, exact.space.record.objectives), norm)
        for switch in tpe_trials:
            space = load_space(path)
            space = build_space(
                space.record.model_copy(
                    update={"engine": space.record.engine.model_copy(update={"tpe_trials": switch})}
                ),
                source=space.source,
            )
            seen: list[tuple[float, int]] = []
            start = time.perf_counter()
            result = run(
                space,
                out=Path(out) / f"tpe{switch}",
                engine="optuna",
                progress=lambda s: seen.append((time.perf_counter() - start, s["evaluated"])),  # noqa: B023
            )
            wall = time.perf_counter() - start
            counts = sorted({n for _, n in seen} | {len(result.columns["candidate_id"])})
            ratios = [hv / full for hv in _hv_after(result, counts, norm)]
            first = next((n for n, r in zip(counts, ratios, strict=True) if r >= 0.99), None)
            when = next((t for t, n in seen if first is not None and n >= first), wall)
            reached = f"99 % after {first} evaluations, {when:.1f} s" if first is not None else "99 % not reached"
            print(
                f"optuna (TPE for the first {switch} trials, then NSGA-II): {result.summary['counts']['evaluated']} "
                f"distinct candidates in 2000 trials, {wall:.1f} s = {2000 / wall:,.0f} trials/s; final "
                f"hypervolume {ratios[-1]:.2%} of exact; {reached}"
            )


if __name__ == "__main__":
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    exhaustive()
    optuna()
