"""Convert the shared measurement table into dse's measurements format.

Usage: python calibration/convert_shared.py REFERENCE.csv  (the reference table of published measurements)

Writes calibration/measurements.csv (one row per measurement and quantity, SI units) and
calibration/skipped.csv (row_id, reason) next to this script. The mapping rules are in README.md.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = [
    "id", "source", "model", "hardware", "tp", "pp", "ep", "quant", "kv",
    "prompt_len", "gen_len", "batch", "scenario", "metric", "value", "notes", "engine",
]  # fmt: skip

ENGINES = {
    "TRTLLM_v1.0_perf_overview": "tensorrt-llm",
    "MLPerf_v5.1": "",  # MLPerf submissions use several engines; the row's engine column names it when known
    "llamacpp_XiongjieDai": "llama.cpp",
}

SOURCE_LABEL = {
    "TRTLLM_v1.0_perf_overview": "TensorRT-LLM v1.0 perf overview",
    "MLPerf_v5.1": "MLPerf Inference v5.1",
    "llamacpp_XiongjieDai": "llama.cpp GPU benchmarks (XiongjieDai)",
}

# Shared model name (prefix) -> dse model id.
MODELS = [
    ("Llama-3.3-70B", "llama-3.3-70b"),
    ("Llama-3.1-405B", "llama-3.1-405b"),
    ("Llama-3.1-8B", "llama-3.1-8b"),
    ("Llama-2-70B", "llama-2-70b"),
    ("Meta-Llama-3-8B", "llama-3-8b"),
    ("Meta-Llama-3-70B", "llama-3-70b"),
    ("Llama-4-Maverick-17B-128E", "llama-4-maverick-17b-128e"),
    ("Qwen3-30B-A3B", "qwen3-30b-a3b"),
    ("Qwen3-235B-A22B", "qwen3-235b-a22b"),
    ("Mixtral-8x7B", "mixtral-8x7b"),
    ("DeepSeek-R1", "deepseek-r1"),
]
MOE_MODELS = {"llama-4-maverick-17b-128e", "qwen3-30b-a3b", "qwen3-235b-a22b", "mixtral-8x7b", "deepseek-r1"}

# Shared hardware name (substring, first match wins) -> (one device, system for several devices or None).
HARDWARE = [
    ("Intel Arc", None, None),
    ("GB300", None, None),  # Blackwell Ultra superchip: no gb300 accelerator or NVL72 system in the catalog
    ("GB200", "gb200", "gb200-nvl72"),
    ("B200-SXM", "b200", "hgx-b200"),
    ("H200-NVL", "h200-nvl", None),
    ("H200-SXM", "h200-sxm", "dgx-h200"),
    ("H100-SXM", "h100-sxm", "dgx-h100"),
    ("H100-PCIe", "h100-pcie", "h100-pcie-server"),
    ("A100-SXM4-80GB", "a100-sxm-80gb", "dgx-a100"),
    ("RTX PRO 6000", "rtx-pro-6000", "rtx-pro-6000-server"),
    ("L40S", "l40s", "l40s-server"),
    ("MI355X", "mi355x", None),
    ("MI325X", "mi325x", "mi325x-platform"),
    ("MI300X", "mi300x", "mi300x-platform"),
    ("RTX 3070", "rtx-3070", None),
    ("RTX 3080 Ti", "rtx-3080-ti", None),
    ("RTX 3080", "rtx-3080", None),
    ("RTX 3090", "rtx-3090", None),
    ("RTX 4090", "rtx-4090", "rtx-4090-workstation"),
    ("RTX A6000", "rtx-a6000", None),
    ("Apple M2 Ultra", "apple-m2-ultra", None),
    ("Apple M1", "apple-m1", None),
]

# MLPerf rows give the mean output length per request (DERIVED_mean_output_tokens_per_request) but not the
# dataset's mean input length. Fill a benchmark's mean prompt tokens here, with its source, to convert it;
# without one the row is skipped (no invented lengths).
MLPERF_MEAN_PROMPT_TOKENS: dict[str, tuple[int, str]] = {
    "llama2-70b": (
        222,
        "OpenOrca's 24,576 samples, Llama-2 tokenizer: 5,463,976 tokens, counted by FlashLab-MBZUAI/HBFSim from "
        "MLCommons' open_orca_gpt4_tokenized_llama.sampled_24576.pkl (third party)",
    ),
}
MLPERF_REPLICA_TP: dict[str, tuple[int, str]] = {
    "llama2-70b": (
        1,
        "one engine per GPU: the whole FP8/FP4 model fits one device of 141 GB or more with room for its KV "
        "cache; the submissions' configs set tp 1 (inference_results_v5.1 closed/AMD/code/llama2-70b-99/"
        "harness_llm/models/llama2-70b/*.yaml tensor_parallel_size, closed/NVIDIA/configs/B200-SXM-180GBx8/"
        "*/llama2-70b.py and closed/Dell/configs/XE9680_H200_SXM_141GBx8/*/llama2-70b.py tensor_parallelism)",
    ),
}
"""Tensor-parallel degree of one replica where an MLPerf row does not state it, per benchmark (else: tp =
GPUs), on the devices of ``MLPERF_ONE_GPU_DEVICES``."""
MLPERF_KV: dict[str, tuple[str, str]] = {
    "llama2-70b": (
        "fp8",
        "KV cache FP8: kv_cache_dtype fp8 in the submissions' configs (AMD's harness_llm/common/config.yaml, "
        "NVIDIA's B200 and Dell's H200 llama2-70b.py)",
    ),
}
"""The KV-cache format of a benchmark's submissions where its rows leave it empty."""
MLPERF_ONE_GPU_DEVICES = {"h200-sxm", "h200-nvl", "b200", "gb200", "mi300x", "mi325x", "mi355x"}
"""Devices of 141 GB or more: one holds Llama-2-70B in FP8 with room for its KV cache. On smaller ones (H100
80 GB, RTX PRO 6000 96 GB) the degree a submission used is not in its row, so those rows are skipped."""
MLPERF_ENGINES = [("TensorRT", "tensorrt-llm"), ("vLLM", "vllm")]
"""An MLPerf row's engine column (prefix) -> dse engine id, for the profile fitted to its rows (NVIDIA's harness
names TensorRT, under which its LLM submissions run TensorRT-LLM)."""
MLPERF_BENCHMARK = [
    ("Llama-2-70B", "llama2-70b"),
    ("Llama-3.1-405B", "llama3.1-405b"),
    ("Llama-3.1-8B", "llama3.1-8b"),
    ("Mixtral-8x7B", "mixtral-8x7b"),
    ("DeepSeek-R1", "deepseek-r1"),
]

PCIE_CHECK = (
    "TensorRT-LLM on several RTX PRO 6000 over PCIe (Llama-3.3-70B at tp 1 x pp 2-8, Qwen3-30B-A3B at tp 2-8 with "
    "its ep not stated): kept out of every fit, a check of the parallel serving model against the same workloads "
    "on one device (docs/validation.md; the pipelines in tests/costmodel/test_published_serving.py)"
)
"""Why the TensorRT-LLM rows on several RTX PRO 6000 are not converted."""

# Rows whose value the shared table itself flags as anomalous.
ANOMALOUS = {"552": "llama.cpp F16 prompt eval on A100 SXM (681 tok/s, vs 5864 with Q4_K_M) flagged anomalous"}


class Skip(Exception):
    """A shared row that cannot be converted; the message is the reason."""


def catalog_ids(kind: str) -> set[str]:
    out = subprocess.run(["dse", "catalog", kind, "--format", "csv"], check=True, capture_output=True, text=True)
    rows = csv.DictReader(out.stdout.splitlines())
    if kind == "quant":
        return {f"{r['kind']}:{r['id']}" for r in rows}
    return {r["id"] for r in rows}


def lookup(name: str, table: list) -> tuple | None:
    for entry in table:
        if name.startswith(entry[0]) or entry[0] in name:
            return entry
    return None


def map_model(row: dict) -> str:
    entry = lookup(row["model"], MODELS)
    if entry is None:
        raise Skip(f"model not in the dse catalog ({row['model']})")
    return entry[1]


def map_quant(row: dict) -> str:
    w = row["weight_precision"].lower()
    if "q4_k_m" in w:
        return "q4_k_m"
    if w == "f16":
        return "fp16"
    if w.endswith("mxfp4"):
        return "mxfp4"
    if w.endswith("fp4"):  # NVIDIA FP4 checkpoints/engines on Blackwell are NVFP4
        return "nvfp4"
    if w.endswith("fp8"):
        return "fp8"
    raise Skip(f"weight precision has no dse scheme ({row['weight_precision']})")


MODELOPT_KV = (
    "bf16",
    "NVIDIA ModelOpt FP8/FP4 checkpoints quantize only the linear layers' weights and activations, so the KV "
    "cache stays bf16 (model cards of nvidia/Llama-3.1-405B-Instruct-FP8 and -FP4: 'Only the weights and "
    "activations of the linear operators within transformers blocks are quantized')",
)


FP8_KV_BY_BOUND = {
    ("llama-3.1-8b", "fp8"): (
        "fp8",
        "KV cache fp8, not ModelOpt's bf16 reading: at 20,000 / 2,000 tokens this checkpoint's published rate (H100 "
        "1,351, H200 1,804 output tokens/s) is above what a bf16 cache allows at the full HBM bandwidth, ignoring "
        "weights and prefill (each output token reads its sequence's mean 21,000 cached tokens of 32 layers x 8 KV "
        "heads x 128 x 2 x 2 B = 131,072 B: 3,350 GB/s / 2.75 GB = 1,217 tokens/s on an H100, 4,800 / 2.75 = "
        "1,744 on an H200)",
    ),
}
"""TensorRT-LLM checkpoints whose own rows rule out a bf16 KV cache ((model id, scheme) -> (kv, why)): NVIDIA's
Llama-3.1-8B-Instruct-FP8."""


def map_kv(row: dict) -> str:
    kv = row["kv_cache_precision"].lower()
    if kv.startswith("fp8"):
        return "fp8"
    if kv.startswith("f16"):
        return "fp16"
    if row["source_group"] == "TRTLLM_v1.0_perf_overview" and kv == "not stated":
        return MODELOPT_KV[0]
    return ""


def deployment(row: dict, model: str) -> tuple[str, int, int, int, list[str]]:
    """(hardware id, tp, pp, ep, notes) for the deployment the row measured."""
    notes = []
    entry = lookup(row["hardware"], HARDWARE)
    if "(x" in row["hardware"]:
        raise Skip(f"heterogeneous cluster, not one catalog system ({row['hardware']})")
    if entry is None:
        raise Skip(f"hardware not in the dse catalog ({row['hardware']})")
    _, device, system = entry
    if device is None:
        raise Skip(f"hardware not in the dse catalog ({row['hardware']})")
    gpus = int(row["num_gpus"])
    if row["source_group"] == "llamacpp_XiongjieDai" and gpus > 1:
        raise Skip("llama.cpp multi-GPU layer split (no speed-up; not a tp/pp deployment dse models)")
    if row["pp"] and not row["pp"].isdigit():
        raise Skip(f"pipeline split not stated as a degree ({row['pp']})")
    tp = int(row["tp"]) if row["tp"] else None
    pp = int(row["pp"]) if row["pp"] else None
    ep = int(row["ep"]) if row["ep"] else None
    benchmark = lookup(row["model"], MLPERF_BENCHMARK) if row["source_group"] == "MLPerf_v5.1" else None
    replica = MLPERF_REPLICA_TP.get(benchmark[1]) if benchmark else None
    if tp is None and replica is not None and device not in MLPERF_ONE_GPU_DEVICES:
        raise Skip(f"MLPerf: tp not stated, and one {device} holds the model with little room for its KV cache")
    if tp is None and replica is not None:
        tp, pp = replica[0], 1
        notes.append(f"tp/pp not in source: tp={tp} a replica ({replica[1]}), pp=1")
    elif tp is None:
        tp, pp = gpus, 1
        notes.append(f"tp/pp not in source: assumed tp={gpus} (number of GPUs), pp=1")
    pp = pp or 1
    if ep is None:
        ep = tp if model in MOE_MODELS else 1
        if model in MOE_MODELS and tp > 1:
            notes.append(f"ep not in source: assumed ep=tp={tp} (experts spread over the tensor-parallel ranks)")
    replica_devices = max(tp, ep) * pp
    if replica_devices > gpus or gpus % replica_devices:
        raise Skip(f"degrees tp={tp} pp={pp} ep={ep} do not fit {gpus} GPUs")
    if replica_devices < gpus:
        notes.append(f"{gpus} GPUs run {gpus // replica_devices} replicas of {replica_devices} devices")
    if replica_devices == 1:
        return device, tp, pp, ep, notes
    if system is None:
        raise Skip(f"{replica_devices} devices of {device} but no dse system for it")
    nodes = int(row["nodes"] or 1)
    if system in ("mi325x-platform", "mi300x-platform", "h100-pcie-server", "l40s-server") and nodes > 1:
        raise Skip(f"{replica_devices} devices over {nodes} nodes but {system} has no inter-node link")
    return system, tp, pp, ep, notes


def base_row(row: dict) -> dict:
    label = SOURCE_LABEL[row["source_group"]]
    engine = ENGINES[row["source_group"]]
    if row["source_group"] == "MLPerf_v5.1":  # the row names its engine
        engine = next((dse_id for name, dse_id in MLPERF_ENGINES if row["engine"].startswith(name)), "")
    return {"source": f"{label}, {row['source']}", "engine": engine}


def convert(row: dict) -> list[dict]:
    if row["row_id"] in ANOMALOUS:
        raise Skip(ANOMALOUS[row["row_id"]])
    model = map_model(row)
    hardware, tp, pp, ep, notes = deployment(row, model)
    if row["source_group"] == "TRTLLM_v1.0_perf_overview" and hardware == "rtx-pro-6000-server":
        raise Skip(PCIE_CHECK)
    quant = map_quant(row)
    kv = map_kv(row)
    group = row["source_group"]
    common = base_row(row) | {"model": model, "hardware": hardware, "tp": tp, "pp": pp, "ep": ep}
    common |= {"quant": quant, "kv": kv}
    benchmark = lookup(row["model"], MLPERF_BENCHMARK) if group == "MLPerf_v5.1" else None
    mlperf_kv = MLPERF_KV.get(benchmark[1]) if benchmark else None
    if not kv and mlperf_kv is not None:
        kv = common["kv"] = mlperf_kv[0]
        notes.append(mlperf_kv[1])
    if kv and group == "llamacpp_XiongjieDai":
        notes.append("KV fp16 is llama.cpp's default (not stated in the run)")
    if group == "TRTLLM_v1.0_perf_overview" and row["kv_cache_precision"].lower() == "not stated":
        if (model, quant) in FP8_KV_BY_BOUND:
            kv = common["kv"] = FP8_KV_BY_BOUND[model, quant][0]
            notes.append(FP8_KV_BY_BOUND[model, quant][1])
        else:
            notes.append(MODELOPT_KV[1])
    metrics: list[tuple[str, float, str]] = []

    if group == "llamacpp_XiongjieDai":
        common["batch"] = 1
        common["scenario"] = "batch"
        if row["scenario"].startswith("batch-1 decode"):
            common["prompt_len"], common["gen_len"] = 250, int(row["output_len"])
            notes.append("prompt ~250 tokens (Shakespeare snippet of the README command; approximate)")
            rate = float(row["output_tok_s_total"])
            metrics.append(("tpot_s", 1.0 / rate, f"1 / {rate} generated tok/s (mean over {row['output_len']} tokens)"))
        else:
            common["prompt_len"], common["gen_len"] = int(row["input_len"]), 1
            notes.append("prompt eval only: gen_len set to 1 (no generation measured)")
            metrics.append(("prefill_tokens_per_s", float(row["prefill_tok_s"]), "prompt eval tok/s"))

    elif group == "TRTLLM_v1.0_perf_overview":
        common["batch"] = ""
        common["scenario"] = "max-throughput"
        common["prompt_len"], common["gen_len"] = int(row["input_len"]), int(row["output_len"])
        if model in MOE_MODELS:
            notes.append("MoE: the doc ran with --ep but does not list its size")
        per_gpu = float(row["DERIVED_output_tok_s_per_gpu"])
        metrics.append(
            (
                "throughput_tokens_per_s_per_device",
                per_gpu,
                f"total output tok/s {row['output_tok_s_total']} / {row['num_gpus']} GPUs",
            )
        )

    elif group == "MLPerf_v5.1":
        if "division=open" in row["notes"]:
            raise Skip("MLPerf open division: the model may differ from the benchmark's reference")
        if not any(row["engine"].startswith(name) for name, _ in MLPERF_ENGINES):
            raise Skip(f"MLPerf: engine {row['engine'].split(',')[0]!r} is none dse fits a profile to")
        bench = lookup(row["model"], MLPERF_BENCHMARK)[1]
        mean_out = row["DERIVED_mean_output_tokens_per_request"]
        if bench not in MLPERF_MEAN_PROMPT_TOKENS or not mean_out:
            raise Skip(f"MLPerf {bench}: dataset mean input length not given in the row or notes")
        prompt, prompt_source = MLPERF_MEAN_PROMPT_TOKENS[bench]
        common["prompt_len"], common["gen_len"] = prompt, round(float(mean_out))
        notes.append(f"mean prompt {prompt} tokens ({prompt_source}); mean output = tokens/s / samples/s")
        common["batch"] = ""
        if row["batch_size"]:
            notes.append(f"engine max batch {row['batch_size']} (not a fixed batch)")
        per_gpu = float(row["DERIVED_output_tok_s_per_gpu"])
        metrics.append(
            (
                "throughput_tokens_per_s_per_device",
                per_gpu,
                f"system output tok/s {row['output_tok_s_total']} / {row['num_gpus']} GPUs",
            )
        )
        if row["scenario"] == "MLPerf Offline":
            common["scenario"] = "max-throughput"
        else:
            common["scenario"] = "server"
            load = row["concurrency_or_load"]
            notes.append(f"{row['scenario']} at {load}; latencies are loadgen means with queueing")
            metrics.append(("ttft_s", float(row["ttft_ms"]) / 1000, "mean TTFT ms / 1000"))
            metrics.append(("tpot_s", float(row["tpot_ms"]) / 1000, "mean TPOT ms / 1000"))
    else:
        raise Skip(f"unknown source group {group}")

    out = []
    for metric, value, how in metrics:
        out.append(common | {
            "id": f"{row['row_id']}-{metric}", "metric": metric, "value": f"{value:.6g}",
            "notes": "; ".join([how, *notes]),
        })  # fmt: skip
    return out


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        shared = list(csv.DictReader(f))
    models, hardware = catalog_ids("models"), catalog_ids("hardware") | catalog_ids("systems")
    quants = catalog_ids("quant")
    written, skipped = [], []
    for row in shared:
        try:
            out = convert(row)
        except Skip as reason:
            skipped.append({"row_id": row["row_id"], "reason": str(reason)})
            continue
        for r in out:
            assert r["model"] in models, r["model"]
            assert r["hardware"] in hardware, r["hardware"]
            assert f"scheme:{r['quant']}" in quants, r["quant"]
            assert not r["kv"] or f"kv:{r['kv']}" in quants, r["kv"]
        written.extend(out)

    with open(HERE / "measurements.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(written)
    with open(HERE / "skipped.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["row_id", "reason"])
        writer.writeheader()
        writer.writerows(skipped)

    print(f"{len(shared)} shared rows: {len(shared) - len(skipped)} converted into {len(written)} rows, "
          f"{len(skipped)} skipped")  # fmt: skip
    for key, n in sorted(Counter((r["source"].split(",")[0], r["scenario"], r["metric"]) for r in written).items()):
        print(f"  {n:4d}  {' / '.join(key)}")
    by_reason = Counter(s["reason"].split(" (")[0] for s in skipped)
    for reason, n in by_reason.most_common():
        print(f"  skipped {n:4d}  {reason}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
