"""The regression corpus of bad inputs: every entry exits with code 2 and a message naming where the problem
is, never a traceback, and leaves no run directory behind.

Cases are spaces (the quickstart space with one field changed), raw files (YAML and JSON that do not parse as
meant), hardware files, model config files, sweep files and command lines."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dse.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "spaces" / "quickstart.yaml").read_text())
INF, NAN = float("inf"), float("nan")

SPACE_CHANGES: list[tuple[str, Any]] = [
    ("name", ""), ("name", "bad name!"), ("name", 5), ("name", "a" * 201),
    ("model", "no-such-model"), ("model", 3), ("model", None), ("model", []),
    ("workload.prompt_tokens", 0), ("workload.prompt_tokens", -1), ("workload.prompt_tokens", "256"),
    ("workload.prompt_tokens", 1.5), ("workload.prompt_tokens", INF), ("workload.prompt_tokens", None),
    ("workload.output_tokens", 0), ("workload.output_tokens", "x"),
    ("workload.prefix_hit_rate", 1.5), ("workload.prefix_hit_rate", -0.1), ("workload.prefix_hit_rate", NAN),
    ("workload.expert_imbalance", 0.5), ("workload.expert_imbalance", INF), ("workload.speed", 1),
    ("slo.ttft_s", 0), ("slo.ttft_s", -1), ("slo.ttft_s", INF), ("slo.ttft_s", NAN), ("slo.ttft_s", "2"),
    ("slo.tpot_s", 0), ("slo.unknown", 1), ("slo", [1]),
    ("choices.hardware", []), ("choices.hardware", ["nope"]), ("choices.hardware", [1]),
    ("choices.hardware", "h100-sxm"), ("choices.hardware", ["h100-sxm", "h100-sxm"]),
    ("choices.quant", ["nope"]), ("choices.quant", []), ("choices.kv", ["nope"]),
    ("choices.tp", [0]), ("choices.tp", [1.5]), ("choices.tp", ["2"]), ("choices.pp", [0]), ("choices.ep", [-1]),
    ("choices.replicas", [0]), ("choices.kv_block_size", [0]), ("choices.kv_offload", [1.5]),
    ("choices.kv_offload", [-0.5]), ("choices.kv_budget", [0]), ("choices.flash_attention", ["yes"]),
    ("choices.flash_attention", [1]),
    ("choices.batch", []), ("choices.batch", [0]), ("choices.batch", [10**30]), ("choices.batch", {"min": 0, "max": 4}),
    ("choices.batch", {"min": 4, "max": 2}), ("choices.batch", {"min": 1, "max": 10**9}),
    ("choices.batch", {"min": 1, "max": 8, "step": 0}), ("choices.batch", {"min": 1, "max": 8, "log": True, "step": 2}),
    ("choices.batch", "all"), ("choices.batch", [1.5]), ("choices.batch", ["8"]), ("choices.batch", [INF]),
    ("choices.unknown_dimension", [1]), ("choices.prefix_hit_rate", [0.5]),
    ("choices.prefill_hardware", ["nope"]), ("choices.prefill_hardware", [3]), ("choices.prefill_tp", [0]),
    ("choices.prefill_pp", [0]), ("choices.prefill_pp", [1.5]),
    ("objectives", []), ("objectives", [{"metric": "nope"}]), ("objectives", [{"metric": "tpot_s", "direction": "up"}]),
    ("objectives", [{"metric": "tpot_s"}, {"metric": "tpot_s"}]), ("objectives", "tpot_s"),
    ("constraints", [{"metric": "tpot_s"}]), ("constraints", [{"metric": "tpot_s", "min": 2, "max": 1}]),
    ("constraints", [{"metric": "nope", "max": 1}]), ("constraints", [{"metric": "tpot_s", "max": INF}]),
    ("profile", "nope"), ("pricing", "lease"),
    ("engine.kind", "genetic"), ("engine.trials", 0), ("engine.batch_size", -1), ("engine.exhaustive_limit", 0),
    ("engine.seed", "seven"), ("engine.seed", -1), ("engine.seed", 2**32),
    ("execution.executor", "slurm"), ("execution.chunk_size", 0), ("execution.checkpoint_s", 0),
    ("execution.checkpoint_s", INF), ("surprise", 1),
    ("choices.draft", ["llama-9b"]), ("choices.draft", ["llama-2-7b"]),  # unknown; another tokenizer
    ("choices.kv_budget", [2**63]), ("choices.max_num_seqs", [2**64]), ("choices.tp", [2**70]),
    ("workload.prompt_tokens", 2**24 + 1),
    ("workload.output_tokens", {"distribution": "uniform", "min": 1, "max": 2**40}),
    ("workload.prompt_tokens", {"distribution": "lognormal", "mean": 1500, "sigma": 0.9, "max": 10}),
]  # fmt: skip

RAW_SPACES = {
    "duplicate key": "name: a\nname: b\nmodel: llama-3.1-8b\n",
    "duplicate nested key": (ROOT / "spaces" / "quickstart.yaml").read_text().replace("slo: {", "slo: {ttft_s: 1, "),
    "malformed": "name: [unclosed\n",
    "empty": "",
    "a list": "- name: x\n",
    "a scalar": "just text\n",
    "tabs": "name: x\n\tmodel: y\n",
    "binary": "\x00\x01\x02",
}

GPU = {"id": "g", "name": "G", "memory_gb": 48, "memory_bandwidth_gb_s": 768, "peak_tflops": {"fp16": 100}}
HARDWARE: dict[str, Any] = {
    "no memory": {k: v for k, v in GPU.items() if k != "memory_gb"},
    "infinite memory": GPU | {"memory_gb": INF},
    "negative memory": GPU | {"memory_gb": -1},
    "memory as text": GPU | {"memory_gb": "80"},
    "no bandwidth": GPU | {"memory_bandwidth_gb_s": 0},
    "infinite bandwidth": GPU | {"memory_bandwidth_gb_s": INF},
    "no peaks": GPU | {"peak_tflops": {}},
    "unknown format": GPU | {"peak_tflops": {"fp99": 1}},
    "nan peak": GPU | {"peak_tflops": {"fp16": NAN}},
    "an int8 peak alone": GPU | {"peak_tflops": {"int8": 100}},
    "unknown key": GPU | {"cores": 5},
    "no id": {k: v for k, v in GPU.items() if k != "id"},
    "a list": [1, 2],
}

LLAMA = {
    "model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
    "num_key_value_heads": 8, "intermediate_size": 4096, "vocab_size": 32000, "max_position_embeddings": 4096,
}  # fmt: skip
CONFIGS: dict[str, Any] = {
    "a list": [1],
    "hidden size as text": LLAMA | {"hidden_size": "1024"},
    "no heads": LLAMA | {"num_attention_heads": 0},
    "negative layers": LLAMA | {"num_hidden_layers": -2},
    "no hidden size": {k: v for k, v in LLAMA.items() if k != "hidden_size"},
    "heads do not divide": LLAMA | {"num_attention_heads": 7},
}

SWEEPS = {
    "grid over name": {"name": "s", "base": "space.yaml", "grid": {"name": ["a", "b"]}},
    "unknown key": {"name": "s", "base": "space.yaml", "grid": {"choices.nope": [1]}},
    "empty grid": {"name": "s", "base": "space.yaml", "grid": {}},
    "empty values": {"name": "s", "base": "space.yaml", "grid": {"workload.prompt_tokens": []}},
    "bad value": {"name": "s", "base": "space.yaml", "grid": {"workload.prompt_tokens": [0]}},
    "missing base": {"name": "s", "base": "nowhere.yaml", "grid": {"workload.prompt_tokens": [1]}},
    "no base": {"name": "s", "grid": {"workload.prompt_tokens": [1]}},
}

ANALYZE = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm"]
COMMANDS = [
    [*ANALYZE, "--batch", "0"], [*ANALYZE, "--batch", "-1"], [*ANALYZE, "--prompt-len", "0"],
    [*ANALYZE, "--gen-len", "0"], [*ANALYZE, "--tp", "0"], [*ANALYZE, "--quant", "nope"], [*ANALYZE, "--kv", "nope"],
    ["--model", "nope", "--hardware", "h100-sxm"], ["--model", "llama-3.1-8b", "--hardware", "nope"],
    [*ANALYZE, "--profile", "nope"], [*ANALYZE, "--weight-bits", "0"], [*ANALYZE, "--kv-offload", "2"],
    [*ANALYZE, "--prefix-hit-rate", "-1"], [*ANALYZE, "--ideal", "--profile", "default"], [*ANALYZE, "--batch", "x"],
    [*ANALYZE, "--expert-imbalance", "0.5"], [*ANALYZE, "--pricing", "lease"], ["--hardware", "h100-sxm"],
    [*ANALYZE, "--gen-len", "1000000000"], [*ANALYZE, "--prompt-len", "99999999999999999999"],
    [*ANALYZE, "--kv-budget", "99999999999999999999"],
]  # fmt: skip


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


def _check(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert "Traceback" not in out + err
    assert err.strip(), "a message on standard error"
    return err


@pytest.mark.parametrize(("field", "value"), SPACE_CHANGES, ids=[f"{f}={v!r}"[:60] for f, v in SPACE_CHANGES])
def test_bad_space_fields(capsys: pytest.CaptureFixture[str], tmp_path: Path, field: str, value: Any) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(_set(BASE, field, value)))
    err = _check(capsys, ["run", str(space), "--out", str(tmp_path / "run")])
    assert str(space) in err
    assert not (tmp_path / "run" / "manifest.json").exists()


@pytest.mark.parametrize("name", list(RAW_SPACES))
def test_bad_space_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(RAW_SPACES[name])
    assert str(space) in _check(capsys, ["run", str(space), "--out", str(tmp_path / "run")])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty (nothing but comments, or null)"),
        ("# a comment, and nothing else\n", "the file is empty (nothing but comments, or null)"),
        ("null\n", "the file is empty (nothing but comments, or null)"),
        ("- name: x\n", "got a list"),
        ("just text\n", "got text ('just text')"),
    ],
)
def test_a_space_file_that_is_not_a_mapping_says_what_it_holds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expected: str
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(text)
    err = _check(capsys, ["run", str(space), "--out", str(tmp_path / "run")])
    assert f"{space}: {expected}; expected a mapping of the space's keys (key: value)" in err
    assert "Record" not in err and "dictionary" not in err


@pytest.mark.parametrize("name", list(HARDWARE))
def test_bad_hardware_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(HARDWARE[name]))
    assert str(path) in _check(capsys, ["analyze", "--model", "llama-3.1-8b", "--hardware", str(path)])


def test_hardware_key_written_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "gpu.yaml"
    path.write_text(
        "id: g\nname: G\nmemory_gb: 48\nmemory_gb: 80\nmemory_bandwidth_gb_s: 768\npeak_tflops: {fp16: 1}\n"
    )
    assert "written twice" in _check(capsys, ["analyze", "--model", "llama-3.1-8b", "--hardware", str(path)])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bad_model_configs(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIGS[name]))
    assert str(path) in _check(capsys, ["analyze", "--model", str(path), "--hardware", "h100-sxm"])
    space = tmp_path / "space.yaml"  # named by a space: the space's file and key, and the config's file
    space.write_text(yaml.safe_dump(_set(BASE, "model", str(path))))
    err = _check(capsys, ["run", str(space), "--out", str(tmp_path / "run")])
    assert f"{space}: model: {path}" in err


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', "{not json", "", "[1, 2"])
def test_malformed_model_json(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    assert str(path) in _check(capsys, ["analyze", "--model", str(path), "--hardware", "h100-sxm"])
    space = tmp_path / "space.yaml"  # named by a space: the space's file and key, and the config's file
    space.write_text(yaml.safe_dump(_set(BASE, "model", str(path))))
    err = _check(capsys, ["run", str(space), "--out", str(tmp_path / "run")])
    assert f"{space}: model: {path}" in err


@pytest.mark.parametrize("name", list(SWEEPS))
def test_bad_sweeps(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(BASE))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEPS[name]))
    _check(capsys, ["sweep", str(path), "--out", str(tmp_path / "out")])


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a[-2:]) for a in COMMANDS])
def test_bad_analyze_flags(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    _check(capsys, ["analyze", *argv])


def test_bad_run_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    quickstart = str(ROOT / "spaces" / "quickstart.yaml")
    for argv in (
        ["run", str(tmp_path / "missing.yaml")],
        ["run", quickstart, "--trials", "0", "--out", str(tmp_path / "a")],
        ["run", quickstart, "--engine", "genetic"],
        ["run", quickstart, "--executor", "slurm"],
        ["run", quickstart, "--out", "/proc/not-here"],
        ["run", quickstart, "--out", quickstart],
        ["run", quickstart, "--resume", str(tmp_path)],
        ["run", "--resume", str(tmp_path / "nowhere")],
        ["run", "--resume", str(tmp_path)],
        ["run"],
        ["run", quickstart, "--top", "-1"],
        ["run", quickstart, "--engine", "optuna", "--trials", "10", "--seed", "-1", "--out", str(tmp_path / "s")],
        ["run", quickstart, "--seed", str(2**32), "--out", str(tmp_path / "s")],
        ["report", str(tmp_path)],
        ["report", str(tmp_path / "nowhere")],
        ["sweep", str(tmp_path / "missing.yaml")],
        ["catalog", "hardware", "--format", "xml"],
        ["nonsense-command"],
    ):
        _check(capsys, argv)
    assert not (tmp_path / "s").exists()  # a seed is checked before the run directory is made


def test_the_corpus_has_at_least_a_hundred_cases() -> None:
    cases = (
        len(SPACE_CHANGES) + len(RAW_SPACES) + len(HARDWARE) + 1 + len(CONFIGS) + 4 + len(SWEEPS) + len(COMMANDS) + 18
    )
    assert cases >= 100
