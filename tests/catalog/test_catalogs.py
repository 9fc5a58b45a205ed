"""The shipped catalogs: complete, validated, with provenance; custom files; clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.catalog import (
    hardware_catalog,
    load_hardware,
    load_model,
    model_catalog,
    profile_catalog,
    quant_catalog,
    resolve_numerics,
    system_catalog,
)
from dse.costmodel import parameter_counts
from dse.errors import InputError
from dse.scoring import architecture

# Every id of the reference hardware table (49 devices).
HARDWARE_IDS = [
    "v100-sxm-32gb",
    "a10",
    "a10g",
    "a100-sxm-40gb",
    "a100-sxm-80gb",
    "a100-pcie-40gb",
    "a100-pcie-80gb",
    "l4",
    "l40s",
    "a40",
    "h100-sxm",
    "h100-pcie",
    "h100-nvl",
    "h200-sxm",
    "h200-nvl",
    "h20",
    "gh200",
    "b200",
    "gb200",
    "b300",
    "rtx-4090",
    "rtx-5090",
    "rtx-a6000",
    "rtx-6000-ada",
    "rtx-pro-6000",
    "rtx-3070",
    "rtx-3080",
    "rtx-3080-ti",
    "rtx-3090",
    "rtx-4070-ti",
    "rtx-4080",
    "rtx-4000-ada",
    "rtx-5000-ada",
    "mi250x",
    "mi300x",
    "mi325x",
    "mi355x",
    "gaudi2",
    "gaudi3",
    "tpu-v4",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "apple-m1",
    "apple-m1-max",
    "apple-m2-ultra",
    "apple-m3-max",
    "apple-m4-max",
    "xeon-8480",
]

# Model-card totals (billions) and how far our count may be from them: cards round ("7B"), and some include
# parts outside the text decoder (vision towers), noted per model in its YAML under params.includes.
CARD_TOLERANCE = 0.05


def test_every_reference_device_is_in_the_catalog() -> None:
    assert set(HARDWARE_IDS) <= set(hardware_catalog())
    assert len(HARDWARE_IDS) == 49


def test_every_device_cites_its_figures() -> None:
    for hw in hardware_catalog().values():
        prov = hw.record.provenance
        assert prov is not None and prov.source and prov.as_of, hw.id
        price = hw.record.price
        if price.purchase_usd is not None or price.cloud_usd_per_hour is not None:
            assert price.provenance is not None, f"{hw.id}: price without a source"


def test_peaks_are_dense_and_plausible() -> None:
    h100 = load_hardware("h100-sxm")
    assert h100.peak("bf16") == pytest.approx(989.4e12)  # dense, not the 1979 sparse headline
    assert load_hardware("a100-sxm-80gb").peak("fp8") is None  # no fp8 tensor cores on Ampere
    for hw in hardware_catalog().values():
        assert 1e9 <= hw.memory_bytes <= 5e12, hw.id
        assert 5e10 <= hw.memory_bandwidth_bytes_per_s <= 2e13, hw.id


def test_systems_bind_to_accelerators() -> None:
    systems = system_catalog()
    assert {"dgx-h100", "dgx-h200", "gb200-nvl72", "mi300x-platform"} <= set(systems)
    assert systems["dgx-h100"].accelerator.id == "h100-sxm"
    assert systems["dgx-h100"].devices_per_node == 8


def test_models_match_their_cards() -> None:
    assert len(model_catalog()) == 32
    for model in model_catalog().values():
        card = model.record.params
        assert card is not None, model.id
        total, active = parameter_counts(architecture(model))
        tolerance = 0.02 if card.includes is None else CARD_TOLERANCE
        if model.id.startswith("llama-4"):  # card totals include the vision encoder (~1-2 B)
            tolerance = CARD_TOLERANCE
        if card.total_b < 10:  # small cards round to the nearest billion ("7B" for 6.74 B)
            tolerance = 0.1
        assert total / 1e9 == pytest.approx(card.total_b, rel=tolerance), model.id
        if card.active_b is not None:
            assert active / 1e9 == pytest.approx(card.active_b, rel=0.1), model.id


@pytest.mark.parametrize(
    ("model", "expected_total_b", "expected_active_b"),
    [
        # active excludes the input embedding (a lookup reads one row), as the gpt-oss and DeepSeek cards count
        ("llama-3.1-8b", 8.03, 7.50),  # HF page: 8.03 B
        ("llama-3.1-405b", 405.85, 403.75),
        ("mixtral-8x7b", 46.70, 12.75),  # Mistral: 46.7 B total, 12.9 B per token (embedding included)
        ("deepseek-v3", 671.03, 36.63),  # README: 671 B / 37 B (MTP excluded)
        ("gpt-oss-20b", 20.91, 3.61),  # card: 21 B / 3.6 B
        ("qwen3-30b-a3b", 30.53, 3.04),  # card: 30.5 B / 3.3 B (embedding included: 3.35 B)
    ],
)
def test_parameter_counts_pinned(model: str, expected_total_b: float, expected_active_b: float) -> None:
    total, active = parameter_counts(architecture(load_model(model)))
    assert total / 1e9 == pytest.approx(expected_total_b, abs=0.01)
    assert active / 1e9 == pytest.approx(expected_active_b, abs=0.02)


def test_quantization_bits_include_scale_overhead() -> None:
    schemes = {s.id: s for s in quant_catalog().schemes}
    assert schemes["w4a16"].weights.bits_per_element == 4 + 32 / 128
    assert schemes["nvfp4"].weights.bits_per_element == 4.5
    assert schemes["mxfp4"].weights.bits_per_element == 4.25
    assert schemes["q8_0"].weights.bits_per_element == 8.5
    raw = resolve_numerics(weight_bits=4, act_bits=16, kv_bits=8)
    assert (raw.weight_bits, raw.embedding_bits, raw.activation_bits, raw.kv_bits) == (4, 4, 16, 8)


def test_profiles_exist() -> None:
    profiles = profile_catalog()
    assert profiles["ideal"].bandwidth_efficiency == 1.0 and profiles["ideal"].kernel_overhead_s == 0
    assert 0 < profiles["default"].bandwidth_efficiency < 1


def test_minimal_custom_hardware_loads(minimal_hardware: str) -> None:
    hw = load_hardware(minimal_hardware)
    assert hw.memory_bytes == 48e9 and hw.memory_bandwidth_bytes_per_s == 768e9  # memory_gb: decimal bytes
    assert hw.peak("fp16") == pytest.approx(154.8e12) and hw.peak("bf16") is None
    assert hw.tdp_w is None and hw.cloud_usd_per_hour is None  # unknown stays unknown


def test_unknown_id_suggests_close_matches() -> None:
    with pytest.raises(InputError, match=r"unknown hardware id 'h100-smx'.*did you mean: h100-sxm"):
        load_hardware("h100-smx")
    with pytest.raises(InputError, match=r"unknown model id 'llama-3.1-70'.*llama-3.1-70b"):
        load_model("llama-3.1-70")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\nname: X\nmemory_gb: [48\n")
    with pytest.raises(InputError, match=r"broken\.yaml: line \d+, column \d+: malformed YAML"):
        load_hardware(str(path))


def test_schema_errors_name_field_line_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("id: x\nname: X\nmemory_gb: -4\nmemory_bandwith_gb_s: 100\npeak_tflops: {fp16: 1}\n")
    with pytest.raises(InputError) as err:
        load_hardware(str(path))
    text = str(err.value)
    assert "typo.yaml" in text
    assert "line 3: memory_gb: Input should be greater than 0 (got -4)" in text
    assert "line 4: memory_bandwith_gb_s: unknown key (did you mean: memory_bandwidth_gb_s" in text
    assert "memory_bandwidth_gb_s: Field required" in text


def test_unknown_peak_format_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "fp3.yaml"
    path.write_text("id: x\nname: X\nmemory_gb: 4\nmemory_bandwidth_gb_s: 100\npeak_tflops: {fp3: 1}\n")
    with pytest.raises(InputError, match=r"peak_tflops\.fp3"):
        load_hardware(str(path))


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"nowhere\.yaml: file not found"):
        load_hardware("nowhere.yaml")


def test_top_k_above_expert_count_is_rejected(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "models" / "mixtral-8x7b.yaml").read_text()
    path = tmp_path / "mixtral-8x7b.yaml"
    path.write_text(text.replace("experts_per_token: 2", "experts_per_token: 9"))
    with pytest.raises(InputError, match=r"experts_per_token \(9\) exceeds num_experts \(8\)"):
        load_model(str(path))


def test_a_checkpoint_names_a_known_scheme(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "models" / "gpt-oss-20b.yaml").read_text()
    path = tmp_path / "gpt-oss-20b.yaml"
    path.write_text(text.replace("scheme: mxfp4", "scheme: mxfp5"))
    with pytest.raises(InputError, match=r"gpt-oss-20b\.yaml.*checkpoint\.scheme.*unknown scheme 'mxfp5'"):
        load_model(str(path))


def test_device_memory_is_read_in_the_unit_its_key_names(tmp_path: Path) -> None:
    from dse.catalog import hardware_catalog, load_hardware

    assert hardware_catalog()["a100-sxm-80gb"].memory_bytes == 80 * 2**30  # 85.9e9 bytes, as the runtime reports
    assert hardware_catalog()["h200-sxm"].memory_bytes == pytest.approx(151.4e9, rel=1e-3)  # runtime: 150.7e9
    base = "id: g\nname: G\nmemory_bandwidth_gb_s: 768\npeak_tflops: {fp16: 1}\n"
    (tmp_path / "gib.yaml").write_text(base + "memory_gib: 48\n")
    (tmp_path / "gb.yaml").write_text(base + "memory_gb: 48\n")
    assert load_hardware(str(tmp_path / "gib.yaml")).memory_bytes == 48 * 2**30
    assert load_hardware(str(tmp_path / "gb.yaml")).memory_bytes == 48e9
    for text in (base, base + "memory_gib: 48\nmemory_gb: 48\n"):
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(InputError, match="exactly one of memory_gib"):
            load_hardware(str(tmp_path / "bad.yaml"))
