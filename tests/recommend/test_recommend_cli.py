"""``dse recommend`` and ``dse catalog prices`` end to end: the JSON contract, files, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.cli import main

ARGS = ["recommend", "--model", "llama-3.1-8b", "--prompt-tokens", "1000", "--output-tokens", "250"]
SMALL = ["--hardware", "h100-sxm", "--hardware", "l40s", "--samples", "200"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_contract_and_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(
        capsys, *ARGS, "--rate", "40", "--ttft-s", "1", "--tpot-s", "0.05", *SMALL, "--json", "--out", str(tmp_path)
    )
    assert code == 0
    doc = json.loads(out)
    assert {"schema_version", "options", "unpriced", "infeasible", "thresholds"} <= set(doc)
    keys = {
        "hardware",
        "quant",
        "kv",
        "tp",
        "pp",
        "ep",
        "batch",
        "replicas",
        "devices",
        "usd_per_month",
        "tco_usd",
        "usd_per_million_tokens",
        "power_kw",
        "binding",
        "win_rate",
    }
    assert [o["hardware"] for o in doc["options"]] and all(keys <= set(o) for o in doc["options"])
    assert json.loads((tmp_path / "recommendation.json").read_text()) == doc


def test_the_table_says_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, *ARGS, "--rate", "40", "--ttft-s", "1", "--tpot-s", "0.05", *SMALL)
    assert code == 0
    assert "becomes the cheapest below" in out or "stays the cheapest up to" in out
    assert "Buying" in out and "Robustness (200 draws, seed 0)" in out


def test_the_scheduler_is_a_choice_the_answer_names(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--rate", "40", "--ttft-s", "1", "--tpot-s", "0.05", "--hardware", "h100-sxm", "--samples", "0"]
    _, out, _ = _run(capsys, *ARGS, *flags, "--slo-percentile", "99", "--chunk-tokens", "2048")
    assert "at p99, continuous batching" in out and "max " in out and " seqs" in out
    _, out, _ = _run(capsys, *ARGS, *flags, "--scheduler", "static", "--json")
    option = json.loads(out)["options"][0]
    assert (option["scheduler"], option["max_num_seqs"], option["requests_in_engine"]) == ("static", None, None)
    assert option["batch"] >= 1


def test_tokens_per_day_is_a_load(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, *ARGS, "--tokens-per-day", str(40 * 250 * 86400), *SMALL, "--json")
    assert json.loads(out)["request"]["rate"] == pytest.approx(40.0)


def test_an_impossible_request_is_an_answer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, *ARGS, "--rate", "40", "--tpot-s", "0.0001", *SMALL, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["options"] == []
    assert {i["hardware"] for i in doc["infeasible"]} == {"h100-sxm", "l40s"}
    assert all(i["reason"].startswith("tpot:") for i in doc["infeasible"])


def _sheet(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--rate", "-3"], ["rate", "greater than 0"]),
        (["--rate", "0"], ["rate", "greater than 0"]),
        (["--rate", "nan"], ["rate", "finite number"]),
        (["--rate", "inf"], ["rate", "finite number"]),
        (["--rate", "1e300"], ["rate: expected at most 3.43e+09 requests/s", "largest load", "got 1e+300"]),
        (["--rate", "1e9", "--peak-factor", "10"], ["peak_factor", "= 1e+10 requests/s", "at most 3.43e+09"]),
        (["--tokens-per-day", "1e20"], ["tokens_per_day: expected at most 7.4e+16 tokens a day", "got 1e+20"]),
        (["--tokens-per-day", "inf"], ["tokens_per_day", "positive, finite number, got inf"]),
        (["--rate", "3", "--tokens-per-day", "5"], ["rate", "one of them"]),
        (["--rate", "3", "--hardware", "h100-sxn"], ["hardware[0]", "h100-sxm"]),
        (
            ["--rate", "3", "--prices", "SHEET:prices:\n  - id: h100-sxn\n    buy: [{usd: 1, item: device}]\n"],
            ["prices.yaml", "prices[0].id", "h100-sxm"],
        ),
        (
            ["--rate", "3", "--prices", "SHEET:prices:\n  - id: h100-sxm\n    rent: [{term: on-demand}]\n"],
            ["prices.yaml", "usd_per_device_hour", "Field required"],
        ),
        (["--rate", "3", "--prices", "missing.yaml"], ["missing.yaml", "file not found"]),
        (["--rate", "3", "--slo-percentile", "95"], ["slo_percentile", "50, 90 or 99"]),
        (["--rate", "3", "--chunk-tokens", "0"], ["chunk_tokens", "greater than 0"]),
        (["--rate", "3", "--scheduler", "dynamic"], ["scheduler", "static", "continuous"]),
        (["--rate", "3", "--samples", "10", "--seed", "-1"], ["seed", "greater than or equal to 0"]),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], expected: list[str]
) -> None:
    extra = [_sheet(tmp_path, e[len("SHEET:") :]) if e.startswith("SHEET:") else e for e in extra]
    code, _, err = _run(capsys, *ARGS, *extra)
    assert code == 2 and "Traceback" not in err
    for part in expected:
        assert part in err


def test_catalog_prices_lists_every_figure_with_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "catalog", "prices", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and {r["kind"] for r in rows} == {"rent", "buy", "power"}
    assert all(r["source"] and r["as_of"] and r["confidence"] for r in rows)
    code, out, _ = _run(capsys, "catalog", "prices", "--format", "csv")
    assert out.splitlines()[0].startswith("id,segment,kind,term_or_item,value,unit")


def test_out_names_a_directory_even_before_it_exists(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "results"
    code, _, _ = _run(capsys, *ARGS, "--rate", "40", *SMALL, "--out", f"{folder}/")
    assert code == 0 and json.loads((folder / "recommendation.json").read_text())["schema_version"] == 1
    code, _, _ = _run(capsys, *ARGS, "--rate", "40", *SMALL, "--out", str(tmp_path / "mine.json"))
    assert code == 0 and (tmp_path / "mine.json").is_file()


def test_observed_lengths_replace_the_fixed_ones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    traffic = tmp_path / "traffic.csv"
    traffic.write_text("prompt_tokens,output_tokens,count\n500,100,3\n2500,500,1\n")  # means 1,000 and 200
    base = ["recommend", "--model", "llama-3.1-8b", "--lengths", str(traffic), "--ttft-s", "1", "--tpot-s", "0.05"]
    code, out, _ = _run(capsys, *base, "--tokens-per-day", str(40 * 200 * 86400), *SMALL, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["request"]["rate"] == pytest.approx(40.0)  # tokens a day / the mean output
    assert doc["workload"]["requests"] == 4 and doc["workload"]["prompt_tokens_mean"] == 1000.0
    assert doc["options"]
    code, out, _ = _run(capsys, *base, "--rate", "40", *SMALL)
    assert code == 0 and "1000 prompt (p90 2500) + 200 output tokens (p90 500) on average, 4 requests" in out
    code, _, err = _run(capsys, *base, "--rate", "40", "--prompt-tokens", "100")
    assert code == 2 and "give --lengths or --prompt-tokens" in err and "Traceback" not in err
    code, _, err = _run(capsys, "recommend", "--model", "llama-3.1-8b", "--prompt-tokens", "100", "--rate", "4")
    assert code == 2 and "output_tokens: give --output-tokens (or --lengths" in err


def test_length_laws_are_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """``--prompt-tokens lognormal:mean=...,sigma=...,max=...`` and ``--output-tokens uniform:min=...,max=...``:
    the laws of a space's workload, as flags; a load in tokens a day is divided by the law's mean output."""
    laws = ["--prompt-tokens", "lognormal:mean=1500,sigma=0.9,max=16000", "--output-tokens", "uniform:min=50,max=600"]
    base = ["recommend", "--model", "llama-3.1-8b", *laws, "--ttft-s", "1", "--tpot-s", "0.05", *SMALL]
    code, out, _ = _run(capsys, *base, "--tokens-per-day", str(4 * 325 * 86400), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["request"]["rate"] == pytest.approx(4.0)  # the uniform law's mean: 325 tokens
    assert doc["request"]["prompt_tokens"] == {"distribution": "lognormal", "mean": 1500.0, "sigma": 0.9, "max": 16000}
    assert doc["workload"]["laws"]["output_tokens"] == "uniform 50-600" and doc["options"]
    code, out, _ = _run(capsys, *base, "--rate", "4")
    assert code == 0 and "prompts lognormal (mean 1500, σ 0.9, max 16000), outputs uniform 50-600" in out
    spaced = ["--prompt-tokens", "Lognormal : mean = 1500, sigma = 0.9, max = 16000", *laws[2:]]
    code, again, _ = _run(capsys, "recommend", "--model", "llama-3.1-8b", *spaced, *base[7:], "--rate", "4")
    assert code == 0 and again == out
    for bad, message in (
        ("lognormal:mean=1500,sigma=x", "sigma = 'x': expected a number"),
        ("gamma:k=2", "laws: uniform, lognormal"),
        ("12.5", "a number of tokens, or uniform:min=N,max=N"),
        ("uniform:min=600,max=50", "max (50) must be >= min (600)"),
        ("uniform:min=50.0,max=600", "min = '50.0': expected a whole number"),
    ):
        code, _, err = _run(capsys, *ARGS[:3], "--prompt-tokens", bad, "--output-tokens", "250", "--rate", "4")
        assert code == 2 and "prompt_tokens" in err and message in err and "Traceback" not in err


def test_speculation_and_a_prefix_cache_are_flags(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--rate", "40", "--ttft-s", "1", "--tpot-s", "0.008", "--hardware", "h100-sxm", "--samples", "0"]
    spec = ["--draft", "mtp", "--spec-tokens", "0", "--spec-tokens", "2", "--prefix-hit-rate", "0.5"]
    code, out, _ = _run(capsys, *ARGS, *flags, *spec, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["request"]["spec_tokens"] == [0, 2] and doc["request"]["prefix_hit_rate"] == 0.5
    assert doc["options"] and doc["options"][0]["spec_tokens"] == 2
    _, out, _ = _run(capsys, *ARGS, *flags, *spec)
    assert "spec 2" in out
    code, _, err = _run(capsys, *ARGS, *flags, "--spec-tokens", "2")
    assert code == 2 and "spec_tokens" in err and "draft" in err and "Traceback" not in err


def test_pool_splits_are_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--rate", "40", "--ttft-s", "1", "--tpot-s", "0.01", "--hardware", "h100-sxm", "--samples", "0"]
    code, out, _ = _run(capsys, *ARGS, *flags, "--pool-split", "2:1", "--pool-split", "1:1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["request"]["disaggregate"] and doc["request"]["pool_splits"] == [[2, 1], [1, 1]]
    modes = {(o["mode"], o["prefill_instances"], o["decode_instances"]) for o in doc["options"]}
    assert modes <= {("aggregated", None, None), ("disaggregated", 2, 1), ("disaggregated", 1, 1)}
    code, _, err = _run(capsys, *ARGS, *flags, "--pool-split", "2-1")
    assert code == 2 and "pool_split" in err and "PREFILL:DECODE" in err and "Traceback" not in err
