"""Fitted family profiles, their choice per target, per-format efficiency, error bars and SLO confidence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dse
from dse.calibrate import SCORED_SCENARIOS, calibrate, read_measurements, validate
from dse.calibrate._fit import conformal_ratios, identified, interval_table
from dse.catalog import (
    ENGINE_PREFERENCE,
    GENERIC,
    QUANTITIES,
    efficiency_profile,
    hardware_catalog,
    load_profile,
    profile_catalog,
    profile_for,
)
from dse.cli import main
from dse.errors import InputError
from dse.scoring import analyze, interval_ratios, ratio_at
from dse.space import load_space

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "calibration" / "measurements.csv"
HOLDOUT = ROOT / "calibration" / "holdout.csv"


def test_every_accelerator_gets_one_profile_and_fitted_ones_were_measured() -> None:
    fitted = [p for p in profile_catalog().values() if p.record.fit is not None]
    assert len(fitted) >= 4
    for p in fitted:
        assert p.calibrated_on <= set(p.record.hardware), p.id  # measured hardware is covered hardware
        assert p.record.engine is not None and p.record.interval is not None
        assert p.record.provenance is not None, p.id  # the sources of the fields the fit did not set
        assert set(p.record.interval.held_out) == set(QUANTITIES), p.id
        plain = {n for n in p.record.fit.parameters if not n.startswith("compute_efficiency_by_format.")}
        assert plain <= {"bandwidth_efficiency", "compute_efficiency", "kernel_overhead_us"}, p.id
    for accelerator in hardware_catalog():
        automatic = [p for p in fitted if accelerator in p.record.hardware and p.record.automatic]
        engines = [p.record.engine for p in automatic]
        assert len(engines) == len(set(engines)), accelerator  # at most one automatic profile per engine
        for p in fitted:
            assert p.record.engine in ENGINE_PREFERENCE


def test_profile_choice_prefers_serving_engines_and_falls_back_to_generic() -> None:
    hopper, calibrated = profile_for("h100-sxm")
    assert hopper.record.engine == "tensorrt-llm" and calibrated  # TensorRT-LLM rows measured it
    assert profile_for("h100-pcie")[0].id == hopper.id and not profile_for("h100-pcie")[1]  # family, unmeasured
    llama, measured = profile_for("h100-pcie", "llama.cpp")  # only when llama.cpp is named (automatic: false)
    assert llama.record.engine == "llama.cpp" and not llama.record.automatic and measured
    assert profile_for("a100-sxm-80gb")[0].id == GENERIC  # no serving-engine measurement of Ampere
    generic, flag = profile_for("gaudi3")
    assert generic.id == GENERIC and not flag
    assert profile_for("gaudi3", "llama.cpp")[0].id == GENERIC
    amd, measured = profile_for("mi300x")  # MLPerf's vLLM rows measured it; MI355X is of its family, unmeasured
    assert amd.record.engine == "vllm" and measured and profile_for("mi355x") == (amd, False)


def test_a_formats_efficiency_moves_only_the_linear_layers() -> None:
    """Compute-bound prefill (4k tokens, batch 8) in FP8 on H100: halving the FP8 efficiency doubles the time
    of every linear layer and leaves attention (16-bit) and the element-wise operators as they were."""
    base = load_profile(GENERIC).record.model_copy(update={"kernel_overhead_us": 0.0})
    slower = base.model_copy(update={"compute_efficiency_by_format": {"fp8": base.compute_efficiency / 2}})
    kwargs = {"quant": "fp8", "batch": 8, "prompt_len": 4096, "gen_len": 1}
    times = {}
    for name, record in (("base", base), ("slower", slower)):
        path = ROOT / "build" / f"test-profile-{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(record.model_dump(exclude_none=True)))
        doc = analyze("llama-3.1-8b", "h100-sxm", profile=str(path), **kwargs).to_dict()
        times[name] = {r["name"]: r for r in doc["layers"] if r["stage"] == "prefill" and r.get("time_s")}
        path.unlink()
    linear = [n for n, r in times["base"].items() if r.get("peak") == "matmul" and r["bound"] == "compute"]
    others = [n for n, r in times["base"].items() if r.get("peak") in ("matmul16", "vector")]
    assert linear and others
    for n in linear:
        assert times["slower"][n]["time_s"] == pytest.approx(2 * times["base"][n]["time_s"], rel=1e-9), n
    for n in others:
        assert times["slower"][n]["time_s"] == pytest.approx(times["base"][n]["time_s"], rel=1e-12), n


def test_fp16_accumulation_doubles_a_geforce_cards_16_bit_peak_for_the_engines_that_use_it() -> None:
    """llama.cpp's cuBLAS GEMMs accumulate in FP16 (``gemm_accumulate: fp16``): an RTX 3090 computes them at its
    FP16-accumulate 142 TFLOP/s, twice the FP32-accumulate 71 a PyTorch-based engine (``default``) gets; an RTX
    A6000 runs both at 154.8 (NVIDIA's GA102 whitepaper and A6000 datasheet, hardware/accelerators)."""
    peaks = {}
    for hw in ("rtx-3090", "rtx-a6000"):
        for prof in ("nvidia-geforce-llamacpp", GENERIC):
            doc = analyze("llama-3-8b", hw, quant="fp16", prompt_len=1024, gen_len=1, profile=prof).to_dict()
            peaks[hw, prof] = doc["roofline"]["peak_flops_per_s"]
    assert peaks["rtx-3090", "nvidia-geforce-llamacpp"]["matmul"] == pytest.approx(142e12, rel=1e-12)
    assert peaks["rtx-3090", "nvidia-geforce-llamacpp"]["matmul16"] == pytest.approx(142e12, rel=1e-12)
    assert peaks["rtx-3090", GENERIC]["matmul"] == pytest.approx(71e12, rel=1e-12)
    assert peaks["rtx-3090", GENERIC]["vector"] == peaks["rtx-3090", "nvidia-geforce-llamacpp"]["vector"]
    for prof in ("nvidia-geforce-llamacpp", GENERIC):
        assert peaks["rtx-a6000", prof]["matmul"] == pytest.approx(154.8e12, rel=1e-12)


def test_llama_cpp_prefill_ranks_an_rtx_3090_with_an_rtx_a6000_as_measured() -> None:
    """Published llama.cpp prompt processing of Llama-3-8B FP16 over 1,024 tokens (XiongjieDai's GPU
    benchmarks, calibration/measurements.csv rows 522 and 534): 4,239.64 tok/s on an RTX 3090 and 4,315.18 on
    an RTX A6000, whose FP32-accumulate peak is 2.2x the 3090's. At FP16 accumulation the peaks are 142 and
    154.8 and the predicted ratio lands within 10 % of the measured 0.98 (at the FP32-accumulate peaks it was
    0.41)."""
    rate = {
        hw: 1024 / analyze("llama-3-8b", hw, quant="fp16", prompt_len=1024, gen_len=1).to_dict()["ttft_s"]
        for hw in ("rtx-3090", "rtx-a6000")
    }
    measured = 4239.64 / 4315.18
    assert rate["rtx-3090"] / rate["rtx-a6000"] == pytest.approx(measured, rel=0.10)


def test_conformal_quantiles_by_hand() -> None:
    """n = 9 log ratios 0..8 (in units of 0.1): the p90 is the ceil(10 x 0.9) = 9th smallest, the p10 the
    floor(10 x 0.1) = 1st, the p50 the median."""
    x = np.arange(9) * 0.1
    lo, mid, hi = conformal_ratios(x)
    assert (lo, mid, hi) == pytest.approx((math.exp(0.0), math.exp(0.4), math.exp(0.8)))
    lo, _, hi = conformal_ratios(np.arange(19) * 0.1)  # n = 19: ranks 2 and 18
    assert (lo, hi) == pytest.approx((math.exp(0.1), math.exp(1.7)))


def test_residual_signs_turn_into_the_quantitys_ratio() -> None:
    """A prefill rate over-predicted 2x is a TTFT under-predicted 2x: measured / predicted TTFT = 2."""
    rows = [r for r in read_measurements(SHIPPED) if r.record.metric == "prefill_tokens_per_s"][:5]
    ratios, counts = interval_table(rows, np.full(5, math.log(2.0)))
    assert counts == {"ttft_s": 5} and ratios["ttft_s"] == pytest.approx([2.0, 2.0, 2.0])


def test_a_percentile_row_is_neither_an_interval_nor_an_identifying_row() -> None:
    """A p99 TTFT or TPOT measured at a rate is fitted as its own target, but an interval brackets a mean (a
    percentile's residual is another quantity's error) and a percentile pins down no decode kernel's figures."""
    held = [r for r in read_measurements(HOLDOUT) if r.record.metric in ("ttft_s", "tpot_s")]
    tails = [r for r in held if r.record.figure != "mean"]
    means = [r for r in held if r.record.figure == "mean" and r.record.metric == "ttft_s"][:5]
    assert len(tails) >= 5 and len(means) == 5
    _, counts = interval_table(tails + means, np.zeros(len(tails) + 5))
    assert counts == {"ttft_s": 5}
    decode = [r for r in tails if r.record.metric == "tpot_s"]
    assert len(decode) >= 5 and identified(decode, np.full(len(decode), "fp8")) == ()


def test_only_the_parameters_the_rows_identify_are_fitted() -> None:
    rows = [r for r in read_measurements(SHIPPED) if r.record.scenario in SCORED_SCENARIOS]  # as refit.py fits
    trt = [r for r in rows if r.record.engine == "tensorrt-llm"]
    fmt = np.asarray(["fp8" if r.record.quant == "fp8" else "fp4" for r in trt])
    assert identified(trt, fmt) == (
        "compute_efficiency_by_format.fp8",
        "compute_efficiency_by_format.fp4",
    )  # no decode-latency row: bandwidth and kernel overhead stay the base's; no linear layer at 16 bits
    assert identified(trt[:3] + trt[3:], np.asarray(["fp16"] * 3 + list(fmt[3:]))) == (
        "compute_efficiency",
        *identified(trt, fmt),
    )  # three rows computing at 16 bits pin the 16-bit efficiency
    decode = [r for r in rows if r.record.metric == "tpot_s"]
    assert identified(decode, np.full(len(decode), "fp16")) == ("bandwidth_efficiency", "kernel_overhead_us")


def test_analyze_gives_intervals_wider_when_uncalibrated() -> None:
    calibrated = analyze("llama-3.1-8b", "h100-sxm", batch=8).to_dict()
    generic = analyze("llama-3.1-8b", "gaudi3", batch=8).to_dict()
    assert calibrated["calibrated"] and not generic["calibrated"]
    assert calibrated["inputs"]["profile"] == profile_for("h100-sxm")[0].id and generic["inputs"]["profile"] == GENERIC
    for doc in (calibrated, generic):
        for q in QUANTITIES:
            lo, hi = doc["intervals"][q]
            assert lo < hi
    for q in ("tpot_s", "ttft_s"):

        def width(doc: dict, q: str = q) -> float:
            return math.log(doc["intervals"][q][1] / doc["intervals"][q][0])

        assert width(generic) > width(calibrated), q
    ideal = analyze("llama-3.1-8b", "h100-sxm", ideal=True).to_dict()
    assert ideal["intervals"] == dict.fromkeys(QUANTITIES) and not ideal["calibrated"]


def test_evaluate_returns_the_same_intervals_as_analyze() -> None:
    frame = pd.DataFrame({"model": ["llama-3.1-8b"] * 2, "hardware": ["h100-sxm", "mi300x"], "batch": [8, 8]})
    out = dse.evaluate(frame, intervals=True)
    for row, hw in zip(out.itertuples(), ("h100-sxm", "mi300x"), strict=True):
        doc = analyze("llama-3.1-8b", hw, batch=8).to_dict()
        assert row.calibrated == doc["calibrated"]
        assert [row.ttft_s_p10, row.ttft_s_p90] == pytest.approx(doc["intervals"]["ttft_s"], rel=1e-9)
        assert [row.throughput_tokens_per_s_p10, row.throughput_tokens_per_s_p90] == pytest.approx(
            doc["intervals"]["throughput_tokens_per_s"], rel=1e-9
        )
    assert "ttft_s_p90" not in dse.evaluate(frame).columns


def test_analyze_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["intervals"]) == {"ttft_s", "tpot_s", "throughput_tokens_per_s"} and doc["calibrated"] is True
    lo, hi = doc["intervals"]["tpot_s"]
    assert lo <= doc["tpot_s"] <= hi


def test_slo_confidence_checks_the_p90_not_the_point(tmp_path: Path) -> None:
    text = (ROOT / "spaces" / "quickstart.yaml").read_text()
    point = load_space(str(ROOT / "spaces" / "quickstart.yaml"))
    strict_file = tmp_path / "strict.yaml"
    strict_file.write_text(text.replace("tpot_s: 0.05}", "tpot_s: 0.05, confidence: 0.9}"))
    strict = load_space(str(strict_file))
    a, b = point.evaluate_index(np.arange(point.size)), strict.evaluate_index(np.arange(strict.size))
    assert np.all(b["feasible"] <= a["feasible"]) and b["feasible"].sum() < a["feasible"].sum()
    p90 = {hw: ratio_at(interval_ratios(profile_for(hw)[0])["ttft_s"], 0.9) for hw in set(b["hardware"])}
    ttft90 = b["ttft_s"] * np.asarray([p90[h] for h in b["hardware"]])
    lost = a["feasible"] & ~b["feasible"]
    assert np.all(ttft90[lost & (a["tpot_s"] <= 0.05 / 1.9)] > 2.0)  # TTFT at p90 over its 2 s bound
    assert any(r.startswith("slo ttft_s at p90") for r in b["infeasible_reason"] if r)
    ideal = tmp_path / "ideal.yaml"
    ideal.write_text(strict_file.read_text() + "profile: ideal\n")
    with pytest.raises(InputError, match=r"slo\.confidence.*ideal"):
        load_space(str(ideal))


def test_ratio_at_interpolates_between_the_stored_quantiles() -> None:
    ratios = (0.8, 1.0, 1.5)
    assert ratio_at(ratios, 0.5) == pytest.approx(1.0) and ratio_at(ratios, 0.9) == pytest.approx(1.5)
    assert ratio_at(ratios, 0.7) == pytest.approx(math.sqrt(1.5))  # halfway in log space


def test_shipped_profiles_cross_validated() -> None:
    """Leave one accelerator out of its family's fit, predict its rows (docs/validation.md). Decode TPOT and
    max throughput and prefill meet the issue's targets: median |error| <= 12 %, <= 20 % and <= 20 %, bias within
    8 %, and the p10-p90 intervals built without each row's accelerator hold 70-90 % of the rows."""
    result = validate(read_measurements(SHIPPED), cross_validate=True)
    summary = {s["metric"]: s for s in result.summary}
    limits = {"tpot_s": (0.12, 0.08), "throughput_tokens_per_s_per_device": (0.20, 0.08)}
    limits["prefill_tokens_per_s"] = (0.20, 0.08)
    for metric, (median, bias) in limits.items():
        s = summary[metric]
        assert s["scored"] == s["rows"] and s["median_abs_error"] <= median, s
        assert abs(s["bias"]) <= bias, s
        assert 0.7 <= s["interval_coverage"] <= 0.9, s
    assert efficiency_profile(load_profile(GENERIC).record).id == GENERIC


def test_a_left_out_accelerator_takes_the_engines_decode_figures_its_family_cannot_identify() -> None:
    """Held out, the M2 Ultra leaves the Apple family the M1's two rows, which identify nothing: its bandwidth
    efficiency and kernel overhead come from llama.cpp's decode rows on the other accelerators (0.915, 10 µs),
    not the generic 0.8 and 2 µs, so Llama-3-8B Q4 decode (row 506) is 19 % fast, not 38 %."""
    rows = read_measurements(SHIPPED)
    engine = [m for m in rows if m.record.engine == "llama.cpp"]
    apple = load_profile("apple-llamacpp").record
    apple_rows = [m for m in engine if m.record.hardware in apple.hardware]
    pooled = calibrate(apple_rows, base="apple-llamacpp", profile_id="apple-llamacpp", prior=engine)
    alone = calibrate(apple_rows, base="apple-llamacpp", profile_id="apple-llamacpp", prior=[])
    assert math.expm1(pooled.held_out_residuals["506-tpot_s"]) == pytest.approx(-0.19, abs=0.02)
    assert math.expm1(alone.held_out_residuals["506-tpot_s"]) == pytest.approx(-0.38, abs=0.02)
    # the M1, left out, still comes from the M2 Ultra's four decode rows (they identify both): no change
    assert pooled.held_out_residuals["502-tpot_s"] == pytest.approx(alone.held_out_residuals["502-tpot_s"])


def test_a_format_without_its_own_efficiency_takes_its_widths() -> None:
    """INT8 and FP8 share Hopper's tensor-core peak: a profile fitted on FP8 rows gives INT8 the same figure;
    a 16-bit format keeps compute_efficiency."""
    from dse.scoring._build import matmul_efficiency

    hopper = profile_for("h100-sxm")[0]
    fp8 = hopper.record.compute_efficiency_by_format["fp8"]
    assert matmul_efficiency(hopper, "int8") == matmul_efficiency(hopper, "fp8") == fp8 != hopper.compute_efficiency
    assert matmul_efficiency(hopper, "bf16") == hopper.compute_efficiency
    int8 = analyze("llama-3.1-8b", "h100-sxm", quant="int8").to_dict()["roofline"]["matmul_efficiency"]
    assert int8 == pytest.approx(fp8)


def test_cross_validation_never_scores_a_row_it_could_not_hold_out(tmp_path: Path) -> None:
    """Two Apple rows (one accelerator each side too few to refit) and three GeForce rows: nothing crashes, and
    a row measured in a shipped fit that cannot be predicted without it is left unscored, not scored in sample."""
    rows = SHIPPED.read_text().splitlines()
    header, body = rows[0], rows[1:]
    keep = [r for r in body if ",apple-m2-ultra," in r and "tpot_s" in r][:2]
    keep += [r for r in body if ",rtx-3090," in r or ",rtx-4090," in r][:3]
    mine = tmp_path / "mine.csv"
    mine.write_text("\n".join([header, *keep]) + "\n")
    table = validate(read_measurements(mine), cross_validate=True).rows
    apple = table[table["accelerator"] == "apple-m2-ultra"]
    assert apple["predicted"].isna().all() and not apple["held_out"].any()
    assert table[table["accelerator"] != "apple-m2-ultra"]["held_out"].all()


def test_a_max_throughput_row_that_cannot_hold_one_sequence_stays_infeasible(tmp_path: Path) -> None:
    from dse.calibrate import predict

    header = SHIPPED.read_text().splitlines()[0]
    path = tmp_path / "big.csv"
    path.write_text(
        header + "\nbig,test,llama-3.1-405b,rtx-4090,1,1,1,bf16,,128,128,,max-throughput,"
        "throughput_tokens_per_s_per_device,100,,tensorrt-llm\n"
    )
    (row,) = predict(read_measurements(path)).itertuples()
    assert not row.feasible and row.infeasible_reason


def test_no_rows_of_the_scenarios_asked_for_is_a_clear_error() -> None:
    offline = [r for r in read_measurements(SHIPPED) if r.record.scenario != "server"]
    with pytest.raises(InputError, match="no measurement rows"):
        validate(offline, scenarios=("server",))


def test_hardware_no_family_measured_is_never_given_a_narrower_interval() -> None:
    generic = interval_ratios(load_profile(GENERIC))
    for fitted in (p for p in profile_catalog().values() if p.record.fit is not None):
        for q, (lo, _, hi) in interval_ratios(fitted).items():
            assert generic[q][0] <= lo and generic[q][2] >= hi, (fitted.id, q)


def test_refitting_a_fitted_profile_moves_nothing(tmp_path: Path) -> None:
    """A fit starts from the generic figures whatever its base holds, so fitting the AMD family's rows again
    from its own output gives the same profile."""
    import yaml

    rows = [m for m in read_measurements(SHIPPED) if m.record.scenario in SCORED_SCENARIOS]
    first = calibrate(rows, base="amd-instinct-vllm", profile_id="amd-instinct-vllm", cross_validate=False)
    path = tmp_path / "refit.yaml"
    path.write_text(yaml.safe_dump(first.record.model_dump(exclude_none=True), sort_keys=False))
    again = calibrate(rows, base=str(path), profile_id="amd-instinct-vllm", cross_validate=False)
    assert again.record.compute_efficiency == first.record.compute_efficiency
    assert again.record.compute_efficiency_by_format == first.record.compute_efficiency_by_format
