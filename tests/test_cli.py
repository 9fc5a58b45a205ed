"""End-to-end CLI: the analyze JSON contract, catalog listings, and bad input (exit 2, no traceback)."""

from __future__ import annotations

import importlib
import importlib.abc
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dse.cli import main
from dse.scoring import analyze

CONTRACT_TOP = {
    "prefill",
    "decode",
    "ttft_s",
    "tpot_s",
    "e2e_latency_s",
    "throughput_tokens_per_s",
    "memory",
    "feasible",
    "infeasible_reason",
    "layers",
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "analyze",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--quant",
        "fp8",
        "--batch",
        "16",
        "--prompt-len",
        "2048",
        "--gen-len",
        "256",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) >= CONTRACT_TOP
    for phase in ("prefill", "decode"):
        assert {"flops", "memory_bytes", "time_s"} <= set(data[phase])
    assert {"weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes", "capacity_bytes"} <= set(
        data["memory"]
    )
    assert {"name", "stage", "flops", "memory_bytes", "time_s", "bound"} <= set(data["layers"][0])
    assert data["feasible"] is True and data["infeasible_reason"] is None


def test_cli_and_python_api_agree_on_a_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    flags = {"tp": 4, "pp": 2, "replicas": 3, "kv_block_size": 16, "prefix_hit_rate": 0.5, "kv_offload": 0.25}
    argv = [arg for k, v in flags.items() for arg in (f"--{k.replace('_', '-')}", str(v))]
    data = _analyze_json(capsys, "--model", "llama-3.1-70b", "--hardware", "dgx-h100", "--kv-budget", "512", *argv)
    api = analyze("llama-3.1-70b", "dgx-h100", kv_budget=512, **flags).to_dict()  # type: ignore[arg-type]
    assert data == json.loads(json.dumps(api))
    assert data["deployment"]["devices"] == 24 and data["kv_policy"]["prefix_cached_tokens"] == 512


def test_cli_and_python_api_agree(capsys: pytest.CaptureFixture[str], minimal_hardware: str) -> None:
    _, out, _ = _run(
        capsys,
        "analyze",
        "--model",
        "mixtral-8x7b",
        "--hardware",
        minimal_hardware,
        "--weight-bits",
        "4",
        "--act-bits",
        "16",
        "--kv-bits",
        "8",
        "--batch",
        "3",
        "--json",
    )
    api = analyze("mixtral-8x7b", minimal_hardware, weight_bits=4, act_bits=16, kv_bits=8, batch=3).to_dict()
    assert json.loads(out) == json.loads(json.dumps(api))


def test_infeasible_is_a_result_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "analyze", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--quant", "bf16", "--json"
    )
    data = json.loads(out)
    assert code == 0 and data["feasible"] is False
    assert "exceed usable device memory" in data["infeasible_reason"]


def _analyze_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, _ = _run(capsys, "analyze", "--json", *argv)
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def test_tensor_parallel_on_a_system(capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze_json(capsys, "--model", "llama-3.1-70b", "--hardware", "dgx-h100", "--tp", "2", "--quant", "fp8")
    assert set(data) >= CONTRACT_TOP | {"deployment", "kv_policy", "communication", "per_device"}
    assert data["feasible"] is True
    assert data["deployment"] == {
        "hardware": "dgx-h100",
        "accelerator": "h100-sxm",
        "system": "dgx-h100",
        "tp": 2,
        "pp": 1,
        "ep": 1,
        "replicas": 1,
        "devices": 2,
        "devices_per_replica": 2,
        "attention_dp": 1,
        "micro_batches": 1,
    }
    assert data["devices"] == 2
    for phase in ("prefill", "decode"):
        comm = data["communication"][phase]
        assert comm["tp_all_reduce_bytes"] > 0 and comm["tp_all_reduce_s"] > 0
        assert comm["ep_all_to_all_bytes"] == comm["pp_send_bytes"] == 0
        [row] = [r for r in data["layers"] if r["stage"] == phase and r["bound"] == "network"]
        assert row["name"] == "tp_all_reduce" and row["flops"] == 0
        assert row["memory_bytes"] == pytest.approx(comm["tp_all_reduce_bytes"])
    assert {"host_kv_cache_bytes", "host_capacity_bytes"} <= set(data["memory"])


def test_expert_parallel_over_two_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "deepseek-v3", "--hardware", "dgx-h200", "--quant", "fp8", "--tp", "8", "--ep", "16"]
    data = _analyze_json(capsys, *argv, "--batch", "64")
    assert data["feasible"] and data["deployment"]["devices"] == 16 and data["deployment"]["attention_dp"] == 2
    assert {r["name"] for r in data["layers"] if r["bound"] == "network"} == {"tp_all_reduce", "ep_all_to_all"}
    # chance's imbalance over 16 devices: 64 decode rows, 64 x 1024 prefill rows (docs/cost-model.md §15.4)
    rho = data["deployment"]["expert_imbalance"]
    assert rho["decode"] == pytest.approx(1 + 1.7688 * (248 / (32 * 255)) ** 0.5, abs=1e-4)  # μ = 32 copies
    assert 1.0 < rho["prefill"] < 1.01
    doubled = _analyze_json(capsys, *argv, "--batch", "64", "--expert-imbalance", "2")["deployment"]["expert_imbalance"]
    assert doubled["decode"] == pytest.approx(2 * rho["decode"])  # the input skew multiplies chance's


def test_a_split_on_a_bare_accelerator_is_infeasible(capsys: pytest.CaptureFixture[str]) -> None:
    data = _analyze_json(capsys, "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "2")
    assert data["feasible"] is False and "a bare accelerator is one device" in data["infeasible_reason"]
    assert data["deployment"]["system"] is None and data["deployment"]["devices"] == 2


def test_kv_budget_is_flagged_as_quality_affecting(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--model", "llama-3.1-8b", "--hardware", "dgx-h100", "--prompt-len", "4096"]
    assert _analyze_json(capsys, *base)["kv_policy"]["quality_affecting"] is False
    data = _analyze_json(capsys, *base, "--kv-budget", "1024")
    assert data["kv_policy"]["quality_affecting"] is True and "changes the model's outputs" in data["kv_policy"]["note"]
    code, out, _ = _run(capsys, "analyze", *base, "--kv-budget", "1024")
    assert code == 0 and "warning: KV budget of 1024 tokens" in out


def test_kv_offload_on_a_system_reports_host_kv(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "llama-3.1-70b", "--hardware", "dgx-h100", "--tp", "4", "--batch", "16", "--kv-offload", "0.5"]
    data = _analyze_json(capsys, *argv)
    mem = data["memory"]
    assert data["feasible"] and mem["host_kv_cache_bytes"] == pytest.approx(mem["kv_cache_bytes"])
    assert mem["host_capacity_bytes"] == pytest.approx(2048e9 / 8)  # DGX H100: 2 TB of host memory, 8 GPUs
    code, out, _ = _run(capsys, "analyze", *argv)
    assert code == 0 and "host KV cache" in out and "50% offloaded to host memory" in out


def test_multi_device_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "analyze", "--model", "llama-3.1-70b", "--hardware", "dgx-h100", "--tp", "4", "--pp", "2"
    )
    assert code == 0
    for needle in ("deployment: 8 devices (h100-sxm in dgx-h100)", "tp 4 · pp 2", "communication per device"):
        assert needle in out
    for needle in ("tp_all_reduce", "pp_send", "pipeline_bubble", "network"):
        assert needle in out


def test_human_readable_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "analyze", "--model", "deepseek-v2-lite", "--hardware", "a100-sxm-80gb", "--batch", "8")
    assert code == 0
    for needle in ("TTFT", "TPOT", "Memory per device", "memory-bound", "expert_gate_up", "kv_a_proj"):
        assert needle in out


def test_analyze_says_which_figure_an_unknown_price_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("analyze", "--model", "llama-3.1-8b", "--hardware", "apple-m4-max", "--pricing", "buy")
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    assert "price unknown: no power figure (TDP or system power) for its electricity under buy pricing" in out


@pytest.mark.parametrize("table", ["hardware", "models", "quant", "systems", "profiles"])
def test_catalog_listings(capsys: pytest.CaptureFixture[str], table: str) -> None:
    code, out, _ = _run(capsys, "catalog", table, "--format", "json")
    assert code == 0 and len(json.loads(out)) >= 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "llama-3.1-8", "--hardware", "h100-sxm"], "did you mean: llama-3.1-8b"),
        (["--model", "llama-3.1-8b", "--hardware", "h100"], "unknown hardware or system id 'h100'"),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "-3"],
            "--batch: expected a whole number from 1 to 9,007,199,254,740,992, got -3",
        ),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--prompt-len", "0"],
            "--prompt-len: expected a whole number from 1 to 16,777,216, got 0",
        ),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--quant", "fp7"], "unknown quant id 'fp7'"),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--quant", "fp8", "--weight-bits", "4"], "not both"),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--weight-bits", "40"],
            "--weight-bits: expected bits in (0, 32]",
        ),
        (["--model", "llama-3.1-8b", "--hardware", "dgx-h100", "--tp", "0"], "--tp: expected a whole number from 1"),
        (["--model", "llama-3.1-8b", "--hardware", "dgx-h100", "--replicas", "0"], "--replicas: expected a whole"),
        (
            ["--model", "llama-3.1-8b", "--hardware", "dgx-h100", "--prefix-hit-rate", "1.5"],
            "--prefix-hit-rate: expected a number from 0 to 1, got 1.5",
        ),
        (["--model", "llama-3.1-8b", "--hardware", "dgx-h100", "--kv-offload", "-0.1"], "--kv-offload: expected a"),
        (["--model", "llama-3.1-8b", "--hardware", "dgx-h100", "--kv-budget", "0"], "--kv-budget: expected a whole"),
        (["--model", "llama-3.1-8b", "--hardware", "dgx-h100", "--kv-block-size", "0"], "--kv-block-size: expected"),
        (
            ["--model", "deepseek-v3", "--hardware", "dgx-h100", "--expert-imbalance", "0.5"],
            "--expert-imbalance: expect",
        ),
        (
            ["--model", "deepseek-v3", "--hardware", "dgx-h100", "--expert-imbalance", "inf"],
            "--expert-imbalance: expect",
        ),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--kv", "fp9"], "unknown kv id 'fp9'"),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--scheduler", "continuous", "--request-rate", "nan"],
            "--request-rate: expected a number, got nan",
        ),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--slo-tpot-s", "nan"],
            "--slo-tpot-s: expected a number",
        ),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--concurrency", "nan"], "'--concurrency'"),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--gen-len", "100000000"],
            "--gen-len: expected a whole number from 1 to 16,777,216, got 1e+08\n",  # refused before any work
        ),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, "analyze", *argv)
    assert code == 2
    assert message in err and "Traceback" not in err + out


def test_bad_files_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "config.json"
    broken.write_text('{"hidden_size": 4096,, }')
    code, _, err = _run(capsys, "analyze", "--model", str(broken), "--hardware", "h100-sxm")
    assert code == 2 and "config.json: line 1, column" in err and "malformed JSON" in err
    hw = tmp_path / "gpu.yaml"
    hw.write_text("id: g\nname: G\nmemory_gb: 8\nmemory_bandwidth_gb_s: 100\npeak_tflops: {fp16: oops}\n")
    code, _, err = _run(capsys, "analyze", "--model", "llama-3.1-8b", "--hardware", str(hw))
    assert code == 2 and "line 5: peak_tflops.fp16" in err


def test_unsupported_format_is_infeasible_with_reason(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A scheme without fallback on a device lacking its compute format: a result with a reason."""
    hw = tmp_path / "bf16-only.yaml"
    hw.write_text("id: b\nname: B\nmemory_gb: 80\nmemory_bandwidth_gb_s: 2000\npeak_tflops: {bf16: 300}\n")
    result = analyze("llama-3.1-8b", str(hw), weight_bits=16, act_bits=16).to_dict()
    assert result["feasible"] and result["compute_format"] == "bf16"  # fp16 request runs as bf16 (16-bit class)
    fp8 = analyze("llama-3.1-8b", "a100-sxm-80gb", quant="fp8").to_dict()
    assert fp8["compute_format"] == "bf16" and fp8["feasible"]  # weight-only fallback on Ampere
    assert (
        fp8["memory"]["weights_bytes"] < analyze("llama-3.1-8b", "a100-sxm-80gb").to_dict()["memory"]["weights_bytes"]
    )


def test_console_script_runs_and_help_is_light() -> None:
    code = (
        "import sys, dse.cli\n"
        "sys.argv = ['dse', '--help']\n"
        "try:\n    dse.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pandas', 'plotly', 'kaleido', 'optuna', 'ray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "analyze" in done.stdout and "catalog" in done.stdout


def test_analyze_takes_the_lengths_of_your_traffic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--lengths``: a histogram of requests replaces --prompt-len/--gen-len (means, and TTFT over prompts)."""
    traffic = tmp_path / "traffic.csv"
    traffic.write_text("prompt_tokens,output_tokens,count\n200,50,3\n4000,400,1\n")
    argv = ["analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--scheduler", "continuous"]
    code, out, _ = _run(capsys, *argv, "--request-rate", "2", "--lengths", str(traffic), "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["inputs"]["prompt_len"], data["inputs"]["gen_len"]) == (1150, 138)  # the means, whole tokens
    ttft = data["percentiles"]["ttft_s"]
    assert ttft["p50"] < data["ttft_s"] < ttft["p90"] < ttft["p99"]  # one request in four has a 4,000-token prompt
    fixed = ("--request-rate", "2", "--prompt-len", "1150", "--gen-len", "138", "--json")
    same = json.loads(_run(capsys, *argv, *fixed)[1])
    # mean TTFT: the mean prompt's, with a longer wait in the queue, as requests of unequal work queue (M/G/1),
    # and a longer prefill, as attention is quadratic in the prompt (its mean taken at E[P²])
    waited = data["continuous"]["wait_s"] - same["continuous"]["wait_s"]
    assert 0 < waited < data["ttft_s"] - same["ttft_s"]
    code, _, err = _run(capsys, *argv, "--lengths", str(tmp_path / "gone.csv"))
    assert code == 2 and "lengths: histogram file not found" in err
    traffic.write_text("prompt_tokens,output_tokens\n200000,10\n")  # beyond Llama-3.1-8B's 131,072 tokens
    code, _, err = _run(capsys, *argv, "--lengths", str(traffic))
    assert code == 2 and "exceeds the model's context of 131,072" in err


def test_analyze_says_which_step_its_continuous_operators_are(capsys: pytest.CaptureFixture[str]) -> None:
    """At a light load the engine holds about two sequences, but the operator rows are the step of every slot
    busy (256, max_num_seqs), which the table and the bottleneck line name, and the JSON gives."""
    argv = ["analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--scheduler", "continuous"]
    code, out, _ = _run(capsys, *argv, "--request-rate", "1", "--json")
    assert code == 0
    serving = json.loads(out)["continuous"]
    assert serving["sequences_in_engine"] < 2.0 and serving["sequences_every_slot_busy"] == 256.0
    code, out, _ = _run(capsys, *argv, "--request-rate", "1")
    flat = " ".join(out.split())
    assert "decode (every slot busy, 256 sequences):" in flat
    assert "decode = one step of every slot busy, 256 sequences" in flat


def test_analyze_names_a_split_s_pools_and_its_two_kinds_of_p90(capsys: pytest.CaptureFixture[str]) -> None:
    """Pools of two hardware are named as such; a split without a decode replica says so (it printed
    ``× None`` and ``-1 replicas``); the model's error band and the load's percentiles are told apart, and a
    band of one point (a throughput the load fixes) is not printed."""
    argv = ["analyze", "--model", "llama-3.1-70b", "--hardware", "dgx-h200", "--tp", "4", "--quant", "fp8"]
    argv += ["--scheduler", "continuous", "--mode", "disaggregated", "--request-rate", "8"]
    code, out, _ = _run(capsys, *argv, "--replicas", "4", "--prefill-replicas", "2", "--prefill-hardware", "dgx-h100")
    flat = " ".join(out.split())
    assert code == 0
    assert "16 devices (prefill on dgx-h100, decode on dgx-h200) · 4 replicas" in flat
    assert "prefill: 2 replicas × 4 of dgx-h100 at tp 4 · decode: 2 replicas × 4 of dgx-h200 at tp 4" in flat
    assert "(model error p10-p90" in flat and "over the load's requests: TTFT p50 / p90 / p99" in flat
    assert "2048.0 tok/s (" not in flat  # 8 requests/s x 256 tokens: no band around it
    code, out, _ = _run(capsys, *argv, "--replicas", "2", "--prefill-replicas", "3")
    pools = next(line for line in out.splitlines() if line.startswith("disaggregated:"))
    assert pools.endswith("decode: no replica (a split needs one of each)"), pools
    assert "None" not in pools and "-1" not in pools


def test_analyze_scores_with_the_engine_named(capsys: pytest.CaptureFixture[str]) -> None:
    """``--engine``: the engine's fitted profile for the hardware (vLLM on MI300X: the AMD family's), the
    generic one where none is fitted (vLLM on H100), as ``dse validate`` scores a row of that engine."""
    argv = ["analyze", "--model", "llama-3.1-70b", "--tp", "8", "--quant", "fp8", "--batch", "64", "--json"]
    profile = lambda *extra: json.loads(_run(capsys, *argv, *extra)[1])["inputs"]["profile"]  # noqa: E731
    assert profile("--hardware", "dgx-h100") == "nvidia-hopper-trtllm"
    assert profile("--hardware", "dgx-h100", "--engine", "vllm") == "default"
    assert profile("--hardware", "mi300x-platform", "--engine", "vllm") == "amd-instinct-vllm"
    code, _, err = _run(capsys, *argv, "--hardware", "dgx-h100", "--engine", "vlm")
    assert code == 2 and "unknown engine 'vlm' (did you mean: vllm?)" in err
    code, _, err = _run(capsys, *argv, "--hardware", "dgx-h100", "--engine", "vllm", "--ideal")
    assert code == 2 and "--engine" in err


RECOMMEND = ["recommend", "--model", "llama-3.1-8b", "--prompt-tokens", "1000", "--output-tokens", "200", "--rate", "1"]
MEASURED = str(Path(__file__).resolve().parents[1] / "tests" / "calibrate" / "published_fixture.csv")


@pytest.mark.parametrize(
    ("argv", "work", "expected"),
    [
        (["analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--report", "{dir}"], "dse.scoring.analyze",
         "{dir}: --report: is a directory"),
        ([*RECOMMEND, "--report", "{dir}"], "dse.recommend.recommend", "{dir}: --report: is a directory"),
        ([*RECOMMEND, "--out", "/proc/nope/x.json"], "dse.recommend.recommend",
         "/proc/nope/x.json: --out: cannot be written: nothing can be created in /proc"),
        ([*RECOMMEND, "--out", "{file}"], "dse.recommend.recommend", "{file}: --out: is a file; expected a directory"),
        (["calibrate", MEASURED, "--out", "{dir}"], "dse.calibrate.calibrate", "{dir}: --out: is a directory"),
        (["validate", "--out", "{file}"], "dse.calibrate.validate", "{file}: --out: is a file; expected a directory"),
        (["validate", "--report", "{file}/v.html"], "dse.calibrate.validate",
         "{file}/v.html: --report: cannot be written: {file} is a file, not a directory"),
    ],
)  # fmt: skip
def test_output_paths_are_checked_before_the_work(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], work: str,
    expected: str,
) -> None:  # fmt: skip
    """A path that cannot be written is bad input (exit 2, naming the flag) found before the computation, and
    leaves nothing behind (no ``.tmp`` beside it)."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    names = {"dir": str(tmp_path / "dir"), "file": str(tmp_path / "file")}
    module, _, name = work.rpartition(".")
    stop = lambda *a, **k: pytest.fail(f"{work} ran before the output was checked")  # noqa: E731
    monkeypatch.setattr(importlib.import_module(module), name, stop)
    code, out, err = _run(capsys, *(arg.format(**names) for arg in argv))
    assert code == 2 and expected.format(**names) in err and "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"] and not list((tmp_path / "dir").iterdir())


def _ctrl_c(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("argv", "work"),
    [
        (["analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"], "dse.scoring.analyze"),
        (["validate"], "dse.calibrate.validate"),
        (["recommend", "--model", "llama-3.1-8b", "--prompt-tokens", "100", "--output-tokens", "10", "--rate", "1"],
         "dse.recommend.recommend"),
        (["catalog", "hardware"], "dse.cli._catalog_tables.hardware_rows"),
        (["run", "spaces/quickstart.yaml"], "dse.results.run"),  # before the run holds the stop signals
        (["sweep", "experiments/quickstart-models.yaml"], "dse.results.sweep"),
        (["report", "somewhere"], "dse.report.report"),
        (["calibrate", "calibration/measurements.csv", "--out", "{tmp}/fit.yaml"], "dse.calibrate.calibrate"),
    ],
)  # fmt: skip
def test_ctrl_c_in_any_command_says_interrupted_and_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], work: str
) -> None:
    """Ctrl-C outside a run's stop handling: one line, exit code 130, no traceback (typer alone exits silently)."""
    module, _, name = work.rpartition(".")
    monkeypatch.setattr(importlib.import_module(module), name, _ctrl_c)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    code, out, err = _run(capsys, *(arg.format(tmp=tmp_path) for arg in argv))
    assert (code, err.strip()) == (130, "interrupted") and "Traceback" not in out  # run: its progress line ends


def test_ctrl_c_while_the_command_line_loads_says_interrupted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first half second of ``dse`` is spent importing the command line: Ctrl-C there ends as later."""

    class CtrlCOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *args: object) -> None:
            if name == "dse.cli._app":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "dse.cli._app")
    monkeypatch.setattr(sys, "meta_path", [CtrlCOnImport(), *sys.meta_path])
    assert _run(capsys, "catalog", "hardware") == (130, "", "interrupted\n")


def test_sigint_to_a_busy_command_says_interrupted() -> None:
    """A real SIGINT to ``python -m dse.cli catalog hardware`` while the command works (made to wait here)."""
    child = (
        "import sys, time\n"
        "import dse.cli._catalog_tables as tables\n"
        "def busy():\n    print('ready', flush=True)\n    time.sleep(60)\n"
        "tables.hardware_rows = busy\n"
        "sys.argv = ['dse', 'catalog', 'hardware']\n"
        "import runpy\nrunpy.run_module('dse.cli', run_name='__main__')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (130, "interrupted\n"), err
