"""``dse validate``: reading measurements, predicting each row, the summary statistics, the CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dse.calibrate import SCORED_SCENARIOS, predict, read_measurements, summarise, validate
from dse.calibrate._validate import _stats
from dse.cli import main
from dse.errors import InputError
from dse.scoring import analyze

FIXTURE = Path(__file__).with_name("published_fixture.csv")


def test_each_row_is_predicted_as_dse_analyze_would() -> None:
    rows = predict(read_measurements(FIXTURE))
    r4090 = rows.set_index("id").loc["424-tpot_s"]
    expected = analyze("llama-3-8b", "rtx-4090", quant="fp16", prompt_len=250, gen_len=1024).to_dict()["tpot_s"]
    assert r4090["predicted"] == pytest.approx(expected, rel=1e-12)
    assert r4090["error"] == pytest.approx(expected / (1 / 54.34) - 1)


def test_max_throughput_rows_are_served_with_every_slot_busy(tmp_path: Path) -> None:
    """A max-throughput row whose batch the engine chose (all requests queued at once) is continuous batching
    with every slot busy, as `dse analyze --scheduler continuous` predicts it without a load: dse's slots and
    token budget for an engine without documented defaults, TensorRT-LLM's 2048 and 8192 for its rows, the
    row's own where it gives them. Its batch is the sequences in the engine."""
    row = predict(read_measurements(FIXTURE)).set_index("id").loc["max-1"]
    lengths = dict(quant="fp8", prompt_len=1024, gen_len=256, scheduler="continuous")
    busy = analyze("llama-3.1-8b", "h100-sxm", **lengths).to_dict()  # 256 slots, 8,192 tokens
    assert row["predicted"] == pytest.approx(busy["throughput_tokens_per_s_per_device"], rel=1e-12)
    assert row["batch"] == pytest.approx(busy["continuous"]["sequences_in_engine"], abs=0.05) and row["feasible"]
    # the static model's "KV for all 1280 tokens from the start" differs: continuous holds KV at mean occupancy
    static = analyze("llama-3.1-8b", "h100-sxm", quant="fp8", prompt_len=1024, gen_len=256, batch=256).to_dict()
    assert static["throughput_tokens_per_s_per_device"] != busy["throughput_tokens_per_s_per_device"]

    text = FIXTURE.read_text(encoding="utf-8").splitlines()
    header, line = text[0], next(t for t in text if t.startswith("max-1,"))
    path = tmp_path / "engines.csv"
    path.write_text(
        "\n".join(
            [
                header + ",engine,request_rate,max_num_seqs,chunk_tokens,statistic",
                line.replace("max-1,", "trt,") + ",tensorrt-llm,,,,",
                line.replace("max-1,", "own,") + ",tensorrt-llm,,64,2048,",
            ]
        )
        + "\n"
    )
    rows = predict(read_measurements(path)).set_index("id")
    for row_id, seqs, budget in (("trt", 2048, 8192), ("own", 64, 2048)):
        expected = analyze(
            "llama-3.1-8b", "h100-sxm", engine="tensorrt-llm", max_num_seqs=seqs, chunk_tokens=budget, **lengths
        ).to_dict()
        assert rows.loc[row_id, "predicted"] == pytest.approx(expected["throughput_tokens_per_s_per_device"], rel=1e-12)
    assert rows.loc["own", "batch"] <= 64 < rows.loc["trt", "batch"]


def test_statistics_by_hand() -> None:
    stats = _stats(np.asarray([-0.1, 0.2, 0.05, -0.3]))
    assert stats["median_abs_error"] == pytest.approx(0.15)
    assert stats["p90_abs_error"] == pytest.approx(0.27)  # |e| sorted .05 .1 .2 .3: 0.2 + 0.7 x 0.1
    assert stats["bias"] == pytest.approx(-0.025)


def _four_devices(predicted: list[float], **columns: object) -> pd.DataFrame:
    """One measured row on each of four devices (measured 1, 2, 3, 4), alike in everything else."""
    rows = {"id": list("abcd"), "model": "m", "hardware": ["w", "x", "y", "z"], "quant": "fp16"}
    rows |= {"prompt_len": 1, "gen_len": 1, "scenario": "batch", "metric": "tpot_s"}
    rows |= {"measured": [1.0, 2.0, 3.0, 4.0], "predicted": predicted, "error": 0.0, "feasible": True}
    return pd.DataFrame(rows | columns)


def test_rank_correlation_of_hardware() -> None:
    (rank,) = summarise(_four_devices([10.0, 20.0, 40.0, 30.0]), "default").ranks
    assert rank["hardware"] == 4 and rank["spearman"] == pytest.approx(0.8)  # 1 - 6 x 2 / (4 x 15)


def test_a_max_throughput_group_spans_the_batches_each_engine_chose() -> None:
    """A max-throughput row's batch, where the engine chose it, is what the engine holds on its hardware, not a
    condition of the row: four devices at four such batches are one ranking; four fixed batches are four
    groups (of one device each, too few to rank)."""
    rows = _four_devices(
        [10.0, 20.0, 30.0, 40.0],
        scenario="max-throughput",
        metric="throughput_tokens_per_s_per_device",
        batch=[12.5, 40.0, 64.2, 100.0],
    )
    (rank,) = summarise(rows, "default").ranks
    assert rank["hardware"] == 4 and rank["spearman"] == pytest.approx(1.0)
    assert summarise(rows.assign(scenario="batch"), "default").ranks == []
    # a max-throughput row at a batch it gives (a static batch) holds that batch as a condition
    static = rows.assign(engine_chose_batch=False)
    assert summarise(static, "default").ranks == []
    assert len(summarise(static.assign(batch=64), "default").ranks) == 1


def test_summary_of_the_fixture_is_pinned() -> None:
    result = validate(read_measurements(FIXTURE))
    (tpot,) = [s for s in result.summary if s["metric"] == "tpot_s"]
    errors = result.rows.loc[result.rows["metric"] == "tpot_s", "error"].to_numpy()
    assert tpot["rows"] == tpot["scored"] == 5
    assert tpot["median_abs_error"] == pytest.approx(float(np.median(np.abs(errors))))
    assert tpot["bias"] == pytest.approx(float(np.median(errors)))
    assert len(result.ranks) == 1 and result.ranks[0]["hardware"] == 5
    assert result.ranks[0]["spearman"] > 0.5  # bandwidth orders these cards as llama.cpp measured them


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.replace(",metric,", ",quantity,"), ["missing metric", "unknown quantity"]),
        (lambda t: t.replace(",batch,tpot_s,0.0184", ",batch,tpot,0.0184"), ["line 2", "metric"]),
        (lambda t: t.replace("0.018402649981597350", "-1"), ["line 2", "value", "greater than 0"]),
        (lambda t: t.replace("422-tpot_s", "424-tpot_s"), ["line 3", "given twice"]),
        (
            lambda t: t.replace(",rtx-4090,", ",rtx-9090,", 1),
            ["hardware: line 2: unknown hardware or system id 'rtx-9090'", "did you mean: rtx-5090"],
        ),
        (lambda t: t.replace(",llama-3-8b,", ",llama-9b,", 1), ["model: line 2: unknown model id 'llama-9b'"]),
        (lambda t: t.replace(",fp16,,", ",fp7,,", 1), ["quant: line 2: unknown quant id 'fp7'"]),
        (lambda t: t.replace(",fp16,,", ",fp16,fp9,", 1), ["kv: line 2: unknown kv id 'fp9'"]),
        (lambda t: t.replace(",rtx-4090,", ",gone/gpu.yaml,", 1), ["hardware: line 2: gone/gpu.yaml: file not found"]),
    ],
)
def test_bad_measurements_name_the_file_line_and_column(tmp_path: Path, change: object, expected: list[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(change(FIXTURE.read_text()))  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        read_measurements(bad)
    for part in [str(bad), *expected]:
        assert part in str(info.value)


def test_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["validate", "--measurements", str(FIXTURE), "--json", "--out", str(tmp_path)])
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert code == 0 and {s["metric"] for s in doc["summary"]} == {"tpot_s", "throughput_tokens_per_s_per_device"}
    assert len(pd.read_csv(tmp_path / "validation.csv")) == 6
    header, *rows = csv.reader((tmp_path / "validation.csv").read_text().splitlines())
    assert all(row[header.index("batch")].isdigit() for row in rows)  # whole batches as 1, not 1.0
    assert json.loads((tmp_path / "validation.json").read_text())["profile"] == "calibrated"
    assert main(["validate", "--measurements", str(FIXTURE), "--scenario", "offline"]) == 2
    assert "scenario[0]" in capsys.readouterr().err


def test_the_shipped_measurements_read_and_score() -> None:
    from dse.catalog import catalog_root

    shipped = read_measurements(catalog_root() / "calibration" / "measurements.csv")
    result = validate(shipped)
    assert len(result.rows) == len([m for m in shipped if m.record.scenario in SCORED_SCENARIOS]) >= 200
    assert result.rows["feasible"].mean() > 0.95  # nearly every published deployment fits in the model
    assert {s["metric"] for s in result.summary} >= {"tpot_s", "throughput_tokens_per_s_per_device"}


def test_the_docs_quote_the_in_sample_errors_dse_validate_prints() -> None:
    """docs/validation.md's "Fitted, in sample" figures (median |error| / bias per quantity, Spearman) are those
    ``dse validate`` prints for the shipped measurements, rounded as it rounds them."""
    from dse.catalog import catalog_root

    text = (Path(__file__).resolve().parents[2] / "docs" / "validation.md").read_text()
    pattern = r"Fitted, in sample \(`dse validate`\): (.+?);\s+Spearman median (\d\.\d\d), lowest (\d\.\d\d)"
    line = re.search(pattern, text)
    assert line is not None
    quoted = re.findall(r"(\d+) % / ([+-]?\d+) % \((\w+)\)", line[1])
    doc = validate(read_measurements(catalog_root() / "calibration" / "measurements.csv")).to_dict()
    summary = {s["metric"]: s for s in doc["summary"]}
    names = {"TPOT": "tpot_s", "prefill": "prefill_tokens_per_s", "throughput": "throughput_tokens_per_s_per_device"}
    printed = [
        (f"{summary[m]['median_abs_error']:.0%}", f"{summary[m]['bias']:+.0%}", name) for name, m in names.items()
    ]
    assert [(f"{median}%", f"{bias}%", name) for median, bias, name in quoted] == printed
    lowest = min(r["spearman"] for r in doc["ranks"])
    assert (line[2], line[3]) == (f"{doc['median_spearman']:.2f}", f"{lowest:.2f}")


def test_unknown_catalog_ids_exit_2_naming_the_file_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(FIXTURE.read_text().replace(",rtx-3090,", ",rtx-9090,", 1))
    for argv in (["validate", "--measurements", str(bad)], ["calibrate", str(bad), "--out", str(tmp_path / "p.yaml")]):
        code = main(argv)
        _, err = capsys.readouterr()
        assert code == 2 and f"{bad}: hardware: line 3: unknown hardware or system id 'rtx-9090'" in err, err
        assert "Traceback" not in err
    code = main(["calibrate", str(FIXTURE), "--out", str(tmp_path / "p.yaml"), "--hardware", "h100-sxn"])
    _, err = capsys.readouterr()
    assert code == 2 and "unknown hardware or system id 'h100-sxn' (did you mean: h100-sxm" in err
    assert "rows the model can score" not in err and not (tmp_path / "p.yaml").exists()


SERVER_ROW = (
    "id,source,model,hardware,tp,pp,ep,quant,kv,prompt_len,gen_len,batch,scenario,metric,value,notes,engine,"
    "request_rate,max_num_seqs,chunk_tokens,statistic\n"
    "s-ttft,test,llama-3.1-8b,h100-sxm,1,1,1,bf16,,1000,101,,server,ttft_s,0.03,,,5,64,2048,p90\n"
    "s-tpot,test,llama-3.1-8b,h100-sxm,1,1,1,bf16,,1000,101,,server,tpot_s,0.007,,,5,,,\n"
    "b-tpot,test,llama-3.1-8b,h100-sxm,1,1,1,bf16,,1000,101,1,batch,tpot_s,0.007,,,,,,\n"
)


def test_a_server_row_with_a_load_is_scored_at_its_rate(tmp_path: Path) -> None:
    """A server row that gives its request rate (and the engine's limits) is predicted as `dse analyze
    --scheduler continuous --request-rate` predicts it, its statistic a percentile where it says so; the other
    rows stay static."""
    path = tmp_path / "server.csv"
    path.write_text(SERVER_ROW)
    rows = predict(read_measurements(path)).set_index("id")
    at_rate = dict(prompt_len=1000, gen_len=101, scheduler="continuous", request_rate=5.0)
    p90 = analyze("llama-3.1-8b", "h100-sxm", max_num_seqs=64, chunk_tokens=2048, **at_rate).to_dict()
    assert rows.loc["s-ttft", "predicted"] == pytest.approx(p90["percentiles"]["ttft_s"]["p90"], rel=1e-12)
    assert rows.loc["s-ttft", "statistic"] == "p90" and rows.loc["s-ttft", "request_rate"] == 5.0
    mean = analyze("llama-3.1-8b", "h100-sxm", **at_rate).to_dict()  # dse's default slots and budget
    assert rows.loc["s-tpot", "predicted"] == pytest.approx(mean["tpot_s"], rel=1e-12)
    static = analyze("llama-3.1-8b", "h100-sxm", prompt_len=1000, gen_len=101).to_dict()
    assert rows.loc["b-tpot", "predicted"] == pytest.approx(static["tpot_s"], rel=1e-12)
    assert static["tpot_s"] != mean["tpot_s"]
    # the summary keeps a row at its rate apart from static ones, and a percentile apart from means
    summary = validate(read_measurements(path), scenarios=("batch", "server")).summary
    assert {(s["metric"], s["scenario"], s["rows"]) for s in summary} == {
        ("ttft_s", "server at its rate, p90", 1),
        ("tpot_s", "server at its rate", 1),
        ("tpot_s", "batch", 1),
    }


def test_a_row_without_its_load_is_not_scored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A server row with neither its rate nor a batch holds queueing at a load it does not give, and a
    max-throughput TTFT without a batch the wait behind every request queued before it: neither is scored (a
    static batch of one stood in, -98 % on MLPerf's Server TTFT), and the CLI says which and why; a server row
    with a batch is that static batch, and a max-throughput TPOT is every slot busy's."""
    path = tmp_path / "server.csv"
    path.write_text(
        SERVER_ROW
        + "u-ttft,test,llama-3.1-8b,h100-sxm,1,1,1,bf16,,1000,101,,server,ttft_s,0.5,,,,,,\n"
        + "n-ttft,test,llama-3.1-8b,h100-sxm,1,1,1,bf16,,1000,101,8,server,ttft_s,0.5,,,,,,\n"
        + "q-ttft,test,llama-3.1-8b,h100-sxm,1,1,1,bf16,,1000,101,,max-throughput,ttft_s,9.0,,,,,,\n"
        + "q-tpot,test,llama-3.1-8b,h100-sxm,1,1,1,bf16,,1000,101,,max-throughput,tpot_s,0.05,,,,,,\n"
    )
    result = validate(read_measurements(path), scenarios=("server", "max-throughput"))
    rows = result.rows.set_index("id")
    for unscored in ("u-ttft", "q-ttft"):
        assert np.isnan(rows.loc[unscored, "predicted"]) and rows.loc[unscored, "feasible"]
    static = analyze("llama-3.1-8b", "h100-sxm", prompt_len=1000, gen_len=101, batch=8).to_dict()
    assert rows.loc["n-ttft", "predicted"] == pytest.approx(static["ttft_s"], rel=1e-12)
    busy = analyze("llama-3.1-8b", "h100-sxm", prompt_len=1000, gen_len=101, scheduler="continuous").to_dict()
    assert rows.loc["q-tpot", "predicted"] == pytest.approx(busy["tpot_s"], rel=1e-12)
    assert [u["id"] for u in result.to_dict()["unscored"]] == ["u-ttft", "q-ttft"]
    (plain,) = [s for s in result.summary if s["scenario"] == "server" and s["metric"] == "ttft_s"]
    assert plain["rows"] == 2 and plain["scored"] == 1
    assert main(["validate", "--measurements", str(path), "--scenario", "server", "--scenario", "max-throughput"]) == 0
    out = capsys.readouterr().out
    assert "1 row not scored, a server row with neither a request_rate nor a batch" in out
    assert "1 row not scored, a max-throughput latency without a batch" in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace(",server,tpot_s,0.007,,,5,,,", ",server,tpot_s,0.007,,,,64,,"),
            ["line 3", "max_num_seqs"],
        ),
        (
            lambda t: t.replace(",1,batch,tpot_s,0.007,,,,,,", ",1,batch,tpot_s,0.007,,,2,,,"),
            ["line 4", "request_rate"],
        ),
        (lambda t: t.replace(",server,tpot_s,0.007,,,5,,,", ",server,tpot_s,0.007,,,,,,p99"), ["line 3", "statistic"]),
        (lambda t: t.replace(",1,batch,tpot_s,0.007,,,,,,", ",1,batch,tpot_s,0.007,,,,,,p50"), ["line 4", "statistic"]),
        (
            lambda t: t.replace(",server,ttft_s,0.03,,,5,64,2048,p90", ",server,ttft_s,0.03,,,5,64,2048,p95"),
            ["statistic"],
        ),
        (
            lambda t: t.replace(",server,ttft_s,0.03,,,5,64,2048,p90", ",server,ttft_s,0.03,,,-5,64,2048,p90"),
            ["request_rate"],
        ),
        # a throughput at a rate the deployment sustains is the rate's: nothing to check
        (
            lambda t: t.replace(",server,tpot_s,0.007,,,5,,,", ",server,throughput_tokens_per_s_per_device,500,,,5,,,"),
            ["line 3", "metric", "scored for tpot_s or ttft_s"],
        ),
    ],
)
def test_a_load_on_the_wrong_row_names_its_line_and_column(tmp_path: Path, change: object, expected: list[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(change(SERVER_ROW))  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        read_measurements(bad)
    for part in [str(bad), *expected]:
        assert part in str(info.value)


def test_hardware_is_ranked_within_one_engine_and_one_fixed_batch(tmp_path: Path) -> None:
    """Rows that differ in more than hardware are not one ranking: the fixture's five llama.cpp decode rows
    (five devices, one group) joined by the same rows under another engine, and at another batch, make three
    groups of five, not one group whose devices pool engines and batches."""
    lines = FIXTURE.read_text().splitlines()
    decode = [line for line in lines[1:] if "-tpot_s," in line and ",tpot_s," in line]
    assert len(decode) == 5
    other_engine = [line.replace("-tpot_s,", "-vllm,", 1) for line in decode]
    other_batch = [line.replace("-tpot_s,", "-b4,", 1).replace(",1024,1,batch,", ",1024,4,batch,") for line in decode]
    header = lines[0] + ",engine"
    rows = [f"{line},llama.cpp" for line in decode + other_batch] + [f"{line},vllm" for line in other_engine]
    path = tmp_path / "ranks.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    ranks = validate(read_measurements(path)).ranks
    assert sorted((r["engine"], r["fixed_batch"], r["hardware"]) for r in ranks) == [
        ("llama.cpp", "1.0", 5),
        ("llama.cpp", "4.0", 5),
        ("vllm", "1.0", 5),
    ]


def test_the_summary_broken_down_by_columns(capsys: pytest.CaptureFixture[str]) -> None:
    """``--by hardware``: one summary entry per hardware and quantity, each naming its hardware, holding the
    statistics of that hardware's rows alone; a column that cannot group is refused, naming the choices."""
    code = main(["validate", "--measurements", str(FIXTURE), "--by", "hardware", "--json"])
    doc = json.loads(capsys.readouterr().out)
    rows = predict(read_measurements(FIXTURE))
    assert code == 0 and doc["by"] == ["hardware"]
    expected = rows.groupby(["hardware", "metric"]).size()
    assert sorted((s["hardware"], s["metric"], s["rows"]) for s in doc["summary"]) == sorted(
        (h, m, n) for (h, m), n in expected.items()
    )
    for s in doc["summary"]:
        mine = rows[(rows["hardware"] == s["hardware"]) & (rows["metric"] == s["metric"]) & rows["feasible"]]
        assert s["bias"] == pytest.approx(float(np.median(mine["error"])))
    assert main(["validate", "--measurements", str(FIXTURE), "--by", "colour"]) == 2
    assert "by[0]: expected one of engine, hardware" in capsys.readouterr().err


def test_a_breakdown_reads_each_group_s_rows_and_scenarios_by_position() -> None:
    """A table joined from two (index labels repeated) with several rows a group and two scenarios: each
    group's entry holds its own rows' statistics under their own scenario; a column named twice is refused."""
    one = predict(read_measurements(FIXTURE))
    two = one.assign(error=one["error"] * 2.0, hardware=one["hardware"] + "-b")
    both = pd.concat([one, one, two])  # labels 0..n-1 three times
    summary = summarise(both, "default", by=("hardware",)).summary
    for s in summary:
        mine = both[(both["hardware"] == s["hardware"]) & (both["metric"] == s["metric"])]
        assert s["rows"] == len(mine) and s["scenario"] == mine["scenario"].iloc[0]
        assert s["bias"] == pytest.approx(float(np.median(mine.loc[mine["feasible"], "error"])))
    assert {s["rows"] for s in summary if not s["hardware"].endswith("-b")} == {2}
    with pytest.raises(InputError, match="by\\[1\\]"):
        validate(read_measurements(FIXTURE), by=("engine", "engine"))


def test_a_breakdown_by_batch_holds_the_batches_engines_chose_together() -> None:
    """``--by batch``: rows at a fixed batch group by it; rows whose engine chose the batch (the model's reading
    of the sequences it holds, one decimal each) form one group of no batch, not a group per reading."""
    rows = predict(read_measurements(FIXTURE))
    n = len(rows)
    chose = np.arange(n) % 3 == 0
    readings = 100.0 + np.arange(n) / 10.0  # every engine-chosen row a reading of its own
    rows = rows.assign(batch=np.where(chose, readings, np.where(np.arange(n) % 2 == 0, 1, 8)), engine_chose_batch=chose)
    summary = summarise(rows, "default", by=("batch",)).summary
    counts: dict[Any, int] = {}
    for s in summary:
        counts[s["batch"]] = counts.get(s["batch"], 0) + s["rows"]
    assert counts == {
        1: int(np.sum(~chose & (np.arange(n) % 2 == 0))),
        8: int(np.sum(~chose & (np.arange(n) % 2 == 1))),
        None: int(chose.sum()),
    }
