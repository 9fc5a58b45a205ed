"""End-to-end CLI: the analyze JSON contract, catalog listings, and bad input (exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dse.analysis import analyze
from dse.cli import main

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


def test_human_readable_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "analyze", "--model", "deepseek-v2-lite", "--hardware", "a100-sxm-80gb", "--batch", "8")
    assert code == 0
    for needle in ("TTFT", "TPOT", "Memory per device", "memory-bound", "expert_gate_up", "kv_a_proj"):
        assert needle in out


@pytest.mark.parametrize("table", ["hardware", "models", "quant", "systems", "profiles"])
def test_catalog_listings(capsys: pytest.CaptureFixture[str], table: str) -> None:
    code, out, _ = _run(capsys, "catalog", table, "--format", "json")
    assert code == 0 and len(json.loads(out)) >= 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "llama-3.1-8", "--hardware", "h100-sxm"], "did you mean: llama-3.1-8b"),
        (["--model", "llama-3.1-8b", "--hardware", "h100"], "unknown hardware or system id 'h100'"),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "-3"], "batch: expected a whole number >= 1"),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--prompt-len", "0"],
            "prompt_len: expected a whole number >= 1",
        ),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--quant", "fp7"], "unknown quant id 'fp7'"),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--quant", "fp8", "--weight-bits", "4"], "not both"),
        (
            ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--weight-bits", "40"],
            "weight_bits: expected bits in (0, 32]",
        ),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "2"], "tp: only 1 is supported so far"),
        (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--kv", "fp9"], "unknown kv id 'fp9'"),
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
        "heavy = [m for m in ('pandas', 'plotly', 'optuna', 'ray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "analyze" in done.stdout and "catalog" in done.stdout
