"""Convert LLM-Inference-Bench's results into dse's measurements format, as held-out rows.

LLM-Inference-Bench (Argonne Leadership Computing Facility; Chitty-Venkata et al., "LLM-Inference-Bench:
Inference Benchmarking of Large Language Models on AI Accelerators", arXiv 2411.00136, SC24 workshops) ran
every model at input length = output length L (128-2048 tokens) and a fixed batch of 1, 16, 32 or 64 (128
and 256 too on MI300X) random-token prompts, each engine's own offline script timing the whole batch end to
end, in FP16 (weights and KV cache): vLLM (its ``benchmark_throughput.py`` modified for a fixed batch;
v0.6.1 on MI300X, about 0.5-0.6 on NVIDIA) and TensorRT-LLM (engines built with ``--gemm_plugin float16``
and ``max_batch_size`` the batch, its copy of ``examples/run.py --run_profiling``, no CUDA graphs asked for;
about 0.12, September 2024).

Usage: python calibration/convert_argonne.py CHECKOUT  (a checkout of argonne-lcf/LLM-Inference-Bench at
``COMMIT``; reads ``Plots/All_results.csv`` and ``Plots/Fig_21/all_results_TTFT.csv``)

Writes calibration/holdout-argonne.csv next to this script: rows no profile is fitted on (docs/validation.md,
"Held out"). What each row assumes:
- batch 1: ``tpot_s`` = latency / L, the prompt's prefill included (under 2 % of the run at these lengths);
- batch b > 1: ``throughput_tokens_per_s_per_device`` = b L / latency / devices, the batch's prefill
  included (as a static batch's throughput is in dse);
- the prefill table (batch 16 of 1,024-token prompts, one output token): ``ttft_s`` = its latency;
- hardware: the H100s are H100 SXM 80 GB (the repository's nvidia-smi output: "NVIDIA H100 80GB HBM3",
  700 W), several of them mapped to ``dgx-h100`` with tp (the source's node holds four, linked by NVLink);
  the A100 is taken as the A100 SXM4 40 GB of ALCF's Polaris, whose file systems the A100 scripts name (the
  source says only "Nvidia A100 GPU"), one device only (no catalog system holds four of them); MI300X
  several mapped to ``mi300x-platform``;
- models: Qwen2-7B / Qwen2-72B map to ``qwen2.5-7b`` / ``qwen2.5-72b`` (the same architecture);
- left out: other engines (llama.cpp's ``llama-bench -b`` is a prompt micro-batch, not concurrent
  sequences; DeepSpeed-MII and DeepSpeed on Gaudi2; SambaFlow), other hardware (the GH200 runs were on its
  96 GB variant, which the catalog does not hold; MI250, Intel Data Center GPU Max, SambaNova SN40L),
  models the catalog does not hold, A100 with more than one device, configurations measured more than
  once with different results, and runs beyond what the hardware can do at all (``possible``).
"""

from __future__ import annotations

import csv
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

from dse.results import replace_durably

HERE = Path(__file__).resolve().parent
COMMIT = "ae7e7a41173badc99f7b59da1657a0172813e5e5"
SOURCE = (
    f"LLM-Inference-Bench (arXiv 2411.00136), argonne-lcf/LLM-Inference-Bench @ {COMMIT} Plots/All_results.csv "
    "(Latency = end-to-end seconds of one fixed batch at input = output length)"
)
SOURCE_TTFT = (
    f"LLM-Inference-Bench (arXiv 2411.00136), argonne-lcf/LLM-Inference-Bench @ {COMMIT} "
    "Plots/Fig_21/all_results_TTFT.csv (Latency = seconds to the first token of one fixed batch)"
)
COLUMNS = [
    "id", "source", "model", "hardware", "tp", "pp", "ep", "quant", "kv", "prompt_len", "gen_len", "batch",
    "scenario", "metric", "value", "notes", "engine", "request_rate", "max_num_seqs", "chunk_tokens", "statistic",
]  # fmt: skip

ENGINES = {"vLLM": "vllm", "TensorRT-LLM": "tensorrt-llm"}
VERSIONS = {
    ("vLLM", "AMD MI300X GPU"): "vLLM v0.6.1 (ROCm build; vLLM/MI300X/README.md)",
    ("vLLM", "Nvidia H100 GPU"): "vLLM about 0.5-0.6 (version not stated; September 2024 scripts)",
    ("vLLM", "Nvidia A100 GPU"): "vLLM about 0.5-0.6 (version not stated; requirements of the 0.5.4-0.6 era)",
    ("TensorRT-LLM", "Nvidia H100 GPU"): "TensorRT-LLM about 0.12 (September 2024; fp16 engines, gemm plugin)",
    ("TensorRT-LLM", "Nvidia A100 GPU"): "TensorRT-LLM about 0.12 (September 2024; fp16 engines, gemm plugin)",
}
MODELS = {
    "meta-llama/Llama-2-7b-hf": "llama-2-7b",
    "meta-llama/Llama-2-70b-hf": "llama-2-70b",
    "meta-llama/Meta-Llama-3-8B": "llama-3-8b",
    "meta-llama/Meta-Llama-3-70B": "llama-3-70b",
    "mistralai/Mistral-7B-v0.1": "mistral-7b-v0.1",
    "mistralai/Mixtral-8x7B-v0.1": "mixtral-8x7b",
    "Qwen/Qwen2-7B": "qwen2.5-7b",
    "Qwen/Qwen2-72B": "qwen2.5-72b",
    "EleutherAI/gpt-j-6b": "gpt-j-6b",
}


def hardware_of(label: str, devices: int) -> str | None:
    """The dse target of the source's hardware label on ``devices`` devices (None: not converted)."""
    if label == "Nvidia H100 GPU":
        return "h100-sxm" if devices == 1 else "dgx-h100"
    if label == "Nvidia A100 GPU":
        return "a100-sxm-40gb" if devices == 1 else None
    if label == "AMD MI300X GPU":
        return "mi300x" if devices == 1 else "mi300x-platform"
    return None


def _row(r: dict[str, str], prompt: int, gen: int, metric: str, value: float, how: str) -> dict[str, object]:
    """One held-out row of source row ``r`` (its engine, model and hardware known: ``_target``), FP16, at
    ``r``'s batch and tensor-parallel devices, ``how`` saying what was read (the A100's variant added)."""
    engine, model, hardware, devices = _target(r)
    assert engine is not None and model is not None and hardware is not None
    batch = int(r["Batch Size"])
    if hardware == "a100-sxm-40gb":
        how += "; the A100 taken as Polaris's A100 SXM4 40GB (the source names no variant)"
    kind = f"L{prompt}-b{batch}" if metric != "ttft_s" else f"P{prompt}-b{batch}-ttft"
    return {
        "id": f"argonne-{engine}-{hardware}-tp{devices}-{model}-{kind}",
        "source": SOURCE if metric != "ttft_s" else SOURCE_TTFT,
        "model": model,
        "hardware": hardware,
        "tp": devices,
        "pp": 1,
        "ep": 1,
        "quant": "fp16",
        "kv": "fp16",
        "prompt_len": prompt,
        "gen_len": gen,
        "batch": batch,
        "scenario": "batch",
        "metric": metric,
        "value": f"{value:.6g}",
        "notes": f"{_run(r, devices)}{how}",
        "engine": engine,
    }


def _target(r: dict[str, str]) -> tuple[str | None, str | None, str | None, int]:
    """(engine, model, hardware, devices) of source row ``r`` in dse's ids (None: not converted)."""
    devices = int(r["Num of Hardware"] or 0)
    hardware = hardware_of(r["Hardware"] or "", devices)
    return ENGINES.get(r["Framework"] or ""), MODELS.get(r["Model"] or ""), hardware, devices


def _run(r: dict[str, str], devices: int) -> str:
    """What source row ``r`` ran on ``devices``: engine and version, model and format."""
    version = VERSIONS[(r["Framework"], r["Hardware"])]
    return f"{r['Framework']} on {devices}x {r['Hardware']} ({version}), {r['Model']} in FP16 at tp {devices}, "


def convert(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """The held-out rows of the source's table (module doc)."""
    key = ("Framework", "Hardware", "Num of Hardware", "Model", "Input Output Length", "Batch Size")
    latencies: dict[tuple[str, ...], set[str]] = {}
    for r in rows:
        latencies.setdefault(tuple(r[k] for k in key), set()).add(r["Latency"])
    out: list[dict[str, object]] = []
    done: set[tuple[str, ...]] = set()
    for r in rows:
        config = tuple(r[k] for k in key)
        # a configuration measured twice alike is one row; measured twice apart, none (which is it?)
        *known, devices = _target(r)
        if None in known or len(latencies[config]) > 1 or config in done:
            continue
        done.add(config)
        length, batch, latency = int(r["Input Output Length"]), int(r["Batch Size"]), float(r["Latency"])
        how = f"batch {batch} of {length}-token prompts and {length}-token outputs: latency {latency:.4f} s"
        if batch == 1:
            how += f"; TPOT = latency / {length} (the prompt's prefill included)"
            out.append(_row(r, length, length, "tpot_s", latency / length, how))
        else:
            how += f"; {batch} x {length} output tokens / latency / {devices} devices (prefill included)"
            out.append(
                _row(r, length, length, "throughput_tokens_per_s_per_device", batch * length / latency / devices, how)
            )
    return out


def convert_ttft(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """The held-out TTFT rows of the source's prefill table (``Plots/Fig_21/all_results_TTFT.csv``): one batch of
    1,024-token prompts generating one token each, its latency read as the batch's TTFT."""
    out: list[dict[str, object]] = []
    for r in rows:
        if None in _target(r) or r["Output Length"] != "1":
            continue
        prompt, batch, latency = int(r["Input Length"]), int(r["Batch Size"]), float(r["Latency"])
        how = f"batch {batch} of {prompt}-token prompts generating one token: latency {latency:.4f} s = TTFT"
        out.append(_row(r, prompt, 1, "ttft_s", latency, how))
    return out


def possible(rows: list[dict[str, object]]) -> list[bool]:
    """Whether each row is within what the model says its hardware can do at all: a TPOT no shorter, a
    throughput no higher than the ``ideal`` profile's (every peak reached, no overhead). Beyond it are broken
    runs (Qwen2-7B at 2,048 tokens under TensorRT-LLM: 0.08 s for 2,048 tokens on one H100, 77,000 tokens/s
    at batch 16-64), and Mixtral-8x7B at batch 16 on four H100s, 4 % above the bound: random-token prompts
    may route to fewer experts than the uniform routing the bound assumes."""
    from dse.calibrate import predict, read_measurements

    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder) / "rows.csv", rows)
        bound = predict(read_measurements(path), "ideal")
    latency = bound["metric"].str.endswith("_s").to_numpy()
    measured, best = bound["measured"].to_numpy(), bound["predicted"].to_numpy()
    within = (latency & (measured >= best)) | (~latency & (measured <= best))
    return [bool(w) or not math.isfinite(b) for w, b in zip(within, best, strict=True)]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    """``rows`` as a measurements CSV at ``path`` (holdout.csv's columns)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "Plots" / "All_results.csv").is_file():
        sys.exit("usage: python calibration/convert_argonne.py CHECKOUT (of argonne-lcf/LLM-Inference-Bench)")
    checkout = Path(sys.argv[1])
    with (checkout / "Plots" / "All_results.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with (checkout / "Plots" / "Fig_21" / "all_results_TTFT.csv").open(encoding="utf-8") as f:
        prefill = [r for r in csv.DictReader(f) if r["Hardware"]]
    out = convert(rows) + convert_ttft(prefill)
    ok = possible(out)
    for row in (r for r, good in zip(out, ok, strict=True) if not good):
        print(f"  left out, beyond the ideal roofline: {row['id']} ({row['metric']} {row['value']})")
    out = [r for r, good in zip(out, ok, strict=True) if good]
    ids = [r["id"] for r in out]
    assert len(ids) == len(set(ids)), "duplicate ids"
    path = HERE / "holdout-argonne.csv"
    replace_durably(_write(path.with_suffix(".csv.tmp"), out), path)  # a stopped run leaves the old file whole
    print(f"{path.name}: {len(out)} rows")
    counts = Counter((r["engine"], r["hardware"], r["metric"]) for r in out)
    for (engine, hardware, metric), n in sorted(counts.items()):
        print(f"  {engine:13s} {hardware:16s} {metric:36s} {n}")


if __name__ == "__main__":
    main()
