"""Hugging Face ``config.json`` -> ``ModelRecord``, for the model families the catalog covers.

Key names and defaults follow the ``transformers`` configuration classes (``LlamaConfig``, ``MixtralConfig``,
``Qwen2Config``, ``Qwen3MoeConfig``, ``DeepseekV3Config``, ``GptOssConfig``, ``Gemma2Config``, ``Gemma3TextConfig``,
``Phi3Config``, ``GPTJConfig``, ``FalconConfig``, ``OPTConfig``, ``Llama4TextConfig``). Family quirks (what
``intermediate_size`` means, which layers are MoE or sliding-window) are described in ``models/*.yaml`` notes and
in the reference notes the catalog was built from. An unknown ``model_type`` is read with the Llama-style keys.

Every missing key or value of the wrong type raises ``InputError`` naming the file and the key.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from dse.catalog._hf_families import FAMILIES, NESTED, generic
from dse.catalog._hf_reader import Fields, Reader, layer_set_from_members
from dse.catalog._model import ModelRecord
from dse.catalog._registry import quant_catalog
from dse.errors import AssumptionWarning, InputError

__all__ = ["layer_set_from_members", "model_record_from_hf_config"]


# --- identity and entry point --------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    """Lowercase id with only [a-z0-9._-], starting with a letter or digit."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).lstrip("._-").rstrip("-")


def _identity(r: Reader, model_type: str) -> Fields:
    """id/name from ``_name_or_path`` (last path part) or the file name; ``config.json`` uses its folder name."""
    name_or_path = r.string("_name_or_path", "")
    path = PurePath(r.source)
    stem = path.parent.name if path.stem == "config" and path.parent.name else path.stem
    name = PurePath(name_or_path).name or stem
    ident = _slug(name)
    if not ident:
        raise r.error("_name_or_path", f"cannot derive a model id from {name!r} or the file name")
    looks_like_hub = bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name_or_path))
    return {
        "id": ident,
        "name": name,
        "hf_name": name_or_path if looks_like_hub else None,
        "family": model_type or None,
    }


def _provenance(source: str, model_type: str) -> Fields:
    """Read from the file today; an unknown model_type is flagged in the note."""
    note = "read from the file"
    if model_type not in FAMILIES:
        note += f"; unknown model_type {model_type!r} read with Llama-style keys"
    return {"source": source, "as_of": datetime.date.today().isoformat(), "confidence": "verified", "note": note}


ATTENTION_MODULES = ("self_attn", "attention", "attn")
"""Names a ``modules_to_not_convert`` entry of attention carries (transformers' module names)."""


def _checkpoint(r: Reader, schemes: set[str]) -> Fields:
    """The checkpoint's quantization (``quantization_config``) when its ``quant_method`` is one of the
    catalog's ``schemes`` (an AWQ or GPTQ checkpoint says nothing the user's ``--quant`` does not), with
    attention among the layers left at 16-bit when ``modules_to_not_convert`` names it."""
    if not r.has("quantization_config"):
        return {}
    config = r.nested("quantization_config")
    method = config.string("quant_method", "")
    if method not in schemes:
        return {}
    skipped = [str(m).split(".") for m in config.array("modules_to_not_convert", [])]
    attention = any(part in ATTENTION_MODULES for parts in skipped for part in parts)
    return {"checkpoint": {"scheme": method, "unquantized": ["attention"] if attention else []}}


def _validated(fields: Fields, source: str) -> ModelRecord:
    """``ModelRecord.model_validate`` with schema violations reported as ``InputError``."""
    try:
        return ModelRecord.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"config does not map to a valid model: {problems}", source=source, field=field) from None


def model_record_from_hf_config(config: dict[str, Any], *, source: str) -> ModelRecord:
    """Map a Hugging Face ``config.json`` (parsed) to a ``ModelRecord``; ``source`` is the file path.

    Raises ``InputError`` (with ``source`` and ``field``) for a missing key, a wrong type or an unmappable layout.
    """
    if not isinstance(config, Mapping):
        raise InputError("expected a JSON object (a Hugging Face config.json)", source=source)
    top = Reader(config, source)
    model_type = top.string("model_type", "")
    text = top.nested("text_config") if model_type in NESTED or top.has("text_config") else top
    if "tie_word_embeddings" in config and "tie_word_embeddings" not in text.data:
        text = Reader({**text.data, "tie_word_embeddings": config["tie_word_embeddings"]}, source, text.prefix)
    if model_type not in FAMILIES and text is not top:
        model_type = text.string("model_type", model_type)
    family = FAMILIES.get(model_type, generic)
    if model_type not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        warnings.warn(
            AssumptionWarning(
                f"{source}: unknown model_type {model_type!r}: read with Llama-style keys (attention, gated MLP;"
                f" MoE and sliding window when their keys are present); families known exactly: {known}"
            ),
            stacklevel=2,
        )
    fields = family(text) | _identity(top, model_type) | _checkpoint(top, {s.id for s in quant_catalog().schemes})
    fields["provenance"] = _provenance(source, model_type)
    return _validated(fields, source)
