"""How long ``dse recommend`` takes for a 70B model over every accelerator and system of the catalog.

Run: python benchmarks/bench_recommend.py [--moe]
Prints, for the worked example of docs/recommend.md (Llama-3.1-70B chat at 50 requests/s, TTFT <= 1 s,
TPOT <= 50 ms) in each pricing, under continuous batching (the default) and static batches, then with the
observed lengths of spaces/chat-requests.csv, with a draft for speculative decoding and with disaggregated
prefill and decode: configurations
scored, the time of each stage (scoring the grid, sizing the fleets, the Monte-Carlo draws), the whole call,
and the winner. The acceptance bound is 10 s. ``--moe``: DeepSeek-V3 (20 requests/s, TTFT <= 2 s, TPOT <= 50
ms; expert parallelism widens the grid) with fixed lengths, the observed ones, disaggregation, and all three
with a draft. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import platform
import time
from pathlib import Path

from dse.recommend import make_request, recommend
from dse.recommend._answer import options
from dse.recommend._fleet import score_grid, size_fleets, targets
from dse.recommend._recommend import _expand
from dse.recommend._robust import robustness

EXAMPLE = {
    "model": "llama-3.1-70b",
    "prompt_tokens": 1000,
    "output_tokens": 300,
    "rate": 50.0,
    "ttft_s": 1.0,
    "tpot_s": 0.05,
}


MOE = EXAMPLE | {"model": "deepseek-v3", "rate": 20.0, "ttft_s": 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moe", action="store_true", help="DeepSeek-V3's cases instead of Llama-3.1-70B's")
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    example = MOE if args.moe else EXAMPLE
    recommend(make_request(**example, samples=10))  # warm the catalogs and numpy
    traffic = str(Path(__file__).resolve().parent.parent / "spaces" / "chat-requests.csv")
    fixed = {"prompt_tokens": example["prompt_tokens"], "output_tokens": example["output_tokens"]}
    cases: tuple[tuple[str, dict[str, object]], ...] = (
        ("continuous, rent-on-demand", {}),
        ("continuous, buy", {"pricing": "buy"}),
        ("static, rent-on-demand", {"scheduler": "static"}),
        ("static, buy", {"scheduler": "static", "pricing": "buy"}),
        ("continuous, observed lengths (spaces/chat-requests.csv)", {"lengths": traffic}),
        ("continuous, with a draft (mtp: 0, 1, 3 draft tokens)", {"draft": "mtp"}),
        ("continuous, --disaggregate (7 prefill:decode splits)", {"disaggregate": True}),
    )
    if args.moe:
        cases = (
            ("continuous, rent-on-demand", {}),
            ("continuous, observed lengths", {"lengths": traffic}),
            ("continuous, --disaggregate", {"disaggregate": True}),
            ("continuous, observed lengths, --disaggregate", {"lengths": traffic, "disaggregate": True}),
            (
                "continuous, observed lengths, --disaggregate, --draft mtp",
                {"lengths": traffic, "disaggregate": True, "draft": "mtp"},
            ),
        )
    for label, fields in cases:
        base = {k: v for k, v in example.items() if "lengths" not in fields or k not in fixed}
        request = _expand(make_request(**base | fields))
        start = time.perf_counter()
        found = targets(request)
        grid = score_grid(request, found)
        scored = time.perf_counter()
        choices = size_fleets(request, found, grid)
        ranked, _, _ = options(choices, grid, request)
        sized = time.perf_counter()
        robustness(request, ranked)
        drawn = time.perf_counter()
        start_all = time.perf_counter()
        result = recommend(request)
        whole = time.perf_counter() - start_all
        winner = result.options[0]
        print(
            f"{label}: {len(found)} targets, {len(grid.target):,} configurations scored in "
            f"{scored - start:.2f} s "
            f"({len(grid.target) / (scored - start):,.0f}/s); fleets sized in {sized - scored:.2f} s; "
            f"{request.samples} draws in {drawn - sized:.2f} s; whole recommend() {whole:.2f} s -> "
            f"{winner.hardware} x {winner.devices} at ${winner.usd_per_month:,.0f}/month"
        )


if __name__ == "__main__":
    main()
