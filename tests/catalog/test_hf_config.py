"""Hugging Face config.json -> ModelRecord: the mapped architecture must equal the hand-written models/*.yaml.

Fixtures in ``data/`` are config.json files of the public models (the Llama-4 Maverick one is a stored copy of the
released file; the others are written out from the released files, trimmed of keys that do not affect the mapping).
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dse.catalog._hf_config import layer_set_from_members, model_record_from_hf_config
from dse.catalog._model import LayerSet, ModelRecord, model_spec
from dse.errors import AssumptionWarning, InputError

DATA = Path(__file__).parent / "data"
MODELS = Path(__file__).resolve().parents[2] / "models"
FIXTURES = sorted(p.stem for p in DATA.glob("*.json"))

ARCHITECTURE_FIELDS = (
    "hidden_size",
    "num_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "tie_word_embeddings",
    "ffn_gated",
    "ffn_activation",
    "norm",
    "norms_per_layer",
    "parallel_attention",
    "attention_bias",
    "mlp_bias",
    "lm_head_bias",
    "qk_norm",
    "attention_sinks",
    "learned_position_embeddings",
    "sliding_window",
    "sliding_window_layers",
    "moe",
    "mla",
    "checkpoint",
)


def _config(stem: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{stem}.json").read_text())
    return data


def _mapped(stem: str) -> ModelRecord:
    return model_record_from_hf_config(_config(stem), source=str(DATA / f"{stem}.json"))


def _catalog(stem: str) -> ModelRecord:
    return ModelRecord.model_validate(yaml.safe_load((MODELS / f"{stem}.yaml").read_text()))


def test_fixtures_cover_the_required_families() -> None:
    required = {
        "llama-3.1-8b",
        "mixtral-8x7b",
        "qwen3-30b-a3b",
        "deepseek-v3",
        "gemma-3-27b",
        "gpt-oss-20b",
        "gpt-j-6b",
    }
    assert required <= set(FIXTURES)


@pytest.mark.parametrize("stem", FIXTURES)
@pytest.mark.parametrize("field", ARCHITECTURE_FIELDS)
def test_mapped_record_matches_catalog_yaml(stem: str, field: str) -> None:
    assert getattr(_mapped(stem), field) == getattr(_catalog(stem), field)


@pytest.mark.parametrize("stem", FIXTURES)
def test_derived_layer_counts_match_catalog(stem: str) -> None:
    mapped, catalog = model_spec(_mapped(stem)), model_spec(_catalog(stem))
    assert (mapped.num_moe_layers, mapped.num_window_layers, mapped.kv_elements_per_token_per_layer) == (
        catalog.num_moe_layers,
        catalog.num_window_layers,
        catalog.kv_elements_per_token_per_layer,
    )


def test_checkpoint_quantization_read_from_its_config() -> None:
    """gpt-oss leaves self_attn (and router, embeddings, LM head) out of its MXFP4; DeepSeek-V3's FP8 covers
    every linear layer; a method the catalog has no scheme for (AWQ) records nothing."""
    oss = _mapped("gpt-oss-20b")
    assert oss.checkpoint is not None and (oss.checkpoint.scheme, oss.checkpoint.unquantized) == (
        "mxfp4",
        ["attention"],
    )
    assert oss.keeps_16bit("mxfp4", "attention") and not oss.keeps_16bit("nvfp4", "attention")
    v3 = _mapped("deepseek-v3")
    assert v3.checkpoint is not None and (v3.checkpoint.scheme, v3.checkpoint.unquantized) == ("fp8", [])
    assert not v3.keeps_16bit("fp8", "attention")
    awq = _config("llama-3.1-8b") | {"quantization_config": {"quant_method": "awq", "modules_to_not_convert": ["x"]}}
    assert model_record_from_hf_config(awq, source="awq.json").checkpoint is None


def test_known_layer_counts() -> None:
    assert model_spec(_mapped("gemma-3-27b")).num_window_layers == 52
    assert model_spec(_mapped("gpt-oss-20b")).num_window_layers == 12
    assert model_spec(_mapped("deepseek-v3")).num_moe_layers == 58
    maverick = model_spec(_mapped("llama-4-maverick-17b-128e"))
    assert (maverick.num_moe_layers, maverick.num_dense_ffn_layers, maverick.num_window_layers) == (24, 24, 36)


def test_identity_and_provenance() -> None:
    record = _mapped("opt-66b")
    assert (record.id, record.name, record.hf_name, record.family) == ("opt-66b", "opt-66b", "facebook/opt-66b", "opt")
    assert _mapped("llama-3.1-8b").id == "llama-3.1-8b"  # no _name_or_path: the file stem
    assert record.provenance is not None
    assert record.provenance.source == str(DATA / "opt-66b.json")
    assert record.provenance.as_of == datetime.date.today().isoformat()
    assert record.provenance.confidence == "verified"


def test_config_json_takes_its_folder_name() -> None:
    record = model_record_from_hf_config(_config("llama-3.1-8b"), source="/ckpt/My Model_v2/config.json")
    assert record.id == "my-model_v2"


def test_unknown_model_type_reads_llama_keys_and_says_so() -> None:
    config = _config("llama-3.1-8b") | {"model_type": "somellama"}
    with pytest.warns(AssumptionWarning, match="unknown model_type 'somellama': read with Llama-style keys"):
        record = model_record_from_hf_config(config, source="x.json")
    assert (record.hidden_size, record.intermediate_size, record.family) == (4096, 14336, "somellama")
    assert record.provenance is not None and "unknown model_type" in (record.provenance.note or "")


def test_falcon_7b_multi_query_means_one_kv_head() -> None:
    config = _config("falcon-180b") | {"new_decoder_architecture": False, "num_attention_heads": 71}
    config |= {"hidden_size": 4544, "num_hidden_layers": 32, "num_kv_heads": None}
    record = model_record_from_hf_config(config, source="falcon-7b.json")
    assert (record.num_key_value_heads, record.norms_per_layer, record.intermediate_size) == (1, 1, 4 * 4544)


def test_missing_key_names_the_field() -> None:
    config = _config("llama-3.1-8b")
    del config["hidden_size"]
    with pytest.raises(InputError) as info:
        model_record_from_hf_config(config, source="cfg.json")
    assert (info.value.source, info.value.field) == ("cfg.json", "hidden_size")
    assert "missing" in str(info.value)


def test_missing_nested_key_names_the_dotted_field() -> None:
    config = copy.deepcopy(_config("gemma-3-27b"))
    del config["text_config"]["hidden_size"]
    with pytest.raises(InputError) as info:
        model_record_from_hf_config(config, source="g.json")
    assert info.value.field == "text_config.hidden_size"


@pytest.mark.parametrize(
    ("stem", "key", "value"),
    [
        ("llama-3.1-8b", "hidden_size", "4096"),
        ("llama-3.1-8b", "num_key_value_heads", 8.0),
        ("llama-3.1-8b", "num_hidden_layers", True),
        ("llama-3.1-8b", "tie_word_embeddings", "no"),
        ("llama-3.1-8b", "hidden_act", 3),
        ("qwen3-30b-a3b", "mlp_only_layers", "none"),
        ("gpt-oss-20b", "layer_types", "sliding_attention"),
        ("gpt-j-6b", "n_inner", "16384"),
    ],
)
def test_wrong_type_is_an_input_error(stem: str, key: str, value: Any) -> None:
    config = _config(stem) | {key: value}
    with pytest.raises(InputError) as info:
        model_record_from_hf_config(config, source="bad.json")
    assert info.value.field == key
    assert "expected" in str(info.value)


def test_unsupported_activation_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unsupported activation"):
        model_record_from_hf_config(_config("llama-3.1-8b") | {"hidden_act": "mish"}, source="a.json")


def test_non_periodic_layer_types_are_rejected() -> None:
    types = ["full_attention"] * 24
    types[5] = "sliding_attention"
    types[6] = "sliding_attention"
    types[20] = "sliding_attention"
    with pytest.raises(InputError) as info:
        model_record_from_hf_config(_config("gpt-oss-20b") | {"layer_types": types}, source="o.json")
    assert info.value.field == "layer_types"
    assert "not periodic" in str(info.value)


def test_layer_types_of_wrong_length_are_rejected() -> None:
    with pytest.raises(InputError, match="24 entries"):
        model_record_from_hf_config(_config("gpt-oss-20b") | {"layer_types": ["full_attention"]}, source="o.json")


def test_invalid_record_becomes_input_error() -> None:
    config = _config("llama-3.1-8b") | {"num_key_value_heads": 7}
    with pytest.raises(InputError) as info:
        model_record_from_hf_config(config, source="kv.json")
    assert info.value.source == "kv.json"
    assert "multiple of num_key_value_heads" in str(info.value)


def test_not_an_object_is_an_input_error() -> None:
    with pytest.raises(InputError, match="JSON object"):
        model_record_from_hf_config([1, 2], source="list.json")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([True] * 8, LayerSet()),
        ([i % 2 == 0 for i in range(24)], LayerSet(period=2, offsets=[0])),
        ([i % 2 == 1 for i in range(48)], LayerSet(period=2, offsets=[1])),
        ([i >= 3 for i in range(61)], LayerSet(start=3)),
        ([(i + 1) % 6 != 0 for i in range(62)], LayerSet(period=6, offsets=[0, 1, 2, 3, 4])),
        ([False] * 4, None),
    ],
)
def test_layer_set_from_members(members: list[bool], expected: LayerSet | None) -> None:
    assert layer_set_from_members(members) == expected


def test_layer_set_round_trips_its_members() -> None:
    members = [(i + 1) % 4 != 0 for i in range(48)]
    found = layer_set_from_members(members)
    assert found is not None
    assert [i >= found.start and i % found.period in found.offsets for i in range(48)] == members
